package lease

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// A request that goes unanswered until its deadline is reported to
// Options.Unanswered with how long it waited (the daemon closes the
// connections silent for that long: a silent partition's); a request that
// fails otherwise (refused, an API error) is not. docs/chaos.md, finding 7.
func TestFakeUnansweredReported(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		// "hang": every Lease read and write waits out the elector's
		// deadline (max(2 × retryPeriod, 1s) = 1s; the fake ignores
		// contexts) and fails as client-go reports it; "refuse": fails at
		// once. (Outside the fake's reactors: a reactor runs under the
		// fake's mutex, and a goroutine waiting on a mutex would stop the
		// bubble's clock.)
		var mode atomic.Value
		mode.Store("")
		fail := func(ctx context.Context) error {
			switch mode.Load().(string) {
			case "hang":
				time.Sleep(time.Second)
				return &url.Error{Op: "Put", URL: "https://192.0.2.1:6443/", Err: context.DeadlineExceeded}
			case "refuse":
				return errors.New("dial tcp 192.0.2.1:6443: connect: connection refused")
			}
			return nil
		}
		client := &failingClient{rvFake: f, fail: fail}
		var (
			mu     sync.Mutex
			waited []time.Duration
		)
		o := Options{Client: client, Namespace: testNS, Identity: "a", Groups: []Group{{Name: "g", Lease: "cut"}},
			Timing: testTiming, Log: testLog(t, "a"),
			Unanswered: func(d time.Duration) { mu.Lock(); waited = append(waited, d); mu.Unlock() }}
		a := runNode(t, o, 254, nil, nil)
		a.rec.wait(t, true, time.Minute)
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(waited) }

		mode.Store("refuse")
		time.Sleep(2 * testTiming.RetryPeriod)
		if n := count(); n != 0 {
			t.Fatalf("refused requests reported as unanswered %d times", n)
		}
		mode.Store("hang")
		// The owner's renewals hang until it fences, then its reads as a
		// follower do.
		if tr := a.rec.wait(t, false, time.Minute); tr.Reason != "renew-deadline" {
			t.Fatalf("a: %+v", tr)
		}
		time.Sleep(testTiming.LeaseDuration)
		mode.Store("")
		mu.Lock()
		got := append([]time.Duration(nil), waited...)
		mu.Unlock()
		if len(got) < 3 {
			t.Fatalf("unanswered requests reported %d times (%v), want one per request", len(got), got)
		}
		for _, d := range got {
			if d != time.Second {
				t.Errorf("reported waited %s, want the request deadline 1s: %v", d, got)
				break
			}
		}
		// Answered again: a takes its group back (nobody else wants it).
		a.rec.wait(t, true, time.Minute)
	})
}

// failingClient is an rvFake whose Lease Gets and Updates first ask fail.
type failingClient struct {
	*rvFake
	fail func(context.Context) error
}

func (c *failingClient) CoordinationV1() coordv1client.CoordinationV1Interface {
	return failingCoordination{c.rvFake.CoordinationV1(), c.fail}
}

type failingCoordination struct {
	coordv1client.CoordinationV1Interface
	fail func(context.Context) error
}

func (c failingCoordination) Leases(ns string) coordv1client.LeaseInterface {
	return failingLeases{c.CoordinationV1Interface.Leases(ns), c.fail}
}

type failingLeases struct {
	coordv1client.LeaseInterface
	fail func(context.Context) error
}

func (l failingLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := l.fail(ctx); err != nil {
		return nil, err
	}
	return l.LeaseInterface.Get(ctx, name, o)
}

func (l failingLeases) Update(ctx context.Context, x *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if err := l.fail(ctx); err != nil {
		return nil, err
	}
	return l.LeaseInterface.Update(ctx, x, o)
}
