package vrrp

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// reports returns node's reports from the mark-th event on.
func (c *cluster) reports(node, mark int) []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, ev := range c.events[mark:] {
		if ev.node == node {
			out = append(out, ev)
		}
	}
	return out
}

// TestElectorReannouncesForLowerMaster: a master that hears another router
// claim to be master with a lower priority answers with an advert at once
// and asks the node to announce the VIPs again (the same Owner=true report:
// same reason and peer, so no transition), at most once per reannounceGap
// however many such adverts arrive. A priority-0 advert is answered but is
// no reason to re-announce.
func TestElectorReannouncesForLowerMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := spec(150, "198.51.100.100")
		g[0].Interval = time.Second // periodic adverts far apart
		g[0].MinPeerInterval = 10 * ms
		c := newCluster(t, [][]testGroup{g})
		c.waitOwner(0, 10*time.Second)
		n := c.nodes[0]
		time.Sleep(500 * time.Millisecond) // between two periodic adverts
		synctest.Wait()
		took := c.reports(0, 0)
		if len(took) != 1 || !took[0].owner {
			t.Fatalf("reports before: %+v", took)
		}
		mark := c.eventCount()
		sent := n.e.Status().(Status).Sent
		low := Advert{VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip100}}
		for range 5 {
			inject(t, n, foreign, GroupV4, low)
		}
		synctest.Wait() // no time has passed
		if got := n.e.Status().(Status).Sent; got != sent+1 {
			t.Fatalf("sent %d adverts in answer to 5 lower-priority adverts, want 1", got-sent)
		}
		re := c.reports(0, mark)
		if len(re) != 1 || !re[0].owner || re[0].t.Reason != took[0].t.Reason || re[0].t.Peer != took[0].t.Peer {
			t.Fatalf("reports after 5 lower-priority adverts: %+v, want one Owner=true as %+v", re, took[0].t)
		}

		// Within the gap: answered (a new interval), not re-announced.
		time.Sleep(reannounceGap - 100*ms)
		inject(t, n, foreign, GroupV4, low)
		synctest.Wait()
		if re := c.reports(0, mark); len(re) != 1 {
			t.Fatalf("re-announced again within %s: %+v", reannounceGap, re)
		}
		time.Sleep(100 * ms)
		inject(t, n, foreign, GroupV4, low)
		synctest.Wait()
		if re := c.reports(0, mark); len(re) != 2 || !re[1].owner {
			t.Fatalf("not re-announced after %s: %+v", reannounceGap, re)
		}

		// A leaving master (priority 0) is answered, not re-announced for.
		time.Sleep(reannounceGap + 500*ms) // half-way between two periodic adverts
		synctest.Wait()
		sent = n.e.Status().(Status).Sent
		inject(t, n, foreign, GroupV4, Advert{VRID: 51, Priority: PriorityStop, Interval: time.Second, Addrs: []netip.Addr{vip100}})
		synctest.Wait()
		if got := n.e.Status().(Status).Sent; got != sent+1 {
			t.Fatalf("sent %d adverts in answer to a priority-0 advert, want 1", got-sent)
		}
		if re := c.reports(0, mark); len(re) != 2 {
			t.Fatalf("re-announced for a priority-0 advert: %+v", re)
		}
		if o := c.owners(); len(o) != 1 || o[0] != 0 {
			t.Fatalf("owners %v", o)
		}
	})
}

// TestElectorPartitionHeal: the preferred master is cut off, the other
// node becomes master too; on heal the lower master steps down (sending
// one last advert) and the preferred one, which never changed state,
// re-announces the VIPs whichever of the two heard the other first.
func TestElectorPartitionHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")})
		c.waitOwner(0, 5*time.Second)
		for _, conn := range c.nodes[0].conns {
			conn.setCut(true)
		}
		deadline := time.Now().Add(time.Second)
		for len(c.owners()) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("node 1 did not take over on its island: %+v", c.events)
			}
			time.Sleep(5 * ms)
		}
		time.Sleep(200 * ms)
		mark := c.eventCount()
		for _, conn := range c.nodes[0].conns {
			conn.setCut(false)
		}
		c.waitStepDown(1, time.Second)
		time.Sleep(100 * ms)
		synctest.Wait()
		re := c.reports(0, mark)
		if len(re) != 1 || !re[0].owner {
			t.Fatalf("node 0 after the heal: %+v, want one re-announce (Owner=true)", re)
		}
		if o := c.owners(); len(o) != 1 || o[0] != 0 {
			t.Fatalf("owners %v", o)
		}
	})
}
