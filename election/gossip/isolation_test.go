package gossip

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/testutil"
)

// cutTransport is memberlist's UDP/TCP transport with a switch that cuts the
// member off: while cut, packets out and in are dropped and connections fail
// (out: "network is unreachable", as with a link down; in: closed at once).
type cutTransport struct {
	nt      *memberlist.NetTransport
	cut     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var errCut = errors.New("connect: network is unreachable (cut by the test)")

// cutOff returns an Options.transport that builds a cutTransport and hands
// it to *out.
func cutOff(out **cutTransport) func(*memberlist.Config) (memberlist.Transport, error) {
	return func(cfg *memberlist.Config) (memberlist.Transport, error) {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{cfg.BindAddr}, BindPort: cfg.BindPort, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		if cfg.BindPort == 0 { // memberlist does this for its own transport only
			cfg.BindPort = nt.GetAutoBindPort()
			cfg.AdvertisePort = cfg.BindPort
		}
		c := &cutTransport{nt: nt, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), done: make(chan struct{})}
		go func() {
			for {
				select {
				case p := <-nt.PacketCh():
					if c.cut.Load() {
						continue
					}
					select {
					case c.packets <- p:
					case <-c.done:
						return
					}
				case <-c.done:
					return
				}
			}
		}()
		go func() {
			for {
				select {
				case conn := <-nt.StreamCh():
					if c.cut.Load() {
						conn.Close()
						continue
					}
					select {
					case c.streams <- conn:
					case <-c.done:
						conn.Close()
						return
					}
				case <-c.done:
					return
				}
			}
		}()
		*out = c
		return c, nil
	}
}

func (c *cutTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return c.nt.FinalAdvertiseAddr(ip, port)
}

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil // lost on the way
	}
	return c.nt.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return c.WriteTo(b, a.Addr)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errCut}
	}
	return c.nt.DialTimeout(addr, timeout)
}

func (c *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return c.DialTimeout(a.Addr, timeout)
}

func (c *cutTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *cutTransport) StreamCh() <-chan net.Conn           { return c.streams }

func (c *cutTransport) Shutdown() error {
	c.once.Do(func() { close(c.done) })
	return c.nt.Shutdown()
}

// viewOf is n's alive peers and whether it counts as isolated.
func viewOf(n *testNode) (int, bool) {
	st := n.e.Status().(Status)
	return len(st.Members) - 1, st.Isolated
}

// setAll sets n's input for every group.
func setAll(n *testNode, groups []GroupSpec, in election.Input) {
	for _, g := range groups {
		n.e.SetInput(g.Name, in)
	}
}

// Finding 2 of docs/chaos.md: a member whose link is down declares the
// others dead; when its link comes back and its groups are eligible again,
// its view still says it is alone (every group its own). It must re-join
// the others before it takes anything: no group is ever held twice, and
// the groups it owns in the full view come back to it by the usual
// handover. Its eligibility returns before the network (the order that
// gives the stale view the longest time): the re-sync keeps trying within
// its bound.
func TestClusterIsolatedMemberDoesNotTake(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(8)
	var ct *cutTransport
	nodes := cluster(t, w, 3, groups, func(o *Options) {
		if o.Node == "node-2" {
			o.transport = cutOff(&ct)
		}
	})
	all := expectedOwners(names(nodes), groups)
	waitOwners(t, w, all, 10*time.Second)
	n2 := nodes[2]
	mine := 0
	for _, o := range all {
		if o == n2.name {
			mine++
		}
	}
	if mine == 0 {
		t.Fatalf("the owner function gives %s none of %v", n2.name, all)
	}

	// Link down: the daemon makes every group ineligible, then the packets stop.
	setAll(n2, groups, election.Input{Eligible: false, Priority: 100, Reason: "link eth0 down"})
	ct.cut.Store(true)
	rest := expectedOwners(names(nodes[:2]), groups)
	waitOwners(t, w, rest, 10*time.Second)
	testutil.WaitFor(t, n2.name+" declaring the others dead", 10*time.Second, func() bool {
		alive, isolated := viewOf(n2)
		return alive == 0 && isolated
	})
	testutil.WaitFor(t, "the others declaring "+n2.name+" dead", 10*time.Second, func() bool {
		a, _ := viewOf(nodes[0])
		b, _ := viewOf(nodes[1])
		return a == 1 && b == 1
	})

	// Link up: eligible first, the network 200 ms later.
	setAll(n2, groups, election.Input{Eligible: true, Priority: 100})
	testutil.WaitFor(t, n2.name+" holding its takes (or taking)", 5*time.Second, func() bool {
		if len(n2.e.Status().(Status).Waiting) > 0 {
			return true
		}
		for _, o := range w.snapshot() {
			if strings.Contains(o, n2.name) {
				return true
			}
		}
		return false
	})
	t.Logf("%s back, link still down: waiting %v", n2.name, n2.e.Status().(Status).Waiting)
	time.Sleep(200 * time.Millisecond) // the link is down: nothing to wait for
	ct.cut.Store(false)
	waitOwners(t, w, all, 15*time.Second)
	if _, isolated := viewOf(n2); isolated {
		t.Errorf("%s still counts as isolated with the full membership", n2.name)
	}
	w.check()
}

// Finding 1 of docs/chaos.md: after a partition of an owner heals, the
// owner re-announces its groups' VIPs (the other side held them: hosts may
// have learnt its MAC), rate-limited to once a second per group. The
// partition itself holds groups twice (no quorum: each side elects); that
// is not what this checks.
func TestClusterOwnerReannouncesAfterHeal(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(6)
	var ct *cutTransport
	nodes := cluster(t, w, 3, groups, func(o *Options) {
		if o.Node == "node-0" {
			o.transport = cutOff(&ct)
		}
	})
	all := expectedOwners(names(nodes), groups)
	waitOwners(t, w, all, 10*time.Second)
	n0 := nodes[0]

	ct.cut.Store(true)
	// The majority takes node-0's groups; node-0, alone, keeps its own and
	// takes the rest once its re-sync has reached nobody.
	split := map[string]string{}
	for g, o := range expectedOwners(names(nodes[1:]), groups) {
		split[g] = n0.name + "+" + o // "a+b": both hold it, in name order
	}
	waitOwners(t, w, split, 15*time.Second)
	if st := n0.e.Status().(Status); !st.Isolated {
		t.Errorf("%s alone: not isolated: %+v", n0.name, st)
	}
	w.mu.Lock()
	w.double = nil // the partition's; not what this test checks
	w.reannounced = nil
	w.mu.Unlock()

	healed := time.Now()
	ct.cut.Store(false)
	waitOwners(t, w, all, 15*time.Second)
	// Every owner heard the other side come back: each group is announced
	// again by its owner, at most once a second.
	testutil.WaitFor(t, "every owner re-announcing its groups", 5*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		seen := map[string]bool{}
		for _, e := range w.reannounced {
			if all[e.Group] == e.node {
				seen[e.Group] = true
			}
		}
		return len(seen) == len(groups)
	})
	testutil.WaitFor(t, n0.name+" re-joined: no longer isolated", 5*time.Second, func() bool {
		_, isolated := viewOf(n0)
		return !isolated
	})
	w.mu.Lock()
	last := map[string]time.Time{}
	for _, e := range w.reannounced {
		t.Logf("%s re-announced %s %s after the heal (reason %s)", e.node, e.Group, e.At.Sub(healed).Round(time.Millisecond), e.Reason)
		if p, ok := last[e.node+"/"+e.Group]; ok && e.At.Sub(p) < reannounceGap-10*time.Millisecond {
			t.Errorf("%s re-announced %s %s after the previous time, want at least %s", e.node, e.Group, e.At.Sub(p), reannounceGap)
		}
		last[e.node+"/"+e.Group] = e.At
	}
	w.mu.Unlock()
	w.check()
}

// Two members: when one crashes, the other's view is "alone" too, but its
// re-sync finds the crashed member's port closed (connection refused): it
// is really gone, and the survivor takes over at once. One that leaves
// gracefully does not make the survivor isolated at all. When the other is
// cut off instead (no answer), the survivor takes over after the re-sync
// bound (fast: 1 s).
func TestClusterTwoMembersAlone(t *testing.T) {
	t.Run("crash", func(t *testing.T) {
		w := newWorld(t)
		groups := testGroups(4)
		nodes := cluster(t, w, 2, groups, nil)
		waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
		at := nodes[0].crash(t, w)
		waitOwners(t, w, expectedOwners(names(nodes[1:]), groups), 10*time.Second)
		took := time.Since(at)
		t.Logf("crash: %s took over after %s", nodes[1].name, took.Round(time.Millisecond))
		if took > 2*time.Second { // detection ≤ 0.75 s; the refused join costs nothing
			t.Errorf("takeover after a crash took %s", took)
		}
		w.check()
	})
	t.Run("leave", func(t *testing.T) {
		w := newWorld(t)
		groups := testGroups(4)
		nodes := cluster(t, w, 2, groups, nil)
		waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
		at := time.Now()
		nodes[0].stop(t)
		waitOwners(t, w, expectedOwners(names(nodes[1:]), groups), 10*time.Second)
		t.Logf("leave: %s took over after %s", nodes[1].name, time.Since(at).Round(time.Millisecond))
		if _, isolated := viewOf(nodes[1]); isolated {
			t.Errorf("%s isolated after its peer left gracefully", nodes[1].name)
		}
		w.check()
	})
	t.Run("cut", func(t *testing.T) {
		w := newWorld(t)
		groups := testGroups(4)
		var ct *cutTransport
		nodes := cluster(t, w, 2, groups, func(o *Options) {
			if o.Node == "node-0" {
				o.transport = cutOff(&ct)
			}
		})
		waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
		ct.cut.Store(true)
		at := time.Now()
		testutil.WaitFor(t, "node-1 taking node-0's groups", 15*time.Second, func() bool {
			for _, o := range w.snapshot() {
				if o == "node-0" {
					return false
				}
			}
			return true
		})
		t.Logf("cut: node-1 took over after %s (detection, then the re-sync bound)", time.Since(at).Round(time.Millisecond))
		st := nodes[1].e.Status().(Status)
		if !st.Isolated {
			t.Errorf("node-1 alone: not isolated: %+v", st)
		}
	})
}

// The re-announce rule on its own: who triggers it, and the rate limit
// (once per reannounceGap per group, a request within it carried out when
// it ends).
func TestReannounceRateLimit(t *testing.T) {
	groups := testGroups(2)
	e, err := New(Options{Node: "a", Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return now }
	g0, g1 := groups[0].Name, groups[1].Name
	e.owned[g0] = true // g1 is not ours
	var got []election.Transition
	report := func(tr election.Transition) error { got = append(got, tr); return nil }
	ev := &evaluator{ownReason: map[string]string{g0: "member-failed:b"}}
	var taken map[string]bool
	step := func(what string, d time.Duration, back []string, claims map[GroupID]string, want int) {
		t.Helper()
		now = now.Add(d)
		got = nil
		e.reannounce(report, ev, back, claims, taken)
		if len(got) != want {
			t.Fatalf("%s: %d re-announces %+v, want %d", what, len(got), got, want)
		}
		for _, tr := range got {
			if tr.Group != g0 || !tr.Owner || tr.Reason != "member-failed:b" || tr.Peer != "" {
				t.Fatalf("%s: re-announce %+v, want Owner=true of %s with the take's reason", what, tr, g0)
			}
		}
	}
	none := map[GroupID]string{}
	step("nothing happened", 0, nil, none, 0)
	step("b is back", time.Second, []string{"b"}, none, 1)
	step("c is back 100ms later", 100*time.Millisecond, []string{"c"}, none, 0)
	if want := now.Add(900 * time.Millisecond); !ev.nextReannounce.Equal(want) {
		t.Fatalf("next re-announce at %s, want %s", ev.nextReannounce, want)
	}
	step("the gap not over", 800*time.Millisecond, nil, none, 0)
	step("the gap over", 100*time.Millisecond, nil, none, 1)
	if !ev.nextReannounce.IsZero() {
		t.Fatalf("next re-announce at %s, want none", ev.nextReannounce)
	}
	step("b claims g0 too", 5*time.Second, nil, map[GroupID]string{IDOf(g0): "b"}, 0)
	step("b released g0", 100*time.Millisecond, nil, none, 1)
	step("a member of a group not ours is back", 5*time.Second, nil, map[GroupID]string{IDOf(g1): "b"}, 0)
	taken = map[string]bool{g0: true}
	step("a group taken just now is not announced twice", 5*time.Second, []string{"b"}, none, 0)
	taken = nil
	step("nor within the gap after its take", 500*time.Millisecond, []string{"c"}, none, 0)
}
