package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/config"
)

const testNS = "vipd-test"

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")

// rvFake is a fake clientset that behaves like the API server where it
// matters for mutual exclusion: creates fail if the Lease exists, updates
// fail with 409 unless they carry the current resourceVersion, and every
// write gets a new resourceVersion. (The plain fake does none of this: two
// interleaved read-modify-writes would both "win".) Reactors run under the
// fake's lock, so check-and-write is atomic.
type rvFake struct {
	*fake.Clientset
	rv uint64
	// failUpdatesBy makes updates that set this holder fail like a network
	// error (an owner cut off from the API server).
	failUpdatesBy atomic.Value // string
	writes        atomic.Int64

	mu  sync.Mutex
	log []write // every successful write, in order
}

func newRVFake() *rvFake {
	f := &rvFake{Clientset: fake.NewClientset()}
	f.failUpdatesBy.Store("")
	tr := f.Tracker()
	f.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		if _, err := tr.Get(leasesGVR, l.Namespace, l.Name); err == nil {
			return true, nil, apierrors.NewAlreadyExists(leasesGVR.GroupResource(), l.Name)
		}
		f.rv++
		l.ResourceVersion = fmt.Sprint(f.rv)
		l.UID = types.UID(fmt.Sprintf("uid-%d", f.rv))
		if err := tr.Create(leasesGVR, l, l.Namespace); err != nil {
			return true, nil, err
		}
		f.writes.Add(1)
		f.logWrite(l)
		return true, l.DeepCopy(), nil
	})
	f.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		if bad := f.failUpdatesBy.Load().(string); bad != "" && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == bad {
			return true, nil, errors.New("connection timed out (injected)")
		}
		obj, err := tr.Get(leasesGVR, l.Namespace, l.Name)
		if err != nil {
			return true, nil, err
		}
		if cur := obj.(*coordinationv1.Lease); cur.ResourceVersion != l.ResourceVersion {
			return true, nil, apierrors.NewConflict(leasesGVR.GroupResource(), l.Name,
				fmt.Errorf("resourceVersion %s is not the current %s", l.ResourceVersion, cur.ResourceVersion))
		}
		f.rv++
		l.ResourceVersion = fmt.Sprint(f.rv)
		if err := tr.Update(leasesGVR, l, l.Namespace); err != nil {
			return true, nil, err
		}
		f.writes.Add(1)
		f.logWrite(l)
		return true, l.DeepCopy(), nil
	})
	return f
}

// TestRVFakeEnforcesConflicts proves the fake itself before trusting it.
func TestRVFakeEnforcesConflicts(t *testing.T) {
	ctx := t.Context()
	f := newRVFake()
	c := f.CoordinationV1().Leases(testNS)
	l, err := c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: testNS}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, l, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v", err)
	}
	a, b := l.DeepCopy(), l.DeepCopy()
	ha, hb := "a", "b"
	a.Spec.HolderIdentity, b.Spec.HolderIdentity = &ha, &hb
	if _, err := c.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctx, b, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want conflict", err)
	}
}

// The tests below run inside a testing/synctest bubble (fakeTest): the
// clock is fake and moves only when every goroutine of the test is blocked,
// so the fake API server answers in zero time, and every figure the
// elector's Timing implies — when an owner drops, when a follower may take
// over — holds exactly, on a busy machine as on an idle one. They use the
// production default timing (5s/3s/500ms): in the bubble a long wait costs
// nothing.
//
// client-go's fake clientset works inside a bubble: it starts no goroutine,
// its watchers are buffered channels (durably blocking, as synctest needs),
// and everything here (the clientset, its tracker, the electors) is created
// inside the bubble.

// testTiming is vipd's default lease timing.
var testTiming = Timing{LeaseDuration: 5 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}

// fakeTest runs f in a synctest bubble.
func fakeTest(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// write is one successful write to a Lease, as the fake API server applied it.
type write struct {
	at     time.Time
	lease  string
	holder string
	rv     string
}

func (f *rvFake) logWrite(l *coordinationv1.Lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, write{at: time.Now(), lease: l.Name, holder: holderOf(l), rv: l.ResourceVersion})
}

// writes returns the successful writes to lease so far.
func (f *rvFake) writesTo(lease string) []write {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []write
	for _, w := range f.log {
		if w.lease == lease {
			out = append(out, w)
		}
	}
	return out
}

// lastWriteBy is the last successful write to lease naming holder.
func (f *rvFake) lastWriteBy(t *testing.T, lease, holder string) write {
	t.Helper()
	ws := f.writesTo(lease)
	for i := len(ws) - 1; i >= 0; i-- {
		if ws[i].holder == holder {
			return ws[i]
		}
	}
	t.Fatalf("no write to %s by %s", lease, holder)
	return write{}
}

// world follows every node's reported ownership under one lock and fails
// the test at the first report that makes a second owner of a group.
type world struct {
	t     *testing.T
	mu    sync.Mutex
	owner map[string]string // group -> node
}

func newWorld(t *testing.T) *world { return &world{t: t, owner: map[string]string{}} }

func (w *world) saw(node string, tr election.Transition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.owner[tr.Group]
	switch {
	case tr.Owner && cur != "" && cur != node:
		w.t.Errorf("%s took %s while %s held it (%s)", node, tr.Group, cur, tr.Reason)
	case tr.Owner:
		w.owner[tr.Group] = node
	case cur == node:
		delete(w.owner, tr.Group)
	}
}

// recorder is a Reporter that remembers transitions with their times.
type recorder struct {
	node  string
	world *world // nil: not checked against others

	mu  sync.Mutex
	ts  []election.Transition
	now map[string]bool // group -> owner
	ch  chan election.Transition
	// bindErr, when set, fails every Owner=true transition the way the
	// daemon does when it cannot bind: it makes the group ineligible on
	// elector, then returns the error.
	bindErr error
	elector *Elector
	// before, when set, is called at the start of every report (to look
	// at the world at the instant of a transition, before it is acted on).
	before func(election.Transition)
}

func newRecorder(node string, w *world) *recorder {
	return &recorder{node: node, world: w, now: map[string]bool{}, ch: make(chan election.Transition, 100)}
}

func (r *recorder) report(t election.Transition) error {
	t.At = time.Now()
	r.mu.Lock()
	err, before := r.bindErr, r.before
	r.mu.Unlock()
	if before != nil {
		before(t)
	}
	if !t.Owner {
		err = nil
	}
	if err != nil {
		r.elector.SetInput(t.Group, election.Input{Eligible: false, Priority: 100, Reason: "bind failed: " + err.Error()})
	}
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.now[t.Group] = t.Owner && err == nil
	r.mu.Unlock()
	if r.world != nil && err == nil {
		r.world.saw(r.node, t)
	}
	r.ch <- t
	return err
}

// failBinds makes the Reporter fail Owner=true transitions with err (nil:
// succeed again).
func (r *recorder) failBinds(err error) {
	r.mu.Lock()
	r.bindErr = err
	r.mu.Unlock()
}

func (r *recorder) owner(g string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now[g]
}

func (r *recorder) transitions() []election.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ts)
}

// wait returns the next transition with Owner == owner, skipping others,
// failing if none comes within (fake time).
func (r *recorder) wait(t *testing.T, owner bool, within time.Duration) election.Transition {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case tr := <-r.ch:
			if tr.Owner == owner {
				return tr
			}
		case <-timer.C:
			t.Fatalf("%s: no Owner=%v transition within %s", r.node, owner, within)
			return election.Transition{}
		}
	}
}

// none fails if any transition is reported within (fake time).
func (r *recorder) none(t *testing.T, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case tr := <-r.ch:
		t.Fatalf("%s: unexpected transition %+v", r.node, tr)
	case <-timer.C:
	}
}

type node struct {
	e      *Elector
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, f *rvFake, id, lease string, tm Timing, prio int) *node {
	t.Helper()
	return runNode(t, Options{Client: f, Namespace: testNS, Identity: id, Groups: []Group{{Name: "g", Lease: lease}}, Timing: tm, Log: testLog(t, id)}, prio, nil, nil)
}

// runNode starts an elector for group "g" with the given options and
// priority, recording its transitions (checked against w when not nil;
// failing binds with bindErr when not nil); it is stopped at test cleanup.
func runNode(t *testing.T, o Options, prio int, w *world, bindErr error) *node {
	t.Helper()
	return runNodeIn(t, o, election.Input{Eligible: true, Priority: prio}, w, bindErr)
}

// runNodeIn is runNode with the node's first input: set before Run starts,
// so the campaign never acts on another one.
func runNodeIn(t *testing.T, o Options, in election.Input, w *world, bindErr error) *node {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.SetInput("g", in)
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder(o.Identity, w)
	rec.elector, rec.bindErr = e, bindErr
	n := &node{e: e, rec: rec, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); _ = e.Run(ctx, n.rec.report) }()
	t.Cleanup(n.stop)
	return n
}

// startInWith starts a node on group "g" of lease with its first input.
func startInWith(t *testing.T, w *world, f *rvFake, id, lease string, in election.Input) *node {
	t.Helper()
	return runNodeIn(t, Options{Client: f, Namespace: testNS, Identity: id, Groups: []Group{{Name: "g", Lease: lease}}, Timing: testTiming, Log: testLog(t, id)}, in, w, nil)
}

// startIn starts a node on group "g" of lease, checked against w.
func startIn(t *testing.T, w *world, f *rvFake, id, lease string, prio int) *node {
	t.Helper()
	return runNode(t, Options{Client: f, Namespace: testNS, Identity: id, Groups: []Group{{Name: "g", Lease: lease}}, Timing: testTiming, Log: testLog(t, id)}, prio, w, nil)
}

// testLog logs to the test's output when VIPD_TEST_LOG is set (debug level).
func testLog(t *testing.T, id string) *slog.Logger {
	if os.Getenv("VIPD_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

func getLease(t *testing.T, f *rvFake, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := f.CoordinationV1().Leases(testNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// createLease writes a Lease held by holder ("" = released) as another
// client would.
func createLease(t *testing.T, f *rvFake, name, holder string, seconds int32) {
	t.Helper()
	_, err := f.CoordinationV1().Leases(testNS).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFakeFirstNodeAcquiresAndRenews(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		start := time.Now()
		n := startNode(t, f, "n1", "l1", testTiming, 100)
		var renewals []string
		var renewMu sync.Mutex
		n.e.ObserveRenewals(func(group string, _ time.Duration, kind string) {
			renewMu.Lock()
			renewals = append(renewals, group+":"+kind)
			renewMu.Unlock()
		})
		tr := n.rec.wait(t, true, time.Minute)
		if tr.Reason != "lease-acquired" || tr.Peer != "n1" {
			t.Fatalf("transition %+v", tr)
		}
		// Nobody ever held it: created after the priority tie-break only.
		if d := tr.At.Sub(start); d != priorityDelay(100) {
			t.Errorf("acquired %s after start, want the tie-break delay %s", d, priorityDelay(100))
		}
		time.Sleep(4*testTiming.RetryPeriod + time.Millisecond)
		ws := f.writesTo("l1")
		if len(ws) != 5 {
			t.Fatalf("%d writes in 4 retry periods, want the creation and 4 renewals: %+v", len(ws), ws)
		}
		for i, w := range ws[1:] {
			if w.holder != "n1" || w.at.Sub(ws[i].at) != testTiming.RetryPeriod {
				t.Errorf("renewal %d: %+v, %s after the previous write; want n1 every %s", i+1, w, w.at.Sub(ws[i].at), testTiming.RetryPeriod)
			}
		}
		renewMu.Lock()
		if got := strings.Join(renewals, " "); got != "g: g: g: g:" {
			t.Errorf("renewals observed: %q, want 4 successful ones of group g", got)
		}
		renewMu.Unlock()
		if l := getLease(t, f, "l1"); *l.Spec.LeaseDurationSeconds != 5 || !l.Spec.RenewTime.Time.Equal(ws[4].at) {
			t.Errorf("lease spec %+v: want 5s and renewTime %s", l.Spec, ws[4].at)
		}
		n.stop()
		if tr := n.rec.wait(t, false, time.Second); tr.Reason != "shutdown" {
			t.Fatalf("stop: %+v", tr)
		}
		if l := getLease(t, f, "l1"); l.Spec.HolderIdentity != nil || *l.Spec.LeaseDurationSeconds != 1 {
			t.Fatalf("not released: %+v", l.Spec)
		}
	})
}

// TestFakeRaceForExpiredLease: candidates racing for an expired Lease at the
// same moment, many times; exactly one may win each time. (No clock here:
// the campaigns' steps are called directly, concurrently.)
func TestFakeRaceForExpiredLease(t *testing.T) {
	for i := range 30 {
		f := newRVFake()
		createLease(t, f, "race", "dead", 1)
		// Both see the same version at the same moment and fire together.
		const n = 3
		cs := make([]*campaign, n)
		for j := range cs {
			e, err := New(Options{Client: f, Namespace: testNS, Identity: fmt.Sprintf("c%d", j), Groups: []Group{{Name: "g", Lease: "race"}}, Timing: testTiming})
			if err != nil {
				t.Fatal(err)
			}
			cs[j] = &campaign{e: e, g: e.groups[0], report: func(election.Transition) error { return nil }, log: e.o.Log}
			cs[j].view = view{unknown: true}
			cs[j].refresh(context.Background())
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, c := range cs {
			wg.Go(func() { <-start; c.acquire(context.Background()) })
		}
		close(start)
		wg.Wait()
		winners := 0
		for _, c := range cs {
			if c.owner {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners", i, winners)
		}
		// Losers re-read the Lease and now wait for the winner's Lease to expire.
		l := getLease(t, f, "race")
		for _, c := range cs {
			if !c.owner && (c.view.holder != *l.Spec.HolderIdentity || c.view.resourceVersion != l.ResourceVersion) {
				t.Fatalf("loser's view %+v, lease holder %s rv %s", c.view, *l.Spec.HolderIdentity, l.ResourceVersion)
			}
		}
	}
}

// TestFakeRunningRace: the same with whole electors over time: an expired
// Lease, two nodes of the same priority, and at no report two owners; one
// owner for good.
func TestFakeRunningRace(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		createLease(t, f, "race2", "dead", 1)
		a := startIn(t, w, f, "a", "race2", 100)
		b := startIn(t, w, f, "b", "race2", 100)
		// The dead holder's Lease is first seen now: free after
		// LeaseDuration plus the tie-break delay.
		time.Sleep(testTiming.LeaseDuration + priorityDelay(100))
		synctest.Wait()
		owners := 0
		for _, n := range []*node{a, b} {
			if n.rec.owner("g") {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("%d owners when the dead holder's Lease expired", owners)
		}
		time.Sleep(10 * testTiming.LeaseDuration)
		if n := len(a.rec.transitions()) + len(b.rec.transitions()); n != 1 {
			t.Errorf("%d transitions in 10 lease durations, want the one acquisition", n)
		}
	})
}

// TestFakeGracefulHandover: a lower-priority follower never asks for a
// held Lease; released, it is taken after exactly the follower's tie-break
// delay (the watch brings the release at once).
func TestFakeGracefulHandover(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "h", 254)
		a.rec.wait(t, true, time.Minute)
		b := startIn(t, w, f, "b", "h", 200)
		b.rec.none(t, 3*testTiming.LeaseDuration) // lower: never asks
		a.stop()
		drop := a.rec.wait(t, false, time.Second)
		took := b.rec.wait(t, true, time.Second)
		if drop.Reason != "shutdown" {
			t.Errorf("a dropped with %q", drop.Reason)
		}
		if d := took.At.Sub(drop.At); d != priorityDelay(200) {
			t.Errorf("b took over %s after a dropped, want its tie-break delay %s", d, priorityDelay(200))
		}
	})
}

// TestFakeFencing: an owner that cannot renew drops its VIPs exactly at its
// renew deadline (counted from sending its last good renewal), the follower
// acquires no earlier than LeaseDuration after seeing that renewal, and the
// cut-off owner stays a candidate.
func TestFakeFencing(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "fence", 100)
		a.rec.wait(t, true, time.Minute)
		b := startIn(t, w, f, "b", "fence", 100)
		time.Sleep(2*testTiming.RetryPeriod + testTiming.RetryPeriod/2)
		f.failUpdatesBy.Store("a")
		last := f.lastWriteBy(t, "fence", "a")
		drop := a.rec.wait(t, false, time.Minute)
		took := b.rec.wait(t, true, time.Minute)
		if drop.Reason != "renew-deadline" {
			t.Errorf("reason %q", drop.Reason)
		}
		if want := last.at.Add(testTiming.RenewDeadline); !drop.At.Equal(want) {
			t.Errorf("a dropped %s after its last renewal, want exactly the renew deadline %s", drop.At.Sub(last.at), testTiming.RenewDeadline)
		}
		if want := last.at.Add(testTiming.LeaseDuration + priorityDelay(100)); !took.At.Equal(want) {
			t.Errorf("b acquired %s after a's last renewal, want LeaseDuration + tie-break = %s", took.At.Sub(last.at), want.Sub(last.at))
		}
		synctest.Wait() // a has seen what the others did at this instant
		if st := a.e.GroupStatuses()[0]; st.Owner || st.APIError == "" || st.Holder != "b" {
			t.Errorf("a's status %+v: want not owner, holder b, with the API error", st)
		}
		// a is still a candidate: when b goes away, a takes over.
		f.failUpdatesBy.Store("")
		b.stop()
		if tr := a.rec.wait(t, true, time.Minute); tr.Reason != "lease-acquired" {
			t.Fatalf("a: %+v", tr)
		}
		synctest.Wait() // a has seen what the others did at this instant
		if st := a.e.GroupStatuses()[0]; !st.Owner || st.APIError != "" || st.Holder != "a" {
			t.Errorf("a's status %+v", st)
		}
	})
}

func TestFakeIneligible(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := startIn(t, w, f, "a", "elig", 100)
		a.rec.wait(t, true, time.Minute)
		b := startIn(t, w, f, "b", "elig", 100)
		b.e.SetInput("g", election.Input{Eligible: false, Priority: 100})
		a.e.SetInput("g", election.Input{Eligible: false, Priority: 100})
		if tr := a.rec.wait(t, false, time.Second); tr.Reason != "ineligible" {
			t.Fatalf("a: %+v", tr)
		}
		// The release follows the report on a's campaign goroutine: let it
		// run until every goroutine of the bubble is blocked again.
		synctest.Wait()
		if l := getLease(t, f, "elig"); l.Spec.HolderIdentity != nil {
			t.Fatalf("a stepped down but did not release: holder %q", *l.Spec.HolderIdentity)
		}
		b.rec.none(t, 2*testTiming.LeaseDuration) // ineligible: does not take the released Lease
		b.e.SetInput("g", election.Input{Eligible: true, Priority: 100})
		b.rec.wait(t, true, time.Second)
		a.rec.none(t, 2*testTiming.LeaseDuration)
	})
}

func TestFakePriorityTieBreak(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		createLease(t, f, "prio", "", 1)
		lo := startIn(t, w, f, "lo", "prio", 1)
		hi := startIn(t, w, f, "hi", "prio", 254)
		if tr := hi.rec.wait(t, true, time.Minute); tr.Reason != "lease-acquired" {
			t.Fatalf("hi: %+v", tr)
		}
		lo.rec.none(t, 3*testTiming.LeaseDuration)
	})
}

// TestFakeLeaseTakenAway: if someone else writes the Lease (an operator,
// a misconfigured node) the owner steps down at once, and stays a candidate:
// the thief never renews, so it takes the Lease back after LeaseDuration.
func TestFakeLeaseTakenAway(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		a := startNode(t, f, "a", "steal", testTiming, 100)
		a.rec.wait(t, true, time.Minute)
		l := getLease(t, f, "steal")
		thief := "thief"
		l.Spec.HolderIdentity = &thief
		if _, err := f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		stolen := time.Now()
		tr := a.rec.wait(t, false, time.Second)
		if tr.Reason != "lease-lost" || tr.Peer != "thief" || !tr.At.Equal(stolen) {
			t.Fatalf("%+v %s after the theft", tr, tr.At.Sub(stolen))
		}
		back := a.rec.wait(t, true, time.Minute)
		if d := back.At.Sub(stolen); d != testTiming.LeaseDuration+priorityDelay(100) {
			t.Errorf("taken back %s after the theft, want LeaseDuration + tie-break", d)
		}
	})
}

func TestFakeEventsRecorded(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		a := startNode(t, f, "a", "ev", testTiming, 100)
		a.rec.wait(t, true, time.Minute)
		time.Sleep(time.Second)
		a.stop() // Run returns once the queued events are sent
		evs, err := f.CoreV1().Events(testNS).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, e := range evs.Items {
			reasons = append(reasons, e.Reason)
		}
		slices.Sort(reasons)
		if fmt.Sprint(reasons) != "[Acquired Released]" {
			t.Fatalf("events %v, want Acquired and Released", reasons)
		}
	})
}

// TestFakeTwoGroups: each group has its own Lease and campaign.
func TestFakeTwoGroups(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		e, err := New(Options{Client: f, Namespace: testNS, Identity: "a", Timing: testTiming,
			Groups: []Group{{Name: "g1", Lease: "l-g1"}, {Name: "g2", Lease: "l-g2"}}})
		if err != nil {
			t.Fatal(err)
		}
		e.SetInput("g1", election.Input{Eligible: true, Priority: 100})
		e.SetInput("g2", election.Input{Eligible: false, Priority: 100})
		rec := newRecorder("a", nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ctx, rec.report) }()
		if tr := rec.wait(t, true, time.Minute); tr.Group != "g1" {
			t.Fatalf("%+v", tr)
		}
		rec.none(t, 2*testTiming.LeaseDuration) // g2 is ineligible
		e.SetInput("g2", election.Input{Eligible: true, Priority: 100})
		if tr := rec.wait(t, true, time.Minute); tr.Group != "g2" {
			t.Fatalf("%+v", tr)
		}
		if ok, why := e.Ready(); !ok {
			t.Errorf("not ready: %s", why)
		}
		st := e.GroupStatuses()
		if len(st) != 2 || !st[0].Owner || !st[1].Owner || st[1].Lease != "l-g2" {
			t.Fatalf("status %+v", st)
		}
		cancel()
		<-done
		if a, b := getLease(t, f, "l-g1"), getLease(t, f, "l-g2"); a.Spec.HolderIdentity != nil || b.Spec.HolderIdentity != nil {
			t.Fatal("leases not released on shutdown")
		}
		if n := len(rec.transitions()); n != 4 {
			t.Fatalf("%d transitions, want 2 acquired + 2 shutdown: %+v", n, rec.transitions())
		}
	})
}

// TestFakeReadyFollowsAPIOutage: Ready turns false once the API server has
// been unreachable for longer than LeaseDuration (not before: short blips
// are normal), names the group and the error, and is true again once a
// request succeeds.
func TestFakeReadyFollowsAPIOutage(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		var down atomic.Bool
		down.Store(true)
		f.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if down.Load() {
				return true, nil, errors.New("connection refused (injected)")
			}
			return false, nil, nil
		})
		n := startNode(t, f, "a", "down", testTiming, 100)
		if ok, why := n.e.Ready(); !ok {
			t.Fatalf("not ready at start: %s", why)
		}
		time.Sleep(testTiming.LeaseDuration)
		if ok, why := n.e.Ready(); !ok {
			t.Errorf("not ready after an outage of exactly LeaseDuration: %s", why)
		}
		time.Sleep(time.Millisecond)
		ok, why := n.e.Ready()
		if ok || !strings.Contains(why, "group g") || !strings.Contains(why, "connection refused (injected)") {
			t.Fatalf("Ready = %v, %q after LeaseDuration of API errors; want false naming group and error", ok, why)
		}
		n.rec.none(t, time.Second)
		down.Store(false)
		if tr := n.rec.wait(t, true, testTiming.RetryPeriod+priorityDelay(100)); tr.Reason != "lease-acquired" {
			t.Fatalf("%+v", tr)
		}
		if ok, why := n.e.Ready(); !ok {
			t.Errorf("not ready with the API back: %s", why)
		}
	})
}

// TestFakeStatusDoesNotWaitForIO: Status and Ready answer while a request
// to the API server hangs and while the Reporter is busy binding. (Real
// clock: a call that blocked on a lock would not be a durable block for
// synctest, and would hang instead of failing.)
func TestFakeStatusDoesNotWaitForIO(t *testing.T) {
	f := newRVFake()
	entered, hang := make(chan struct{}, 1), make(chan struct{})
	var hanging atomic.Bool
	f.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if hanging.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-hang
		}
		return false, nil, nil
	})
	binding, bound := make(chan struct{}, 1), make(chan struct{})
	e, err := New(Options{Client: f, Namespace: testNS, Identity: "a", Timing: testTiming, Groups: []Group{{Name: "g", Lease: "io"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.SetInput("g", election.Input{Eligible: true, Priority: 254})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, func(tr election.Transition) error {
			if tr.Owner {
				binding <- struct{}{}
				<-bound
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	answers := func(what string) {
		t.Helper()
		got := make(chan struct{})
		go func() { _ = e.Status(); _, _ = e.Ready(); close(got) }()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("Status/Ready blocked while %s", what)
		}
	}
	<-binding
	answers("the Reporter binds")
	hanging.Store(true)
	close(bound)
	<-entered // the first renewal hangs in the API client
	answers("a renewal hangs")
	close(hang)
}

// TestFakeBindFailureReleases (Reporter contract): a node whose Reporter
// fails an Owner=true transition (it could not bind; the daemon made the
// group ineligible before returning) hands the Lease back at once, so
// another candidate takes it after its tie-break delay, and it never writes
// the Lease again until its input is eligible again.
func TestFakeBindFailureReleases(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		w := newWorld(t)
		a := runNode(t, Options{Client: f, Namespace: testNS, Identity: "a", Groups: []Group{{Name: "g", Lease: "bind"}}, Timing: testTiming, Log: testLog(t, "a")},
			254, w, errors.New("address 198.51.100.1: operation not permitted (injected)"))
		b := startIn(t, w, f, "b", "bind", 100)
		failed := a.rec.wait(t, true, time.Minute)
		took := b.rec.wait(t, true, time.Minute)
		ws := f.writesTo("bind")
		if len(ws) < 2 || ws[0].holder != "a" || ws[1].holder != "" || !ws[1].at.Equal(failed.At) {
			t.Fatalf("writes %+v: want a's acquisition, then its release at once (%s)", ws, failed.At)
		}
		if d := took.At.Sub(failed.At); d != priorityDelay(100) {
			t.Errorf("b took the Lease %s after a's failed bind, want its tie-break delay %s", d, priorityDelay(100))
		}
		synctest.Wait() // a has seen what the others did at this instant
		if st := a.e.GroupStatuses()[0]; st.Owner || st.Holder != "b" {
			t.Errorf("a's status %+v: want not owner, holder b", st)
		}
		// Ineligible: a claims nothing, even when the Lease is free again.
		b.stop()
		a.rec.none(t, 3*testTiming.LeaseDuration)
		for _, w := range f.writesTo("bind")[1:] {
			if w.holder == "a" {
				t.Fatalf("a wrote the Lease while ineligible: %+v", w)
			}
		}
		// Eligible again (and binding works): a takes the free Lease.
		a.rec.failBinds(nil)
		a.e.SetInput("g", election.Input{Eligible: true, Priority: 254})
		if tr := a.rec.wait(t, true, time.Second); tr.Reason != "lease-acquired" {
			t.Fatalf("a: %+v", tr)
		}
		synctest.Wait() // a has seen what the others did at this instant
		if st := a.e.GroupStatuses()[0]; !st.Owner || st.Holder != "a" {
			t.Errorf("a's status %+v", st)
		}
	})
}

// jumpClock is the bubble's clock plus an offset the test moves: a process
// pause (VM stall, SIGSTOP) as the elector sees it on resume. Its timers are
// the bubble's: they fire late, as a paused process's do.
type jumpClock struct {
	RealClock
	off atomic.Int64
}

func (c *jumpClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// TestFakePauseFencesBeforeRenewing: an owner that finds, on waking, that its
// renew deadline has passed drops its VIPs first, although the API server is
// fine: while it was stalled, followers may have taken the Lease. Only then
// does it compete again (and here gets its own Lease back at once).
func TestFakePauseFencesBeforeRenewing(t *testing.T) {
	fakeTest(t, func(t *testing.T) {
		f := newRVFake()
		clk := &jumpClock{}
		e, err := New(Options{Client: f, Namespace: testNS, Identity: "a", Groups: []Group{{Name: "g", Lease: "pause"}},
			Timing: testTiming, Clock: clk, Log: testLog(t, "a")})
		if err != nil {
			t.Fatal(err)
		}
		e.SetInput("g", election.Input{Eligible: true, Priority: 100})
		rec := newRecorder("a", nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		var writesAtDrop atomic.Int64
		report := func(tr election.Transition) error {
			if !tr.Owner {
				writesAtDrop.Store(f.writes.Load())
			}
			return rec.report(tr)
		}
		go func() { defer close(done); _ = e.Run(ctx, report) }()
		defer func() { cancel(); <-done }()
		rec.wait(t, true, time.Minute)
		time.Sleep(testTiming.RetryPeriod / 2)
		synctest.Wait() // a waits for its next renewal
		writes := f.writes.Load()
		clk.off.Add(int64(testTiming.RenewDeadline))
		tr := rec.wait(t, false, time.Minute)
		if tr.Reason != "renew-deadline" {
			t.Fatalf("after the pause: %+v", tr)
		}
		if got := writesAtDrop.Load(); got != writes {
			t.Fatalf("%d writes between waking and dropping, want none", got-writes)
		}
		if tr := rec.wait(t, true, time.Second); tr.Reason != "lease-acquired" {
			t.Fatalf("re-acquire: %+v", tr)
		}
	})
}

type deployHost struct{}

func (deployHost) InterfaceExists(name string) bool       { return name == "eth0" }
func (deployHost) InterfaceFor(netip.Addr) (string, bool) { return "eth0", true }

// TestDeployConfigValid: the vipd.yaml inside deploy/lease/daemonset.yaml
// passes vipd's own validation (the API server cannot check a ConfigMap's
// content).
func TestDeployConfigValid(t *testing.T) {
	data, err := os.ReadFile("../../deploy/lease/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		found = true
		c, err := config.Parse([]byte(cm.Data["vipd.yaml"]))
		if err != nil {
			t.Fatal(err)
		}
		c.Node = "n1"
		if err := c.Validate(deployHost{}); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatal("no ConfigMap in daemonset.yaml")
	}
}
