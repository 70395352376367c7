package gossip_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/node"
	"github.com/vipd/vipd/internal/testutil"
)

// Health checks in gossip mode with real vipd processes (issue #12): a
// check's target is a small HTTP service in each node's namespace
// (lab.Service), the client probes the one VIP every 10 ms, and every move
// is measured from the moment the test changed the service (or the drain
// file) to the new owner's first reply. Three nodes, one group, priorities
// 150/100/50 so every move has one right answer.

const (
	servicePort   = 8080
	checkInterval = 100 * time.Millisecond
	checkName     = "svc"
)

var healthPrios = []int{150, 100, 50}

type healthLab struct {
	*gossipLab
	svcs  map[string]*lab.Service
	probe *lab.Probe
}

// newHealthLab starts a service on every node and vipd with one group
// (priority healthPrios[i] on node i) shaped by setup, then waits for the
// top node to answer for the VIP.
func newHealthLab(t *testing.T, setup func(i int, h *lab.Host, s *lab.Service, c *config.Config)) *healthLab {
	g := newGossipLab(t, 3, 3, 1, config.Gossip{Profile: "fast"})
	hl := &healthLab{gossipLab: g, svcs: map[string]*lab.Service{}}
	for i, h := range g.nodes {
		s, err := h.StartService(servicePort)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		hl.svcs[h.Name] = s
		c := g.config(h, g.key)
		c.Groups[0].Priority = healthPrios[i]
		setup(i, h, s, c)
		p, err := g.l.StartVipdConfig(h, g.bin, c)
		if err != nil {
			t.Fatal(err)
		}
		g.procs[h.Name] = p
	}
	var err error
	hl.probe, err = g.l.StartProbe(context.Background(), g.l.VIPv4(1), probePort, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hl.probe.Stop() })
	start := time.Now()
	if err := hl.probe.WaitOwner(g.nodes[0].Name, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("start: %s answers for %s after %s", g.nodes[0].Name, g.l.VIPv4(1), time.Since(start).Round(time.Millisecond))
	return hl
}

// httpCheck is the gate or weight target: this node's own service.
func httpCheck(s *lab.Service) config.Check {
	return config.Check{Name: checkName, Interval: checkInterval, Rise: 2, Fall: 2,
		HTTP: &config.HTTPCheck{URL: s.URL()}}
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// move does act (which returns when it acted), waits until a node other
// than from answers for the VIP, then until the new owner has answered 30
// more times (300 ms of probes, to catch late replies from from), and
// returns what the client saw. Two nodes answering at once is an error.
func (hl *healthLab) move(what, from string, act func() time.Time) (lab.Failover, time.Duration) {
	hl.t.Helper()
	at := act()
	deadline := at.Add(15 * time.Second)
	var first lab.Reply
	for {
		if r, ok := hl.probe.Latest(); ok && r.Node != from && r.At.After(at) {
			first = r
			break
		}
		if time.Now().After(deadline) {
			hl.t.Fatalf("%s: nobody but %s answered within 15s; %s", what, from, hl.probe.Snapshot().Summary())
		}
		time.Sleep(10 * time.Millisecond)
	}
	testutil.WaitForEvery(hl.t, what+": 30 replies from the new owner", 10*time.Second, 10*time.Millisecond, func() bool {
		n := 0
		for _, r := range hl.probe.Snapshot().Replies {
			if r.Node == first.Node && r.Seq > first.Seq {
				n++
			}
		}
		return n >= 30
	})
	f, ok := hl.probe.Snapshot().FailoverAfter(at)
	if !ok {
		hl.t.Fatalf("%s: no failover in the probe record", what)
	}
	took := f.FirstTo.Sub(at)
	hl.t.Logf("%s: %s answers %s after the change (%s)", what, f.To, took.Round(time.Millisecond), f)
	if f.Overlap > 0 || f.DualSamples > 0 {
		hl.t.Errorf("%s: two nodes answered for the VIP at once: %s", what, f)
	}
	return f, took
}

// neverTwo checks the whole probe record: no ARP sample in which two nodes
// answered for the VIP.
func (hl *healthLab) neverTwo() {
	hl.t.Helper()
	rec := hl.probe.Snapshot()
	dual := 0
	for _, s := range rec.Neighbors {
		if ns := rec.NeighborNodes(s); len(ns) > 1 {
			if dual < 5 {
				hl.t.Errorf("%s: ARP sample answered by %v", s.At.Format("15:04:05.000"), ns)
			}
			dual++
		}
	}
	hl.t.Logf("whole run: %s; %d ARP samples with two answers", rec.Summary(), dual)
}

// group is vip-00 as h's /status shows it.
func (hl *healthLab) group(h *lab.Host) (node.GroupStatus, bool) {
	st, ok := status(h)
	if !ok || len(st.Groups) != 1 {
		return node.GroupStatus{}, false
	}
	return st.Groups[0], true
}

func (hl *healthLab) waitGroup(what string, h *lab.Host, cond func(node.GroupStatus) bool) node.GroupStatus {
	hl.t.Helper()
	var gs node.GroupStatus
	testutil.WaitForEvery(hl.t, what, 10*time.Second, 20*time.Millisecond, func() bool {
		var ok bool
		gs, ok = hl.group(h)
		return ok && cond(gs)
	})
	return gs
}

func readyz(h *lab.Host) (int, string, error) {
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// checkNotReady asserts h's /readyz is 503 naming the check.
func (hl *healthLab) checkNotReady(h *lab.Host) {
	hl.t.Helper()
	code, body, err := readyz(h)
	switch {
	case err != nil:
		hl.t.Errorf("%s /readyz: %v", h.Name, err)
	case code != http.StatusServiceUnavailable || !strings.Contains(body, "check "+checkName):
		hl.t.Errorf("%s /readyz: %d %q, want 503 naming check %s", h.Name, code, body, checkName)
	default:
		hl.t.Logf("%s /readyz: %d %q", h.Name, code, body)
	}
}

// checkResult is h's check as its /status shows it.
func checkResult(h *lab.Host) (state string, since time.Time) {
	st, ok := status(h)
	if !ok || len(st.Checks) == 0 {
		return "", time.Time{}
	}
	return st.Checks[0].State.String(), st.Checks[0].Since
}

// logDetection splits a move into the check's detection (the change to
// the check's state change on h, from h's /status) and the rest (the
// election, the take, the first reply).
func (hl *healthLab) logDetection(what string, h *lab.Host, at time.Time, f lab.Failover) {
	state, since := checkResult(h)
	hl.t.Logf("%s: check %s on %s %s %s after the change, new owner answering %s after that",
		what, checkName, h.Name, state, since.Sub(at).Round(time.Millisecond), f.FirstTo.Sub(since).Round(time.Millisecond))
}

func gateSetup(policy string, minMove time.Duration) func(int, *lab.Host, *lab.Service, *config.Config) {
	return func(_ int, _ *lab.Host, s *lab.Service, c *config.Config) {
		c.Checks = []config.Check{httpCheck(s)}
		c.Groups[0].Track = []config.Track{{Check: checkName}}
		c.Groups[0].WhenNoneHealthy = policy
		c.Health.MinMoveInterval = durationPtr(minMove)
	}
}

// Gate, policy keep (the default): the owner's service fails → the next
// node answers within fall × interval + gossip's failover; its /readyz names
// the check; rise → the preferred node takes the VIP back. Every service
// failing → the owner keeps the VIP, degraded, without a gap; one service
// recovering → its node takes the VIP from the degraded owner.
func TestLabGossipHealthGate(t *testing.T) {
	hl := newHealthLab(t, gateSetup("", 0))
	n1, n2, n3 := hl.nodes[0], hl.nodes[1], hl.nodes[2]
	svc := func(h *lab.Host, ok bool) func() time.Time {
		return func() time.Time { return hl.svcs[h.Name].SetHealthy(ok) }
	}

	var at time.Time
	f, took := hl.move("owner's service 503", n1.Name, func() time.Time { at = svc(n1, false)(); return at })
	if f.To != n2.Name {
		t.Errorf("after %s's service failed, %s answers, want %s (priority 100)", n1.Name, f.To, n2.Name)
	}
	// fall × interval (200 ms) + gossip's handover; the goal is
	// 500 ms, the bound is generous for a shared 2-core machine.
	t.Logf("FIGURE gate failover (interval 100ms, fall 2): %s from SetHealthy(false) to %s's first reply (goal <= 500ms)", took.Round(time.Millisecond), f.To)
	if took > 2*time.Second {
		t.Errorf("gate failover took %s, want < 2s (goal 500ms)", took)
	}
	hl.logDetection("gate failover", n1, at, f)
	hl.checkNotReady(n1)
	if gs, _ := hl.group(n1); gs.Owner || !gs.Degraded {
		t.Errorf("%s after its gate failed (keep): owner %v degraded %v (%s), want a degraded non-owner", n1.Name, gs.Owner, gs.Degraded, gs.Why)
	}
	if gs, _ := hl.group(n2); !gs.Owner || !strings.Contains(gs.Reason, n1.Name) {
		t.Errorf("%s took the group with reason %q, want one naming %s", n2.Name, gs.Reason, n1.Name)
	} else {
		t.Logf("%s owns with reason %q", n2.Name, gs.Reason)
	}

	f, took = hl.move("owner's service back (rise)", n2.Name, func() time.Time { at = svc(n1, true)(); return at })
	if f.To != n1.Name {
		t.Errorf("after %s's service recovered, %s answers, want %s (priority 150)", n1.Name, f.To, n1.Name)
	}
	t.Logf("FIGURE gate failback (rise 2, minMoveInterval 0): %s from SetHealthy(true) to %s's first reply", took.Round(time.Millisecond), f.To)
	hl.logDetection("gate failback", n1, at, f)
	if code, body, err := readyz(n1); err != nil || code != http.StatusOK {
		t.Errorf("%s /readyz after recovery: %d %q %v, want 200", n1.Name, code, body, err)
	}

	// Every service fails, the backups first so the owner is the last
	// healthy node: it must keep the VIP, degraded, with no gap.
	from := time.Now()
	svc(n2, false)()
	svc(n3, false)()
	for _, h := range []*lab.Host{n2, n3} {
		hl.waitGroup(h.Name+" degraded", h, func(gs node.GroupStatus) bool { return gs.Degraded && !gs.Owner })
	}
	at = svc(n1, false)()
	gs := hl.waitGroup(n1.Name+" degraded", n1, func(gs node.GroupStatus) bool { return gs.Degraded })
	degradedAt := time.Now()
	// Watch for 1 s (5 × fall × interval) past the owner's degradation: a
	// wrong decision (release, or a take by another degraded node) would
	// show within a few gossip rounds.
	for time.Since(degradedAt) < time.Second {
		if gs, ok := hl.group(n1); ok && !gs.Owner {
			t.Errorf("all degraded: %s gave the group up (%s)", n1.Name, gs.Reason)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec := hl.probe.Snapshot()
	var gap time.Duration
	prev, others := from, 0
	for _, r := range rec.Replies {
		if r.At.Before(from) {
			continue
		}
		if r.Node != n1.Name {
			others++
		}
		gap = max(gap, r.At.Sub(prev))
		prev = r.At
	}
	gap = max(gap, rec.End.Sub(prev))
	t.Logf("FIGURE all services 503 (keep): %s keeps the VIP; longest silence %s over %s since the backups' services failed, %d replies from others; %s %s",
		n1.Name, gap.Round(time.Millisecond), rec.End.Sub(from).Round(time.Millisecond), others, n1.Name, gs.Why)
	if !gs.Owner || others > 0 || gap > 500*time.Millisecond {
		t.Errorf("all degraded: owner %v, %d replies from other nodes, longest silence %s; want %s answering alone without a gap", gs.Owner, others, gap, n1.Name)
	}
	hl.checkNotReady(n1)
	if st, ok := status(n1); ok {
		for _, b := range st.Election.Bids {
			t.Logf("%s's bid while all degraded: %+v", n1.Name, b)
		}
	}
	if state, since := checkResult(n1); state == "failing" {
		t.Logf("all degraded: check %s on %s failing %s after the change, no move", checkName, n1.Name, since.Sub(at).Round(time.Millisecond))
	}

	// One service recovers: a healthy bid beats the degraded owner.
	f, took = hl.move("a backup's service back while all degraded", n1.Name, svc(n3, true))
	if f.To != n3.Name {
		t.Errorf("the only healthy node is %s, but %s answers", n3.Name, f.To)
	}
	t.Logf("FIGURE healthy node takes from a degraded owner: %s from SetHealthy(true) to %s's first reply", took.Round(time.Millisecond), f.To)
	if gs, _ := hl.group(n3); !strings.Contains(gs.Reason, "degraded") {
		t.Logf("%s took with reason %q (expected member-degraded:%s)", n3.Name, gs.Reason, n1.Name)
	}
	f, took = hl.move("preferred node's service back", n3.Name, svc(n1, true))
	if f.To != n1.Name {
		t.Errorf("after %s recovered, %s answers, want %s", n1.Name, f.To, n1.Name)
	}
	t.Logf("FIGURE failback to the preferred node: %s", took.Round(time.Millisecond))
	hl.neverTwo()
}

// Gate, policy release: every service failing leaves nobody holding the
// VIP (keepalived's FAULT everywhere); a recovered node takes it again.
func TestLabGossipHealthRelease(t *testing.T) {
	hl := newHealthLab(t, gateSetup(config.PolicyRelease, 0))
	n1, n2, n3 := hl.nodes[0], hl.nodes[1], hl.nodes[2]
	hl.svcs[n2.Name].SetHealthy(false)
	hl.svcs[n3.Name].SetHealthy(false)
	for _, h := range []*lab.Host{n2, n3} {
		hl.waitGroup(h.Name+" ineligible", h, func(gs node.GroupStatus) bool { return !gs.Eligible })
	}
	if err := hl.probe.WaitOwner(n1.Name, time.Second); err != nil {
		t.Fatalf("the backups failing moved the VIP: %v", err)
	}
	at := hl.svcs[n1.Name].SetHealthy(false)
	vip := hl.l.VIPv4(1)
	took := testutil.WaitForEvery(t, "nobody holding the VIP", 10*time.Second, 10*time.Millisecond, func() bool {
		held, err := hl.l.AddressHolders(vip)
		return err == nil && len(held) == 0
	})
	gone := time.Now()
	hl.checkNotReady(n1)
	last, _ := hl.probe.Latest()
	t.Logf("FIGURE all services 503 (release): VIP on no node %s after the owner's service failed; last reply (%s) %s after it",
		took.Round(time.Millisecond), last.Node, last.At.Sub(at).Round(time.Millisecond))
	// Nobody takes it afterwards: 1 s of probes (100 requests) unanswered.
	testutil.WaitForEvery(t, "100 probes after the release", 5*time.Second, 10*time.Millisecond, func() bool {
		return countSentAfter(hl.probe.Snapshot(), gone) >= 100
	})
	for _, r := range hl.probe.Snapshot().Replies {
		if r.At.After(gone.Add(20 * time.Millisecond)) {
			t.Errorf("%s answered at %s, %s after nobody held the VIP", r.Node, r.At.Format("15:04:05.000"), r.At.Sub(gone))
			break
		}
	}
	for _, h := range hl.nodes {
		if gs, ok := hl.group(h); !ok || gs.Owner || gs.Eligible {
			t.Errorf("%s with every service failing (release): owner %v eligible %v (%s)", h.Name, gs.Owner, gs.Eligible, gs.Why)
		}
	}

	f, took := hl.move("a backup's service back (release)", n1.Name, func() time.Time { return hl.svcs[n2.Name].SetHealthy(true) })
	if f.To != n2.Name {
		t.Errorf("the only healthy node is %s, but %s answers", n2.Name, f.To)
	}
	t.Logf("FIGURE unowned VIP taken by the first recovered node: %s from SetHealthy(true)", took.Round(time.Millisecond))
	f, took = hl.move("preferred node back (release)", n2.Name, func() time.Time { return hl.svcs[n1.Name].SetHealthy(true) })
	if f.To != n1.Name {
		t.Errorf("after %s recovered, %s answers, want %s", n1.Name, f.To, n1.Name)
	}
	t.Logf("FIGURE failback (release): %s", took.Round(time.Millisecond))
	hl.neverTwo()
}

func countSentAfter(r lab.Record, t time.Time) int {
	n := 0
	for _, s := range r.SentAt {
		if s.After(t) {
			n++
		}
	}
	return n
}

// Weight: priorities 150/100/50 and weight -60 on every node's own service:
// the owner's failing lowers it to 90, below the 100 node, which takes the
// VIP; recovery moves it back.
func TestLabGossipHealthWeight(t *testing.T) {
	hl := newHealthLab(t, func(_ int, _ *lab.Host, s *lab.Service, c *config.Config) {
		c.Checks = []config.Check{httpCheck(s)}
		c.Groups[0].Track = []config.Track{{Check: checkName, Weight: -60}}
		c.Health.MinMoveInterval = durationPtr(0)
	})
	n1, n2 := hl.nodes[0], hl.nodes[1]
	var at time.Time
	f, took := hl.move("weight -60 on the owner", n1.Name, func() time.Time { at = hl.svcs[n1.Name].SetHealthy(false); return at })
	if f.To != n2.Name {
		t.Errorf("owner at 150-60=90: %s answers, want %s (100)", f.To, n2.Name)
	}
	t.Logf("FIGURE weight failover (interval 100ms, fall 2, -60): %s from SetHealthy(false) to %s's first reply", took.Round(time.Millisecond), f.To)
	hl.logDetection("weight failover", n1, at, f)
	gs, _ := hl.group(n1)
	if gs.Priority != 90 || !gs.Eligible || gs.Degraded || gs.Owner {
		t.Errorf("%s with its weighted check failing: priority %d eligible %v degraded %v owner %v, want an eligible backup at 90", n1.Name, gs.Priority, gs.Eligible, gs.Degraded, gs.Owner)
	}
	t.Logf("%s candidacy: %+v", n1.Name, gs.Candidacy)
	if gs, _ := hl.group(n2); gs.Owner {
		t.Logf("%s took with reason %q", n2.Name, gs.Reason)
	}
	f, took = hl.move("weight recovered", n2.Name, func() time.Time { at = hl.svcs[n1.Name].SetHealthy(true); return at })
	if f.To != n1.Name {
		t.Errorf("owner back at 150: %s answers, want %s", f.To, n1.Name)
	}
	t.Logf("FIGURE weight failback (rise 2): %s", took.Round(time.Millisecond))
	hl.logDetection("weight failback", n1, at, f)
	hl.neverTwo()
}

// File drain with health.minMoveInterval 2s: touch → the VIP moves at once;
// rm right after → it comes back only when the hold since the drain has run
// out, not before.
func TestLabGossipHealthDrain(t *testing.T) {
	const hold = 2 * time.Second
	var drains []string
	dir := t.TempDir()
	hl := newHealthLab(t, func(_ int, h *lab.Host, _ *lab.Service, c *config.Config) {
		p := filepath.Join(dir, "drain-"+h.Name)
		drains = append(drains, p)
		c.Checks = []config.Check{{Name: checkName, Interval: checkInterval, Rise: 2, Fall: 2, File: &config.FileCheck{Path: p}}}
		c.Groups[0].Track = []config.Track{{Check: checkName}}
		c.Health.MinMoveInterval = durationPtr(hold)
	})
	n1, n2 := hl.nodes[0], hl.nodes[1]
	var touched time.Time
	f, took := hl.move("drain file touched", n1.Name, func() time.Time {
		touched = time.Now()
		if err := os.WriteFile(drains[0], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return touched
	})
	if f.To != n2.Name {
		t.Errorf("drained owner: %s answers, want %s", f.To, n2.Name)
	}
	t.Logf("FIGURE drain (file check, interval 100ms, fall 2): %s from touch to %s's first reply", took.Round(time.Millisecond), f.To)
	_, failedAt := checkResult(n1)
	hl.logDetection("drain", n1, touched, f)
	gs, _ := hl.group(n1)
	t.Logf("%s drained: eligible %v degraded %v why %q", n1.Name, gs.Eligible, gs.Degraded, gs.Why)

	var removed time.Time
	f, took = hl.move("drain file removed", n2.Name, func() time.Time {
		removed = time.Now()
		if err := os.Remove(drains[0]); err != nil {
			t.Fatal(err)
		}
		// The check passes again after rise; the improvement is then held.
		gs := hl.waitGroup(n1.Name+" holding its recovery", n1, func(gs node.GroupStatus) bool { return gs.Candidacy.Held != "" })
		t.Logf("%s %s after rm: held %q", n1.Name, time.Since(removed).Round(time.Millisecond), gs.Candidacy.Held)
		return removed
	})
	if f.To != n1.Name {
		t.Errorf("drain undone: %s answers, want %s", f.To, n1.Name)
	}
	sinceFail := f.FirstTo.Sub(failedAt)
	t.Logf("FIGURE drain undone (minMoveInterval %s): %s back %s after rm, %s after the touch, %s after its check failed",
		hold, f.To, took.Round(time.Millisecond), f.FirstTo.Sub(touched).Round(time.Millisecond), sinceFail.Round(time.Millisecond))
	if sinceFail < hold {
		t.Errorf("%s came back %s after its check failed, before the %s hold ran out", n1.Name, sinceFail, hold)
	}
	if sinceFail > hold+2*time.Second {
		t.Errorf("%s came back %s after its check failed, want within the %s hold + 2s", n1.Name, sinceFail, hold)
	}
	hl.neverTwo()
}
