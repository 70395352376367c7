package node

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
)

// trackerRig runs an eligibilityTracker (with its timer loop) and records
// every input it applies: what the elector and the status are told.
type trackerRig struct {
	tr     *eligibilityTracker
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	applied []appliedInput
}

type appliedInput struct {
	at    time.Time
	group string
	in    election.Input
	b     Breakdown
}

func startTracker(t *testing.T, groups []Group, startupDelay, minMove time.Duration) *trackerRig {
	t.Helper()
	r := &trackerRig{done: make(chan struct{})}
	r.tr = newEligibilityTracker(groups, time.Now, startupDelay, minMove, func(g string, in election.Input, b Breakdown) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.applied = append(r.applied, appliedInput{time.Now(), g, in, b})
	})
	r.tr.start()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); r.tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// last is the last input applied for group (what the elector holds).
func (r *trackerRig) last(t *testing.T, group string) appliedInput {
	t.Helper()
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.applied) - 1; i >= 0; i-- {
		if r.applied[i].group == group {
			return r.applied[i]
		}
	}
	t.Fatalf("no input applied for %s", group)
	return appliedInput{}
}

func (r *trackerRig) count() int {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func result(name string, st health.State, err string) health.Result {
	return health.Result{Name: name, State: st, LastError: err}
}

var vipC = netip.MustParseAddr("203.0.113.10")

func gated(track ...Track) Group {
	return Group{Name: "web", Priority: 100, VIPs: web.VIPs, Track: track}
}

// After a health-caused drop, an improvement within minMove is held (the
// elector keeps the worse input, the breakdown says why) and applied by the
// tracker's own timer when the window ends, not a moment earlier.
func TestTrackerHoldsAnImprovementAfterAHealthDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const minMove = 10 * time.Second
		r := startTracker(t, []Group{gated(Track{"api", 0})}, 0, minMove)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		if a := r.last(t, "web"); a.in.Eligible || a.in.Reason != "check api not known yet" {
			t.Fatalf("before the first verdict: %+v", a.in)
		}
		// The first verdict follows no drop: applied at once.
		r.tr.setCheck(result("api", health.Passing, ""))
		if a := r.last(t, "web"); !a.in.Eligible || a.b.Held != "" {
			t.Fatalf("unknown -> passing held: %+v %+v", a.in, a.b)
		}
		dropAt := time.Now()
		r.tr.setCheck(result("api", health.Failing, "connection refused"))
		if a := r.last(t, "web"); a.in.Eligible || a.in.Reason != "check api failing: connection refused" || !a.at.Equal(dropAt) {
			t.Fatalf("the drop was not applied at once: %+v", a)
		}
		time.Sleep(3 * time.Second)
		r.tr.setCheck(result("api", health.Passing, ""))
		a := r.last(t, "web")
		if a.in.Eligible || a.in.Reason != "check api failing: connection refused" {
			t.Fatalf("improvement within minMove reached the elector: %+v", a.in)
		}
		if !strings.Contains(a.b.Held, "held until") || !strings.Contains(a.b.Held, "health.minMoveInterval 10s") {
			t.Fatalf("breakdown does not say it is held: %q", a.b.Held)
		}
		if in, _ := r.tr.input("web"); in.Eligible {
			t.Fatalf("tracker's applied input is the held one: %+v", in)
		}
		// A moment before the window ends: still held.
		time.Sleep(time.Until(dropAt.Add(minMove)) - time.Millisecond)
		if a := r.last(t, "web"); a.in.Eligible {
			t.Fatalf("applied %s early", minMove-time.Since(dropAt))
		}
		time.Sleep(time.Millisecond)
		a = r.last(t, "web")
		if !a.in.Eligible || a.in.Reason != "" || a.b.Held != "" || !a.at.Equal(dropAt.Add(minMove)) {
			t.Fatalf("not applied when the window ended: %+v", a)
		}
		if in, _ := r.tr.input("web"); !in.Eligible {
			t.Fatalf("tracker input %+v", in)
		}
	})
}

// A drop during a hold is applied at once, and restarts the window.
func TestTrackerAppliesADropDuringAHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const minMove = 10 * time.Second
		r := startTracker(t, []Group{gated(Track{"w", -50}, Track{"g", 0})}, 0, minMove)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		r.tr.setCheck(result("g", health.Passing, ""))
		r.tr.setCheck(result("w", health.Passing, ""))
		if a := r.last(t, "web"); !a.in.Eligible || a.in.Priority != 100 {
			t.Fatalf("healthy: %+v", a.in)
		}
		r.tr.setCheck(result("w", health.Failing, ""))
		if a := r.last(t, "web"); !a.in.Eligible || a.in.Priority != 50 {
			t.Fatalf("weight drop not applied at once: %+v", a.in)
		}
		time.Sleep(time.Second)
		r.tr.setCheck(result("w", health.Passing, ""))
		if a := r.last(t, "web"); a.in.Priority != 50 || a.b.Held == "" || a.b.Effective != 100 {
			t.Fatalf("priority improvement not held (input %+v, breakdown %+v)", a.in, a.b)
		}
		time.Sleep(time.Second)
		secondDrop := time.Now()
		r.tr.setCheck(result("g", health.Failing, "503"))
		if a := r.last(t, "web"); a.in.Eligible || a.in.Reason != "check g failing: 503" || !a.at.Equal(secondDrop) || a.b.Held != "" {
			t.Fatalf("a drop during a hold was not applied at once: %+v", a)
		}
		time.Sleep(time.Second)
		r.tr.setCheck(result("g", health.Passing, ""))
		if a := r.last(t, "web"); a.in.Eligible || a.b.Held == "" {
			t.Fatalf("improvement after the second drop not held: %+v", a)
		}
		// The first window (from the first drop) ends: still held.
		time.Sleep(time.Until(secondDrop.Add(minMove)) - time.Second)
		if a := r.last(t, "web"); a.in.Eligible {
			t.Fatalf("applied at the end of the first window, not of the second: %+v", a)
		}
		time.Sleep(time.Second)
		if a := r.last(t, "web"); !a.in.Eligible || a.in.Priority != 100 || !a.at.Equal(secondDrop.Add(minMove)) {
			t.Fatalf("not applied at the end of the second window: %+v", a)
		}
	})
}

// minMove 0 disables damping: fail and pass are both applied at once.
func TestTrackerWithoutMinMoveAppliesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startTracker(t, []Group{gated(Track{"api", 0})}, 0, 0)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		for range 3 {
			r.tr.setCheck(result("api", health.Failing, "x"))
			if a := r.last(t, "web"); a.in.Eligible {
				t.Fatalf("fail not applied: %+v", a.in)
			}
			r.tr.setCheck(result("api", health.Passing, ""))
			if a := r.last(t, "web"); !a.in.Eligible || a.b.Held != "" {
				t.Fatalf("pass not applied at once with minMove 0: %+v %+v", a.in, a.b)
			}
		}
	})
}

// The start-up delay ends by itself: a non-owner is degraded until then and
// a full candidate from then on, without any other event.
func TestTrackerStartupDelayEndsByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := startTracker(t, []Group{{Name: "web", Priority: 100, VIPs: web.VIPs}}, 30*time.Second, 10*time.Second)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		a := r.last(t, "web")
		if !a.in.Eligible || !a.in.Degraded || !strings.HasPrefix(a.in.Reason, "startup delay until ") || !a.b.Degraded {
			t.Fatalf("during the start-up delay: %+v %+v", a.in, a.b)
		}
		n := r.count()
		time.Sleep(30*time.Second - time.Millisecond)
		if r.count() != n {
			t.Fatalf("input changed before the delay ended: %+v", r.last(t, "web"))
		}
		time.Sleep(time.Millisecond)
		a = r.last(t, "web")
		if !a.in.Eligible || a.in.Degraded || a.in.Reason != "" || a.b.Held != "" || !a.at.Equal(start.Add(30*time.Second)) {
			t.Fatalf("after the start-up delay (not held: no health drop): %+v", a)
		}
	})
}

// An owner is not degraded by the start-up delay.
func TestTrackerStartupDelaySparesTheOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startTracker(t, []Group{{Name: "web", Priority: 100, VIPs: web.VIPs}}, 30*time.Second, 0)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		r.tr.setOwner("web", true)
		if a := r.last(t, "web"); !a.in.Eligible || a.in.Degraded {
			t.Fatalf("owner during the start-up delay: %+v", a.in)
		}
		r.tr.setOwner("web", false)
		if a := r.last(t, "web"); !a.in.Degraded {
			t.Fatalf("non-owner during the start-up delay: %+v", a.in)
		}
	})
}

// An improvement that a link (not a check) completes after a health drop is
// held too, and the tracker's timer must know the hold: it is applied when
// the window ends, without any further event.
func TestTrackerHoldStartedByALinkEndsByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const minMove = 10 * time.Second
		r := startTracker(t, []Group{gated(Track{"api", 0})}, 0, minMove)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		r.tr.setCheck(result("api", health.Passing, ""))
		dropAt := time.Now()
		r.tr.setCheck(result("api", health.Failing, "x"))
		time.Sleep(time.Second)
		r.tr.setLinks(map[string]LinkState{"eth0": {Exists: true}})
		time.Sleep(time.Second)
		r.tr.setCheck(result("api", health.Passing, ""))
		if a := r.last(t, "web"); a.in.Eligible || a.in.Reason != "link eth0 down" || a.b.Held != "" {
			t.Fatalf("with the link down: %+v %+v", a.in, a.b)
		}
		time.Sleep(time.Second)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		if a := r.last(t, "web"); a.in.Eligible || a.b.Held == "" {
			t.Fatalf("link back within the window: not held: %+v %+v", a.in, a.b)
		}
		time.Sleep(time.Until(dropAt.Add(minMove)))
		if a := r.last(t, "web"); !a.in.Eligible || !a.at.Equal(dropAt.Add(minMove)) {
			t.Fatalf("hold started by setLinks did not end at %s: %+v", minMove, a)
		}
	})
}

// A link drop never starts a window: the link returning is applied at once.
func TestTrackerDoesNotHoldAfterALinkDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startTracker(t, []Group{gated(Track{"api", 0})}, 0, 10*time.Second)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		r.tr.setCheck(result("api", health.Passing, ""))
		r.tr.setLinks(map[string]LinkState{"eth0": {Exists: true}})
		if a := r.last(t, "web"); a.in.Eligible {
			t.Fatalf("link down: %+v", a.in)
		}
		time.Sleep(time.Second)
		r.tr.setLinks(map[string]LinkState{"eth0": up})
		if a := r.last(t, "web"); !a.in.Eligible || a.b.Held != "" {
			t.Fatalf("link back: %+v %+v", a.in, a.b)
		}
	})
}

// setGroups applies a new group's input before it returns and forgets a
// removed group's.
func TestTrackerSetGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startTracker(t, []Group{gated()}, 0, 0)
		r.tr.setLinks(map[string]LinkState{"eth0": up, "eth1": up})
		db := Group{Name: "db", Priority: 50, VIPs: []addr.VIP{{Interface: "eth1", Addr: vipC}}}
		r.tr.setGroups([]Group{db})
		if in, ok := r.tr.input("db"); !ok || !in.Eligible || in.Priority != 50 {
			t.Fatalf("new group's input %+v (%v)", in, ok)
		}
		if _, ok := r.tr.input("web"); ok {
			t.Fatal("a removed group still has an input")
		}
	})
}
