package vrrp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
)

// lan is an in-memory segment: every Send reaches the other members whose
// address is the destination, or all of them for a multicast destination.
type lan struct {
	mu    sync.Mutex
	conns []*memConn
}

type memConn struct {
	lan      *lan
	src      netip.Addr
	in       chan Packet
	mu       sync.Mutex
	cut      bool  // unplugged: sends vanish, nothing arrives
	notReady error // Ready's answer
	tap      func(p []byte, dst netip.Addr)
	closed   chan struct{}
	once     sync.Once
}

func (l *lan) join(src netip.Addr) *memConn {
	c := &memConn{lan: l, src: src, in: make(chan Packet, 256), closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c
}

func (c *memConn) Source() netip.Addr { return c.src }
func (c *memConn) setCut(b bool)      { c.mu.Lock(); c.cut = b; c.mu.Unlock() }
func (c *memConn) isCut() bool        { c.mu.Lock(); defer c.mu.Unlock(); return c.cut }

func (c *memConn) Send(p []byte, dst netip.Addr) error {
	if c.isCut() {
		return errors.New("link down")
	}
	c.mu.Lock()
	tap := c.tap
	c.mu.Unlock()
	if tap != nil {
		tap(p, dst)
	}
	c.lan.mu.Lock()
	defer c.lan.mu.Unlock()
	for _, o := range c.lan.conns {
		if o == c || o.isCut() || o.src.Is4() != c.src.Is4() || (!dst.IsMulticast() && dst != o.src) {
			continue
		}
		select {
		case o.in <- Packet{Src: c.src, Dst: dst, TTL: TTL, Payload: append([]byte(nil), p...)}:
		default:
		}
	}
	return nil
}

func (c *memConn) Recv() (Packet, error) {
	select {
	case p := <-c.in:
		return p, nil
	case <-c.closed:
		return Packet{}, io.EOF
	}
}

func (c *memConn) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notReady
}

func (c *memConn) setReady(err error) { c.mu.Lock(); c.notReady = err; c.mu.Unlock() }

func (c *memConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// event is one report, in global order across nodes.
type event struct {
	node  int
	t     election.Transition
	owner bool
}

type cluster struct {
	t      *testing.T
	mu     sync.Mutex
	events []event
	owner  map[int]bool
	nodes  []*testNode
	before func(i int, n *testNode) // called before node i runs
}

type testNode struct {
	log    *slog.Logger // set by a before hook to see the node's log; default testLog
	open   OpenFunc     // set by a before hook to open other sockets; default conns by family
	e      *Elector
	conns  map[int]*memConn
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
}

func (n *testNode) stop() error {
	n.cancel()
	<-n.done
	return n.err
}

var testLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newCluster(t *testing.T, specs [][]testGroup, before ...func(int, *testNode)) *cluster {
	c := &cluster{t: t, owner: map[int]bool{}}
	if len(before) > 0 {
		c.before = before[0]
	}
	l4, l6 := &lan{}, &lan{}
	for i, gs := range specs {
		n := &testNode{conns: map[int]*memConn{
			4: l4.join(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})),
			6: l6.join(netip.MustParseAddr("fe80::" + string(rune('a'+i)))),
		}}
		if c.before != nil {
			c.before(i, n)
		}
		var groups []GroupSpec
		for _, g := range gs {
			groups = append(groups, g.GroupSpec)
		}
		log := testLog
		if n.log != nil {
			log = n.log
		}
		open := n.open
		if open == nil {
			open = func(_ context.Context, _ string, fam int) (Conn, error) { return n.conns[fam], nil }
		}
		n.e = New(groups, log, Options{Open: open})
		for _, g := range gs { // as the daemon does before Run
			n.e.SetInput(g.Name, election.Input{Eligible: true, Priority: int(g.prio)})
		}
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel, n.done = cancel, make(chan struct{})
		go func() {
			defer close(n.done)
			n.err = n.e.Run(ctx, func(tr election.Transition) error {
				c.mu.Lock()
				c.events = append(c.events, event{i, tr, tr.Owner})
				c.owner[i] = tr.Owner
				c.mu.Unlock()
				return nil
			})
		}()
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if err := n.stop(); err != nil && !t.Failed() && !strings.Contains(err.Error(), "receiving on") {
				t.Errorf("Run: %v", err)
			}
		}
	})
	return c
}

func (c *cluster) owners() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var o []int
	for i := range c.nodes {
		if c.owner[i] {
			o = append(o, i)
		}
	}
	return o
}

// waitOwner waits until node (and only node) owns the group; -1 means nobody.
func (c *cluster) waitOwner(node int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o := c.owners()
		if (node < 0 && len(o) == 0) || (len(o) == 1 && o[0] == node) {
			// Stable for a few intervals: no flapping.
			time.Sleep(100 * time.Millisecond)
			if o2 := c.owners(); len(o2) == len(o) && (len(o) == 0 || o2[0] == o[0]) {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("owner %d not reached within %s: owners %v, events %+v", node, timeout, o, c.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testGroup is a group spec with the priority the daemon would set.
type testGroup struct {
	GroupSpec
	prio uint8
}

func spec(prio uint8, vips ...string) []testGroup {
	g := GroupSpec{Name: "web", VRID: 51, Interface: "eth0", Interval: 20 * time.Millisecond, Preempt: true}
	for _, v := range vips {
		g.VIPs = append(g.VIPs, netip.MustParseAddr(v))
	}
	return []testGroup{{g, prio}}
}

func TestElectorFailover(t *testing.T) {
	c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100"), spec(50, "198.51.100.100")})
	c.waitOwner(0, 5*time.Second)

	// Crash of the master: no goodbye; the next best takes over after
	// Master_Down_Interval.
	c.nodes[0].conns[4].setCut(true)
	c.nodes[0].stop()
	c.waitOwner(1, 5*time.Second)

	// Graceful stop: Owner=false is reported before the priority-0 advert,
	// so the successor binds only after the VIPs are gone here.
	c.mu.Lock()
	mark := len(c.events)
	c.mu.Unlock()
	c.nodes[1].stop()
	c.waitOwner(2, 5*time.Second)
	c.mu.Lock()
	evs := c.events[mark:]
	c.mu.Unlock()
	if len(evs) < 2 || evs[0].node != 1 || evs[0].owner || evs[0].t.Reason != ReasonShutdown || evs[1].node != 2 || !evs[1].owner {
		t.Fatalf("graceful stop events %+v", evs)
	}
	if evs[1].t.Reason != ReasonMasterLeft {
		t.Errorf("takeover reason %q, want %q", evs[1].t.Reason, ReasonMasterLeft)
	}
	st := c.nodes[2].e.Status().(Status)
	if st.Received == 0 || st.Sent == 0 || len(st.Routers) != 1 || st.Routers[0].State != "master" {
		t.Errorf("status %+v", st)
	}
}

func TestElectorPriorityAndEligibility(t *testing.T) {
	c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")})
	c.waitOwner(0, 5*time.Second)
	// Lowered priority on the master: the backup preempts.
	c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Priority: 10})
	c.waitOwner(1, 5*time.Second)
	// Back up: node 0 preempts again.
	c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Priority: 150})
	c.waitOwner(0, 5*time.Second)
	// Ineligible (link down, failed check): steps down at once.
	c.nodes[0].e.SetInput("web", election.Input{Eligible: false, Priority: 150, Reason: "link eth0 down"})
	c.waitOwner(1, 5*time.Second)
	c.mu.Lock()
	var found bool
	for _, ev := range c.events {
		if ev.node == 0 && !ev.owner && ev.t.Reason == "ineligible: link eth0 down" {
			found = true
		}
	}
	c.mu.Unlock()
	if !found {
		t.Errorf("no ineligible transition with the input's reason: %+v", c.events)
	}
}

func TestElectorDualStackSync(t *testing.T) {
	vips := []string{"198.51.100.100", "2001:db8::100"}
	c := newCluster(t, [][]testGroup{spec(100, vips...), spec(200, vips...)})
	c.waitOwner(1, 5*time.Second)
	for i, n := range c.nodes {
		st := n.e.Status().(Status)
		want := "backup"
		if i == 1 {
			want = "master"
		}
		if len(st.Routers) != 2 || st.Routers[0].State != want || st.Routers[1].State != want {
			t.Fatalf("node %d routers %+v, want both %s", i, st.Routers, want)
		}
	}
	// Only the IPv6 path of the master breaks: the IPv6 router of node 0
	// takes over and drags its IPv4 router along (sync), so the group still
	// has one owner per node view rather than half a group each.
	c.nodes[1].conns[6].setCut(true)
	time.Sleep(300 * time.Millisecond)
	c.nodes[1].conns[6].setCut(false)
	c.waitOwner(1, 5*time.Second)
}

func TestElectorDropsCounted(t *testing.T) {
	c := newCluster(t, [][]testGroup{spec(100, "198.51.100.100")})
	n := c.nodes[0]
	good, _ := Encode(Advert{VRID: 51, Priority: 200, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}, v4b, GroupV4)
	other, _ := Encode(Advert{VRID: 9, Priority: 200, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}, v4b, GroupV4)
	wrongList, _ := Encode(Advert{VRID: 51, Priority: 200, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}, v4b, GroupV4)
	slow, _ := Encode(Advert{VRID: 51, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}, v4b, GroupV4)
	toMe, _ := Encode(Advert{VRID: 51, Priority: 200, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}, v4b, n.conns[4].src)
	in := n.conns[4].in
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 64, Payload: good}
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 255, Payload: good[:5]}
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 255, Payload: other}
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 255, Payload: wrongList}
	in <- Packet{Src: n.conns[4].src, Dst: GroupV4, TTL: 255, Payload: good}
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 255, Payload: slow}
	in <- Packet{Src: v4b, Dst: n.conns[4].src, TTL: 255, Payload: toMe}
	in <- Packet{Src: v4b, Dst: GroupV4, TTL: 255, Payload: good}
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := n.e.Status().(Status)
		d := st.Dropped
		if d["ttl"] == 1 && d["short"] == 1 && d["unknown-vrid"] == 1 && d["address-mismatch"] == 1 && d["own"] == 1 &&
			d["interval-range"] == 1 && d["destination"] == 1 && st.Received == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestElectorDeafSocketStepsDown(t *testing.T) {
	c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")})
	c.waitOwner(0, 5*time.Second)
	// The master's socket breaks: it must give the group up and stop,
	// rather than keep the VIPs while deaf.
	c.nodes[0].conns[4].Close()
	select {
	case <-c.nodes[0].done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its socket broke")
	}
	if c.nodes[0].err == nil {
		t.Fatal("Run returned nil after its socket broke")
	}
	c.waitOwner(1, 5*time.Second)
}

func TestElectorSeveralGroups(t *testing.T) {
	two := func(pa, pb uint8) []testGroup {
		a := spec(pa, "198.51.100.100")[0]
		b := spec(pb, "198.51.100.101")[0]
		b.Name, b.VRID = "api", 52
		return []testGroup{a, b}
	}
	c := newCluster(t, [][]testGroup{two(150, 50), two(100, 200)})
	deadline := time.Now().Add(5 * time.Second)
	for {
		s0 := c.nodes[0].e.Status().(Status)
		s1 := c.nodes[1].e.Status().(Status)
		if len(s0.Routers) == 2 && len(s1.Routers) == 2 &&
			s0.Routers[0].State == "master" && s0.Routers[1].State == "backup" &&
			s1.Routers[0].State == "backup" && s1.Routers[1].State == "master" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node0 %+v\nnode1 %+v", s0.Routers, s1.Routers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	owned := map[[2]any]bool{}
	for _, ev := range c.events {
		owned[[2]any{ev.node, ev.t.Group}] = ev.owner
	}
	if !owned[[2]any{0, "web"}] || owned[[2]any{0, "api"}] || owned[[2]any{1, "web"}] || !owned[[2]any{1, "api"}] {
		t.Fatalf("ownership %v", owned)
	}
}

// TestElectorWaitsForUsableSource: while a socket cannot send (IPv6
// link-local address still tentative after the link came up), the node must
// not take the group, even with the best priority; once it can, it preempts.
func TestElectorWaitsForUsableSource(t *testing.T) {
	vips := []string{"198.51.100.100", "2001:db8::100"}
	c := newCluster(t, [][]testGroup{spec(200, vips...), spec(100, vips...)}, func(i int, n *testNode) {
		if i == 0 {
			n.conns[6].setReady(errors.New("no usable IPv6 link-local address"))
		}
	})
	c.waitOwner(1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if o := c.owners(); len(o) != 1 || o[0] != 1 {
		t.Fatalf("owners %v while node 0 cannot send on IPv6", o)
	}
	c.nodes[0].conns[6].setReady(nil)
	c.waitOwner(0, 5*time.Second)
}

// A preemption is break-before-make: the preempting router advertises and
// reports Owner=true only once the displaced master, stepping down, has
// reported Owner=false and sent its last advert (chaos finding 8: with
// RFC 9568's order alone both held the VIP for ~1 ms and both answered a
// client's ARP request).
func TestElectorPreemptionBreaksBeforeMaking(t *testing.T) {
	c := newCluster(t, [][]testGroup{spec(150, "198.51.100.100"), spec(100, "198.51.100.100")})
	c.waitOwner(0, 5*time.Second)
	for round, step := range []struct {
		prio     int
		from, to int
	}{{10, 0, 1}, {150, 1, 0}, {10, 0, 1}, {150, 1, 0}} {
		c.mu.Lock()
		mark := len(c.events)
		c.mu.Unlock()
		c.nodes[0].e.SetInput("web", election.Input{Eligible: true, Priority: step.prio})
		c.waitOwner(step.to, 5*time.Second)
		c.mu.Lock()
		evs := slices.Clone(c.events[mark:])
		c.mu.Unlock()
		if len(evs) < 2 || evs[0].node != step.from || evs[0].owner || evs[1].node != step.to || !evs[1].owner {
			t.Fatalf("round %d: preemption events %+v, want node%d Owner=false before node%d Owner=true", round, evs, step.from, step.to)
		}
		if evs[1].t.Reason != ReasonPreempt {
			t.Errorf("round %d: takeover reason %q, want %q", round, evs[1].t.Reason, ReasonPreempt)
		}
	}
}
