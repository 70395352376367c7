package lease

// Tests against a real kube-apiserver + etcd (internal/kubetest): one control
// plane for the package, each test with its own Lease names.

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const realNS = "kube-system"

// realTiming satisfies the config's fencing rule (3s >= 1s+200ms+1s+500ms)
// while keeping the tests short.
var realTiming = Timing{LeaseDuration: 3 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}

var rbacDone sync.Map // *kubetest.ControlPlane -> true

// applyRBAC creates deploy/lease/rbac.yaml's objects as admin, so the tests'
// electors run with exactly the rights the manifest grants.
func applyRBAC(t *testing.T, cp *kubetest.ControlPlane) {
	t.Helper()
	if _, done := rbacDone.LoadOrStore(cp, true); done {
		return
	}
	if err := cp.ApplyRBAC(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// cuttable is a client whose requests can be made to hang like packets into
// a blackhole (until the request's own context ends).
type cuttable struct {
	cut atomic.Bool
}

func (c *cuttable) wrap(rt http.RoundTripper) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		if c.cut.Load() {
			<-req.Context().Done()
			return nil, errors.New("blackholed (test): " + req.Context().Err().Error())
		}
		return rt.RoundTrip(req)
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type realNode struct {
	*node
	cut *cuttable
}

func startReal(t *testing.T, cp *kubetest.ControlPlane, id, lease string, tm Timing, prio int) *realNode {
	t.Helper()
	return startRealIn(t, nil, cp, id, lease, tm, prio)
}

// startRealIn is startReal with reports checked against w (nil: not checked).
func startRealIn(t *testing.T, w *world, cp *kubetest.ControlPlane, id, lease string, tm Timing, prio int) *realNode {
	t.Helper()
	applyRBAC(t, cp)
	cut := &cuttable{}
	cfg := cp.RESTConfig(cp.VipdToken)
	cfg.WrapTransport = cut.wrap
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := runNode(t, Options{Client: cs, Namespace: realNS, Identity: id, Groups: []Group{{Name: "g", Lease: lease}}, Timing: tm, Log: testLog(t, id)}, prio, w, nil)
	return &realNode{node: n, cut: cut}
}

func leaseName(t *testing.T) string {
	return "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
}

func adminClient(t *testing.T, cp *kubetest.ControlPlane) *kubernetes.Clientset {
	c, err := cp.Client(cp.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRealLeastPrivilege: with only the rights of deploy/lease/rbac.yaml the
// elector creates, renews and releases its Lease and records Events; and
// those rights are all it has.
func TestRealLeastPrivilege(t *testing.T) {
	cp := kubetest.Shared(t)
	name := leaseName(t)
	n := startReal(t, cp, "node-a", name, realTiming, 100)
	n.rec.wait(t, true, 10*time.Second)
	admin := adminClient(t, cp)
	l, err := admin.CoordinationV1().Leases(realNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "node-a" || *l.Spec.LeaseDurationSeconds != 3 {
		t.Fatalf("lease spec %+v", l.Spec)
	}
	time.Sleep(3 * realTiming.RetryPeriod)
	l2, _ := admin.CoordinationV1().Leases(realNS).Get(t.Context(), name, metav1.GetOptions{})
	if l2.ResourceVersion == l.ResourceVersion || !l2.Spec.RenewTime.After(l.Spec.RenewTime.Time) {
		t.Fatalf("not renewed: rv %s->%s", l.ResourceVersion, l2.ResourceVersion)
	}
	n.stop()
	l3, _ := admin.CoordinationV1().Leases(realNS).Get(t.Context(), name, metav1.GetOptions{})
	if l3.Spec.HolderIdentity != nil || *l3.Spec.LeaseDurationSeconds != 1 {
		t.Fatalf("not released: %+v", l3.Spec)
	}
	evs, err := admin.CoreV1().Events(realNS).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason+"/"+e.Source.Host)
	}
	if len(reasons) != 2 {
		t.Errorf("events %v, want Acquired and Released by node-a", reasons)
	}

	vipd, _ := cp.Client(cp.VipdToken)
	ctx := t.Context()
	for what, err := range map[string]error{
		"delete lease": vipd.CoordinationV1().Leases(realNS).Delete(ctx, name, metav1.DeleteOptions{}),
		"list leases": func() error {
			_, err := vipd.CoordinationV1().Leases(realNS).List(ctx, metav1.ListOptions{})
			return err
		}(),
		"get secrets": func() error { _, err := vipd.CoreV1().Secrets(realNS).List(ctx, metav1.ListOptions{}); return err }(),
		"other ns": func() error {
			_, err := vipd.CoordinationV1().Leases("default").Get(ctx, name, metav1.GetOptions{})
			return err
		}(),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
}

// TestRealRace: three candidates start together on a new Lease; there is
// exactly one owner at every sample, and after that owner stops, exactly one
// of the others.
func TestRealRace(t *testing.T) {
	cp := kubetest.Shared(t)
	name := leaseName(t)
	var ns []*realNode
	for _, id := range []string{"r1", "r2", "r3"} {
		ns = append(ns, startReal(t, cp, id, name, realTiming, 100))
	}
	owners := func() (out []*realNode) {
		for _, n := range ns {
			if n.rec.owner("g") {
				out = append(out, n)
			}
		}
		return out
	}
	check := func(d time.Duration) []*realNode {
		var last []*realNode
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			last = owners()
			if len(last) > 1 {
				t.Fatalf("%d owners at once", len(last))
			}
		}
		return last
	}
	o := check(2 * time.Second)
	if len(o) != 1 {
		t.Fatalf("%d owners after 2s", len(o))
	}
	o[0].stop()
	if o2 := check(2 * time.Second); len(o2) != 1 || o2[0] == o[0] {
		t.Fatalf("after the owner stopped: %d owners", len(o2))
	}
}

// TestRealGracefulHandover: the owner stops; it drops its VIPs, releases, and
// the follower (watching) takes over within milliseconds.
func TestRealGracefulHandover(t *testing.T) {
	cp := kubetest.Shared(t)
	name := leaseName(t)
	// Equal priorities: neither asks the other for the Lease.
	a := startReal(t, cp, "a", name, realTiming, 254)
	a.rec.wait(t, true, 10*time.Second)
	b := startReal(t, cp, "b", name, realTiming, 254)
	time.Sleep(time.Second)
	var worst time.Duration
	for i := range 5 {
		owner, follower := a, b
		if i%2 == 1 {
			owner, follower = b, a
		}
		owner.stop()
		drop := owner.rec.wait(t, false, 5*time.Second)
		took := follower.rec.wait(t, true, 5*time.Second)
		d := took.At.Sub(drop.At)
		t.Logf("graceful handover %d: VIPs dropped -> peer owner in %s", i, d.Round(time.Millisecond))
		if d < 0 {
			t.Fatalf("peer acquired before the owner dropped")
		}
		worst = max(worst, d)
		// Restart the stopped one as the new follower (same id).
		id := "a"
		if owner == b {
			id = "b"
		}
		n := startReal(t, cp, id, name, realTiming, 254)
		if owner == a {
			a = n
		} else {
			b = n
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("graceful handover worst of 5: %s (priority 254, no tie-break delay)", worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("graceful handover took %s", worst)
	}
}

// TestRealDegradedHandover: the holder turns degraded; the healthy follower
// asks and receives the group by handover, with no instant where both
// report owner (checked at every report, and by sampling); the old holder
// dropped its VIPs before the Lease named the new one. Then the same
// with a pure priority difference (a weight), back to the first node.
func TestRealDegradedHandover(t *testing.T) {
	cp := kubetest.Shared(t)
	name := leaseName(t)
	w := newWorld(t)
	a := startRealIn(t, w, cp, "a", name, realTiming, 200)
	a.rec.wait(t, true, 10*time.Second)
	b := startRealIn(t, w, cp, "b", name, realTiming, 100)
	time.Sleep(time.Second)
	if !a.rec.owner("g") || b.rec.owner("g") {
		t.Fatal("b took the Lease from a healthy, higher holder")
	}
	admin := adminClient(t, cp)
	var aDropped atomic.Bool
	a.rec.onReport(func(tr election.Transition) {
		if tr.Owner {
			return
		}
		l, err := admin.CoordinationV1().Leases(realNS).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && holderOf(l) != "a" {
			t.Errorf("a reports Owner=false while the Lease already names %q", holderOf(l))
		}
		aDropped.Store(true)
	})
	b.rec.onReport(func(tr election.Transition) {
		if tr.Owner && !aDropped.Load() {
			t.Errorf("b reports Owner=true before a dropped")
		}
	})
	stopSampling := make(chan struct{})
	sampled := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stopSampling:
				sampled <- n
				return
			default:
			}
			if a.rec.owner("g") && b.rec.owner("g") {
				t.Errorf("a and b both owners")
			}
			n++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	at := time.Now()
	a.e.SetInput("g", degradedIn(200))
	drop := a.rec.wait(t, false, 5*time.Second)
	took := b.rec.wait(t, true, 5*time.Second)
	t.Logf("holder degraded at 0: it dropped the VIPs at %s (%s), b owner at %s (%s): handover gap %s",
		drop.At.Sub(at).Round(time.Microsecond), drop.Reason, took.At.Sub(at).Round(time.Microsecond), took.Reason,
		took.At.Sub(drop.At).Round(time.Microsecond))
	if drop.Reason != "handover:b" || took.Reason != "handed-over-by:a" {
		t.Errorf("reasons %q, %q", drop.Reason, took.Reason)
	}
	if took.At.Sub(at) > time.Second {
		t.Errorf("handover took %s", took.At.Sub(at))
	}
	a.rec.none(t, realTiming.LeaseDuration) // degraded: does not ask back
	a.rec.onReport(nil)
	b.rec.onReport(nil)

	// a healthy again with the higher priority: preference by handover.
	at = time.Now()
	a.e.SetInput("g", healthyIn(200))
	drop = b.rec.wait(t, false, 5*time.Second)
	took = a.rec.wait(t, true, 5*time.Second)
	t.Logf("higher-priority node healthy again at 0: b dropped at %s, a owner at %s (%s)",
		drop.At.Sub(at).Round(time.Microsecond), took.At.Sub(at).Round(time.Microsecond), took.Reason)
	if drop.Reason != "handover:a" || took.Reason != "handed-over-by:b" {
		t.Errorf("reasons %q, %q", drop.Reason, took.Reason)
	}
	close(stopSampling)
	t.Logf("%d samples of both nodes' ownership, never two owners", <-sampled)
	l, err := admin.CoordinationV1().Leases(realNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if holderOf(l) != "a" || *l.Spec.LeaseTransitions != 2 || l.Annotations[annPriority] != "200" {
		t.Errorf("Lease: holder %s, transitions %d, annotations %v", holderOf(l), *l.Spec.LeaseTransitions, l.Annotations)
	}
}

// TestRealFencing: the owner's requests hang (cut off from the API server).
// It must drop its VIPs at its renew deadline, strictly before the follower
// acquires; then, reconnected, it stays a follower without disturbing.
func TestRealFencing(t *testing.T) {
	cp := kubetest.Shared(t)
	name := leaseName(t)
	a := startReal(t, cp, "a", name, realTiming, 100)
	a.rec.wait(t, true, 10*time.Second)
	b := startReal(t, cp, "b", name, realTiming, 100)
	time.Sleep(time.Second)
	cut := time.Now()
	a.cut.cut.Store(true)
	drop := a.rec.wait(t, false, 5*time.Second)
	took := b.rec.wait(t, true, 10*time.Second)
	t.Logf("cut off at 0: owner dropped VIPs at %s (%s), follower acquired at %s: gap %s (renewDeadline %s, leaseDuration %s)",
		drop.At.Sub(cut).Round(time.Millisecond), drop.Reason, took.At.Sub(cut).Round(time.Millisecond),
		took.At.Sub(drop.At).Round(time.Millisecond), realTiming.RenewDeadline, realTiming.LeaseDuration)
	if drop.Reason != "renew-deadline" {
		t.Errorf("drop reason %q", drop.Reason)
	}
	if drop.At.Sub(cut) > realTiming.RenewDeadline+200*time.Millisecond {
		t.Errorf("owner dropped %s after the cut; renew deadline is %s", drop.At.Sub(cut), realTiming.RenewDeadline)
	}
	if gap := took.At.Sub(drop.At); gap < realTiming.LeaseDuration-realTiming.RenewDeadline-realTiming.RetryPeriod {
		t.Errorf("follower acquired only %s after the owner dropped", gap)
	}
	if st := a.e.GroupStatuses()[0]; st.Owner || st.APIError == "" {
		t.Errorf("cut-off owner's status %+v", st)
	}
	a.cut.cut.Store(false)
	a.rec.none(t, 2*realTiming.LeaseDuration)
	if !b.rec.owner("g") {
		t.Fatal("b lost the lease after a reconnected")
	}
	if st := a.e.GroupStatuses()[0]; st.Holder != "b" || st.APIError != "" {
		t.Errorf("reconnected follower's status %+v", st)
	}
}

// TestRealAPIServerRestart: the API server goes away under an owner and a
// follower and comes back; nobody exits, the owner fences at its deadline,
// and ownership resumes (exactly one owner) once the server is back.
func TestRealAPIServerRestart(t *testing.T) {
	kubetest.Require(t)
	cp, err := kubetest.Start(t.Context(), kubetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop) // after the nodes' cleanups (LIFO)
	name := leaseName(t)
	a := startReal(t, cp, "a", name, realTiming, 100)
	a.rec.wait(t, true, 10*time.Second)
	b := startReal(t, cp, "b", name, realTiming, 100)
	time.Sleep(time.Second)
	stopped := time.Now()
	cp.KillAPIServer()
	drop := a.rec.wait(t, false, 5*time.Second)
	t.Logf("API server killed at 0; owner dropped VIPs at %s (%s)", drop.At.Sub(stopped).Round(time.Millisecond), drop.Reason)
	time.Sleep(2 * realTiming.LeaseDuration)
	if a.rec.owner("g") || b.rec.owner("g") {
		t.Fatal("an owner without an API server")
	}
	if st := b.e.GroupStatuses()[0]; st.APIError == "" {
		t.Errorf("follower status shows no API error: %+v", st)
	}
	restart := time.Now()
	if err := cp.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("API server restarted, ready after %s", back.Sub(restart).Round(time.Millisecond))
	var took election.Transition
	select {
	case took = <-a.rec.ch:
	case took = <-b.rec.ch:
	case <-time.After(15 * time.Second):
		t.Fatal("nobody took the lease after the API server came back")
	}
	t.Logf("ownership resumed %s after the API server was started again (%s, %s; /readyz ok after %s)",
		took.At.Sub(restart).Round(time.Millisecond), took.Peer, took.Reason, back.Sub(restart).Round(time.Millisecond))
	time.Sleep(realTiming.LeaseDuration)
	if a.rec.owner("g") == b.rec.owner("g") {
		t.Fatalf("owners: a=%v b=%v", a.rec.owner("g"), b.rec.owner("g"))
	}
}
