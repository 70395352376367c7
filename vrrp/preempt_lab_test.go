package vrrp_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
	"github.com/vipd/vipd/vrrp"
)

// TestLabKeepalivedPreemptsVipd (issue #11, defect 1): keepalived with a
// higher priority preempts a vipd master. keepalived sends its advert and
// its gratuitous ARPs within a millisecond; vipd's conflict watch sees the
// other MAC while vipd still owns. vipd must step down without announcing
// itself again, so the clients follow keepalived at once. Before the fix
// vipd re-announced its own MAC over keepalived's and the clients lost the
// VIP until keepalived announced again (5 s with its default
// garp_master_delay, never with the lab's 0). Several rounds, both families.
func TestLabKeepalivedPreemptsVipd(t *testing.T) {
	requireKeepalived(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	r := vrrplab.Router{VRID: 63, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(4), l.VIPv6(4)}}
	const port = 7163
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if _, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 100, r, nil)); err != nil {
		t.Fatal(err)
	}
	probes := startProbes(t, l, r.VIPs, port)
	waitAll := func(node string, timeout time.Duration) { t.Helper(); waitOwners(t, probes, node, timeout) }
	waitAll("node2", 15*time.Second)
	// A clean preemption costs the clients a few probes (tens of ms); the
	// defect cost seconds. The bound is generous on a loaded machine and
	// still an order of magnitude below the defect.
	const maxInterruption = time.Second
	// keepalived's own gratuitous ARP defaults, as operators run it: the
	// burst sent at once, the next one garp_master_delay (5 s) later.
	conf := vrrplab.KeepalivedConfig(n1, 150, r, netip.Addr{}, nil)
	for _, tuned := range []string{"  vrrp_garp_master_repeat 5\n", "  vrrp_garp_master_delay 0\n", "  vrrp_garp_interval 0.2\n", "  vrrp_gna_interval 0.2\n"} {
		if !strings.Contains(conf, tuned) {
			t.Fatalf("keepalived config lacks %q:\n%s", tuned, conf)
		}
		conf = strings.Replace(conf, tuned, "", 1)
	}
	for round := 1; round <= 3; round++ {
		at := time.Now()
		ka, err := vrrplab.StartKeepalived(l, n1, conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := ka.WaitLog("Entering MASTER STATE", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		waitAll("node1", 5*time.Second)
		for _, p := range probes {
			f, ok := p.Snapshot().FailoverAfter(at)
			if !ok || f.From != "node2" || f.To != "node1" {
				t.Fatalf("round %d: no failover node2 -> node1 seen: %+v", round, f)
			}
			t.Logf("round %d: keepalived preempts vipd: %s", round, f)
			if f.Interruption > maxInterruption {
				t.Errorf("round %d: clients lost the VIP for %s after keepalived preempted vipd (bound %s): vipd announced over the new master", round, f.Interruption, maxInterruption)
			}
		}
		// keepalived leaves (priority 0): vipd takes the VIPs back.
		if err := ka.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		waitAll("node2", 10*time.Second)
	}
}

// TestLabConflictBeforeAdvertIsNotAnswered makes the race of the test above
// deterministic: a new master's gratuitous ARP / NA reaches the vipd master
// 20 ms before its priority-255 advert. vipd must let the election decide:
// it steps down on the advert and sends no announcement of its own while
// the other router is master. (Before the fix it re-announced at once.)
func TestLabConflictBeforeAdvertIsNotAnswered(t *testing.T) {
	lab.Require(t)
	l := lab.New(t, lab.Options{Nodes: 1, Extra: []string{"rogue"}})
	bin := lab.BuildVipd(t)
	n1, rogue := l.Nodes[0], l.Extra["rogue"]
	r := vrrplab.Router{VRID: 64, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(5), l.VIPv6(5)}}
	const port = 7164
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartVipdConfig(n1, bin, vrrplab.VipdConfig(n1, 100, r, nil)); err != nil {
		t.Fatal(err)
	}
	probes := startProbes(t, l, r.VIPs, port)
	waitOwners(t, probes, "node1", 15*time.Second)
	// The other router's sockets, opened before the event.
	conns := map[int]vrrp.Conn{}
	for _, fam := range []int{4, 6} {
		// Opened, and its source address checked, in rogue's namespace (the
		// link-local address may still be tentative).
		if err := rogue.Do(func() error {
			c, err := vrrp.Open(ctxFor(t), rogue.Link, fam)
			if err != nil {
				return err
			}
			conns[fam] = c
			deadline := time.Now().Add(10 * time.Second)
			for c.Ready() != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			return c.Ready()
		}); err != nil {
			t.Fatal(err)
		}
		defer conns[fam].Close()
	}
	sendAdverts := func(conns map[int]vrrp.Conn, r vrrplab.Router) error {
		for fam, c := range conns {
			vips, dst := r.VIPs[:1], vrrp.GroupV4
			if fam == 6 {
				vips, dst = r.VIPs[1:], vrrp.GroupV6
			}
			b, err := vrrp.Encode(vrrp.Advert{VRID: uint8(r.VRID), Priority: 255, Interval: r.Interval, Addrs: vips}, c.Source(), dst)
			if err != nil {
				return err
			}
			if err := c.Send(b, dst); err != nil {
				return err
			}
		}
		return nil
	}
	// Sent from rogue's namespace too: the IPv6 zone names its eth0.
	advertise := func() {
		t.Helper()
		if err := rogue.Do(func() error { return sendAdverts(conns, r) }); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	for _, vip := range r.VIPs {
		if err := rogue.Announce(vip); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the stimulus: the advert lags the GARP
	// Master for 1.5 s (adverts every interval), then silent.
	end := at.Add(1500 * time.Millisecond)
	for time.Now().Before(end) {
		advertise()
		time.Sleep(r.Interval)
	}
	silentAt := time.Now()
	st, err := vrrplab.VipdStatus(n1)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range st.Routers {
		if rt.State != "backup" || rt.MasterPriority != 255 {
			t.Fatalf("vipd did not follow the priority-255 master: %+v", st.Routers)
		}
	}
	for _, p := range probes {
		for _, a := range p.Snapshot().Announcements {
			if a.Node == "node1" && a.At.After(at) && a.At.Before(silentAt) {
				t.Errorf("vipd announced %s at +%s while another router was master (conflict answered over the election)",
					p.Snapshot().VIP, a.At.Sub(at).Round(time.Millisecond))
			}
		}
	}
	// The other router fell silent: vipd takes the VIPs back.
	waitOwners(t, probes, "node1", 10*time.Second)
}

// startProbes probes each VIP on port from the client every 10 ms.
func startProbes(t *testing.T, l *lab.Lab, vips []netip.Addr, port int) []*lab.Probe {
	t.Helper()
	var probes []*lab.Probe
	for _, vip := range vips {
		p, err := l.StartProbe(ctxFor(t), vip, port, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	return probes
}

// waitOwners waits until node answers every probe.
func waitOwners(t *testing.T, probes []*lab.Probe, node string, timeout time.Duration) {
	t.Helper()
	for _, p := range probes {
		if err := p.WaitOwner(node, timeout); err != nil {
			t.Fatal(err)
		}
	}
}
