package gossip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/testutil"
)

// peerEntry is n's view of peer's meta entry for group.
func peerEntry(n *testNode, peer, group string) (Entry, bool) {
	n.e.mu.Lock()
	defer n.e.mu.Unlock()
	m, ok := n.e.members[peer]
	if !ok {
		return Entry{}, false
	}
	return m.meta.Entry(IDOf(group))
}

// lastOwner is the owner n's last election computed for group.
func lastOwner(n *testNode, group string) string {
	n.e.mu.Lock()
	defer n.e.mu.Unlock()
	return n.e.lastOwner[group]
}

// settledOn waits until every node sees every other node's entry for group
// as want says, and has since computed owner for it: only then is "nothing
// moved" a fact about the owner function, not about gossip latency.
func settledOn(t *testing.T, nodes []*testNode, group, owner, what string, want func(peer string, en Entry) bool) {
	t.Helper()
	defer func(at time.Time) { t.Logf("%s: %s", what, time.Since(at).Round(time.Millisecond)) }(time.Now())
	testutil.WaitFor(t, what, 10*time.Second, func() bool {
		for _, n := range nodes {
			for _, p := range nodes {
				if p == n {
					continue
				}
				if en, ok := peerEntry(n, p.name, group); !ok || !want(p.name, en) {
					return false
				}
			}
		}
		// The evaluation after the last meta change has run once the
		// entries are in: Run evaluates on every change signal. Wait for
		// every node to agree on the owner.
		for _, n := range nodes {
			if lastOwner(n, group) != owner {
				return false
			}
		}
		return true
	})
}

// Degraded bids (election.Input.Degraded) are a last resort: a degraded
// member never takes a group from a healthy owner; a degraded owner keeps it
// while nobody is healthy, even against higher degraded priorities; a healthy
// member takes it (reasons "degraded: <why>" and "member-degraded:<owner>");
// a group nobody holds goes to the best degraded bid.
func TestClusterDegraded(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(1)
	g := groups[0].Name
	nodes := cluster(t, w, 3, groups, nil)
	waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
	var owner *testNode
	var others []*testNode
	for _, n := range nodes {
		if n.name == w.snapshot()[g] {
			owner = n
		} else {
			others = append(others, n)
		}
	}
	w.mu.Lock()
	before := len(w.history)
	w.mu.Unlock()
	noMoves := func(phase string) {
		t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		if moved := w.history[before:]; len(moved) != 0 {
			t.Fatalf("%s: the group moved: %+v", phase, moved)
		}
	}

	// 1. The others turn degraded with a higher priority: the healthy owner keeps.
	for _, n := range others {
		n.e.SetInput(g, election.Input{Eligible: true, Degraded: true, Priority: 200, Reason: "check api unknown"})
	}
	settledOn(t, nodes, g, owner.name, "others' degraded bids seen", func(peer string, en Entry) bool {
		return peer == owner.name || en.Degraded && en.Priority == 200
	})
	noMoves("degraded members beside a healthy owner")

	// 2. The owner turns degraded too (priority 100 < 200): it keeps.
	owner.e.SetInput(g, election.Input{Eligible: true, Degraded: true, Priority: 100, Reason: "check api failing"})
	settledOn(t, nodes, g, owner.name, "every bid degraded", func(peer string, en Entry) bool { return en.Degraded })
	noMoves("a degraded owner among higher degraded priorities")
	if b := owner.e.Status().(Status).Bids; len(b) != 1 || !b[0].Degraded || b[0].Priority != 100 || b[0].Owner != owner.name {
		t.Errorf("owner's status bids %+v, want %s degraded at 100, owned by itself", b, g)
	}

	// 3. A healthy bid, even a low one, takes it.
	healthy := others[0]
	healthy.e.SetInput(g, election.Input{Eligible: true, Priority: 50})
	want := map[string]string{g: healthy.name}
	waitOwners(t, w, want, 10*time.Second)
	ev := w.eventsFor(g)
	rel, take := ev[len(ev)-2], ev[len(ev)-1]
	if rel.node != owner.name || rel.Owner || rel.Reason != "degraded: check api failing" || rel.Peer != healthy.name {
		t.Errorf("release %+v, want %s giving up (degraded: check api failing) to %s", rel, owner.name, healthy.name)
	}
	if take.node != healthy.name || take.Reason != "member-degraded:"+owner.name {
		t.Errorf("take %+v, want %s taking with member-degraded:%s", take, healthy.name, owner.name)
	}

	// 4. The healthy owner goes ineligible: nobody holds the group, and the
	// best degraded bid (others[1], 200 over the old owner's 100) takes it.
	healthy.e.SetInput(g, election.Input{Eligible: false, Priority: 50, Reason: "drain"})
	waitOwners(t, w, map[string]string{g: others[1].name}, 10*time.Second)
	if last := w.eventsFor(g); last[len(last)-1].Reason != "member-ineligible:"+healthy.name {
		t.Errorf("degraded take reason %q, want member-ineligible:%s", last[len(last)-1].Reason, healthy.name)
	}
	w.check()
}

// A priority change (a weight) reaches the peers by a meta update within a
// few gossip rounds, and the lower-priority owner hands over.
func TestClusterPriorityChangePropagates(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(1)
	g := groups[0].Name
	nodes := cluster(t, w, 3, groups, nil)
	waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
	var backup *testNode
	for _, n := range nodes {
		if n.name != w.snapshot()[g] {
			backup = n
			break
		}
	}
	at := time.Now()
	backup.e.SetInput(g, election.Input{Eligible: true, Priority: 160, Reason: "weight +60"})
	testutil.WaitFor(t, "every peer seeing the new priority", 10*time.Second, func() bool {
		for _, n := range nodes {
			if en, ok := peerEntry(n, backup.name, g); n != backup && (!ok || en.Priority != 160) {
				return false
			}
		}
		return true
	})
	seen := time.Since(at)
	waitOwners(t, w, map[string]string{g: backup.name}, 10*time.Second)
	t.Logf("priority 100 → 160 seen by every peer after %s, handed over after %s", seen.Round(time.Millisecond), time.Since(at).Round(time.Millisecond))
	w.check()
}

// Reconfigure on a running cluster, one member after the other (a rolling
// reload): a removed group is released ("removed") before Reconfigure
// returns, an added one gets an owner, a group whose VIPs changed and the
// unchanged ones do not move.
func TestClusterReconfigure(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(4)
	nodes := cluster(t, w, 2, groups, nil)
	oldOwners := expectedOwners(names(nodes), groups)
	waitOwners(t, w, oldOwners, 10*time.Second)

	removed := groups[1].Name
	next := append(testGroups(5)[:1], testGroups(5)[2:]...)                    // g00, g02, g03, g04
	next[1].VIPs = append(next[1].VIPs, netip.MustParseAddr("198.51.100.200")) // g02: VIPs changed
	added := next[3].Name
	newOwners := expectedOwners(names(nodes), next)
	for _, gs := range next[:3] {
		if newOwners[gs.Name] != oldOwners[gs.Name] {
			t.Fatalf("the owner function itself moves %s (%s → %s) with this group set; pick other names", gs.Name, oldOwners[gs.Name], newOwners[gs.Name])
		}
	}
	w.mu.Lock()
	before := len(w.history)
	w.mu.Unlock()

	// A transport change is refused, and changes nothing.
	o := nodes[0].e.Options()
	o.Groups, o.Profile = next, ProfileLAN
	if err := nodes[0].e.Reconfigure(o); err == nil || err.Error() != `gossip: changing gossip.profile (fast → lan) needs a restart` {
		t.Fatalf("profile change: err = %v", err)
	}

	for _, n := range nodes {
		n.e.SetInput(added, election.Input{Eligible: true, Priority: 100}) // the daemon, before the reload
		o := n.e.Options()
		o.Groups = next
		held := w.snapshot()[removed] == n.name
		if err := n.e.Reconfigure(o); err != nil {
			t.Fatal(err)
		}
		if held {
			ev := w.eventsFor(removed)
			if last := ev[len(ev)-1]; last.node != n.name || last.Owner || last.Reason != "removed" {
				t.Fatalf("%s held %s; after Reconfigure returned its last event is %+v, want a release (removed)", n.name, removed, last)
			}
		}
		t.Logf("reloaded %s: owners %v", n.name, w.snapshot())
	}
	waitOwners(t, w, newOwners, 10*time.Second)
	w.mu.Lock()
	for _, e := range w.history[before:] {
		if e.Group != removed && e.Group != added {
			t.Errorf("group %s moved in the reload: %+v", e.Group, e)
		}
	}
	w.mu.Unlock()
	for _, n := range nodes {
		st := n.e.Status().(Status)
		if st.Fingerprint != ConfigFingerprint(next).String() || len(st.Bids) != 4 {
			t.Errorf("%s status after the reload: fingerprint %s bids %+v", n.name, st.Fingerprint, st.Bids)
		}
	}
	testutil.WaitFor(t, "the peers' new meta (no removed group, same fingerprint)", 10*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.e.Status().(Status).Mismatches) != 0 {
				return false
			}
			for _, p := range nodes {
				if _, ok := peerEntry(n, p.name, removed); p != n && ok {
					return false
				}
			}
		}
		return true
	})
	// Adding the removed group back: no bid before the daemon's input.
	o = nodes[0].e.Options()
	o.Groups = append(o.Groups, groups[1])
	if err := nodes[0].e.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	if b := nodes[0].e.Status().(Status).Bids; b[len(b)-1].Group != removed || b[len(b)-1].Priority != 0 {
		t.Errorf("re-added group bids before its input is set: %+v", b[len(b)-1])
	}
	w.check()
}
