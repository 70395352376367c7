package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/config"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBuildAndTeardown(t *testing.T) {
	Require(t)
	rootBefore := rootLinkNames(t)
	l, err := NewStandalone(ctxT(t), Options{Nodes: 2, Extra: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	if got := l.Namespaces(); len(got) != 6 {
		t.Fatalf("namespaces = %v, want switch + client + 2 nodes + api + observer", got)
	}
	want := map[string]string{"client": "198.51.100.2/24", "node1": "198.51.100.11/24", "node2": "198.51.100.12/24", "api": "198.51.100.201/24"}
	for name, p := range want {
		h := l.Host(name)
		if h == nil || h.IPv4.String() != p {
			t.Fatalf("host %s: %+v, want IPv4 %s", name, h, p)
		}
		if ok, err := h.HasAddress(h.IPv6.Addr()); err != nil || !ok {
			t.Errorf("%s lacks %s (err %v)", name, h.IPv6, err)
		}
		// Never inherited from the host (whose ip_forward=1 would make a
		// node that gave a VIP up route to the new owner).
		if err := h.Do(func() error {
			for _, k := range []string{"ipv4/conf/all/forwarding", "ipv4/conf/eth0/forwarding", "ipv6/conf/all/forwarding"} {
				b, err := os.ReadFile("/proc/sys/net/" + k)
				if err != nil {
					return err
				}
				if strings.TrimSpace(string(b)) != "0" {
					return fmt.Errorf("%s = %s", k, bytes.TrimSpace(b))
				}
			}
			return nil
		}); err != nil {
			t.Errorf("%s forwards: %v", name, err)
		}
		if h.MAC[0]&0x02 == 0 || h.MAC[0]&0x01 != 0 {
			t.Errorf("%s MAC %s is not locally administered unicast", name, h.MAC)
		}
		if !strings.Contains(h.NetNS, l.ID) {
			t.Errorf("netns %s lacks lab id %s", h.NetNS, l.ID)
		}
	}
	if top := l.Topology(); !strings.Contains(top, "198.51.100.201/24") || !strings.Contains(top, l.Switch) {
		t.Errorf("topology:\n%s", top)
	} else {
		t.Log("\n" + top)
	}
	if l.Extra["api"] != l.Host("api") || len(l.Nodes) != 2 || l.Client.Name != "client" {
		t.Fatalf("lab shape wrong: %+v", l)
	}
	// The root namespace gained no links from us.
	for n := range rootLinkNames(t) {
		if !rootBefore[n] && (n == "eth0" || n == "br0" || l.Host(n) != nil) {
			t.Errorf("link %q appeared in the root namespace", n)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if got := l.Namespaces(); len(got) != 0 {
		t.Fatalf("namespaces left after Close: %v", got)
	}
	if _, err := os.Stat(l.TempDir()); !os.IsNotExist(err) {
		t.Errorf("temp dir %s left: %v", l.TempDir(), err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func rootLinkNames(t *testing.T) map[string]bool {
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, l := range links {
		m[l.Attrs().Name] = true
	}
	return m
}

func TestPing(t *testing.T) {
	l := New(t, Options{Nodes: 2})
	RequireTool(t, "ping")
	ctx := ctxT(t)
	for _, pair := range [][2]*Host{{l.Client, l.Nodes[0]}, {l.Client, l.Nodes[1]}, {l.Nodes[0], l.Nodes[1]}} {
		for _, dst := range []netip.Addr{pair[1].IPv4.Addr(), pair[1].IPv6.Addr()} {
			if _, err := pair[0].Run(ctx, "ping", "-c", "1", "-W", "2", dst.String()); err != nil {
				t.Errorf("%s -> %s (%s): %v", pair[0], pair[1], dst, err)
			}
		}
	}
}

// TestVIPFailoverByHand moves a VIP between nodes with `ip addr` and a
// gratuitous announcement, and checks the probe sees owner, failover and MAC.
func TestVIPFailoverByHand(t *testing.T) {
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			t.Parallel()
			l := New(t, Options{Nodes: 2})
			ctx := ctxT(t)
			const port = 7000
			if err := l.StartResponders(port); err != nil {
				t.Fatal(err)
			}
			vip, bits := l.VIPv4(1), "32"
			if fam == "v6" {
				vip, bits = l.VIPv6(1), "128"
			}
			n1, n2 := l.Nodes[0], l.Nodes[1]
			addVIP := func(h *Host) {
				// As vipd binds: finite lifetime, never preferred as source.
				args := []string{"addr", "add", vip.String() + "/" + bits, "dev", "eth0", "valid_lft", "30", "preferred_lft", "0"}
				if vip.Is6() {
					args = append(args, "nodad")
				}
				if _, err := h.Run(ctx, "ip", args...); err != nil {
					t.Fatal(err)
				}
				if err := h.Announce(vip); err != nil {
					t.Fatalf("announce from %s: %v", h, err)
				}
			}
			addVIP(n1)
			p, err := l.StartProbe(ctx, vip, port, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.WaitOwner("node1", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			waitNeighborSample(t, p, "node1", p.Snapshot().Start, 5*time.Second)

			at := time.Now()
			if _, err := n1.Run(ctx, "ip", "addr", "del", vip.String()+"/"+bits, "dev", "eth0"); err != nil {
				t.Fatal(err)
			}
			if err := n1.WaitAddress(vip, false, time.Second); err != nil {
				t.Fatal(err)
			}
			addVIP(n2)
			if err := p.WaitOwner("node2", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			waitNeighborSample(t, p, "node2", at, 5*time.Second)
			rec := p.Stop()
			t.Log(rec.Summary())

			f, ok := rec.FailoverAfter(at)
			if !ok {
				t.Fatalf("no failover found: %s", rec.Summary())
			}
			t.Logf("failover: %s", f)
			if f.From != "node1" || f.To != "node2" {
				t.Errorf("failover %s, want node1 -> node2", f)
			}
			if f.Interruption <= 0 || f.Interruption > 3*time.Second {
				t.Errorf("interruption %s out of bounds", f.Interruption)
			}
			if spans := rec.Owners(); len(spans) < 2 || spans[len(spans)-1].Node != "node2" {
				t.Errorf("owners %v", spans)
			}
			seen := map[string]bool{}
			for _, s := range rec.Neighbors {
				for _, n := range rec.NeighborNodes(s) {
					seen[n] = true
				}
			}
			if !seen["node1"] || !seen["node2"] {
				t.Errorf("neighbour samples saw %v, want node1 and node2 (%d samples)", seen, len(rec.Neighbors))
			}
			if f.FirstAnnounce.IsZero() || f.FirstAnnounce.Before(at) || f.FirstAnnounce.After(f.FirstTo) {
				t.Errorf("announcement from node2 not seen between the event and its first reply: %v (announcements %v)", f.FirstAnnounce, rec.Announcements)
			}
			if rec.NodeFor(n2.MAC) != "node2" {
				t.Errorf("NodeFor(%s) = %q", n2.MAC, rec.NodeFor(n2.MAC))
			}
		})
	}
}

// waitNeighborSample waits until a neighbour sample taken at or after since
// names node. Samples are due every 50 ms, but under load one can come late or
// miss its 40 ms answer window, so a fixed sleep does not guarantee one (a
// 150 ms sleep here failed on a loaded machine with one sample in that time).
func waitNeighborSample(t *testing.T, p *Probe, node string, since time.Time, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec := p.Snapshot()
		for _, s := range rec.Neighbors {
			if s.At.Before(since) {
				continue
			}
			for _, n := range rec.NeighborNodes(s) {
				if n == node {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no neighbour sample named %s within %s (%d samples)", node, timeout, len(rec.Neighbors))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMissingAnnouncementIsNotHidden: the lab itself must not heal the
// client's neighbour cache, or a vipd that forgets its gratuitous ARP/NA
// would pass failover tests. Move the VIP silently: the client keeps sending
// to the old MAC; only the announcement moves it.
func TestMissingAnnouncementIsNotHidden(t *testing.T) {
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			t.Parallel()
			l := New(t, Options{Nodes: 2})
			vip := netip.PrefixFrom(l.VIPv4(4), 32)
			if fam == "v6" {
				vip = netip.PrefixFrom(l.VIPv6(4), 128)
			}
			n1, n2 := l.Nodes[0], l.Nodes[1]
			if err := l.StartResponders(7003); err != nil {
				t.Fatal(err)
			}
			if err := n1.AddAddress(vip); err != nil {
				t.Fatal(err)
			}
			if h, err := l.AddressHolders(vip.Addr()); err != nil || len(h) != 1 || h[0] != "node1" {
				t.Fatalf("holders of %s: %v %v", vip, h, err)
			}
			p, err := l.StartProbe(ctxT(t), vip.Addr(), 7003, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if err := p.WaitOwner("node1", 3*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("first reply after %s", time.Since(t0))
			if err := n1.DelAddress(vip); err != nil {
				t.Fatal(err)
			}
			if err := n2.AddAddress(vip); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitOwner("node2", 1500*time.Millisecond); err == nil {
				t.Fatal("client found the new owner without any announcement: something in the lab heals its neighbour cache")
			}
			at := time.Now()
			if err := n2.Announce(vip.Addr()); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitOwner("node2", 2*time.Second); err != nil {
				t.Fatal(err)
			}
			f, _ := p.Stop().FailoverAfter(at)
			t.Logf("after the announcement: first reply from %s after %s (%s)", f.To, f.FirstTo.Sub(at).Round(time.Millisecond), f)
		})
	}
}

// TestDualOwnerVisible: with the VIP on two nodes at once, neighbour
// sampling reports both MACs.
func TestDualOwnerVisible(t *testing.T) {
	l := New(t, Options{Nodes: 2})
	vip := l.VIPv4(2)
	at := time.Now()
	for _, h := range l.Nodes {
		if err := h.AddAddress(netip.PrefixFrom(vip, 32)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.StartResponders(7001); err != nil {
		t.Fatal(err)
	}
	p, err := l.StartProbe(ctxT(t), vip, 7001, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitReply(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Until a sample has caught both answers in its window (not a fixed
	// sleep: under load samples come late and answers miss the window).
	dual := 0
	var rec Record
	for deadline := time.Now().Add(5 * time.Second); dual == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rec = p.Snapshot()
		for _, s := range rec.Neighbors {
			if s.At.After(at) && len(s.MACs) == 2 {
				dual++
			}
		}
	}
	p.Stop()
	if dual == 0 {
		t.Fatalf("no sample with two MACs among %d samples", len(rec.Neighbors))
	}
	t.Logf("%d of %d neighbour samples saw both owners", dual, len(rec.Neighbors))
}

func TestParallelLabsDoNotCollide(t *testing.T) {
	Require(t)
	a, b := New(t, Options{Nodes: 1}), New(t, Options{Nodes: 1})
	if a.ID == b.ID || a.Switch == b.Switch || a.Nodes[0].NetNS == b.Nodes[0].NetNS {
		t.Fatalf("labs share names: %s/%s", a.Switch, b.Switch)
	}
	// Same VIP in both labs; each probe must only ever see its own node.
	ctx := ctxT(t)
	vip := a.VIPv4(3)
	var probes []*Probe
	for _, l := range []*Lab{a, b} {
		if err := l.Nodes[0].AddAddress(netip.PrefixFrom(vip, 32)); err != nil {
			t.Fatal(err)
		}
		if err := l.StartResponder(l.Nodes[0], 7002); err != nil {
			t.Fatal(err)
		}
		p, err := l.StartProbe(ctx, vip, 7002, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	for i, p := range probes {
		if err := p.WaitOwner("node1", 3*time.Second); err != nil {
			t.Fatalf("lab %d: %v", i, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i, p := range probes {
		l := []*Lab{a, b}[i]
		rec := p.Stop()
		for _, s := range rec.Neighbors {
			for _, m := range s.MACs {
				if !bytes.Equal(m, l.Nodes[0].MAC) {
					t.Errorf("lab %s saw foreign MAC %s", l.ID, m)
				}
			}
		}
	}
}

func TestProcessLifecycle(t *testing.T) {
	l := New(t, Options{Nodes: 1})
	n := l.Nodes[0]
	p, err := l.Start(n, "sh", "-c", "echo hello; ip -o link show eth0; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("never printed", 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not print") {
		t.Errorf("WaitOutput for a missing line: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(p.Output(), "eth0") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out := p.Output(); !strings.Contains(out, "hello") || !strings.Contains(out, n.MAC.String()) {
		t.Fatalf("output %q lacks hello / node MAC %s", out, n.MAC)
	}
	// The process lives in the node's namespace.
	procNS, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", p.PID))
	if err != nil {
		t.Fatal(err)
	}
	nodeNS, err := os.Stat("/run/netns/" + n.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	if procNS.Sys().(*syscall.Stat_t).Ino != nodeNS.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("process is not in the node namespace")
	}
	if exited, _ := p.Wait(50 * time.Millisecond); exited {
		t.Fatal("exited early")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Wait(3 * time.Second); !exited || err == nil {
		t.Fatalf("after SIGTERM: exited=%v err=%v", exited, err)
	}

	// A process still running at Close is killed.
	q, err := l.Start(n, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := q.Wait(time.Second); !exited {
		t.Fatal("process survived Close")
	}
	if _, err := l.Start(n, "true"); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestHTTPClientDialsInsideNamespace(t *testing.T) {
	l := New(t, Options{Nodes: 1})
	n := l.Nodes[0]
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "inside")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	resp, err := n.HTTPClient().Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "inside" {
		t.Fatalf("body %q", body)
	}
	// From the client namespace the same loopback address has no listener.
	if _, err := l.Client.HTTPClient().Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("client namespace reached the node's loopback listener")
	}
}

func TestLinkControls(t *testing.T) {
	l := New(t, Options{Nodes: 1})
	RequireTool(t, "ping")
	ctx := ctxT(t)
	n := l.Nodes[0]
	// A short reply timeout: the expected failures cost that much each.
	ping := func(dst netip.Addr) error {
		_, err := l.Client.Run(ctx, "ping", "-c", "1", "-W", "0.3", dst.String())
		return err
	}
	steps := []struct {
		name       string
		cut, heal  func() error
		carrierOff bool
	}{
		{"switch port", func() error { return n.SetSwitchPortUp(false) }, func() error { return n.SetSwitchPortUp(true) }, true},
		{"node link", func() error { return n.SetLinkUp(false) }, func() error { return n.SetLinkUp(true) }, true},
		{"isolated", func() error { return n.SetIsolated(true) }, func() error { return n.SetIsolated(false) }, false},
	}
	for _, s := range steps {
		if err := s.cut(); err != nil {
			t.Fatalf("%s cut: %v", s.name, err)
		}
		if err := ping(n.IPv4.Addr()); err == nil {
			t.Errorf("%s: ping succeeded while cut", s.name)
		}
		if s.name == "isolated" {
			link, err := n.nl.LinkByName("eth0")
			if err != nil {
				t.Fatal(err)
			}
			if link.Attrs().OperState != netlink.OperUp {
				t.Errorf("isolated: node link oper state %s, want up", link.Attrs().OperState)
			}
		}
		if err := s.heal(); err != nil {
			t.Fatalf("%s heal: %v", s.name, err)
		}
		for _, dst := range []netip.Addr{n.IPv4.Addr(), n.IPv6.Addr()} {
			var err error
			for range 10 { // the link needs a moment to regain carrier
				if err = ping(dst); err == nil {
					break
				}
			}
			if err != nil {
				t.Errorf("%s: after heal %s: %v", s.name, dst, err)
			}
		}
	}
}

func TestSweepDeadCreator(t *testing.T) {
	Require(t)
	// PIDs never exceed 2^22 on Linux, so this creator is certainly dead.
	// Unique per run: concurrent runs of this test must not share the name.
	stale := fmt.Sprintf("vl-%06x-4194399-node1", time.Now().UnixNano()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	New(t, Options{Nodes: 1})
	if _, err := os.Stat("/run/netns/" + stale); !os.IsNotExist(err) {
		t.Fatalf("stale namespace %s not swept (%v)", stale, err)
	}
}

// TestHelperProcess is not a real test: the tests below re-run the test
// binary with LAB_HELPER set to get a process that owns a lab and then dies.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("LAB_HELPER") == "" {
		t.Skip("helper for TestSignal*/TestCrash*")
	}
	l, err := NewStandalone(context.Background(), Options{Nodes: 1})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	p, err := l.Start(l.Nodes[0], "sleep", "60")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("LAB", p.PID, strings.Join(l.nsNames(), " "))
	time.Sleep(time.Minute)
}

// runHelper starts the helper and returns it with its child PID and namespaces.
func runHelper(t *testing.T) (*exec.Cmd, int, []string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LAB_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var line string
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(line, "\n") && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		line += string(buf[:n])
		if err != nil {
			break
		}
	}
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "LAB" {
		t.Fatalf("helper said %q", line)
	}
	var pid int
	fmt.Sscan(f[1], &pid)
	return cmd, pid, f[2:]
}

func nsExists(names []string) []string {
	var left []string
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			left = append(left, n)
		}
	}
	return left
}

func TestSignalTearsDown(t *testing.T) {
	Require(t)
	cmd, child, names := runHelper(t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("helper did not die by the re-delivered SIGTERM: %v", err)
	}
	if left := nsExists(names); len(left) != 0 {
		t.Errorf("namespaces left after SIGTERM: %v", left)
	}
	if pidAlive(child) {
		t.Errorf("lab process %d survived", child)
	}
}

func TestCrashLeavesNothingRunningAndIsSwept(t *testing.T) {
	Require(t)
	cmd, child, names := runHelper(t)
	cmd.Process.Kill() // no cleanup runs
	cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for pidAlive(child) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // Pdeathsig is asynchronous
	}
	if pidAlive(child) {
		t.Errorf("lab process %d survived its creator (Pdeathsig)", child)
	}
	if left := nsExists(names); len(left) == 0 {
		t.Log("namespaces already swept by a parallel lab")
	}
	New(t, Options{Nodes: 1}) // sweeps labs of dead creators
	if left := nsExists(names); len(left) != 0 {
		t.Errorf("namespaces of the dead helper not swept: %v", left)
	}
}

func TestCapture(t *testing.T) {
	l := New(t, Options{Nodes: 1})
	RequireTool(t, "tcpdump")
	c, err := l.Capture("arp")
	if err != nil {
		t.Fatal(err)
	}
	want := "Request who-has " + l.VIPv4(9).String()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(c.Output(), want) && time.Now().Before(deadline) {
		l.Nodes[0].Announce(l.VIPv4(9)) // until tcpdump is listening
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(c.Output(), want) || !strings.Contains(c.Output(), l.Nodes[0].MAC.String()) {
		t.Fatalf("capture lacks %q from %s:\n%s", want, l.Nodes[0].MAC, c.Output())
	}
}

func TestPartition(t *testing.T) {
	l := New(t, Options{Nodes: 2})
	RequireTool(t, "ping")
	ctx := ctxT(t)
	reach := func(from, to *Host) (v4, v6 bool) {
		_, e4 := from.Run(ctx, "ping", "-c", "1", "-W", "0.3", to.IPv4.Addr().String())
		_, e6 := from.Run(ctx, "ping", "-c", "1", "-W", "0.3", to.IPv6.Addr().String())
		return e4 == nil, e6 == nil
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := l.Partition(n1, n2); err != nil {
		t.Fatal(err)
	}
	if v4, v6 := reach(n1, n2); v4 || v6 {
		t.Errorf("partitioned node1 -> node2 still reachable: v4 %v v6 %v", v4, v6)
	}
	if v4, v6 := reach(n2, n1); v4 || v6 {
		t.Errorf("partitioned node2 -> node1 still reachable: v4 %v v6 %v", v4, v6)
	}
	if v4, v6 := reach(l.Client, n1); !v4 || !v6 {
		t.Errorf("client -> node1 cut by an unrelated partition: v4 %v v6 %v", v4, v6)
	}
	if err := l.Heal(n1, n2); err != nil {
		t.Fatal(err)
	}
	if v4, v6 := reach(n1, n2); !v4 || !v6 {
		t.Errorf("after Heal node1 -> node2: v4 %v v6 %v", v4, v6)
	}
	if err := l.Heal(n1, n2); err != nil {
		t.Errorf("second Heal: %v", err)
	}
}

func TestStartVipdRunsConfig(t *testing.T) {
	l := New(t, Options{Nodes: 1})
	// A stand-in for the vipd binary: proves the argv and the config file.
	fake := l.TempDir() + "/fake-vipd"
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"args: $*\"; cat \"$3\"; exec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := l.StartVipd(l.Nodes[0], fake, "mode: static\nmarker: 42\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("marker: 42", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if out := p.Output(); !strings.Contains(out, "args: run --config "+l.TempDir()) || !strings.Contains(out, "marker: 42") {
		t.Fatalf("output %q", out)
	}
	// A typed config is written as config.Marshal writes it.
	c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: "marker-node", Mode: config.ModeStatic}
	want, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p, err = l.StartVipdConfig(l.Nodes[0], fake, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("node: marker-node", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if out := p.Output(); !strings.Contains(out, string(want)) {
		t.Fatalf("output %q, want it to hold %q", out, want)
	}
}

func TestBuildVipd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/vipd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, err := BuildVipdContext(ctx)
	if _, statErr := os.Stat("../../cmd/vipd"); statErr != nil {
		if err == nil || !strings.Contains(err.Error(), "no cmd/vipd") {
			t.Fatalf("without cmd/vipd: path %q err %v, want a clear error", path, err)
		}
		t.Skipf("no cmd/vipd in this tree yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v %v", path, fi, err)
	}
	if again := BuildVipd(t); again != path {
		t.Errorf("second build %s != %s (want cached)", again, path)
	}
}
