package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vipd/vipd/election"
)

func healthyIn(p int) election.Input { return election.Input{Eligible: true, Priority: p} }
func degradedIn(p int) election.Input {
	return election.Input{Eligible: true, Degraded: true, Priority: p, Reason: "check api failing"}
}

// onReport sets r's hook.
func (r *recorder) onReport(f func(election.Transition)) {
	r.mu.Lock()
	r.before = f
	r.mu.Unlock()
}

// TestFakeDegradedHolderKeepsThenHandsOver: a degraded holder publishes it
// and keeps the group while no healthy node wants it (here the only other
// node is degraded too); once the other node is healthy, it asks and
// receives the group by handover: the old holder's Owner=false report is
// made while the Lease still names it (its VIPs are gone before the Lease
// names anyone else), the new one reports Owner=true only after.
func TestFakeDegradedHolderKeepsThenHandsOver(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "deg", 200)
		a.rec.wait(t, true, time.Minute)
		b := startIn(t, w, f, "b", "deg", 100)
		b.e.SetInput("g", degradedIn(100))
		a.e.SetInput("g", degradedIn(200))
		synctest.Wait()
		l := getLease(t, f, "deg")
		if l.Annotations[annDegraded] != "true" || l.Annotations[annPriority] != "200" || *l.Spec.HolderIdentity != "a" {
			t.Fatalf("degraded holder publishes %v (holder %s), want degraded, priority 200", l.Annotations, *l.Spec.HolderIdentity)
		}
		// Keeps: nobody healthy wants it.
		a.rec.none(t, 3*testTiming.LeaseDuration)
		b.rec.none(t, 0)

		var aDropped atomic.Bool
		a.rec.onReport(func(tr election.Transition) {
			if tr.Owner {
				return
			}
			aDropped.Store(true)
			if l := getLease(t, f, "deg"); holderOf(l) != "a" {
				t.Errorf("a reports Owner=false while the Lease already names %q", holderOf(l))
			}
		})
		b.rec.onReport(func(tr election.Transition) {
			if tr.Owner && !aDropped.Load() {
				t.Errorf("b reports Owner=true before a has dropped")
			}
		})
		asked := time.Now()
		b.e.SetInput("g", healthyIn(100))
		drop := a.rec.wait(t, false, time.Second)
		took := b.rec.wait(t, true, time.Second)
		if drop.Reason != "handover:b" || drop.Peer != "b" {
			t.Errorf("a: %+v, want reason handover:b", drop)
		}
		if took.Reason != "handed-over-by:a" {
			t.Errorf("b: %+v, want reason handed-over-by:a", took)
		}
		if d := took.At.Sub(asked); d != 0 {
			t.Errorf("handover took %s of fake time, want none (no timer in the way)", d)
		}
		synctest.Wait()
		l = getLease(t, f, "deg")
		if holderOf(l) != "b" || l.Annotations[annPriority] != "100" || l.Annotations[annDegraded] != "" ||
			l.Annotations[annHandoverTo] != "" || l.Annotations[annHandedOverBy] != "" || *l.Spec.LeaseTransitions != 1 {
			t.Fatalf("after the handover: holder %s, annotations %v, transitions %d", holderOf(l), l.Annotations, *l.Spec.LeaseTransitions)
		}
		// The degraded old holder does not ask back; b renews normally.
		a.rec.none(t, 3*testTiming.LeaseDuration)
		if ws := f.writesTo("deg"); ws[len(ws)-1].holder != "b" || time.Since(ws[len(ws)-1].at) > testTiming.RetryPeriod {
			t.Fatalf("b does not renew: last write %+v", ws[len(ws)-1])
		}
	})
}

// TestFakePriorityHandover: weights in Lease mode are preference by
// handover: a candidate of strictly higher effective priority asks and gets
// the group; one of equal priority does not ask.
func TestFakePriorityHandover(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "prio-h", 150)
		a.rec.wait(t, true, time.Minute)
		b := startIn(t, w, f, "b", "prio-h", 150)
		b.rec.none(t, 3*testTiming.LeaseDuration) // equal: no request
		for _, wr := range f.writesTo("prio-h") {
			if wr.holder != "a" {
				t.Fatalf("write %+v while a held the Lease", wr)
			}
		}
		// A weight lowers a's effective priority: it publishes it at
		// once (an extra renewal), b asks and gets the group.
		changed := time.Now()
		a.e.SetInput("g", healthyIn(140))
		drop := a.rec.wait(t, false, time.Second)
		took := b.rec.wait(t, true, time.Second)
		if drop.Reason != "handover:b" || took.Reason != "handed-over-by:a" || !took.At.Equal(changed) {
			t.Fatalf("a %+v, b %+v (%s after the change)", drop, took, took.At.Sub(changed))
		}
		// A higher-priority node joining takes it the same way.
		c := startIn(t, w, f, "c", "prio-h", 200)
		if tr := b.rec.wait(t, false, time.Second); tr.Reason != "handover:c" {
			t.Fatalf("b: %+v", tr)
		}
		if tr := c.rec.wait(t, true, time.Second); tr.Reason != "handed-over-by:b" {
			t.Fatalf("c: %+v", tr)
		}
		a.rec.none(t, 3*testTiming.LeaseDuration)
		b.rec.none(t, 0)
	})
}

// TestFakeRequestToHealthyHigherHolderIgnored: a request from a node that
// is not better than the healthy holder is cleared at once; the holder
// keeps the group.
func TestFakeRequestToHealthyHigherHolderIgnored(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		a := startNode(t, f, "a", "ign", testTiming, 200)
		a.rec.wait(t, true, time.Minute)
		for _, prio := range []string{"100", "200"} {
			l := getLease(t, f, "ign")
			l.Annotations[annHandoverTo], l.Annotations[annHandoverPriority] = "stale", prio
			if _, err := f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			l = getLease(t, f, "ign")
			if l.Annotations[annHandoverTo] != "" || holderOf(l) != "a" {
				t.Fatalf("request of priority %s: holder %s, annotations %v; want it cleared at once by a", prio, holderOf(l), l.Annotations)
			}
		}
		a.rec.none(t, 3*testTiming.LeaseDuration)
	})
}

// TestFakeDegradedCandidateWaits: a degraded node never asks a live holder,
// not even a healthy one of lower priority; for a free Lease it waits
// degradedDelay longer than a healthy node would, so a healthy candidate of
// the lowest priority still wins; alone, it takes the free Lease.
func TestFakeDegradedCandidateWaits(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		lo := startIn(t, w, f, "lo", "dc", 1)
		lo.rec.wait(t, true, time.Minute)
		// Degraded from its first input: a healthy 254 would ask at once.
		hi := startInWith(t, w, f, "hi", "dc", degradedIn(254))
		hi.rec.none(t, 3*testTiming.LeaseDuration) // never asks
		for _, wr := range f.writesTo("dc") {
			if wr.holder != "lo" {
				t.Fatalf("write %+v: a degraded node wrote a held Lease", wr)
			}
		}
		lo.stop() // releases: both would want the free Lease; lo is gone
		freed := lo.rec.wait(t, false, time.Second).At
		took := hi.rec.wait(t, true, time.Minute)
		if want := priorityDelay(254) + degradedDelay(testTiming); took.At.Sub(freed) != want {
			t.Errorf("degraded node alone took the free Lease %s after it was released, want %s", took.At.Sub(freed), want)
		}
		// A healthy node of the lowest priority joins: it asks the
		// degraded holder and gets the group.
		lo2 := startIn(t, w, f, "lo2", "dc", 1)
		if tr := lo2.rec.wait(t, true, time.Second); tr.Reason != "handed-over-by:hi" {
			t.Fatalf("lo2: %+v", tr)
		}
	})
}

// TestFakeDegradedLosesRaceForFreeLease: a healthy node of the lowest
// priority and a degraded one of the highest race for a released Lease:
// the healthy one takes it after its tie-break delay, the degraded one
// never writes.
func TestFakeDegradedLosesRaceForFreeLease(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		createLease(t, f, "race-d", "", 1)
		start := time.Now()
		// Degraded from its first input: a healthy 254 would take the
		// free Lease at once (that raced the test: 1 of 5 CI runs).
		hi := startInWith(t, w, f, "hi", "race-d", degradedIn(254))
		lo := startIn(t, w, f, "lo", "race-d", 1)
		took := lo.rec.wait(t, true, time.Minute)
		if d := took.At.Sub(start); d != priorityDelay(1) {
			t.Errorf("healthy node took the free Lease after %s, want its tie-break %s", d, priorityDelay(1))
		}
		hi.rec.none(t, 3*testTiming.LeaseDuration)
		for _, wr := range f.writesTo("race-d") {
			if wr.holder == "hi" {
				t.Fatalf("degraded node wrote %+v", wr)
			}
		}
	})
}

// TestFakeRequestsDoNotKeepADeadHolderAlive: a candidate asking a dead
// holder every RetryPeriod writes new versions of the Lease; its wait still
// counts from the holder's last write, so it takes over after exactly
// LeaseDuration + tie-break, as without requests.
func TestFakeRequestsDoNotKeepADeadHolderAlive(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		createLease(t, f, "dead-h", "dead", 5)
		l := getLease(t, f, "dead-h")
		l.Annotations = map[string]string{annPriority: "100", annDegraded: "true"}
		if _, err := f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		b := startNode(t, f, "b", "dead-h", testTiming, 200)
		// Another candidate ("x", lower) asks too, every RetryPeriod: b
		// overwrites each of its requests with its own.
		stop := make(chan struct{})
		go func() {
			tk := time.NewTicker(testTiming.RetryPeriod)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				l, err := f.CoordinationV1().Leases(testNS).Get(context.Background(), "dead-h", metav1.GetOptions{})
				if err != nil || holderOf(l) != "dead" {
					return
				}
				l.Annotations[annHandoverTo], l.Annotations[annHandoverPriority] = "x", "100"
				_, _ = f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{})
			}
		}()
		took := b.rec.wait(t, true, time.Minute)
		close(stop)
		if d := took.At.Sub(start); d != testTiming.LeaseDuration+priorityDelay(200) {
			t.Errorf("took the dead holder's Lease after %s, want LeaseDuration + tie-break", d)
		}
		requests := 0
		for _, wr := range f.writesTo("dead-h") {
			if wr.holder == "dead" {
				requests++
			}
		}
		// The test's two writes, then x's and b's requests, each about
		// once per RetryPeriod.
		if n := int(2 * testTiming.LeaseDuration / testTiming.RetryPeriod); requests < 2+n-2 {
			t.Errorf("%d writes naming the dead holder, want about %d requests", requests-2, n)
		}
	})
}

// TestFakeReconfigure: a reload adds a group (a new campaign) and removes
// one: the owned group steps down (Owner=false, reason "removed") and its
// Lease is released before Reconfigure returns; the unchanged group is not
// touched. Timing and API changes are refused, naming the setting.
func TestFakeReconfigure(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		o := Options{Client: f, Namespace: testNS, Identity: "a", Timing: testTiming, Log: testLog(t, "a"),
			Groups: []Group{{Name: "g1", Lease: "l-g1"}, {Name: "keep", Lease: "l-keep"}}}
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		e.SetInput("g1", healthyIn(100))
		e.SetInput("keep", healthyIn(100))
		rec := newRecorder("a", nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ctx, rec.report) }()
		defer func() { cancel(); <-done }()
		rec.wait(t, true, time.Minute)
		rec.wait(t, true, time.Minute)
		keepWrites := func() int { return len(f.writesTo("l-keep")) }

		for _, bad := range []struct {
			key string
			mod func(*Options)
		}{
			{"lease.retryPeriod", func(o *Options) { o.Timing.RetryPeriod = time.Second }},
			{"lease.leaseDuration", func(o *Options) { o.Timing.LeaseDuration = 10 * time.Second }},
			{"lease.namespace", func(o *Options) { o.Namespace = "other" }},
			{"lease.server", func(o *Options) { o.Server = "https://192.0.2.1:6443" }},
		} {
			o2 := o
			o2.Groups = []Group{{Name: "keep", Lease: "l-keep"}}
			bad.mod(&o2)
			err := e.Reconfigure(o2)
			if err == nil || !strings.Contains(err.Error(), bad.key) || !strings.Contains(err.Error(), "restart") {
				t.Errorf("changing %s: %v, want an error naming it and saying restart", bad.key, err)
			}
		}
		if st := e.GroupStatuses(); len(st) != 2 || !st[0].Owner {
			t.Fatalf("a refused reload changed something: %+v", st)
		}

		o2 := o
		o2.Client = nil
		o2.Groups = []Group{{Name: "keep", Lease: "l-keep"}, {Name: "g2", Lease: "l-g2"}}
		e.SetInput("g2", healthyIn(100))
		before := keepWrites()
		if err := e.Reconfigure(o2); err != nil {
			t.Fatal(err)
		}
		// Before Reconfigure returned: g1 reported, and its Lease released.
		var removed *election.Transition
		for _, tr := range rec.transitions() {
			if tr.Group == "g1" && !tr.Owner {
				removed = &tr
			}
		}
		if removed == nil || removed.Reason != "removed" {
			t.Fatalf("g1 not reported removed when Reconfigure returned: %+v", rec.transitions())
		}
		if l := getLease(t, f, "l-g1"); l.Spec.HolderIdentity != nil {
			t.Fatalf("g1's Lease not released: holder %q", *l.Spec.HolderIdentity)
		}
		if tr := rec.wait(t, true, time.Minute); tr.Group != "g2" {
			t.Fatalf("%+v, want g2 acquired", tr)
		}
		st := e.GroupStatuses()
		if len(st) != 2 || st[0].Group != "keep" || !st[0].Owner || st[1].Group != "g2" || !st[1].Owner {
			t.Fatalf("status %+v", st)
		}
		// "keep" was not touched: no transition, renewals only, on schedule.
		for _, tr := range rec.transitions() {
			if tr.Group == "keep" && !tr.Owner {
				t.Fatalf("unchanged group stepped down: %+v", tr)
			}
		}
		if n := keepWrites() - before; n > 1 {
			t.Errorf("%d writes to the unchanged group's Lease during the reload, want at most its renewal", n)
		}
		rec.none(t, 3*testTiming.LeaseDuration)

		// A renamed Lease is a remove and an add, in that order.
		o2.Groups = []Group{{Name: "keep", Lease: "l-keep2"}, {Name: "g2", Lease: "l-g2"}}
		if err := e.Reconfigure(o2); err != nil {
			t.Fatal(err)
		}
		if tr := rec.wait(t, false, time.Second); tr.Group != "keep" || tr.Reason != "removed" {
			t.Fatalf("%+v", tr)
		}
		if tr := rec.wait(t, true, time.Minute); tr.Group != "keep" {
			t.Fatalf("%+v", tr)
		}
		if l := getLease(t, f, "l-keep2"); holderOf(l) != "a" {
			t.Fatalf("new Lease held by %q", holderOf(l))
		}
	})
}

// TestReconfigureBeforeRun: only the group list changes; Run then starts
// the new list.
func TestReconfigureBeforeRun(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		o := Options{Client: f, Namespace: testNS, Identity: "a", Timing: testTiming, Groups: []Group{{Name: "g1", Lease: "l1"}}}
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		o.Groups = []Group{{Name: "g2", Lease: "l2"}}
		if err := e.Reconfigure(o); err != nil {
			t.Fatal(err)
		}
		o.Groups = []Group{{Name: "g2", Lease: "l2"}, {Name: "g3", Lease: "l2"}}
		if err := e.Reconfigure(o); err == nil {
			t.Fatal("two groups on one Lease accepted")
		}
		e.SetInput("g2", healthyIn(100))
		rec := newRecorder("a", nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ctx, rec.report) }()
		if tr := rec.wait(t, true, time.Minute); tr.Group != "g2" {
			t.Fatalf("%+v", tr)
		}
		cancel()
		<-done
	})
}

// TestFakeRequestRetriedAtOnceAfterConflict: a candidate's request that
// loses to another write (here: the holder's own re-publish of the same
// event, as when an EndpointSlice moves the ready endpoint from the holder
// to the candidate) is decided again at once on the version that beat it,
// not a RetryPeriod later (which fell in phase with the holder's next
// renewal and conflicted again: 0.5–1.5s lost in the lab).
func TestFakeRequestRetriedAtOnceAfterConflict(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "conflict", 100)
		a.rec.wait(t, true, time.Minute)
		b := startInWith(t, w, f, "b", "conflict", degradedIn(150))
		synctest.Wait()
		// b's first request meets a write it has not seen yet: the holder
		// renewed just before (a new version), so the API server refuses it.
		var injected atomic.Bool
		tr := f.Tracker()
		f.PrependReactor("update", "leases", func(act k8stesting.Action) (bool, runtime.Object, error) {
			l := act.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
			if l.Annotations[annHandoverTo] != "b" || injected.Swap(true) {
				return false, nil, nil
			}
			obj, err := tr.Get(leasesGVR, l.Namespace, l.Name)
			if err != nil {
				return true, nil, err
			}
			cur := obj.(*coordinationv1.Lease).DeepCopy()
			f.rv++
			cur.ResourceVersion = fmt.Sprint(f.rv)
			if err := tr.Update(leasesGVR, cur, cur.Namespace); err != nil {
				return true, nil, err
			}
			return true, nil, apierrors.NewConflict(leasesGVR.GroupResource(), l.Name, errors.New("written meanwhile (injected)"))
		})
		changed := time.Now()
		b.e.SetInput("g", healthyIn(150))
		took := b.rec.wait(t, true, time.Second)
		if !injected.Load() {
			t.Fatal("no request met the injected conflict")
		}
		if took.Reason != "handed-over-by:a" || !took.At.Equal(changed) {
			t.Fatalf("b: %+v, %s after it turned healthy; want handed over at once", took, took.At.Sub(changed))
		}
	})
}
