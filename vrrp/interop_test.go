package vrrp_test

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

func requireKeepalived(t *testing.T) {
	t.Helper()
	lab.Require(t)
	if err := vrrplab.KeepalivedAvailable(); err != nil {
		lab.Unavailable(t, err)
	}
}

// waitVipdSees waits until vipd on h has learnt master (address) with prio
// for every virtual router, and has dropped no packet for a checksum error.
func waitVipdSees(t *testing.T, h *lab.Host, master []netip.Addr, prio uint8, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := vrrplab.VipdStatus(h)
		ok := err == nil && len(st.Routers) == len(master)
		for i := 0; ok && i < len(master); i++ {
			r := st.Routers[i]
			ok = r.State == "backup" && r.Master == master[i].String() && r.MasterPriority == prio
		}
		if err == nil && st.Dropped["checksum"] > 0 {
			t.Fatalf("vipd on %s dropped keepalived adverts for bad checksums: %+v", h.Name, st)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vipd on %s does not see master %v prio %d: %+v %v", h.Name, master, prio, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linkLocal returns h's IPv6 link-local address (its VRRP source).
func linkLocal(t *testing.T, h *lab.Host) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, err := h.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
				return p.Addr()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no link-local address", h.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeepalivedInterop runs keepalived (node1, priority 150) with vipd on
// node2 (200) and node3 (100), one VRID for an IPv4 and an IPv6 VIP
// (keepalived: a sync group of two instances). They must agree on one master
// through every change of hands between the two implementations.
func TestKeepalivedInterop(t *testing.T) {
	requireKeepalived(t)
	l := lab.New(t, lab.Options{Nodes: 3})
	bin := lab.BuildVipd(t)
	r := vrrplab.Router{VRID: 61, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(2), l.VIPv6(2)}}
	const port = 7161
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	stopPcap := startPcap(t, l, n1)
	startVipd := func(h *lab.Host, prio int) *lab.Process {
		t.Helper()
		p, err := l.StartVipdConfig(h, bin, vrrplab.VipdConfig(h, prio, r, nil))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// vipd (200) first, and master before keepalived starts: started
	// together, keepalived's Master_Down_Interval (341 ms at priority 150)
	// ends only 20 ms after vipd's (322 ms at 200), so a vipd that takes
	// longer than that to start (a loaded machine) let keepalived become
	// master for a moment, which waitKeepalivedBackup rightly fails.
	v2 := startVipd(n2, 200)

	p4, err := l.StartProbe(ctxFor(t), r.VIPs[0], port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p6, err := l.StartProbe(ctxFor(t), r.VIPs[1], port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitProbes := func(node string, timeout time.Duration) {
		t.Helper()
		for _, p := range []*lab.Probe{p4, p6} {
			if err := p.WaitOwner(node, timeout); err != nil {
				t.Fatal(err)
			}
		}
	}
	n2src := []netip.Addr{n2.IPv4.Addr(), linkLocal(t, n2)}
	n1src := []netip.Addr{n1.IPv4.Addr(), linkLocal(t, n1)}

	// 1. vipd (200) is master; keepalived and the other vipd join as backups.
	waitProbes("node2", 15*time.Second)
	ka, err := vrrplab.StartKeepalived(l, n1, vrrplab.KeepalivedConfig(n1, 150, r, netip.Addr{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	v3 := startVipd(n3, 100)
	waitVipdSees(t, n3, n2src, 200, 10*time.Second)
	waitKeepalivedBackup(t, ka)

	// 2. vipd master stops gracefully: its priority-0 advert makes keepalived
	// take over after Skew_Time rather than Master_Down_Interval.
	at := time.Now()
	v2.Signal(syscall.SIGTERM)
	v2.Wait(10 * time.Second)
	waitProbes("node1", 10*time.Second)
	if err := ka.WaitLog("received priority 0 advertisement", 2*time.Second); err != nil {
		t.Error(err)
	}
	logFailover(t, "vipd SIGTERM -> keepalived", at, p4, p6)
	waitVipdSees(t, n3, n1src, 150, 10*time.Second)
	checkTshark(t, stopPcap(), append(n2src, n1src...)...)

	// 3. vipd with a higher priority comes back: keepalived yields.
	v2 = startVipd(n2, 200)
	waitProbes("node2", 15*time.Second)

	// 4. vipd master crashes: keepalived (150) takes over from vipd's silence.
	at = time.Now()
	v2.Kill()
	v2.Wait(5 * time.Second)
	waitProbes("node1", 10*time.Second)
	logFailover(t, "vipd SIGKILL -> keepalived", at, p4, p6)

	// 5. keepalived master crashes: vipd node3 takes over.
	at = time.Now()
	if err := ka.Crash(); err != nil {
		t.Fatal(err)
	}
	ka.Wait(5 * time.Second)
	// keepalived has no dead-man's switch: its VIPs stay on node1 forever.
	// Remove them so the client's view is not a race (the benchmark
	// measures that leftover instead).
	vrrplab.CleanVIPs(n1, r.VIPs)
	waitProbes("node3", 10*time.Second)
	logFailover(t, "keepalived SIGKILL -> vipd", at, p4, p6)
	if st, err := vrrplab.VipdStatus(n3); err != nil || st.Dropped["checksum"] > 0 {
		t.Errorf("vipd status %+v %v", st, err)
	}
	_ = v3
}

func logFailover(t *testing.T, name string, at time.Time, probes ...*lab.Probe) {
	t.Helper()
	for _, p := range probes {
		if f, ok := p.Snapshot().FailoverAfter(at); ok {
			t.Logf("%s: %s", name, f)
		}
	}
}

// startPcap records VRRP seen by h (its own adverts, multicast and unicast
// to it) into a pcap file; stop ends the capture and returns the file. (The
// bridge itself only sees flooded frames, not unicast between ports.)
func startPcap(t *testing.T, l *lab.Lab, h *lab.Host) (stop func() string) {
	t.Helper()
	path := filepath.Join(l.TempDir(), "vrrp-"+h.Name+".pcap")
	p, err := l.Start(h, "tcpdump", "-i", h.Link, "-w", path, "-U", "--immediate-mode", "proto", "112")
	if err != nil {
		t.Fatal(err)
	}
	// tcpdump says so once its filter is attached (a fixed sleep raced its
	// start-up on a loaded machine).
	if err := p.WaitOutput("listening on", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return func() string {
		time.Sleep(300 * time.Millisecond)
		p.Signal(syscall.SIGINT)
		p.Wait(5 * time.Second)
		t.Logf("capture: %s", p.Output())
		if os.Getenv("VRRP_KEEP_PCAP") != "" {
			exec.Command("cp", path, "/tmp/").Run()
		}
		return path
	}
}

// checkTshark has Wireshark's dissector judge the adverts sent from srcs:
// every one must decode as VRRPv3 with a good checksum.
func checkTshark(t *testing.T, pcap string, srcs ...netip.Addr) {
	t.Helper()
	lab.RequireTool(t, "tshark")
	out, err := exec.Command("tshark", "-r", pcap, "-Y", "vrrp", "-T", "fields",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "vrrp.version", "-e", "vrrp.checksum.status").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	seen := map[netip.Addr]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			continue
		}
		src, err := netip.ParseAddr(f[0] + f[1])
		if err != nil {
			continue
		}
		for _, s := range srcs {
			if s != src {
				continue
			}
			seen[s]++
			if f[4] != "3" || f[5] != "1" { // checksum.status 1 = Good
				t.Fatalf("tshark: advert from %s to %s%s: version %s, checksum status %s (want 3, 1 = good)", src, f[2], f[3], f[4], f[5])
			}
		}
	}
	for _, s := range srcs {
		if seen[s] == 0 {
			t.Errorf("tshark saw no advert from %s", s)
		}
	}
	t.Logf("tshark: valid VRRPv3 adverts with good checksums: %v", seen)
}

// TestKeepalivedUnicastInterop: keepalived with unicast_peer and vipd with
// unicastPeers (IPv4) agree on one master; tshark validates vipd's unicast
// adverts (checksum over the unicast pseudo-header).
func TestKeepalivedUnicastInterop(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testKeepalivedUnicast(t, 4) })
	t.Run("ipv6", func(t *testing.T) { testKeepalivedUnicast(t, 6) })
}

func testKeepalivedUnicast(t *testing.T, fam int) {
	requireKeepalived(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	vip, a1, a2 := l.VIPv4(3), n1.IPv4.Addr(), n2.IPv4.Addr()
	if fam == 6 {
		vip, a1, a2 = l.VIPv6(3), n1.IPv6.Addr(), n2.IPv6.Addr()
	}
	r := vrrplab.Router{VRID: 62, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip}, Unicast: true}
	const port = 7162
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	stopPcap := startPcap(t, l, n1)
	// vipd first: keepalived then joins next to a higher-priority master
	// and must never become master itself.
	v2, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 200, r, []netip.Addr{a1}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.StartProbe(ctxFor(t), r.VIPs[0], port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOwner("node2", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ka, err := vrrplab.StartKeepalived(l, n1, vrrplab.KeepalivedConfig(n1, 150, r, netip.Addr{}, []netip.Addr{a2}))
	if err != nil {
		t.Fatal(err)
	}
	waitKeepalivedBackup(t, ka)
	// vipd stops: priority 0 by unicast; keepalived takes over.
	at := time.Now()
	v2.Signal(syscall.SIGTERM)
	v2.Wait(10 * time.Second)
	if err := p.WaitOwner("node1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ka.WaitLog("received priority 0 advertisement", 2*time.Second); err != nil {
		t.Error(err)
	}
	logFailover(t, "unicast: vipd SIGTERM -> keepalived", at, p)
	// vipd (lower priority now) sees keepalived as master by unicast.
	if _, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 100, r, []netip.Addr{a1})); err != nil {
		t.Fatal(err)
	}
	src1, src2 := n1.IPv4.Addr(), n2.IPv4.Addr()
	if fam == 6 {
		// keepalived sends from its unicast_src_ip, vipd from its link-local address.
		src1, src2 = n1.IPv6.Addr(), linkLocal(t, n2)
	}
	waitVipdSees(t, n2, []netip.Addr{src1}, 150, 10*time.Second)
	checkTshark(t, stopPcap(), src2, src1)
}

// waitKeepalivedBackup checks keepalived enters BACKUP next to a
// higher-priority vipd master and stays there for a second.
func waitKeepalivedBackup(t *testing.T, ka *vrrplab.Keepalived) {
	t.Helper()
	if err := ka.WaitLog("Entering BACKUP STATE", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if strings.Contains(ka.Output(), "Entering MASTER STATE") {
		t.Fatalf("keepalived became master next to a higher-priority vipd:\n%s", ka.Output())
	}
}
