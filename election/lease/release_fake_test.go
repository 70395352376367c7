package lease

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vipd/vipd/election"
)

// An owner whose view is stale (it was stopped, or its watch lags) and that
// turns ineligible releases the Lease: the release's conditional write
// conflicts, and the Lease read after the conflict is another node's. That
// read must become the campaign's view: with the Lease's object from the
// read and its own old hold in the view, the owner, eligible again, took
// the Lease "back" at once as if it were still its own, and so took it
// from a node that had rightly acquired it (seen in the lab after a
// SIGSTOP longer than binding.lifetime: docs/chaos.md, finding 3).
func TestFakeReleaseConflictUpdatesTheView(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		// No watch events: a's view follows only its own reads and writes.
		f.PrependWatchReactor("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
			return true, watch.NewFake(), nil
		})
		a := startNode(t, f, "a", "stale", testTiming, 254)
		a.rec.wait(t, true, time.Minute)
		// b acquires behind a's back, as a follower would once a's hold
		// ran out while a was stopped.
		l := getLease(t, f, "stale")
		b := "b"
		l.Spec.HolderIdentity = &b
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime, l.Spec.AcquireTime = &now, &now
		if _, err := f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		taken := time.Now()
		a.e.SetInput("g", election.Input{Eligible: false, Priority: 254, Reason: "VIPs lapsed"})
		if tr := a.rec.wait(t, false, time.Second); tr.Reason != "ineligible" {
			t.Fatalf("a: %+v", tr)
		}
		a.e.SetInput("g", election.Input{Eligible: true, Priority: 254})
		tr := a.rec.wait(t, true, time.Minute)
		if d := tr.At.Sub(taken); d < testTiming.LeaseDuration {
			t.Fatalf("a acquired %s after b took the Lease (%s), before b's hold (%s) ran out", d, tr.Reason, testTiming.LeaseDuration)
		}
	})
}
