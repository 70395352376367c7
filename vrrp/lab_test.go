package vrrp_test

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
)

// vipdConfig is a vrrp-mode config for one lab node: one group with an IPv4
// and an IPv6 VIP (two virtual routers kept in sync), advert every 100ms.
func vipdConfig(node string, prio int, vip4, vip6 netip.Addr) *config.Config {
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: node, Mode: config.ModeVRRP,
		VRRP: &config.VRRP{AdvertInterval: 100 * time.Millisecond},
		Groups: []config.Group{{Name: "web", Priority: prio,
			VIPs: []config.VIP{{Address: vip4.String()}, {Address: vip6.String()}},
			VRRP: &config.GroupVRRP{VRID: 51}}},
	}
}

type labCluster struct {
	t          *testing.T
	l          *lab.Lab
	bin        string
	vip4, vip6 netip.Addr
	procs      []*lab.Process
	prios      []int
}

func (c *labCluster) start(i, prio int) {
	c.t.Helper()
	h := c.l.Nodes[i]
	p, err := c.l.StartVipdConfig(h, c.bin, vipdConfig(h.Name, prio, c.vip4, c.vip6))
	if err != nil {
		c.t.Fatal(err)
	}
	c.procs[i], c.prios[i] = p, prio
}

// holders lists the nodes that have the VIP bound, per family.
func (c *labCluster) holders(vip netip.Addr) []string {
	c.t.Helper()
	var hs []string
	for _, h := range c.l.Nodes {
		ok, err := h.HasAddress(vip)
		if err != nil {
			c.t.Fatal(err)
		}
		if ok {
			hs = append(hs, h.Name)
		}
	}
	return hs
}

// waitSoleHolder waits until exactly node holds both VIPs.
func (c *labCluster) waitSoleHolder(node string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h4, h6 := c.holders(c.vip4), c.holders(c.vip6)
		if len(h4) == 1 && h4[0] == node && len(h6) == 1 && h6[0] == node {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s: IPv4 VIP on %v, IPv6 VIP on %v; want only %s", timeout, h4, h6, node)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// TestLabFailover runs three real vipd processes in VRRP mode (priorities
// 150/100/50) and checks each way of losing the master: afterwards exactly
// one node holds the VIPs, the client reaches the new node, and the old one
// no longer answers. Bounds are generous (CI is slow); figures are logged.
func TestLabFailover(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 3})
	c := &labCluster{t: t, l: l, bin: lab.BuildVipd(t), vip4: l.VIPv4(1), vip6: l.VIPv6(1),
		procs: make([]*lab.Process, 3), prios: make([]int, 3)}
	const port = 7151
	if _, err := l.Capture("-c", "3000", "proto", "112", "or", "arp", "or", "icmp6"); err != nil {
		t.Log(err)
	}
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	for i, prio := range []int{150, 100, 50} {
		c.start(i, prio)
	}
	p4, err := l.StartProbe(ctxFor(t), c.vip4, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p6, err := l.StartProbe(ctxFor(t), c.vip6, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitBoth := func(node string, timeout time.Duration) {
		t.Helper()
		for _, p := range []*lab.Probe{p4, p6} {
			if err := p.WaitOwner(node, timeout); err != nil {
				t.Fatal(err)
			}
		}
		c.waitSoleHolder(node, timeout)
	}
	waitBoth("node1", 15*time.Second)

	// checkGone: after a failover the old node must stop answering: probe
	// replies only from the new node from some point on.
	report := func(name string, at time.Time, want string) {
		t.Helper()
		for fam, p := range map[string]*lab.Probe{"v4": p4, "v6": p6} {
			rec := p.Snapshot()
			f, ok := rec.FailoverAfter(at)
			if !ok {
				t.Fatalf("%s %s: no failover after the event, want to %s", name, fam, want)
			}
			if f.To != want {
				// Skew_Time puts node2 (priority 100) only 19.5 ms ahead of
				// node3 (50) at 100 ms adverts. A node2 scheduled later than
				// that on a loaded machine lets node3 take the group until it
				// hears node2 and yields (seen: node3 master by
				// master-down-timer at .170, node2 by preempt at .186). VRRP
				// promises the end state, not the first taker.
				if spans := rec.Owners(); len(spans) == 0 || spans[len(spans)-1].Node != want {
					t.Fatalf("%s %s: failover %+v, and %s does not own it in the end", name, fam, f, want)
				}
				t.Logf("%s %s: %s answered first, then yielded to %s", name, fam, f.To, want)
			}
			t.Logf("%s %s: %s", name, fam, f)
		}
	}
	settle := func() { time.Sleep(1500 * time.Millisecond) }

	t.Run("sigkill", func(t *testing.T) {
		at := time.Now()
		if err := c.procs[0].Kill(); err != nil {
			t.Fatal(err)
		}
		c.procs[0].Wait(5 * time.Second)
		// The kernel lifetime (3s default) removes the dead node's VIPs.
		waitBoth("node2", 10*time.Second)
		report("sigkill", at, "node2")
		// Restart: node1 preempts back.
		c.start(0, 150)
		waitBoth("node1", 15*time.Second)
		settle()
	})
	t.Run("sigterm", func(t *testing.T) {
		at := time.Now()
		if err := c.procs[0].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if exited, _ := c.procs[0].Wait(10 * time.Second); !exited {
			t.Fatal("vipd did not exit on SIGTERM")
		}
		waitBoth("node2", 10*time.Second)
		report("sigterm", at, "node2")
		if out := c.procs[0].Output(); !strings.Contains(out, "shutdown") {
			t.Errorf("no shutdown transition logged:\n%s", out)
		}
		c.start(0, 150)
		waitBoth("node1", 15*time.Second)
		settle()
	})
	t.Run("link-down", func(t *testing.T) {
		at := time.Now()
		if err := l.Nodes[0].SetLinkUp(false); err != nil {
			t.Fatal(err)
		}
		waitBoth("node2", 10*time.Second)
		report("link-down", at, "node2")
		upAt := time.Now()
		if err := l.Nodes[0].SetLinkUp(true); err != nil {
			t.Fatal(err)
		}
		waitBoth("node1", 15*time.Second)
		// node1's packet sockets saw "network is down" while the link was
		// down and report it on their next write: its first announcement
		// on preempting must still go out (retried on a fresh socket), or
		// clients wait a whole announce interval for the second one.
		if out := c.procs[0].Output(); strings.Contains(out, "announcement failed") {
			t.Fatalf("node1's announcements failed after its link came back:\n%s", out)
		}
		report("link-up-preempt", upAt, "node1")
		settle()
	})
	t.Run("link-down-with-dad", func(t *testing.T) {
		// Real links run duplicate address detection: after link up the
		// IPv6 link-local address (the VRRP source) is tentative for about a
		// second. node1 must wait for it instead of taking the group with
		// IPv6 adverts it cannot send, which would make node2 flap.
		h := l.Nodes[0]
		if out, err := h.Command(context.Background(), "sysctl", "-w", "net.ipv6.conf.eth0.accept_dad=1").CombinedOutput(); err != nil {
			t.Fatalf("sysctl: %v %s", err, out)
		}
		defer h.Command(context.Background(), "sysctl", "-w", "net.ipv6.conf.eth0.accept_dad=0").Run()
		before := strings.Count(c.procs[1].Output(), "from=backup to=owner")
		if err := h.SetLinkUp(false); err != nil {
			t.Fatal(err)
		}
		waitBoth("node2", 10*time.Second)
		if err := h.SetLinkUp(true); err != nil {
			t.Fatal(err)
		}
		waitBoth("node1", 15*time.Second)
		time.Sleep(2 * time.Second)
		c.waitSoleHolder("node1", time.Second)
		if n := strings.Count(c.procs[1].Output(), "from=backup to=owner") - before; n != 1 {
			t.Errorf("node2 took the VIPs %d times during one link flap of node1 (want 1)", n)
		}
		settle()
	})
	t.Run("switch-port-down", func(t *testing.T) {
		// The master's own link stays up: it keeps the VIP (nobody can reach
		// it anyway) while node2 takes over; when the port returns, the
		// lower-priority node2 sees node1's adverts and yields.
		at := time.Now()
		if err := l.Nodes[0].SetSwitchPortUp(false); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*lab.Probe{p4, p6} {
			if err := p.WaitOwner("node2", 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		report("switch-port-down", at, "node2")
		if err := l.Nodes[0].SetSwitchPortUp(true); err != nil {
			t.Fatal(err)
		}
		waitBoth("node1", 15*time.Second)
		settle()
	})
	t.Run("priority-lowered", func(t *testing.T) {
		// Restart the master with a priority below node2's: node2 takes
		// over, and node1 does not preempt it back.
		at := time.Now()
		c.procs[0].Signal(syscall.SIGTERM)
		c.procs[0].Wait(10 * time.Second)
		c.start(0, 80)
		waitBoth("node2", 10*time.Second)
		report("priority-lowered", at, "node2")
		time.Sleep(2 * time.Second)
		c.waitSoleHolder("node2", time.Second)
	})
}

// TestLabUnicastIPv6: two vipd nodes with unicastPeers given as global IPv6
// addresses, sending from them (unicastSource; a peer is listed by the
// address it sends from), elect one master and fail over on SIGTERM.
func TestLabUnicastIPv6(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	vip := l.VIPv6(4)
	const port = 7154
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	cfg := func(i, prio int) *config.Config {
		peer, self := l.Nodes[1-i].IPv6.Addr(), l.Nodes[i].IPv6.Addr()
		return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: l.Nodes[i].Name, Mode: config.ModeVRRP,
			Groups: []config.Group{{Name: "web", Priority: prio, VIPs: []config.VIP{{Address: vip.String()}},
				VRRP: &config.GroupVRRP{VRID: 54, AdvertInterval: 100 * time.Millisecond,
					UnicastPeers: []string{peer.String()}, UnicastSource: []string{self.String()}}}},
		}
	}
	p1, err := l.StartVipdConfig(l.Nodes[0], bin, cfg(0, 150))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartVipdConfig(l.Nodes[1], bin, cfg(1, 100)); err != nil {
		t.Fatal(err)
	}
	probe, err := l.StartProbe(ctxFor(t), vip, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.WaitOwner("node1", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// Stable: node2 hears node1 and stays backup.
	time.Sleep(time.Second)
	if ok, _ := l.Nodes[1].HasAddress(vip); ok {
		t.Fatal("node2 holds the VIP next to a higher-priority unicast peer")
	}
	at := time.Now()
	p1.Signal(syscall.SIGTERM)
	p1.Wait(10 * time.Second)
	if err := probe.WaitOwner("node2", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f, _ := probe.Snapshot().FailoverAfter(at)
	t.Logf("unicast IPv6 SIGTERM: %s", f)
	if f.Interruption > time.Second {
		t.Errorf("interruption %s: the priority-0 advert did not arrive by unicast", f.Interruption)
	}
}
