package arp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
)

// The lab: two network namespaces of our own joined by a veth pair. Nothing
// is created in, or attached to, the root namespace.
type lab struct {
	a, b       string // namespace names
	macA, macB net.HardwareAddr
}

const (
	labIfA = "va"
	labIfB = "vb"
)

var (
	labVIP4 = netip.MustParseAddr("198.51.100.10")
	labVIP6 = netip.MustParseAddr("2001:db8:100::10")
	// What B believes before the announcement: the old owner's MAC.
	labOldMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x99}
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getenv("VIPD_SKIP_LAB") == "1" { // unit-test-only pass (scripts/test, -race)
		t.Skip("VIPD_SKIP_LAB=1: lab test skipped")
	}
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
		t.Fatal("lab test needs root (CAP_NET_ADMIN, CAP_NET_RAW) and VIPD_REQUIRE_LAB=1 is set")
	}
	t.Skip("lab test needs root to create network namespaces; skipping (set VIPD_REQUIRE_LAB=1 to make this a failure)")
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab {
	requireRoot(t)
	reapLeftovers()
	l := &lab{
		a:    fmt.Sprintf("arpt-%d-a", os.Getpid()),
		b:    fmt.Sprintf("arpt-%d-b", os.Getpid()),
		macA: net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a},
		macB: net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x0b},
	}
	for _, ns := range []string{l.a, l.b} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		// No DAD: link-local and test addresses are usable at once.
		run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	// Created inside A, peer moved straight into B: never in the root ns.
	run(t, "ip", "-n", l.a, "link", "add", labIfA, "address", l.macA.String(), "type", "veth",
		"peer", "name", labIfB, "address", l.macB.String(), "netns", l.b)
	run(t, "ip", "-n", l.a, "addr", "add", "198.51.100.1/24", "dev", labIfA)
	run(t, "ip", "-n", l.b, "addr", "add", "198.51.100.2/24", "dev", labIfB)
	run(t, "ip", "-n", l.a, "addr", "add", "2001:db8:100::1/64", "dev", labIfA, "nodad")
	run(t, "ip", "-n", l.b, "addr", "add", "2001:db8:100::2/64", "dev", labIfB, "nodad")
	run(t, "ip", "-n", l.a, "link", "set", labIfA, "up")
	run(t, "ip", "-n", l.b, "link", "set", labIfB, "up")
	l.waitLinkLocal(t, l.a, labIfA)
	l.waitLinkLocal(t, l.b, labIfB)
	return l
}

// reapLeftovers deletes namespaces of earlier runs of this test that were
// killed before their cleanup ran: only our "arpt-<pid>-" names, and only
// when that process no longer exists.
func reapLeftovers() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		var pid int
		var side string
		if n, _ := fmt.Sscanf(name, "arpt-%d-%s", &pid, &side); n != 2 || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

func (l *lab) waitOperUp(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := run(t, "ip", "-n", ns, "-o", "link", "show", "dev", dev)
		if strings.Contains(out, "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: not operationally up after 10s:\n%s", ns, dev, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *lab) waitLinkLocal(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := run(t, "ip", "-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link")
		if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: no usable link-local address after 10s:\n%s", ns, dev, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inNS runs fn on a fresh OS thread switched into namespace ns. The thread
// is never unlocked, so Go discards it when the goroutine ends rather than
// reusing a thread in a foreign namespace.
func inNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("netns %s: %v", ns, err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		defer func() { errc <- nil }()
		fn()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("entering netns %s: %v", ns, err)
	}
}

// setStale plants the old owner's MAC for the VIP in B's neighbour table.
func (l *lab) setStale(t *testing.T, vip netip.Addr) {
	run(t, "ip", "-n", l.b, "neigh", "replace", vip.String(), "lladdr", labOldMAC.String(),
		"dev", labIfB, "nud", "stale")
	if got := l.neigh(t, vip); !strings.Contains(got, labOldMAC.String()) {
		t.Fatalf("stale entry not planted: %q", got)
	}
}

func (l *lab) neigh(t *testing.T, vip netip.Addr) string {
	return strings.TrimSpace(run(t, "ip", "-n", l.b, "neigh", "show", vip.String(), "dev", labIfB))
}

// waitNeigh waits until B's neighbour entry for vip carries mac.
func (l *lab) waitNeigh(t *testing.T, vip netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := l.neigh(t, vip)
		if strings.Contains(got, mac.String()) {
			t.Logf("B's neighbour entry after announcement: %s", got)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("B did not learn %s for %s within 5s: %q", mac, vip, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type captured struct {
	at    time.Time
	frame []byte
}

// capture receives every frame arriving on B's interface until ctx is done.
func (l *lab) capture(t *testing.T, ctx context.Context) <-chan captured {
	t.Helper()
	out := make(chan captured, 256)
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see inNS
		h, err := netns.GetFromName(l.b)
		if err != nil {
			ready <- err
			return
		}
		err = netns.Set(h)
		h.Close()
		if err != nil {
			ready <- err
			return
		}
		ifi, err := net.InterfaceByName(labIfB)
		if err != nil {
			ready <- err
			return
		}
		const ethPAll = 0x0003
		c, err := packet.Listen(ifi, packet.Raw, ethPAll, nil)
		if err != nil {
			ready <- err
			return
		}
		defer c.Close()
		ready <- nil
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := c.ReadFrom(buf)
			at := time.Now()
			if err != nil {
				continue
			}
			select {
			case out <- captured{at, bytes.Clone(buf[:n])}:
			default:
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("capture in %s: %v", l.b, err)
	}
	return out
}

// next returns the first captured frame match accepts, or fails after 5s.
func next(t *testing.T, c <-chan captured, what string, match func([]byte) bool) captured {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-c:
			if match(f.frame) {
				return f
			}
		case <-timeout:
			t.Fatalf("no %s captured within 5s", what)
		}
	}
}

func parseARP(f []byte) (*ethernet.Frame, *marp.Packet, bool) {
	var eth ethernet.Frame
	if eth.UnmarshalBinary(f) != nil || eth.EtherType != ethernet.EtherTypeARP {
		return nil, nil, false
	}
	var p marp.Packet
	if p.UnmarshalBinary(eth.Payload) != nil {
		return nil, nil, false
	}
	return &eth, &p, true
}

func isARP(op marp.Operation, ip netip.Addr) func([]byte) bool {
	return func(f []byte) bool {
		_, p, ok := parseARP(f)
		return ok && p.Operation == op && p.SenderIP == ip
	}
}

// parseNA returns the IPv6 header fields and message of an NA frame.
func parseNA(f []byte) (hop uint8, src, dst netip.Addr, icmp []byte, na *ndp.NeighborAdvertisement, ok bool) {
	if len(f) < 14+40 || binary.BigEndian.Uint16(f[12:14]) != 0x86dd {
		return
	}
	ip6 := f[14:]
	if ip6[6] != 58 { // next header ICMPv6 (no extension headers expected)
		return
	}
	plen := int(binary.BigEndian.Uint16(ip6[4:6]))
	if len(ip6) < 40+plen {
		return
	}
	hop = ip6[7]
	src, _ = netip.AddrFromSlice(ip6[8:24])
	dst, _ = netip.AddrFromSlice(ip6[24:40])
	icmp = ip6[40 : 40+plen]
	m, err := ndp.ParseMessage(icmp)
	if err != nil {
		return
	}
	na, ok = m.(*ndp.NeighborAdvertisement)
	return
}

func TestLabAnnounce(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frames := l.capture(t, ctx)
	l.setStale(t, labVIP4)
	l.setStale(t, labVIP6)

	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := NewAnnouncer(log, Schedule{Count: 3, Interval: 100 * time.Millisecond}, Open)
	defer a.Close()

	// --- IPv4 ---
	var t0 time.Time
	var startErr error
	inNS(t, l.a, func() {
		t0 = time.Now()
		startErr = a.Start(ctx, labIfA, labVIP4)
	})
	if startErr != nil {
		t.Fatal(startErr)
	}
	req := next(t, frames, "GARP request", isARP(marp.OperationRequest, labVIP4))
	t.Logf("IPv4: Start() -> GARP request captured in B: %v", req.at.Sub(t0))
	eth, p, _ := parseARP(req.frame)
	checkLabARP(t, "request", eth, p, marp.OperationRequest, Broadcast, l.macA)
	rep := next(t, frames, "GARP reply", isARP(marp.OperationReply, labVIP4))
	eth, p, _ = parseARP(rep.frame)
	checkLabARP(t, "reply", eth, p, marp.OperationReply, l.macA, l.macA)
	l.waitNeigh(t, labVIP4, l.macA)

	// The burst continues: Count=3 requests in total, ~100ms apart.
	r2 := next(t, frames, "2nd GARP request", isARP(marp.OperationRequest, labVIP4))
	r3 := next(t, frames, "3rd GARP request", isARP(marp.OperationRequest, labVIP4))
	// Spacing is only logged: capture timestamps are taken in user space and
	// a loaded CI box can delay one read; the fake-clock tests assert it.
	t.Logf("IPv4 burst spacing: %v, %v (configured 100ms)", r2.at.Sub(req.at), r3.at.Sub(r2.at))

	// --- IPv6 ---
	var linkLocal netip.Addr
	inNS(t, l.a, func() {
		ifi, err := net.InterfaceByName(labIfA)
		if err != nil {
			startErr = err
			return
		}
		addrs, _ := ifi.Addrs()
		for _, ad := range addrs {
			if pfx, err := netip.ParsePrefix(ad.String()); err == nil && pfx.Addr().IsLinkLocalUnicast() {
				linkLocal = pfx.Addr()
			}
		}
		t0 = time.Now()
		startErr = a.Start(ctx, labIfA, labVIP6)
	})
	if startErr != nil {
		t.Fatal(startErr)
	}
	isNA := func(f []byte) bool {
		_, _, _, _, na, ok := parseNA(f)
		return ok && na.TargetAddress == labVIP6
	}
	naf := next(t, frames, "unsolicited NA", isNA)
	t.Logf("IPv6: Start() -> NA captured in B: %v", naf.at.Sub(t0))
	checkLabNA(t, naf.frame, l.macA, linkLocal)
	l.waitNeigh(t, labVIP6, l.macA)

	a.Stop(labVIP4)
	a.Stop(labVIP6)
	if st := a.Stats(); st.Errors != 0 || st.Sent < 2 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("stats: %+v", a.Stats())
}

// A node that forwards IPv6 on the interface (a gateway VIP) announces with
// the Router flag set; read from the sysctl at announcement time.
func TestLabRouterFlagFollowsForwarding(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frames := l.capture(t, ctx)
	isNA := func(f []byte) bool {
		_, _, _, _, na, ok := parseNA(f)
		return ok && na.TargetAddress == labVIP6
	}
	for _, forwarding := range []bool{false, true} {
		val := "0"
		if forwarding {
			val = "1"
		}
		run(t, "ip", "netns", "exec", l.a, "sysctl", "-q", "-w", "net.ipv6.conf."+labIfA+".forwarding="+val)
		var err error
		inNS(t, l.a, func() {
			ifi, ierr := net.InterfaceByName(labIfA)
			if ierr != nil {
				err = ierr
				return
			}
			s, oerr := Open(ifi)
			if oerr != nil {
				err = oerr
				return
			}
			defer s.Close()
			err = s.Announce(labVIP6)
		})
		if err != nil {
			t.Fatal(err)
		}
		f := next(t, frames, "NA with forwarding="+val, isNA)
		_, _, _, _, na, _ := parseNA(f.frame)
		if na.Router != forwarding {
			t.Errorf("forwarding=%s: NA Router flag = %v, want %v", val, na.Router, forwarding)
		}
	}
}

func checkLabARP(t *testing.T, name string, eth *ethernet.Frame, p *marp.Packet, op marp.Operation, tha, macA net.HardwareAddr) {
	t.Helper()
	if !bytes.Equal(eth.Destination, Broadcast) || !bytes.Equal(eth.Source, macA) {
		t.Errorf("%s: eth %s -> %s, want %s -> broadcast", name, eth.Source, eth.Destination, macA)
	}
	if p.Operation != op || p.HardwareType != 1 || p.ProtocolType != uint16(ethernet.EtherTypeIPv4) {
		t.Errorf("%s: op=%v htype=%d ptype=%#x", name, p.Operation, p.HardwareType, p.ProtocolType)
	}
	if !bytes.Equal(p.SenderHardwareAddr, macA) || p.SenderIP != labVIP4 || p.TargetIP != labVIP4 ||
		!bytes.Equal(p.TargetHardwareAddr, tha) {
		t.Errorf("%s: sha=%s spa=%s tha=%s tpa=%s", name, p.SenderHardwareAddr, p.SenderIP, p.TargetHardwareAddr, p.TargetIP)
	}
}

func checkLabNA(t *testing.T, f []byte, macA net.HardwareAddr, linkLocal netip.Addr) {
	t.Helper()
	hop, src, dst, icmp, na, _ := parseNA(f)
	if want := (net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}); !bytes.Equal(f[0:6], want) || !bytes.Equal(f[6:12], macA) {
		t.Errorf("eth %x -> %x, want %s -> 33:33:00:00:00:01", f[6:12], f[0:6], macA)
	}
	if hop != 255 {
		t.Errorf("hop limit = %d, want 255", hop)
	}
	if src != linkLocal || !src.IsLinkLocalUnicast() {
		t.Errorf("source = %s, want A's link-local %s", src, linkLocal)
	}
	if dst != AllNodes {
		t.Errorf("destination = %s, want ff02::1", dst)
	}
	if !na.Override || na.Solicited || na.Router {
		t.Errorf("flags O=%v S=%v R=%v, want O=1 S=0 R=0", na.Override, na.Solicited, na.Router)
	}
	var tlla net.HardwareAddr
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
			tlla = lla.Addr
		}
	}
	if !bytes.Equal(tlla, macA) {
		t.Errorf("target link-layer address = %s, want %s", tlla, macA)
	}
	// The kernel filled in the checksum: recompute it over the pseudo-header.
	want, err := ndp.MarshalMessageChecksum(na, src, dst)
	if err != nil || !bytes.Equal(icmp, want) {
		t.Errorf("ICMPv6 checksum: got % x, want % x (err %v)", icmp[2:4], want[2:4], err)
	}
}

// testWriter sends slog output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestLabEachForm sends each GARP form alone, right after B's entry was
// (re)written, i.e. inside B's 1 s ARP locktime. Both forms we send must
// override it on their own; the reply with a broadcast target MAC (what
// MetalLB sends) is only reported, as evidence for choosing tha = sha.
func TestLabEachForm(t *testing.T) {
	l := newLab(t)
	req, rep, err := GratuitousARP(l.macA, labVIP4)
	if err != nil {
		t.Fatal(err)
	}
	repBcast, err := arpFrame(marp.OperationReply, l.macA, labVIP4, Broadcast)
	if err != nil {
		t.Fatal(err)
	}
	var pc *packet.Conn
	inNS(t, l.a, func() {
		ifi, ierr := net.InterfaceByName(labIfA)
		if ierr != nil {
			err = ierr
			return
		}
		pc, err = packet.Listen(ifi, packet.Raw, etherTypeARP, &packet.Config{Filter: dropAll})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	learned := func(frame []byte) bool {
		l.setStale(t, labVIP4)
		if _, err := pc.WriteTo(frame, &packet.Addr{HardwareAddr: Broadcast}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if strings.Contains(l.neigh(t, labVIP4), l.macA.String()) {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	if !learned(req) {
		t.Error("request form alone (tha=ff:ff:ff:ff:ff:ff) did not override B's entry")
	}
	if !learned(rep) {
		t.Error("reply form alone (tha=sha) did not override B's entry")
	}
	t.Logf("reply with tha=broadcast inside locktime overrides B's entry: %v", learned(repBcast))
}

// An interface with no IPv4 address and no link-local address (addrgenmode
// none) still announces IPv4; IPv6 is sent from the VIP itself, which works
// once the VIP is bound and is a clear error (not a panic) before.
func TestLabBareInterface(t *testing.T) {
	l := newLab(t)
	run(t, "ip", "-n", l.a, "link", "add", "va2", "type", "veth", "peer", "name", "vb2", "netns", l.b)
	run(t, "ip", "-n", l.a, "link", "set", "va2", "addrgenmode", "none")
	run(t, "ip", "-n", l.a, "link", "set", "va2", "up")
	run(t, "ip", "-n", l.b, "link", "set", "vb2", "up")
	// Frames sent before the kernel's linkwatch has activated the device's
	// queue (it does so when it sets the operational state UP, a moment
	// after carrier) are silently dropped: seen on the loaded CI box.
	l.waitOperUp(t, l.a, "va2")

	ready := make(chan error, 1)
	frames := make(chan []byte, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // capture on vb2 (same pattern as lab.capture)
		runtime.LockOSThread()
		h, err := netns.GetFromName(l.b)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		var c *packet.Conn
		if err == nil {
			var ifi *net.Interface
			if ifi, err = net.InterfaceByName("vb2"); err == nil {
				c, err = packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
			}
		}
		ready <- err
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, _, err := c.ReadFrom(buf); err == nil {
				select {
				case frames <- bytes.Clone(buf[:n]):
				default:
				}
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}

	var err4, err6, err4again error
	inNS(t, l.a, func() {
		ifi, err := net.InterfaceByName("va2")
		if err != nil {
			err4 = err
			return
		}
		s, err := Open(ifi)
		if err != nil {
			err4 = err
			return
		}
		defer s.Close()
		err4 = s.Announce(labVIP4)
		err6 = s.Announce(labVIP6)
		err4again = s.Announce(labVIP4)
	})
	if err4 != nil || err4again != nil {
		t.Fatalf("IPv4 on a bare interface: %v / %v", err4, err4again)
	}
	// Without a link-local address the NA is sent from the VIP itself, which
	// the kernel refuses here since the VIP is not bound on va2: an error, not
	// a panic, and IPv4 is unaffected.
	if err6 == nil {
		t.Errorf("IPv6 from an unbound VIP on a bare interface: no error")
	}
	t.Logf("IPv6 on bare interface, VIP not bound: %v", err6)
	// Once the VIP is bound (as vipd always does before announcing), the NA
	// goes out from the VIP.
	run(t, "ip", "-n", l.a, "addr", "add", labVIP6.String()+"/128", "dev", "va2", "nodad")
	var err6bound error
	inNS(t, l.a, func() {
		ifi, err := net.InterfaceByName("va2")
		if err != nil {
			err6bound = err
			return
		}
		s, err := Open(ifi)
		if err != nil {
			err6bound = err
			return
		}
		defer s.Close()
		err6bound = s.Announce(labVIP6)
	})
	if err6bound != nil {
		t.Errorf("IPv6 NA from the bound VIP on an interface without link-local: %v", err6bound)
	}
	select {
	case f := <-frames:
		if _, p, ok := parseARP(f); !ok || p.SenderIP != labVIP4 {
			t.Errorf("unexpected frame % x", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no GARP from the bare interface within 5s")
	}
}
