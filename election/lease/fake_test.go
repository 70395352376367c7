package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
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

// recorder is a Reporter that remembers transitions with their times.
type recorder struct {
	mu  sync.Mutex
	ts  []election.Transition
	now map[string]bool // group -> owner
	ch  chan election.Transition
}

func newRecorder() *recorder {
	return &recorder{now: map[string]bool{}, ch: make(chan election.Transition, 100)}
}

func (r *recorder) report(t election.Transition) error {
	t.At = time.Now()
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.now[t.Group] = t.Owner
	r.mu.Unlock()
	r.ch <- t
	return nil
}

func (r *recorder) owner(g string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now[g]
}

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
			t.Fatalf("no Owner=%v transition within %s", owner, within)
			return election.Transition{}
		}
	}
}

func (r *recorder) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case tr := <-r.ch:
		t.Fatalf("unexpected transition %+v", tr)
	case <-time.After(within):
	}
}

// fastTiming keeps unit tests short; the ratios follow the fencing rule.
var fastTiming = Timing{LeaseDuration: 600 * time.Millisecond, RenewDeadline: 200 * time.Millisecond, RetryPeriod: 50 * time.Millisecond}

type node struct {
	e      *Elector
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, f *rvFake, id, lease string, tm Timing, prio int) *node {
	t.Helper()
	return runNode(t, Options{Client: f, Namespace: testNS, Identity: id, Groups: []Group{{Name: "g", Lease: lease}}, Timing: tm, Log: testLog(t, id)}, prio)
}

// runNode starts an elector for group "g" with the given options and
// priority, recording its transitions; it is stopped at test cleanup.
func runNode(t *testing.T, o Options, prio int) *node {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.SetInput("g", election.Input{Eligible: true, Priority: prio})
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{e: e, rec: newRecorder(), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); _ = e.Run(ctx, n.rec.report) }()
	t.Cleanup(n.stop)
	return n
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

func TestFakeFirstNodeAcquiresAndRenews(t *testing.T) {
	f := newRVFake()
	n := startNode(t, f, "n1", "l1", fastTiming, 100)
	tr := n.rec.wait(t, true, 2*time.Second)
	if tr.Reason != "lease-acquired" || tr.Peer != "n1" {
		t.Fatalf("transition %+v", tr)
	}
	l := getLease(t, f, "l1")
	rv := l.ResourceVersion
	time.Sleep(4 * fastTiming.RetryPeriod)
	if l2 := getLease(t, f, "l1"); l2.ResourceVersion == rv || *l2.Spec.HolderIdentity != "n1" {
		t.Fatalf("not renewed: rv %s -> %s, holder %s", rv, l2.ResourceVersion, *l2.Spec.HolderIdentity)
	}
	n.stop()
	if tr := n.rec.wait(t, false, time.Second); tr.Reason != "shutdown" {
		t.Fatalf("stop: %+v", tr)
	}
	if l := getLease(t, f, "l1"); l.Spec.HolderIdentity != nil || *l.Spec.LeaseDurationSeconds != 1 {
		t.Fatalf("not released: %+v", l.Spec)
	}
}

// TestFakeRaceForExpiredLease: candidates racing for an expired Lease at the
// same moment, many times; exactly one may win each time.
func TestFakeRaceForExpiredLease(t *testing.T) {
	for i := range 30 {
		f := newRVFake()
		dead := "dead"
		dur := int32(1)
		_, err := f.CoordinationV1().Leases(testNS).Create(context.Background(), &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "race", Namespace: testNS},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &dur},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Both see the same version at the same moment and fire together.
		const n = 3
		cs := make([]*campaign, n)
		for j := range cs {
			e, err := New(Options{Client: f, Namespace: testNS, Identity: fmt.Sprintf("c%d", j), Groups: []Group{{Name: "g", Lease: "race"}}, Timing: fastTiming})
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
// Lease, two nodes, one owner, and it stays that way.
func TestFakeRunningRace(t *testing.T) {
	f := newRVFake()
	dead := "dead"
	dur := int32(1)
	_, _ = f.CoordinationV1().Leases(testNS).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "race2", Namespace: testNS},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &dur},
	}, metav1.CreateOptions{})
	a := startNode(t, f, "a", "race2", fastTiming, 100)
	b := startNode(t, f, "b", "race2", fastTiming, 100)
	deadline := time.Now().Add(3 * time.Second)
	owners := 0
	for time.Now().Before(deadline) {
		owners = 0
		for _, n := range []*node{a, b} {
			if n.rec.owner("g") {
				owners++
			}
		}
		if owners > 1 {
			t.Fatal("two owners")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if owners != 1 {
		t.Fatalf("%d owners after 3s", owners)
	}
}

func TestFakeGracefulHandover(t *testing.T) {
	f := newRVFake()
	a := startNode(t, f, "a", "h", fastTiming, 100)
	a.rec.wait(t, true, 2*time.Second)
	b := startNode(t, f, "b", "h", fastTiming, 254)
	b.rec.none(t, 3*fastTiming.LeaseDuration) // never preempts
	a.stop()
	drop := a.rec.wait(t, false, time.Second)
	took := b.rec.wait(t, true, time.Second)
	if drop.Reason != "shutdown" || !drop.At.Before(took.At) {
		t.Fatalf("a dropped %+v, b took %+v", drop, took)
	}
	t.Logf("graceful handover (fake API): %s", took.At.Sub(drop.At))
	if took.At.Sub(drop.At) > 300*time.Millisecond {
		t.Errorf("handover took %s", took.At.Sub(drop.At))
	}
}

// TestFakeFencing: an owner that cannot renew drops its VIPs at its renew
// deadline, before the follower may acquire, and becomes a candidate again.
func TestFakeFencing(t *testing.T) {
	f := newRVFake()
	a := startNode(t, f, "a", "fence", fastTiming, 100)
	a.rec.wait(t, true, 2*time.Second)
	b := startNode(t, f, "b", "fence", fastTiming, 100)
	time.Sleep(2 * fastTiming.RetryPeriod)
	cut := time.Now()
	f.failUpdatesBy.Store("a")
	drop := a.rec.wait(t, false, 2*time.Second)
	took := b.rec.wait(t, true, 3*time.Second)
	t.Logf("cut off at 0, a dropped at %s (%s), b acquired at %s", drop.At.Sub(cut), drop.Reason, took.At.Sub(cut))
	if drop.Reason != "renew-deadline" {
		t.Errorf("reason %q", drop.Reason)
	}
	if gap := took.At.Sub(drop.At); gap < fastTiming.LeaseDuration-fastTiming.RenewDeadline-fastTiming.RetryPeriod {
		t.Errorf("only %s between a's drop and b's acquire", gap)
	}
	if st := a.e.GroupStatuses()[0]; st.Owner || st.APIError == "" {
		t.Errorf("a's status %+v: want not owner, with the API error", st)
	}
	// a is still a candidate: when b goes away, a takes over.
	f.failUpdatesBy.Store("")
	b.stop()
	if tr := a.rec.wait(t, true, 3*time.Second); tr.Reason != "lease-acquired" {
		t.Fatalf("a: %+v", tr)
	}
	if st := a.e.GroupStatuses()[0]; !st.Owner || st.APIError != "" || st.Holder != "a" {
		t.Errorf("a's status %+v", st)
	}
}

func TestFakeIneligible(t *testing.T) {
	f := newRVFake()
	a := startNode(t, f, "a", "elig", fastTiming, 100)
	a.rec.wait(t, true, 2*time.Second)
	b := startNode(t, f, "b", "elig", fastTiming, 100)
	b.e.SetInput("g", election.Input{Eligible: false, Priority: 100})
	a.e.SetInput("g", election.Input{Eligible: false, Priority: 100})
	if tr := a.rec.wait(t, false, time.Second); tr.Reason != "ineligible" {
		t.Fatalf("a: %+v", tr)
	}
	b.rec.none(t, 2*fastTiming.LeaseDuration) // ineligible: does not take the released Lease
	b.e.SetInput("g", election.Input{Eligible: true, Priority: 100})
	b.rec.wait(t, true, time.Second)
	a.rec.none(t, 2*fastTiming.LeaseDuration)
}

func TestFakePriorityTieBreak(t *testing.T) {
	wins := map[string]int{}
	for range 5 {
		f := newRVFake()
		nobody := ""
		one := int32(1)
		_, _ = f.CoordinationV1().Leases(testNS).Create(context.Background(), &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "prio", Namespace: testNS},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &nobody, LeaseDurationSeconds: &one},
		}, metav1.CreateOptions{})
		lo := startNode(t, f, "lo", "prio", fastTiming, 1)
		hi := startNode(t, f, "hi", "prio", fastTiming, 254)
		select {
		case <-lo.rec.ch:
			wins["lo"]++
		case <-hi.rec.ch:
			wins["hi"]++
		case <-time.After(2 * time.Second):
			t.Fatal("nobody acquired")
		}
		lo.stop()
		hi.stop()
	}
	if wins["hi"] != 5 {
		t.Fatalf("wins %v: the higher priority should win a free Lease", wins)
	}
}

// TestFakeLeaseTakenAway: if someone else writes the Lease (an operator,
// a misconfigured node) the owner steps down at once, and stays a candidate.
func TestFakeLeaseTakenAway(t *testing.T) {
	f := newRVFake()
	a := startNode(t, f, "a", "steal", fastTiming, 100)
	a.rec.wait(t, true, 2*time.Second)
	l := getLease(t, f, "steal")
	thief := "thief"
	l.Spec.HolderIdentity = &thief
	if _, err := f.CoordinationV1().Leases(testNS).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if tr := a.rec.wait(t, false, time.Second); tr.Reason != "lease-lost" || tr.Peer != "thief" {
		t.Fatalf("%+v", tr)
	}
	// The thief never renews: a takes it back after the lease duration.
	a.rec.wait(t, true, 3*fastTiming.LeaseDuration)
}

func TestFakeEventsRecorded(t *testing.T) {
	f := newRVFake()
	a := startNode(t, f, "a", "ev", fastTiming, 100)
	a.rec.wait(t, true, 2*time.Second)
	a.stop()
	var reasons []string
	for range 50 {
		evs, err := f.CoreV1().Events(testNS).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reasons = reasons[:0]
		for _, e := range evs.Items {
			reasons = append(reasons, e.Reason)
		}
		if len(reasons) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(reasons) != 2 {
		t.Fatalf("events %v, want Acquired and Released", reasons)
	}
}

// TestFakeTwoGroups: each group has its own Lease and campaign.
func TestFakeTwoGroups(t *testing.T) {
	f := newRVFake()
	e, err := New(Options{Client: f, Namespace: testNS, Identity: "a", Timing: fastTiming,
		Groups: []Group{{Name: "g1", Lease: "l-g1"}, {Name: "g2", Lease: "l-g2"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.SetInput("g1", election.Input{Eligible: true, Priority: 100})
	e.SetInput("g2", election.Input{Eligible: false, Priority: 100})
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx, rec.report) }()
	if tr := rec.wait(t, true, 2*time.Second); tr.Group != "g1" {
		t.Fatalf("%+v", tr)
	}
	rec.none(t, 2*fastTiming.LeaseDuration) // g2 is ineligible
	e.SetInput("g2", election.Input{Eligible: true, Priority: 100})
	if tr := rec.wait(t, true, 2*time.Second); tr.Group != "g2" {
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
	if n := len(rec.ts); n != 4 {
		t.Fatalf("%d transitions, want 2 acquired + 2 shutdown: %+v", n, rec.ts)
	}
}

// TestFakeNotReadyWhileAPIDown: a long API outage makes the node not ready.
func TestFakeNotReadyWhileAPIDown(t *testing.T) {
	f := newRVFake()
	f.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused (injected)")
	})
	n := startNode(t, f, "a", "down", fastTiming, 100)
	deadline := time.Now().Add(3 * fastTiming.LeaseDuration)
	for {
		ok, why := n.e.Ready()
		if !ok {
			t.Logf("not ready: %s", why)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still ready with the API down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.rec.none(t, 100*time.Millisecond)
}

// jumpClock is time.Now plus an offset the test moves: a process pause (VM
// stall, SIGSTOP) as the elector sees it on resume.
type jumpClock struct{ off atomic.Int64 }

func (c *jumpClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// TestFakePauseFencesBeforeRenewing: an owner that finds, on waking, that its
// renew deadline has passed drops its VIPs first, although the API server is
// fine: while it was stalled, followers may have taken the Lease. Only then
// does it compete again (and here gets its own Lease back).
func TestFakePauseFencesBeforeRenewing(t *testing.T) {
	f := newRVFake()
	clk := &jumpClock{}
	e, err := New(Options{Client: f, Namespace: testNS, Identity: "a", Groups: []Group{{Name: "g", Lease: "pause"}},
		Timing: fastTiming, Now: clk.now, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	e.SetInput("g", election.Input{Eligible: true, Priority: 100})
	rec := newRecorder()
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
	rec.wait(t, true, 2*time.Second)
	writes := f.writes.Load()
	clk.off.Add(int64(fastTiming.RenewDeadline + 50*time.Millisecond))
	tr := rec.wait(t, false, time.Second)
	if tr.Reason != "renew-deadline" {
		t.Fatalf("after the pause: %+v", tr)
	}
	// No renewal between waking and dropping (one may have slipped in just
	// before the jump).
	if got := writesAtDrop.Load(); got > writes+1 {
		t.Fatalf("%d writes before the drop was reported", got-writes)
	}
	if tr := rec.wait(t, true, time.Second); tr.Reason != "lease-acquired" {
		t.Fatalf("re-acquire: %+v", tr)
	}
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
