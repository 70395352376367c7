package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdarp "github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/node"
	"github.com/vipd/vipd/internal/testutil"
)

// These tests run the real vipd binary in static mode inside the network
// lab: one node namespace holds the VIPs, the client namespace watches the
// wire and probes the VIP.

const probePort = 7777

// addrEvents records, from the test process, when addresses appear on and
// vanish from a namespace (netlink subscription bound to that namespace).
type addrEvents struct {
	mu     sync.Mutex
	added  map[netip.Addr][]time.Time
	gone   map[netip.Addr][]time.Time
	cancel func()
}

func watchAddrs(t *testing.T, h *lab.Host) *addrEvents {
	t.Helper()
	ns, err := netns.GetFromName(h.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}
	ev := &addrEvents{added: map[netip.Addr][]time.Time{}, gone: map[netip.Addr][]time.Time{}}
	var once sync.Once
	ev.cancel = func() { once.Do(func() { close(done); ns.Close() }) }
	t.Cleanup(ev.cancel)
	go func() {
		for u := range ch {
			at := time.Now()
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			a = a.Unmap()
			ev.mu.Lock()
			if u.NewAddr {
				ev.added[a] = append(ev.added[a], at)
			} else {
				ev.gone[a] = append(ev.gone[a], at)
			}
			ev.mu.Unlock()
		}
	}()
	return ev
}

// announcement is a GARP or unsolicited NA for a VIP seen in the client namespace.
type announcement struct {
	at  time.Time
	mac net.HardwareAddr
	arp string // "request"/"reply" for IPv4, "na" for IPv6
}

// captureAnnouncements listens in h's namespace for ARP frames and ICMPv6
// neighbour advertisements about vips.
// count says how many were seen so far for a VIP; stop ends the capture.
func captureAnnouncements(t *testing.T, h *lab.Host, vips ...netip.Addr) (count func(netip.Addr) int, stop func() map[netip.Addr][]announcement) {
	t.Helper()
	var conns []*packet.Conn
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		for _, proto := range []uint16{0x0806, 0x86dd} {
			c, err := packet.Listen(ifi, packet.Raw, int(proto), nil)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	var mu sync.Mutex
	seen := map[netip.Addr][]announcement{}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *packet.Conn) {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				at := time.Now()
				// Clone: the parsed MAC must not alias the reused buffer.
				if a, ann, ok := parseAnnouncement(bytes.Clone(buf[:n])); ok && want[a] {
					ann.at = at
					mu.Lock()
					seen[a] = append(seen[a], ann)
					mu.Unlock()
				}
			}
		}(c)
	}
	count = func(a netip.Addr) int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[a])
	}
	stopped := false
	stop = func() map[netip.Addr][]announcement {
		if !stopped {
			stopped = true
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	t.Cleanup(func() { stop() })
	return count, stop
}

// bindWatch brackets, for each VIP, when it was bound on a node and when
// its first announcement reached the client namespace.
type bindWatch struct {
	mu               sync.Mutex
	bound, announced map[netip.Addr][2]time.Time // earliest, latest possible instant
}

// watchBindToAnnouncement measures bind -> first announcement for vips
// bound on h, as seen from c. One goroutine observes both, in rounds on one
// clock:
//
//  1. drain every ARP/IPv6 frame that has reached c (1 ms read deadline);
//  2. dump h's addresses. A VIP whose announcement was just drained was
//     bound before it was announced, so it is in this dump at the latest.
//
// The first dump showing a VIP brackets its bind between the start of the
// previous dump and the end of this one; the round that first drains its
// announcement brackets the arrival between the end of the previous drain
// and the end of this one. So the figure is an interval: narrow (a round is
// ~1-2 ms) when the machine is idle, wider when the watcher stalls, never
// wrong. Timestamping a netlink event and a captured frame in two goroutines,
// as before, gave negative figures: under load either reader runs late, and
// for IPv6 the kernel emits RTM_NEWADDR for a nodad address only from its
// addrconf work, after the add has returned and vipd may already have sent
// its NA.
func watchBindToAnnouncement(t *testing.T, h, c *lab.Host, vips ...netip.Addr) *bindWatch {
	t.Helper()
	var conns []*packet.Conn
	err := c.Do(func() error {
		ifi, err := net.InterfaceByName(c.Link)
		if err != nil {
			return err
		}
		for _, proto := range []uint16{0x0806, 0x86dd} {
			pc, err := packet.Listen(ifi, packet.Raw, int(proto), nil)
			if err != nil {
				return err
			}
			conns = append(conns, pc)
		}
		return nil
	})
	if err != nil {
		for _, pc := range conns {
			pc.Close()
		}
		t.Fatal(err)
	}
	w := &bindWatch{bound: map[netip.Addr][2]time.Time{}, announced: map[netip.Addr][2]time.Time{}}
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 2048)
		prevDrainEnd, prevDumpStart := time.Now(), time.Now() // nothing is bound or announced yet
		for {
			select {
			case <-done:
				return
			default:
			}
			var anns []netip.Addr
			for _, pc := range conns {
				if err := pc.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
					return
				}
				for {
					n, _, err := pc.ReadFrom(buf)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						break
					}
					if err != nil {
						return
					}
					if a, _, ok := parseAnnouncement(buf[:n]); ok && want[a] {
						anns = append(anns, a)
					}
				}
			}
			drainEnd := time.Now()
			dumpStart := time.Now()
			addrs, err := h.Addrs()
			dumpEnd := time.Now()
			if err != nil {
				continue
			}
			w.mu.Lock()
			for _, p := range addrs {
				if a := p.Addr(); want[a] && w.bound[a][0].IsZero() {
					w.bound[a] = [2]time.Time{prevDumpStart, dumpEnd}
				}
			}
			for _, a := range anns {
				if w.announced[a][0].IsZero() {
					w.announced[a] = [2]time.Time{prevDrainEnd, drainEnd}
				}
			}
			w.mu.Unlock()
			prevDrainEnd, prevDumpStart = drainEnd, dumpStart
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		for _, pc := range conns {
			pc.Close()
		}
	})
	return w
}

// figure returns the shortest and longest bind -> first announcement that
// the observations of vip allow; ok once both were seen.
func (w *bindWatch) figure(vip netip.Addr) (lo, hi time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, a := w.bound[vip], w.announced[vip]
	if b[0].IsZero() || a[0].IsZero() {
		return 0, 0, false
	}
	return max(0, a[0].Sub(b[1])), a[1].Sub(b[0]), true
}

// parseAnnouncement recognises a gratuitous ARP (sender IP = target IP) or an
// ICMPv6 neighbour advertisement, from a raw Ethernet frame.
func parseAnnouncement(f []byte) (netip.Addr, announcement, bool) {
	if len(f) < 14 {
		return netip.Addr{}, announcement{}, false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0806:
		var p mdarp.Packet
		if err := p.UnmarshalBinary(f[14:]); err != nil || p.SenderIP != p.TargetIP {
			return netip.Addr{}, announcement{}, false
		}
		kind := "request"
		if p.Operation == mdarp.OperationReply {
			kind = "reply"
		}
		return p.SenderIP, announcement{mac: p.SenderHardwareAddr, arp: kind}, true
	case 0x86dd:
		// IPv6 header (40) then ICMPv6; type 136 = neighbour advertisement.
		if len(f) < 14+40+24 || f[14+6] != 58 || f[14+40] != 136 {
			return netip.Addr{}, announcement{}, false
		}
		target, _ := netip.AddrFromSlice(f[14+40+8 : 14+40+24])
		return target, announcement{mac: net.HardwareAddr(f[6:12]), arp: "na"}, true
	}
	return netip.Addr{}, announcement{}, false
}

// startStatic runs vipd in static mode on h holding vips. (The lab logs
// every process's output when a test fails.)
func startStatic(t *testing.T, l *lab.Lab, h *lab.Host, bin string, vips ...netip.Addr) *lab.Process {
	t.Helper()
	p, err := l.StartVipdConfig(h, bin, lab.StaticConfig(h.Name, vips...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hasAddr(t *testing.T, h *lab.Host, a netip.Addr) bool {
	t.Helper()
	ok, err := h.HasAddress(a)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestLabStaticHoldsAnnouncesAndCleansUp(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4, v6 := l.VIPv4(1), l.VIPv6(1)
	if err := l.StartResponders(probePort); err != nil {
		t.Fatal(err)
	}
	announced, stopCapture := captureAnnouncements(t, l.Client, v4, v6)
	bindToAnn := watchBindToAnnouncement(t, n, l.Client, v4, v6)

	p := startStatic(t, l, n, bin, v4, v6)

	// Bound, and reachable from the client through the VIP, v4 and v6.
	testutil.WaitFor(t, "VIPs bound", 10*time.Second, func() bool { return hasAddr(t, n, v4) && hasAddr(t, n, v6) })
	for _, vip := range []netip.Addr{v4, v6} {
		probe, err := l.StartProbe(context.Background(), vip, probePort, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := probe.WaitOwner(n.Name, 5*time.Second); err != nil {
			t.Fatalf("probe to %s: %v", vip, err)
		}
		probe.Stop()
	}

	// The announcements reached the client: GARP in both forms and an NA,
	// from the node's MAC, the first within milliseconds of the bind.
	// Until the 3-frame burst (100 ms apart) is in: a fixed 400 ms sleep
	// raced a vipd slowed down by a loaded machine.
	testutil.WaitFor(t, "the announcement burst", 5*time.Second, func() bool { return announced(v4) >= 3 && announced(v6) >= 3 })
	seen := stopCapture()
	for _, vip := range []netip.Addr{v4, v6} {
		anns := seen[vip]
		if len(anns) < 3 {
			t.Fatalf("%s: saw %d announcements, want at least the burst of 3: %+v", vip, len(anns), anns)
		}
		kinds := map[string]bool{}
		for _, a := range anns {
			if a.mac.String() != n.MAC.String() {
				t.Fatalf("%s announced with MAC %s, want the node's %s", vip, a.mac, n.MAC)
			}
			kinds[a.arp] = true
		}
		if vip.Is4() && !(kinds["request"] && kinds["reply"]) {
			t.Fatalf("%s: GARP forms seen %v, want both request and reply", vip, kinds)
		}
		// vipd announces as soon as Bind returns (node.Manager.Report), not
		// after a delay or a burst interval (100 ms here: a first
		// announcement lost or late would show as ~100 ms).
		const maxBindToAnnounce = 50 * time.Millisecond
		lo, hi, ok := bindToAnn.figure(vip)
		if !ok {
			t.Fatalf("%s: bind or first announcement not seen by the watcher", vip)
		}
		t.Logf("%s: bound -> first announcement on the wire: %s..%s", vip, lo, hi)
		if lo > maxBindToAnnounce {
			t.Errorf("%s: first announcement at least %s after the bind, want at most %s", vip, lo, maxBindToAnnounce)
		}
		if hi <= 0 {
			t.Errorf("%s: announced before it was bound (%s..%s)", vip, lo, hi)
		}
	}

	// The node's own connections keep using its own address, not the VIP.
	for _, peer := range []netip.Prefix{l.Client.IPv4, l.Client.IPv6} {
		var local netip.Addr
		err := n.Do(func() error {
			c, err := net.Dial("udp", netip.AddrPortFrom(peer.Addr(), 9).String())
			if err != nil {
				return err
			}
			defer c.Close()
			local = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		own := n.IPv4.Addr()
		if peer.Addr().Is6() {
			own = n.IPv6.Addr()
		}
		if local != own {
			t.Fatalf("node's connection to %s uses source %s, want its own address %s", peer.Addr(), local, own)
		}
	}

	// Deleted by hand: back within 1 s.
	for _, vip := range []netip.Addr{v4, v6} {
		if err := n.DelAddress(netip.PrefixFrom(vip, vip.BitLen())); err != nil {
			t.Fatal(err)
		}
		took := testutil.WaitFor(t, vip.String()+" restored", time.Second, func() bool { return hasAddr(t, n, vip) })
		t.Logf("%s deleted by hand, restored after %s", vip, took)
	}

	// SIGTERM: the VIPs are gone by the time the process has exited. (Their
	// kernel lifetime is 3 s, so absence right after exit proves vipd removed them.)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Wait(10 * time.Second); !exited {
		t.Fatalf("vipd did not exit on SIGTERM: %v", err)
	}
	for _, vip := range []netip.Addr{v4, v6} {
		if hasAddr(t, n, vip) {
			t.Fatalf("%s still bound after vipd exited on SIGTERM", vip)
		}
	}
}

func TestLabSIGKILLLeavesNoVIPBehind(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4, v6 := l.VIPv4(2), l.VIPv6(2)
	p := startStatic(t, l, n, bin, v4, v6)
	testutil.WaitFor(t, "VIPs bound", 10*time.Second, func() bool { return hasAddr(t, n, v4) && hasAddr(t, n, v6) })
	time.Sleep(1500 * time.Millisecond) // a refresh or two, as in steady state
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	p.Wait(5 * time.Second)
	const lifetime = 3 * time.Second
	for _, vip := range []netip.Addr{v4, v6} {
		testutil.WaitFor(t, vip.String()+" removed by the kernel", lifetime+2*time.Second, func() bool { return !hasAddr(t, n, vip) })
		t.Logf("%s: SIGKILL -> removed by the kernel after %s (lifetime %s)", vip, time.Since(killed).Round(10*time.Millisecond), lifetime)
	}
}

func TestLabStaleVIPIsRemovedAtStart(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4, v6 := l.VIPv4(3), l.VIPv6(3)
	// Leftovers of a crashed run, with a long lifetime so only vipd can remove them.
	for _, vip := range []netip.Addr{v4, v6} {
		args := []string{"addr", "add", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", "eth0", "valid_lft", "600", "preferred_lft", "0"}
		if vip.Is6() {
			args = append(args, "nodad")
		}
		if out, err := n.Command(context.Background(), "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	events := watchAddrs(t, n)
	p := startStatic(t, l, n, bin, v4, v6)
	testutil.WaitFor(t, "stale VIPs removed", 10*time.Second, func() bool {
		events.mu.Lock()
		defer events.mu.Unlock()
		return len(events.gone[v4]) > 0 && len(events.gone[v6]) > 0
	})
	testutil.WaitFor(t, "vipd logs the removal", 5*time.Second, func() bool {
		return strings.Count(p.Output(), "removed a stale VIP") == 2
	})
}

func TestLabRefusesPermanentAddressAsStale(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	// The node's own address configured as a VIP by mistake: vipd must not delete it.
	own := n.IPv4.Addr()
	p := startStatic(t, l, n, bin, own)
	if exited, _ := p.Wait(10 * time.Second); !exited {
		t.Fatal("vipd kept running with its node address configured as a VIP")
	}
	if !strings.Contains(p.Output(), "not added by vipd") {
		t.Fatalf("no clear error; output:\n%s", p.Output())
	}
	if !hasAddr(t, n, own) {
		t.Fatal("vipd deleted the node's own address")
	}
}

func TestLabInvalidConfigTouchesNothing(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	before, err := n.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	c := lab.StaticConfig(n.Name, l.VIPv4(4), l.VIPv6(4))
	c.Groups[0].VIPs[0].Interface = "eth7"
	wrongIfc, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.StartVipd(n, bin, string(wrongIfc)+"colour: blue\n")
	if err != nil {
		t.Fatal(err)
	}
	exited, err := p.Wait(10 * time.Second)
	if !exited {
		t.Fatal("vipd with an invalid config did not exit")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want exit code 2; output:\n%s", err, p.Output())
	}
	if !strings.Contains(p.Output(), `unknown key "colour"`) {
		t.Fatalf("output does not name the unknown key:\n%s", p.Output())
	}
	// With the unknown key fixed, the next problem is named the same way.
	p, err = l.StartVipd(n, bin, string(wrongIfc))
	if err != nil {
		t.Fatal(err)
	}
	p.Wait(10 * time.Second)
	if !strings.Contains(p.Output(), `groups[0].vips[0].interface: "eth7": no such network interface on this node`) {
		t.Fatalf("output does not name the bad interface:\n%s", p.Output())
	}
	after, err := n.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("addresses changed by an invalid config:\nbefore %v\nafter  %v", before, after)
	}
}

func getStatus(t *testing.T, h *lab.Host) (node.Status, int) {
	t.Helper()
	c := h.HTTPClient()
	resp, err := c.Get("http://127.0.0.1:9610/status")
	if err != nil {
		return node.Status{}, 0
	}
	defer resp.Body.Close()
	var st node.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding /status: %v", err)
	}
	ready, err := c.Get("http://127.0.0.1:9610/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	return st, ready.StatusCode
}

// A node whose link goes down is not eligible: it gives the VIPs up,
// /readyz turns 503 and /status says why; when the link returns it owns again.
func TestLabLinkDownGivesUpAndStatusSaysWhy(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4 := l.VIPv4(5)
	p := startStatic(t, l, n, bin, v4)
	testutil.WaitFor(t, "owner in /status", 10*time.Second, func() bool {
		st, code := getStatus(t, n)
		return code == 200 && len(st.Groups) == 1 && st.Groups[0].Owner && st.Groups[0].VIPs[0].Bound
	})
	if err := n.SetLinkUp(false); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "VIP released on link down", 5*time.Second, func() bool { return !hasAddr(t, n, v4) })
	st, code := getStatus(t, n)
	if code != 503 || st.Ready || st.Groups[0].Owner || !strings.Contains(st.Groups[0].Reason, "link eth0 down") {
		t.Fatalf("after link down: readyz %d, status %+v", code, st)
	}
	if err := n.SetLinkUp(true); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "VIP back on link up", 10*time.Second, func() bool { return hasAddr(t, n, v4) })
	testutil.WaitFor(t, "ready again", 5*time.Second, func() bool { _, code := getStatus(t, n); return code == 200 })
	// Conflict detection survived the link flap (its sockets saw "network is down").
	if err := l.Client.Announce(v4); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "conflict counted after the link flap", 5*time.Second, func() bool {
		st, _ := getStatus(t, n)
		return len(st.Groups) == 1 && st.Groups[0].VIPs[0].Conflicts > 0
	})
	if strings.Contains(p.Output(), "conflict detection stopped") {
		t.Fatalf("conflict detection stopped on the link flap:\n%s", p.Output())
	}
}

// Another host claiming an owned VIP is counted, shown in /status, and
// answered with a fresh announcement, so neighbours return to the owner.
func TestLabConflictingClaimIsCountedAndAnswered(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	owner, observer := l.Nodes[0], l.Nodes[1]
	v4, v6 := l.VIPv4(6), l.VIPv6(6)
	p := startStatic(t, l, owner, bin, v4, v6)
	testutil.WaitFor(t, "VIPs bound", 10*time.Second, func() bool { return hasAddr(t, owner, v4) && hasAddr(t, owner, v6) })
	neighMAC := func(vip netip.Addr) string {
		out, _ := observer.Command(context.Background(), "ip", "neigh", "show", vip.String()).CombinedOutput()
		f := strings.Fields(string(out))
		for i := range f {
			if f[i] == "lladdr" && i+1 < len(f) {
				return f[i+1]
			}
		}
		return ""
	}
	for _, vip := range []netip.Addr{v4, v6} {
		// The observer learns the VIP's owner by talking to it.
		if out, err := observer.Command(context.Background(), "ping", "-c1", "-W2", vip.String()).CombinedOutput(); err != nil {
			t.Fatalf("ping %s from the observer: %v\n%s", vip, err, out)
		}
		if got := neighMAC(vip); got != owner.MAC.String() {
			t.Fatalf("observer's entry for %s = %q, want the owner's %s", vip, got, owner.MAC)
		}
	}
	// Past the neighbour locktime (1 s), so the false claim does take effect
	// on the observer and only the owner's answer can undo it.
	time.Sleep(1100 * time.Millisecond)
	for _, vip := range []netip.Addr{v4, v6} {
		if err := l.Client.Announce(vip); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "conflicts in /status", 5*time.Second, func() bool {
		st, _ := getStatus(t, owner)
		if len(st.Groups) == 0 {
			return false
		}
		for _, v := range st.Groups[0].VIPs {
			if v.Conflicts == 0 || v.LastConflict != l.Client.MAC.String() {
				return false
			}
		}
		return true
	})
	for _, vip := range []netip.Addr{v4, v6} {
		testutil.WaitFor(t, "observer back on the owner's MAC for "+vip.String(), 5*time.Second, func() bool {
			return neighMAC(vip) == owner.MAC.String()
		})
	}
	if !strings.Contains(p.Output(), "another host claims a VIP this node owns") {
		t.Fatalf("conflict not logged:\n%s", p.Output())
	}
}
