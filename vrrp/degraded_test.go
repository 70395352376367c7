package vrrp

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
)

// sent records the adverts a node sends, decoded, with the (fake) time.
type sent struct {
	mu  sync.Mutex
	ads []sentAdvert
}

type sentAdvert struct {
	at time.Time
	a  Advert
}

// tapAll records every advert n sends on IPv4.
func (s *sent) tapAll(t *testing.T, n *testNode) {
	c := n.conns[4]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tap = func(p []byte, dst netip.Addr) {
		a, err := Decode(p, c.src, dst)
		if err != nil {
			t.Errorf("own advert does not decode: %v", err)
			return
		}
		s.mu.Lock()
		s.ads = append(s.ads, sentAdvert{time.Now(), a})
		s.mu.Unlock()
	}
}

// since returns the adverts for vrid sent at or after from.
func (s *sent) since(from time.Time, vrid uint8) []sentAdvert {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sentAdvert
	for _, x := range s.ads {
		if !x.at.Before(from) && x.a.VRID == vrid {
			out = append(out, x)
		}
	}
	return out
}

// web100 is the group "web" with 100ms adverts, as in the target.
func web100(prio uint8, preempt bool) []testGroup {
	g := spec(prio, "198.51.100.100")
	g[0].Interval, g[0].Preempt = 100*time.Millisecond, preempt
	return g
}

// ownedAt returns the first Owner=true report of node for group after mark.
func (c *cluster) ownedAt(mark, node int, group string) (election.Transition, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events[mark:] {
		if ev.node == node && ev.owner && ev.t.Group == group {
			return ev.t, true
		}
	}
	return election.Transition{}, false
}

// TestElectorDegraded: a degraded master advertises priority 1 at once and
// a healthy preempting backup owns within its Skew_Time (well inside one
// 100ms interval); the degraded node then never preempts the live master,
// and takes the group again only when no master is heard.
func TestElectorDegraded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, [][]testGroup{web100(200, true), web100(100, true)})
		c.waitOwner(0, 5*time.Second)
		var s sent
		s.tapAll(t, c.nodes[0])
		mark, at := c.eventCount(), time.Now()
		c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Degraded: true, Priority: 200, Reason: "check web: connection refused"})
		synctest.Wait()
		if ads := s.since(at, 51); len(ads) != 1 || ads[0].a.Priority != 1 || !ads[0].at.Equal(at) {
			t.Fatalf("adverts right after the input turned degraded: %+v, want one with priority 1 at once", ads)
		}
		c.waitOwner(1, 5*time.Second)
		tr, _ := c.ownedAt(mark, 1, "web")
		took := tr.At.Sub(at)
		t.Logf("degraded master -> healthy backup owns after %s (%s)", took, tr.Reason)
		if took > 100*time.Millisecond || tr.Reason != ReasonPreempt {
			t.Fatalf("takeover after %s (%s), want within one 100ms interval by preemption", took, tr.Reason)
		}
		st := c.nodes[0].e.Status().(Status).Routers[0]
		if st.State != "backup" || st.Priority != 200 || st.Advertised != 1 || !st.Degraded || st.Input != "check web: connection refused" {
			t.Fatalf("degraded router status %+v", st)
		}

		// Degraded backup (configured 200) vs a live master at 100: no preemption.
		mark = c.eventCount()
		time.Sleep(2 * time.Second)
		if n := c.eventCount(); n != mark {
			t.Fatalf("a degraded backup moved the group: %+v", c.events[mark:])
		}
		// The master crashes: nobody owns, so the degraded node takes over.
		c.nodes[1].conns[4].setCut(true)
		c.nodes[1].stop()
		c.waitOwner(0, 5*time.Second)
		if tr, _ := c.ownedAt(mark, 0, "web"); tr.Reason != ReasonMasterDown {
			t.Fatalf("degraded takeover reason %q", tr.Reason)
		}
		// Healthy again: it stays master and advertises its priority at once.
		at = time.Now()
		c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Priority: 200})
		synctest.Wait()
		if ads := s.since(at, 51); len(ads) != 1 || ads[0].a.Priority != 200 {
			t.Fatalf("adverts after recovery %+v", ads)
		}
	})
}

// TestElectorDegradedNopreempt: a nopreempt backup never takes the group
// from a live master, degraded or not; it does when the master leaves.
func TestElectorDegradedNopreempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, [][]testGroup{web100(200, true), web100(100, false)})
		c.waitOwner(0, 5*time.Second)
		mark := c.eventCount()
		c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Degraded: true, Priority: 200})
		time.Sleep(2 * time.Second)
		if n := c.eventCount(); n != mark {
			t.Fatalf("a nopreempt backup took a degraded master's group: %+v", c.events[mark:])
		}
		c.nodes[0].stop()
		c.waitOwner(1, 5*time.Second)
		if tr, _ := c.ownedAt(mark, 1, "web"); tr.Reason != ReasonMasterLeft {
			t.Fatalf("takeover reason %q", tr.Reason)
		}
	})
}

// TestElectorWeightDrop: a master whose priority falls below a preempting
// backup's (a weight) tells it at once and loses the group within the
// backup's Skew_Time.
func TestElectorWeightDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, [][]testGroup{web100(150, true), web100(100, true)})
		c.waitOwner(0, 5*time.Second)
		var s sent
		s.tapAll(t, c.nodes[0])
		time.Sleep(30 * time.Millisecond) // between two adverts
		mark, at := c.eventCount(), time.Now()
		c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Priority: 90, Reason: "check api -60"})
		synctest.Wait()
		if ads := s.since(at, 51); len(ads) != 1 || ads[0].a.Priority != 90 || !ads[0].at.Equal(at) {
			t.Fatalf("adverts right after the weight: %+v, want one with priority 90 at once", ads)
		}
		c.waitOwner(1, 5*time.Second)
		tr, _ := c.ownedAt(mark, 1, "web")
		if took := tr.At.Sub(at); took > 100*time.Millisecond {
			t.Fatalf("takeover after %s", took)
		}
	})
}
