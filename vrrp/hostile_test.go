package vrrp

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// logBuf is a goroutine-safe log sink for one node.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// lines returns the log lines containing every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := ln != ""
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

// withLogs gives every node of a cluster a log buffer.
func withLogs(logs []*logBuf) func(int, *testNode) {
	return func(i int, n *testNode) {
		logs[i] = &logBuf{}
		n.log = slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

var (
	vip100  = netip.MustParseAddr("198.51.100.100")
	foreign = netip.MustParseAddr("198.51.100.250")
)

// inject delivers an advert to node n's IPv4 socket as if from src to dst.
func inject(t *testing.T, n *testNode, src, dst netip.Addr, a Advert) {
	t.Helper()
	b, err := Encode(a, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	n.conns[4].in <- Packet{Src: src, Dst: dst, TTL: TTL, Payload: b}
}

// waitStepDown waits for node to report Owner=false for a higher-priority advert.
func (c *cluster) waitStepDown(node int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		for _, ev := range c.events {
			if ev.node == node && !ev.owner && ev.t.Reason == ReasonHigherAdv {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d did not step down within %s: %+v", node, timeout, c.events)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *cluster) eventCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// TestElectorVRIDCollision: another virtual router with our VRID but other
// addresses (a foreign cluster) must not take the group away: its adverts
// are dropped, counted, logged rate-limited and shown per router.
func TestElectorVRIDCollision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := make([]*logBuf, 2)
		c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")}, withLogs(logs))
		c.waitOwner(0, 5*time.Second)
		mark := c.eventCount()
		theirs := Advert{VRID: 51, Priority: 255, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.7")}}
		for range 100 { // 2s of a priority-255 foreign master
			for _, n := range c.nodes {
				inject(t, n, foreign, GroupV4, theirs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		synctest.Wait()
		if got := c.eventCount(); got != mark {
			t.Fatalf("ownership changed because of a foreign router: %+v", c.events[mark:])
		}
		for i, n := range c.nodes {
			st := n.e.Status().(Status)
			col := st.Routers[0].Collision
			if st.Dropped["address-mismatch"] != 100 || col == nil || col.Source != foreign.String() ||
				len(col.Addresses) != 1 || col.Addresses[0] != "203.0.113.7" || col.Count != 100 || col.LastSeen.IsZero() {
				t.Fatalf("node %d: dropped %v collision %+v", i, st.Dropped, col)
			}
			// Logged at once, then held back for logEvery.
			if l := logs[i].lines("level=WARN", "reason=address-mismatch", "from=198.51.100.250", "theirs=[203.0.113.7]", "ours=[198.51.100.100]"); len(l) != 1 || !strings.Contains(l[0], "count=1") {
				t.Fatalf("node %d: collision log lines %q", i, l)
			}
		}
		time.Sleep(logEvery)
		synctest.Wait()
		for i := range c.nodes {
			if l := logs[i].lines("reason=address-mismatch"); len(l) != 2 || !strings.Contains(l[1], "count=99") {
				t.Fatalf("node %d: after the window: %q", i, l)
			}
		}
	})
}

// TestElectorDestination: a multicast router drops adverts sent to its own
// address (a spoofed unicast priority-255 advert must not make the master
// step down); a unicast router drops adverts sent to the multicast group,
// even from a peer's address, and still acts on its peers' unicast adverts.
func TestElectorDestination(t *testing.T) {
	t.Run("multicast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			logs := make([]*logBuf, 1)
			c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100")}, withLogs(logs))
			c.waitOwner(0, 5*time.Second)
			n := c.nodes[0]
			a := Advert{VRID: 51, Priority: 255, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{vip100}}
			inject(t, n, foreign, n.conns[4].src, a)
			synctest.Wait()
			if o := c.owners(); len(o) != 1 {
				t.Fatalf("a unicast advert made the multicast master step down: %+v", c.events)
			}
			if d := n.e.Status().(Status).Dropped; d["destination"] != 1 {
				t.Fatalf("dropped %v", d)
			}
			if l := logs[0].lines("level=WARN", "reason=destination", "to=198.51.100.10"); len(l) != 1 {
				t.Fatalf("log: %s", logs[0])
			}
			// The same advert to the group is accepted.
			inject(t, n, foreign, GroupV4, a)
			c.waitStepDown(0, time.Second)
		})
	})
	t.Run("unicast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			peer := netip.MustParseAddr("198.51.100.11")
			g := spec(150, "198.51.100.100")
			g[0].Peers = []netip.Addr{peer}
			c := newCluster(t, [][]testGroup{g})
			c.waitOwner(0, 5*time.Second)
			n := c.nodes[0]
			a := Advert{VRID: 51, Priority: 255, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{vip100}}
			inject(t, n, peer, GroupV4, a)
			synctest.Wait()
			if o := c.owners(); len(o) != 1 {
				t.Fatalf("a multicast advert made the unicast master step down: %+v", c.events)
			}
			if d := n.e.Status().(Status).Dropped; d["destination"] != 1 {
				t.Fatalf("dropped %v", d)
			}
			inject(t, n, peer, n.conns[4].src, a)
			c.waitStepDown(0, time.Second)
		})
	})
}

func TestPeerIntervals(t *testing.T) {
	for _, c := range []struct {
		min, max, iv time.Duration
		lo, hi       time.Duration
		shown        string
	}{
		{0, 0, 100 * ms, 100 * ms, 100 * ms, "100ms"},
		{50 * ms, 0, 100 * ms, 50 * ms, 100 * ms, "50ms..100ms"},
		{0, time.Second, 100 * ms, 100 * ms, time.Second, "100ms..1s"},
		{10 * ms, MaxInterval, time.Second, 10 * ms, MaxInterval, "10ms..40.95s"},
	} {
		lo, hi := GroupSpec{Interval: c.iv, MinPeerInterval: c.min, MaxPeerInterval: c.max}.peerIntervals()
		if lo != c.lo || hi != c.hi || intervalRange(lo, hi) != c.shown {
			t.Errorf("%+v: got %s %s %q", c, lo, hi, intervalRange(lo, hi))
		}
	}
}

// TestElectorIntervalRange: a spoofed priority-255 advert announcing a 3s
// interval is dropped, so when the master then dies the backup still takes
// over after the usual Master_Down_Interval (3 × 20ms + skew), not 9s.
// Within a configured range other intervals are adopted.
func TestElectorIntervalRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := make([]*logBuf, 2)
		c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")}, withLogs(logs))
		c.waitOwner(0, 5*time.Second)
		bad := Advert{VRID: 51, Priority: 255, Interval: 3 * time.Second, Addrs: []netip.Addr{vip100}}
		inject(t, c.nodes[1], foreign, GroupV4, bad)
		inject(t, c.nodes[0], foreign, GroupV4, bad)
		synctest.Wait()
		c.nodes[0].conns[4].setCut(true)
		_ = c.nodes[0].stop()
		at := time.Now()
		for len(c.owners()) != 1 || c.owners()[0] != 1 {
			time.Sleep(time.Millisecond)
		}
		// Master_Down_Interval at priority 100 and 20ms: 60ms + 12.2ms;
		// the last advert came up to 20ms before the crash.
		if took := time.Since(at); took > 3*20*ms+13*ms {
			t.Fatalf("backup took over %s after the master died: it adopted the spoofed interval", took)
		}
		st := c.nodes[1].e.Status().(Status)
		ri := st.Routers[0].RejectedInterval
		if st.Dropped["interval-range"] != 1 || ri == nil || ri.Source != foreign.String() || ri.Interval != "3s" || ri.Priority != 255 || ri.Count != 1 ||
			st.Routers[0].AcceptedIntervals != "20ms" || st.Routers[0].MasterInterval != "20ms" {
			t.Fatalf("status %+v %+v", st, ri)
		}
		if l := logs[1].lines("level=WARN", "reason=interval-range", "from=198.51.100.250", "interval=3s", "accepted=20ms"); len(l) != 1 {
			t.Fatalf("log: %s", logs[1])
		}
	})
	synctest.Test(t, func(t *testing.T) {
		g := spec(100, "198.51.100.100")
		g[0].MinPeerInterval, g[0].MaxPeerInterval = 10*ms, 40*ms
		c := newCluster(t, [][]testGroup{g})
		c.waitOwner(0, 5*time.Second)
		inject(t, c.nodes[0], foreign, GroupV4, Advert{VRID: 51, Priority: 200, Interval: 40 * ms, Addrs: []netip.Addr{vip100}})
		c.waitStepDown(0, time.Second)
		if st := c.nodes[0].e.Status().(Status); st.Routers[0].MasterInterval != "40ms" || st.Routers[0].AcceptedIntervals != "10ms..40ms" {
			t.Fatalf("status %+v", st.Routers[0])
		}
	})
}

// TestElectorAnswersLowerAdvert: a master sends an advert as soon as a
// lower-priority advert arrives, once per interval however many arrive.
func TestElectorAnswersLowerAdvert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := spec(150, "198.51.100.100")
		g[0].Interval = time.Second // periodic adverts far apart
		g[0].MinPeerInterval = 10 * ms
		c := newCluster(t, [][]testGroup{g})
		c.waitOwner(0, 10*time.Second)
		n := c.nodes[0]
		time.Sleep(500 * time.Millisecond) // between two periodic adverts
		synctest.Wait()
		sent := n.e.Status().(Status).Sent
		low := Advert{VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip100}}
		for range 5 {
			inject(t, n, foreign, GroupV4, low)
		}
		synctest.Wait() // no time has passed
		if got := n.e.Status().(Status).Sent; got != sent+1 {
			t.Fatalf("sent %d adverts in answer to 5 lower-priority adverts, want 1", got-sent)
		}
		if o := c.owners(); len(o) != 1 {
			t.Fatalf("owners %v", o)
		}
	})
}

// TestElectorLogsTakeover: a higher-priority advert from another router is
// logged at warn level with its source, priority and interval by the master
// that steps down and by the backup that sees the new master.
func TestElectorLogsTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := make([]*logBuf, 2)
		c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")}, withLogs(logs))
		c.waitOwner(0, 5*time.Second)
		high := Advert{VRID: 51, Priority: 200, Interval: 20 * ms, Addrs: []netip.Addr{vip100}}
		for _, n := range c.nodes {
			inject(t, n, foreign, GroupV4, high)
		}
		c.waitStepDown(0, time.Second)
		synctest.Wait()
		if l := logs[0].lines("level=WARN", "another router took over: stepping down", "from=198.51.100.250", "priority=200", "interval=20ms"); len(l) != 1 {
			t.Fatalf("master's log:\n%s", logs[0])
		}
		if l := logs[1].lines("level=WARN", "another router took over as master", "master=198.51.100.250", "priority=200", "interval=20ms", "previous=198.51.100.10"); len(l) != 1 {
			t.Fatalf("backup's log:\n%s", logs[1])
		}
		// The foreign master falls silent: node 0 preempts again.
		c.waitOwner(0, 5*time.Second)
	})
}

// TestRateLog: the first event of a key is logged at once, later ones
// within the window are counted and logged together when it ends.
func TestRateLog(t *testing.T) {
	from := func(s string) func() []any { return func() []any { return []any{"from", s} } }
	var buf logBuf
	r := newRateLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	k1, k2 := rateKey{"ttl", nil}, rateKey{"short", nil}
	r.event(t0, k1, slog.LevelWarn, "drop", from("a"))
	r.event(t0.Add(time.Second), k1, slog.LevelWarn, "drop", from("b"))
	r.event(t0.Add(2*time.Second), k1, slog.LevelWarn, "drop", from("c"))
	r.event(t0.Add(3*time.Second), k2, slog.LevelInfo, "drop", from("d"))
	if d, ok := r.next(); !ok || !d.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next %v %v", d, ok)
	}
	r.flush(t0.Add(9 * time.Second))
	if n := len(buf.lines()); n != 2 {
		t.Fatalf("%d lines before the window ends:\n%s", n, buf.String())
	}
	r.flush(t0.Add(10 * time.Second))
	l := buf.lines()
	if len(l) != 3 || !strings.Contains(l[0], "from=a count=1") || !strings.Contains(l[1], "from=d count=1") || !strings.Contains(l[2], "from=b count=2") {
		t.Fatalf("lines:\n%s", buf.String())
	}
	if _, ok := r.next(); ok {
		t.Fatal("nothing is held, next must say so")
	}
	// A window that ended without a flush: the held event joins the next line.
	r.event(t0.Add(11*time.Second), k2, slog.LevelInfo, "drop", from("e"))
	r.event(t0.Add(30*time.Second), k2, slog.LevelInfo, "drop", from("f"))
	if l := buf.lines(); len(l) != 4 || !strings.Contains(l[3], "from=f count=2") {
		t.Fatalf("lines:\n%s", buf.String())
	}
}
