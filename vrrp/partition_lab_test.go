package vrrp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// TestLabPartitionHealReannounces (docs/chaos.md, finding 1): the preferred
// master (node1) is cut off by its switch port, node2 becomes master on its
// island and the client learns node2's MAC. On heal node2 hears node1's
// higher advert and gives the VIPs up; node1 never changed state. Before
// the fix node1 announced nothing and the client sent to node2's MAC for
// seconds (until the announcement refresh, 10 s by default, or its neighbour
// entry went stale). Now node1 hears a lower-priority master (node2's
// advert, or the last one node2 sends as it steps down) and announces the
// VIPs again: the client follows within tens of milliseconds. Several
// rounds, both families: which of the two adverts crosses first varies.
func TestLabPartitionHealReannounces(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	r := vrrplab.Router{VRID: 65, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(65), l.VIPv6(65)}}
	const port = 7165
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if _, err := l.StartVipdConfig(n1, bin, vrrplab.VipdConfig(n1, 150, r, nil)); err != nil {
		t.Fatal(err)
	}
	probes := startProbes(t, l, r.VIPs, port)
	waitOwners(t, probes, "node1", 15*time.Second)
	if _, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 100, r, nil)); err != nil {
		t.Fatal(err)
	}
	// node2 is a backup once it reports node1 as its master.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := vrrplab.VipdStatus(n2)
		if err == nil && len(st.Routers) == 2 && st.Routers[0].Master == n1.IPv4.Addr().String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node2 did not follow node1: %+v, %v", st.Routers, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A few probes' worth beyond the takeover on heal; the defect cost
	// seconds. Generous for a loaded machine.
	const maxInterruption = time.Second
	for round := 1; round <= 3; round++ {
		if err := n1.SetIsolated(true); err != nil {
			t.Fatal(err)
		}
		waitOwners(t, probes, "node2", 5*time.Second)
		// Past node2's burst of announcements (5 × 200 ms): the client's
		// entry would now only change with an announcement from node1.
		time.Sleep(1500 * time.Millisecond)
		at := time.Now()
		if err := n1.SetIsolated(false); err != nil {
			t.Fatal(err)
		}
		waitOwners(t, probes, "node1", 15*time.Second)
		for _, p := range probes {
			f, ok := p.Snapshot().FailoverAfter(at)
			if !ok || f.From != "node2" || f.To != "node1" {
				t.Fatalf("round %d: no failover node2 -> node1 seen for %s: %+v", round, p.Snapshot().VIP, f)
			}
			t.Logf("round %d: %s after the heal: %s", round, p.Snapshot().VIP, f)
			if f.Interruption > maxInterruption {
				t.Errorf("round %d: the client lost %s for %s after the heal (bound %s): node1 did not announce it again",
					round, p.Snapshot().VIP, f.Interruption, maxInterruption)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
