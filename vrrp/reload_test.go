package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
)

// groupEvents returns the reports for group after mark.
func (c *cluster) groupEvents(mark int, group string) []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, ev := range c.events[mark:] {
		if ev.t.Group == group {
			out = append(out, ev)
		}
	}
	return out
}

// waitGroupOwner waits until node's last report for group says owner.
func (c *cluster) waitGroupOwner(node int, group string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		owner := map[int]bool{}
		for _, ev := range c.events {
			if ev.t.Group == group {
				owner[ev.node] = ev.owner
			}
		}
		c.mu.Unlock()
		only := owner[node]
		for i, o := range owner {
			only = only && (i == node || !o)
		}
		if only {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d does not own %q within %s: %+v", node, group, timeout, c.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// periodic checks that ads are one router's regular adverts: every
// interval apart, all with prio.
func periodic(t *testing.T, what string, ads []sentAdvert, interval time.Duration, prio uint8) {
	t.Helper()
	if len(ads) < 2 {
		t.Fatalf("%s: %d adverts", what, len(ads))
	}
	for i, x := range ads {
		if x.a.Priority != prio || (i > 0 && x.at.Sub(ads[i-1].at) != interval) {
			t.Fatalf("%s: advert %d of %d at +%s priority %d, want every %s at %d", what, i, len(ads), x.at.Sub(ads[0].at), x.a.Priority, interval, prio)
		}
	}
}

func specsOf(gs ...[]testGroup) []GroupSpec {
	var out []GroupSpec
	for _, g := range gs {
		for _, x := range g {
			out = append(out, x.GroupSpec)
		}
	}
	return out
}

// TestReconfigure: groups added, changed in place and removed while Run
// runs, on two nodes; the routers whose settings did not change keep their
// state and their regular adverts.
func TestReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		web := func(prio uint8) []testGroup { return web100(prio, true) }
		api := func(prio uint8, vrid uint8) []testGroup {
			g := spec(prio, "198.51.100.101")
			g[0].Name, g[0].VRID, g[0].Interval = "api", vrid, 100*time.Millisecond
			return g
		}
		c := newCluster(t, [][]testGroup{web(150), web(100)})
		c.waitGroupOwner(0, "web", 5*time.Second)
		var s sent
		s.tapAll(t, c.nodes[0])
		reload := func(i int, gs ...[]testGroup) {
			t.Helper()
			for _, g := range gs { // as the daemon does before Reload
				c.nodes[i].e.SetInput(g[0].Name, election.Input{Eligible: true, Priority: int(g[0].prio)})
			}
			if err := c.nodes[i].e.Reconfigure(specsOf(gs...)); err != nil {
				t.Fatalf("node %d: Reconfigure: %v", i, err)
			}
		}

		// Unchanged: nothing happens at all.
		mark, at := c.eventCount(), time.Now()
		reload(0, web(150))
		time.Sleep(time.Second)
		if n := c.eventCount(); n != mark {
			t.Fatalf("an unchanged reload changed ownership: %+v", c.events[mark:])
		}
		periodic(t, "web after an unchanged reload", s.since(at, 51), 100*time.Millisecond, 150)

		// Added: api, wanted by node 1. web is untouched.
		mark, at = c.eventCount(), time.Now()
		reload(0, web(150), api(50, 52))
		reload(1, web(100), api(200, 52))
		c.waitGroupOwner(1, "api", 5*time.Second)
		time.Sleep(time.Second)
		if evs := c.groupEvents(mark, "web"); len(evs) != 0 {
			t.Fatalf("adding api changed web: %+v", evs)
		}
		periodic(t, "web while api is added", s.since(at, 51), 100*time.Millisecond, 150)
		if st := c.nodes[0].e.Status().(Status); len(st.Routers) != 2 || st.Routers[1].Group != "api" || st.Routers[1].State != "backup" {
			t.Fatalf("node 0 routers %+v", st.Routers)
		}

		// Changed in place: web's VIPs and interval on both nodes; api
		// untouched. No state changes; the next adverts carry the new list
		// at the new interval.
		web2 := func(prio uint8) []testGroup {
			g := web(prio)
			g[0].VIPs = append(g[0].VIPs, netip.MustParseAddr("198.51.100.102"))
			g[0].Interval = 50 * time.Millisecond
			return g
		}
		mark, at = c.eventCount(), time.Now()
		reload(0, web2(150), api(50, 52))
		reload(1, web2(100), api(200, 52))
		time.Sleep(time.Second)
		if n := c.eventCount(); n != mark {
			t.Fatalf("changing web in place changed ownership: %+v", c.events[mark:])
		}
		ads := s.since(at, 51)
		periodic(t, "web at its new interval", ads[1:], 50*time.Millisecond, 150)
		if got := ads[len(ads)-1].a.Addrs; len(got) != 2 {
			t.Fatalf("web adverts carry %v", got)
		}
		if st := c.nodes[1].e.Status().(Status); st.Dropped["address-mismatch"] != 0 || st.Dropped["interval-range"] != 0 {
			t.Fatalf("node 1 dropped node 0's adverts: %v", st.Dropped)
		}

		// Removed: web goes from node 0, which owns it: Owner=false before
		// Reconfigure returns, then its priority-0 advert; node 1 takes
		// over after Skew_Time.
		mark, at = c.eventCount(), time.Now()
		reload(0, api(50, 52))
		if evs := c.groupEvents(mark, "web"); len(evs) != 1 || evs[0].node != 0 || evs[0].owner || evs[0].t.Reason != "removed" {
			t.Fatalf("events when Reconfigure returned: %+v", evs)
		}
		// (A periodic advert may fall on the same instant, before.)
		if ads := s.since(at, 51); len(ads) == 0 || len(ads) > 2 || ads[len(ads)-1].a.Priority != 0 {
			t.Fatalf("adverts of the removed router %+v, want its priority-0 advert last", ads)
		}
		time.Sleep(time.Second)
		if ads := s.since(at, 51); ads[len(ads)-1].a.Priority != 0 {
			t.Fatalf("the removed router still advertises: %+v", ads)
		}
		c.waitGroupOwner(1, "web", 5*time.Second)
		if evs := c.groupEvents(mark, "web"); evs[len(evs)-1].t.Reason != ReasonMasterLeft {
			t.Fatalf("web takeover %+v", evs)
		}
		if st := c.nodes[0].e.Status().(Status); len(st.Routers) != 1 || st.Routers[0].Group != "api" {
			t.Fatalf("node 0 routers after removal %+v", st.Routers)
		}

		// A new VRID is another router on the wire: removed and added.
		mark = c.eventCount()
		reload(1, web2(100), api(200, 53))
		if evs := c.groupEvents(mark, "api"); len(evs) != 1 || evs[0].owner || evs[0].t.Reason != "reconfigured" {
			t.Fatalf("api events when Reconfigure returned: %+v", evs)
		}
		reload(0, api(50, 53))
		c.waitGroupOwner(1, "api", 5*time.Second)
		c.waitGroupOwner(1, "web", 5*time.Second)
	})
}

// TestReconfigureSockets: a group on a new interface opens its socket as
// at start; removing it closes the socket without ending Run; a socket that
// cannot be opened or a VRID used twice fails the reload and changes nothing.
func TestReconfigureSockets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var eth1 *memConn
		var opened []string
		c := newCluster(t, [][]testGroup{web100(150, true)}, func(_ int, n *testNode) {
			n.open = func(_ context.Context, ifname string, fam int) (Conn, error) {
				opened = append(opened, ifname)
				switch ifname {
				case "eth0":
					return n.conns[fam], nil
				case "eth1":
					eth1 = (&lan{}).join(netip.MustParseAddr("203.0.113.10"))
					return eth1, nil
				}
				return nil, errors.New("no such interface")
			}
		})
		n := c.nodes[0]
		c.waitGroupOwner(0, "web", 5*time.Second)
		db := spec(100, "203.0.113.100")[0].GroupSpec
		db.Name, db.Interface = "db", "eth1"
		n.e.SetInput("db", election.Input{Eligible: true, Priority: 100})
		if err := n.e.Reconfigure([]GroupSpec{web100(150, true)[0].GroupSpec, db}); err != nil {
			t.Fatal(err)
		}
		c.waitGroupOwner(0, "db", 5*time.Second)
		if !slices.Equal(opened, []string{"eth0", "eth1"}) {
			t.Fatalf("opened %v", opened)
		}

		bad := db
		bad.Name, bad.Interface = "cache", "eth9"
		before := n.e.Status().(Status).Routers
		err := n.e.Reconfigure([]GroupSpec{web100(150, true)[0].GroupSpec, bad})
		if err == nil || !strings.Contains(err.Error(), "no such interface") {
			t.Fatalf("Reconfigure with a socket that cannot open: %v", err)
		}
		dup := db
		dup.Name, dup.Interface = "cache", "eth1"
		if err := n.e.Reconfigure([]GroupSpec{web100(150, true)[0].GroupSpec, db, dup}); err == nil || !strings.Contains(err.Error(), "VRID 51") {
			t.Fatalf("Reconfigure with a VRID used twice: %v", err)
		}
		time.Sleep(time.Second)
		if after := n.e.Status().(Status).Routers; len(after) != 2 || after[0].State != before[0].State || after[1].State != before[1].State {
			t.Fatalf("a failed reload changed the routers: %+v -> %+v", before, after)
		}

		mark := c.eventCount()
		if err := n.e.Reconfigure([]GroupSpec{web100(150, true)[0].GroupSpec}); err != nil {
			t.Fatal(err)
		}
		if evs := c.groupEvents(mark, "db"); len(evs) != 1 || evs[0].owner || evs[0].t.Reason != "removed" {
			t.Fatalf("db events %+v", evs)
		}
		select {
		case <-eth1.closed:
		default:
			t.Fatal("the socket of the removed interface is still open")
		}
		time.Sleep(time.Second)
		select {
		case <-n.done:
			t.Fatalf("Run ended after its eth1 socket was closed by a reload: %v", n.err)
		default:
		}
		if evs := c.groupEvents(mark, "web"); len(evs) != 0 {
			t.Fatalf("web events %+v", evs)
		}
	})
}

// TestReconfigureBeforeRun: before Run, Reconfigure only replaces the list.
func TestReconfigureBeforeRun(t *testing.T) {
	e := New(specsOf(web100(150, true)), testLog, Options{})
	if err := e.Reconfigure(nil); err != nil {
		t.Fatal(err)
	}
	if len(e.groups) != 0 {
		t.Fatalf("groups %+v", e.groups)
	}
}
