package node

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

// vipd stopped for longer than the VIPs' lifetime (here: in the middle of
// a renewal, which reaches the kernel after the kernel expired the VIP and
// re-adds it): the binder lapses the VIPs, the group is given up with
// reason lifetime-expired and made ineligible before anything else can
// bind, the elector (which still believes it owns the group) steps down,
// and only that ends the hold; nothing is bound until it takes again.
func TestRunLapsedVIPsGiveTheGroupUpUntilTheElectorStepsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, nil)
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		stall := make(chan struct{})
		r.kernel.mu.Lock()
		r.kernel.stall = stall
		r.kernel.mu.Unlock()
		time.Sleep(4 * time.Second) // the next renewal hangs
		synctest.Wait()
		// The kernel expired both VIPs meanwhile (the dead-man's switch).
		_ = r.kernel.Delete("eth0", vipA)
		_ = r.kernel.Delete("eth0", vipB)
		mark := len(r.log.all())
		close(stall)
		synctest.Wait()
		evs := r.log.all()[mark:]
		t.Logf("events: %q", evs)
		if r.kernel.bound() != 0 {
			t.Fatalf("VIPs bound after the lapse: %v", evs)
		}
		ineligible := -1
		for i, e := range evs {
			if strings.HasPrefix(e, "input web eligible=false") && strings.Contains(e, "VIPs lapsed") {
				ineligible = i
				break
			}
		}
		eligible := contains(evs, "input web eligible=true ")
		if ineligible < 0 || eligible < ineligible {
			t.Fatalf("want the group ineligible (VIPs lapsed), then eligible once the elector stepped down: %v", evs)
		}
		// The in-flight renewal may have re-added one VIP: it is removed
		// at once, and nothing is added after it.
		for i, e := range evs {
			if strings.HasPrefix(e, "kernel add") && (i+1 >= len(evs) || !strings.HasPrefix(evs[i+1], "kernel del")) {
				t.Fatalf("a VIP added after the lapse and not removed at once: %v", evs)
			}
		}
		code, body := r.ln.get(t, "/status")
		// (The reason is the elector's step-down's by now.)
		if code != 200 || !strings.Contains(body, `"owner": false`) || !strings.Contains(body, `"lapses": 2`) {
			t.Fatalf("/status %d: want not owner, binding.lapses 2: %s", code, body)
		}
		// The election decides afresh: a take binds again.
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		if r.kernel.bound() != 2 {
			t.Fatalf("%d VIPs bound after the new take, want 2", r.kernel.bound())
		}
		r.stop(t)
	})
}

// The manager on its own: a lapse releases an owned group (reason
// lifetime-expired) and holds it until the elector's next report; an
// Owner=true report before any step-down (the elector confirming the stale
// ownership) is refused like a failed bind; a lapse of a group the elector
// gave up already changes nothing.
func TestManagerLapse(t *testing.T) {
	var holds, ends, bindFails []string
	r := &recorder{}
	m := NewManager(t.Context(), quiet, []Group{web}, r, r)
	m.onLapse = func(g string, _ time.Duration) { holds = append(holds, g) }
	m.onLapseEnd = func(g string) { ends = append(ends, g) }
	m.onBindFailure = func(g string, _ error) { bindFails = append(bindFails, g) }
	own := func() error { return m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected"}) }
	if err := own(); err != nil {
		t.Fatal(err)
	}
	r.take()
	m.Lapsed([]addr.VIP{web.VIPs[1]}, 4800*time.Millisecond)
	if g := m.Groups()[0]; g.Owner || g.Reason != ReasonLifetimeExpired || g.VIPs[0].Bound || g.VIPs[1].Bound {
		t.Fatalf("after the lapse: %+v", g)
	}
	if calls := r.take(); len(calls) != 4 { // silence+unbind of both
		t.Fatalf("release calls %v", calls)
	}
	if len(holds) != 1 || len(ends) != 0 {
		t.Fatalf("holds %v ends %v", holds, ends)
	}
	// The elector confirms its (stale) ownership: refused, nothing bound.
	if err := own(); err == nil {
		t.Fatal("a take right after a lapse was accepted")
	}
	if calls := r.take(); len(calls) != 0 || len(bindFails) != 1 || len(ends) != 1 {
		t.Fatalf("calls %v bindFails %v ends %v", calls, bindFails, ends)
	}
	// A new take (after the refusal the elector treats it as a step-down) binds.
	if err := own(); err != nil {
		t.Fatal(err)
	}
	r.take()
	m.Lapsed([]addr.VIP{web.VIPs[0]}, 3*time.Second)
	// The step-down ends the hold.
	if err := m.Report(election.Transition{Group: "web", Reason: "ineligible"}); err != nil {
		t.Fatal(err)
	}
	if len(holds) != 2 || len(ends) != 2 {
		t.Fatalf("holds %v ends %v", holds, ends)
	}
	// A lapse of a group not owned (the elector stepped down first): nothing.
	r.take()
	m.Lapsed(web.VIPs, 3*time.Second)
	if calls := r.take(); len(calls) != 0 || len(holds) != 2 {
		t.Fatalf("a lapse of an unowned group: calls %v holds %v", calls, holds)
	}
}
