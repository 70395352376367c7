package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/health"
)

func TestCandidacy(t *testing.T) {
	linksUp := map[string]LinkState{"eth0": up}
	pass := func(n string) health.Result { return health.Result{Name: n, State: health.Passing} }
	fail := func(n, err string) health.Result {
		return health.Result{Name: n, State: health.Failing, LastError: err}
	}
	checks := func(rs ...health.Result) map[string]health.Result {
		m := map[string]health.Result{}
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	group := func(prio int, keep bool, track ...Track) Group {
		return Group{Name: "web", Priority: prio, VIPs: web.VIPs, Track: track, KeepWhenNoneHealthy: keep}
	}
	startup := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		g    Group
		f    Facts
		in   election.Input
		b    Breakdown
	}{
		{"no checks", group(100, false), Facts{Links: linksUp},
			election.Input{Eligible: true, Priority: 100},
			Breakdown{Base: 100, Effective: 100}},
		{"positive weight passing adds", group(100, false, Track{"api", 20}), Facts{Links: linksUp, Checks: checks(pass("api"))},
			election.Input{Eligible: true, Priority: 120},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", 20, health.Passing, 20}}, Effective: 120}},
		{"positive weight failing adds nothing, says so", group(100, false, Track{"api", 20}), Facts{Links: linksUp, Checks: checks(fail("api", "refused"))},
			election.Input{Eligible: true, Priority: 100, Reason: "check api failing (weight +20 not added)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", 20, health.Failing, 0}}, Effective: 100}},
		{"positive weight unknown adds nothing", group(100, false, Track{"api", 20}), Facts{Links: linksUp},
			election.Input{Eligible: true, Priority: 100, Reason: "check api unknown (weight +20 not added)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", 20, health.Unknown, 0}}, Effective: 100}},
		{"negative weight failing subtracts", group(100, false, Track{"api", -30}), Facts{Links: linksUp, Checks: checks(fail("api", "refused"))},
			election.Input{Eligible: true, Priority: 70, Reason: "check api failing (weight -30)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", -30, health.Failing, -30}}, Effective: 70}},
		{"negative weight passing subtracts nothing", group(100, false, Track{"api", -30}), Facts{Links: linksUp, Checks: checks(pass("api"))},
			election.Input{Eligible: true, Priority: 100},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", -30, health.Passing, 0}}, Effective: 100}},
		{"negative weight unknown subtracts nothing", group(100, false, Track{"api", -30}), Facts{Links: linksUp},
			election.Input{Eligible: true, Priority: 100},
			Breakdown{Base: 100, Weights: []WeightTerm{{"api", -30, health.Unknown, 0}}, Effective: 100}},
		{"weights add up", group(100, false, Track{"a", 10}, Track{"b", -25}, Track{"c", 5}),
			Facts{Links: linksUp, Checks: checks(pass("a"), fail("b", ""), pass("c"))},
			election.Input{Eligible: true, Priority: 90, Reason: "check b failing (weight -25)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"a", 10, health.Passing, 10}, {"b", -25, health.Failing, -25}, {"c", 5, health.Passing, 5}}, Effective: 90}},
		{"clamped to 254", group(250, false, Track{"a", 100}), Facts{Links: linksUp, Checks: checks(pass("a"))},
			election.Input{Eligible: true, Priority: 254},
			Breakdown{Base: 250, Weights: []WeightTerm{{"a", 100, health.Passing, 100}}, Effective: 254}},
		{"clamped to 1", group(10, false, Track{"a", -100}), Facts{Links: linksUp, Checks: checks(fail("a", "x"))},
			election.Input{Eligible: true, Priority: 1, Reason: "check a failing (weight -100)"},
			Breakdown{Base: 10, Weights: []WeightTerm{{"a", -100, health.Failing, -100}}, Effective: 1}},
		{"gate passing", group(100, false, Track{"api", 0}), Facts{Links: linksUp, Checks: checks(pass("api"))},
			election.Input{Eligible: true, Priority: 100},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Passing, ""}}, Effective: 100}},
		{"gate failing, release: ineligible, names the check and its error", group(100, false, Track{"api", 0}),
			Facts{Links: linksUp, Checks: checks(fail("api", "connection refused")), Owner: true},
			election.Input{Priority: 100, Reason: "check api failing: connection refused"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Failing, "connection refused"}}, Effective: 100}},
		{"gate failing, keep: degraded", group(100, true, Track{"api", 0}),
			Facts{Links: linksUp, Checks: checks(fail("api", "connection refused"))},
			election.Input{Eligible: true, Degraded: true, Priority: 100, Reason: "check api failing: connection refused"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Failing, "connection refused"}}, Effective: 100, Degraded: true}},
		{"gate failing without an error text", group(100, false, Track{"api", 0}), Facts{Links: linksUp, Checks: checks(fail("api", ""))},
			election.Input{Priority: 100, Reason: "check api failing"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Failing, ""}}, Effective: 100}},
		{"failing and unknown gates, release: both named", group(100, false, Track{"a", 0}, Track{"b", 0}),
			Facts{Links: linksUp, Checks: checks(fail("a", "boom"))},
			election.Input{Priority: 100, Reason: "check a failing: boom, check b not known yet"},
			Breakdown{Base: 100, Gates: []GateTerm{{"a", health.Failing, "boom"}, {"b", health.Unknown, ""}}, Effective: 100}},
		{"failing gate, keep, with a weight: gate first, then the weight", group(100, true, Track{"a", 0}, Track{"w", -20}),
			Facts{Links: linksUp, Checks: checks(fail("a", "boom"), fail("w", ""))},
			election.Input{Eligible: true, Degraded: true, Priority: 80, Reason: "check a failing: boom, check w failing (weight -20)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"w", -20, health.Failing, -20}}, Gates: []GateTerm{{"a", health.Failing, "boom"}}, Effective: 80, Degraded: true}},
		{"unknown gate, not owner: ineligible", group(100, false, Track{"api", 0}), Facts{Links: linksUp},
			election.Input{Priority: 100, Reason: "check api not known yet"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Unknown, ""}}, Effective: 100}},
		{"unknown gate, owner: a full candidate, the check named", group(100, false, Track{"api", 0}), Facts{Links: linksUp, Owner: true},
			election.Input{Eligible: true, Priority: 100, Reason: "check api not known yet"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Unknown, ""}}, Effective: 100}},
		{"unknown gate, keep, not owner: still ineligible", group(100, true, Track{"api", 0}), Facts{Links: linksUp},
			election.Input{Priority: 100, Reason: "check api not known yet"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Unknown, ""}}, Effective: 100}},
		{"startup delay, not owner: degraded", group(100, false), Facts{Links: linksUp, StartingUntil: startup},
			election.Input{Eligible: true, Degraded: true, Priority: 100, Reason: "startup delay until 03:04:05"},
			Breakdown{Base: 100, Effective: 100, Degraded: true}},
		{"startup delay, owner: not degraded", group(100, false), Facts{Links: linksUp, StartingUntil: startup, Owner: true},
			election.Input{Eligible: true, Priority: 100},
			Breakdown{Base: 100, Effective: 100}},
		{"startup delay with a failing weight: the delay first", group(100, false, Track{"w", -20}),
			Facts{Links: linksUp, StartingUntil: startup, Checks: checks(fail("w", ""))},
			election.Input{Eligible: true, Degraded: true, Priority: 80, Reason: "startup delay until 03:04:05, check w failing (weight -20)"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"w", -20, health.Failing, -20}}, Effective: 80, Degraded: true}},
		{"startup delay and an unknown gate, not owner: ineligible", group(100, false, Track{"api", 0}), Facts{Links: linksUp, StartingUntil: startup},
			election.Input{Priority: 100, Reason: "check api not known yet"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Unknown, ""}}, Effective: 100}},
		{"link down beats passing checks", group(100, false, Track{"api", 0}, Track{"w", 10}),
			Facts{Links: map[string]LinkState{"eth0": {Exists: true}}, Checks: checks(pass("api"), pass("w")), Owner: true},
			election.Input{Priority: 110, Reason: "link eth0 down"},
			Breakdown{Base: 100, Weights: []WeightTerm{{"w", 10, health.Passing, 10}}, Gates: []GateTerm{{"api", health.Passing, ""}}, Effective: 110}},
		{"link down beats keep", group(100, true, Track{"api", 0}),
			Facts{Links: map[string]LinkState{"eth0": {Exists: true}}, Checks: checks(fail("api", "x"))},
			election.Input{Priority: 100, Reason: "link eth0 down"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Failing, "x"}}, Effective: 100}},
		{"bind hold beats the owner's unknown gate", group(100, false, Track{"api", 0}),
			Facts{Links: linksUp, Hold: "bind failed (retry in 2s): file exists", Owner: true},
			election.Input{Priority: 100, Reason: "bind failed (retry in 2s): file exists"},
			Breakdown{Base: 100, Gates: []GateTerm{{"api", health.Unknown, ""}}, Effective: 100}},
		{"links not known yet", group(100, false), Facts{StartingUntil: startup},
			election.Input{Priority: 100, Reason: LinksUnknown},
			Breakdown{Base: 100, Effective: 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, b := Candidacy(tc.g, tc.f)
			if in != tc.in {
				t.Errorf("input %+v, want %+v", in, tc.in)
			}
			if !reflect.DeepEqual(b, tc.b) {
				t.Errorf("breakdown %+v, want %+v", b, tc.b)
			}
			// The breakdown agrees with the input it explains.
			if b.Effective != in.Priority || b.Degraded != in.Degraded {
				t.Errorf("breakdown %+v disagrees with input %+v", b, in)
			}
		})
	}
}

func TestRank(t *testing.T) {
	// Weakest first.
	order := []election.Input{
		{Priority: 254},
		{Eligible: true, Degraded: true, Priority: 1},
		{Eligible: true, Degraded: true, Priority: 254},
		{Eligible: true, Priority: 1},
		{Eligible: true, Priority: 100},
		{Eligible: true, Priority: 254},
	}
	for i := 1; i < len(order); i++ {
		if rank(order[i-1]) >= rank(order[i]) {
			t.Errorf("rank(%+v) = %d, not below rank(%+v) = %d", order[i-1], rank(order[i-1]), order[i], rank(order[i]))
		}
	}
	// Ineligible is ineligible whatever its priority; the reason never counts.
	if rank(election.Input{Priority: 1}) != rank(election.Input{Priority: 254, Reason: "x"}) {
		t.Error("ineligible inputs rank differently by priority or reason")
	}
	if rank(election.Input{Eligible: true, Priority: 7, Reason: "a"}) != rank(election.Input{Eligible: true, Priority: 7}) {
		t.Error("the reason changes the rank")
	}
}
