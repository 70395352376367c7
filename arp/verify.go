package arp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Prober asks the wire who answers for an address: an ARP request (IPv4)
// or a neighbour solicitation (IPv6) out of one interface, and every reply
// collected for a short window. It is owner verification's sensor
// (docs/verify.md).
//
// The ARP request is an RFC 5227 probe (sender IP 0.0.0.0): it teaches no
// host anything, and the conflict watch does not read it as a claim. The
// solicitation comes from the interface's link-local address (a DAD-style
// one from :: would make every answering host multicast an override NA,
// so a stray host's answer would poison every neighbour cache on the
// LAN); the answers are unicast to this node.
//
// Frames this node sends itself are ignored: its own kernel never answers
// its own probe, so whether this node answers is the caller's local
// knowledge (is the address bound here), not the wire's.
type Prober struct {
	mac       net.HardwareAddr
	v4, v6    net.PacketConn
	linkLocal func() (netip.Addr, error)

	wg sync.WaitGroup

	mu      sync.Mutex
	src     netip.Addr // cached link-local source
	srcAt   time.Time
	waiting map[netip.Addr][]*probeWait
	err     error // the first read error that ended a read loop
	closed  bool
}

type probeWait struct{ macs []net.HardwareAddr }

// NewProber returns a Prober writing and reading Ethernet frames on v4 (ARP)
// and v6 (IPv6: it sends solicitations and reads neighbour advertisements),
// either of which may be nil (that family is then not probed). linkLocal
// returns the interface's usable link-local address, the solicitations'
// source. mac is the interface's address, the frames' source. It reads until
// Close.
func NewProber(mac net.HardwareAddr, v4, v6 net.PacketConn, linkLocal func() (netip.Addr, error)) (*Prober, error) {
	if err := checkMAC(mac); err != nil {
		return nil, err
	}
	p := &Prober{mac: bytes.Clone(mac), v4: v4, v6: v6, linkLocal: linkLocal, waiting: map[netip.Addr][]*probeWait{}}
	for _, c := range []net.PacketConn{v4, v6} {
		if c != nil {
			p.wg.Go(func() { p.read(c) })
		}
	}
	return p, nil
}

// OpenProber opens a Prober's raw sockets on ifi (needs CAP_NET_RAW): one
// for ARP replies, one for IPv6 neighbour advertisements, each filtered in
// the kernel so the LAN's other traffic never wakes it.
func OpenProber(ifi *net.Interface) (*Prober, error) {
	if ifi == nil {
		return nil, errors.New("arp: nil interface")
	}
	if err := checkMAC(ifi.HardwareAddr); err != nil {
		return nil, fmt.Errorf("arp: interface %s: %w", ifi.Name, err)
	}
	v4, err := packet.Listen(ifi, packet.Raw, etherTypeARP, &packet.Config{Filter: onlyARPReply})
	if err != nil {
		return nil, fmt.Errorf("arp: opening ARP probe socket on %s: %w", ifi.Name, err)
	}
	v6, err := packet.Listen(ifi, packet.Raw, etherTypeIPv6, &packet.Config{Filter: onlyNA})
	if err != nil {
		v4.Close()
		return nil, fmt.Errorf("arp: opening NDP probe socket on %s: %w", ifi.Name, err)
	}
	name := ifi.Name
	return NewProber(ifi.HardwareAddr, v4, v6, func() (netip.Addr, error) { return LinkLocal(name) })
}

// LinkLocal returns a usable (not tentative) link-local IPv6 address of
// ifname, in the caller's network namespace.
func LinkLocal(ifname string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	// ndp.Listen(LinkLocal) binds the address, which fails while DAD runs:
	// the same test as the announcer's (sender.go).
	c, ip, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no usable link-local address on %s: %w", ifname, err)
	}
	c.Close()
	return ip.WithZone(""), nil
}

// onlyARPReply keeps ARP replies (operation 2).
var onlyARPReply = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: 3},
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(marp.OperationReply), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // constant program; cannot fail
	}
	return raw
}()

// MAC is the address this Prober's frames come from.
func (p *Prober) MAC() net.HardwareAddr { return p.mac }

// ErrNoFamily is returned for an address whose family has no socket.
var ErrNoFamily = errors.New("no probe socket for this address family")

// Probe sends one request for ip and returns, after window (or when ctx
// ends), the distinct MACs other than this node's that answered, in the
// order they answered. An error means the request could not be sent or a
// socket broke (then Close the Prober and open a new one).
func (p *Prober) Probe(ctx context.Context, ip netip.Addr, window time.Duration) ([]net.HardwareAddr, error) {
	got, err := p.ProbeAll(ctx, []netip.Addr{ip}, window)
	if err != nil {
		return nil, err
	}
	return got[ip.Unmap()], nil
}

// ProbeAll is Probe for several addresses at once: every request is sent,
// then one window collects every answer. Batching is what keeps
// verification cheap: the cost of a probe is mostly the wake-ups around
// it, and a batch shares them.
func (p *Prober) ProbeAll(ctx context.Context, ips []netip.Addr, window time.Duration) (map[netip.Addr][]net.HardwareAddr, error) {
	type sent struct {
		ip netip.Addr
		w  *probeWait
	}
	var all []sent
	defer func() {
		for _, s := range all {
			p.unwait(s.ip, s.w)
		}
	}()
	for _, ip := range ips {
		if err := checkIP(ip); err != nil {
			return nil, err
		}
		ip = ip.Unmap()
		frame, conn, dst, err := p.request(ip)
		if err != nil {
			return nil, err
		}
		w := &probeWait{}
		p.mu.Lock()
		if p.closed || p.err != nil {
			err := p.err
			p.mu.Unlock()
			if err == nil {
				err = net.ErrClosed
			}
			return nil, err
		}
		p.waiting[ip] = append(p.waiting[ip], w)
		p.mu.Unlock()
		all = append(all, sent{ip, w})
		if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: dst}); err != nil {
			return nil, fmt.Errorf("sending a probe for %s: %w: %w", ip, ErrWrite, err)
		}
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	out := make(map[netip.Addr][]net.HardwareAddr, len(all))
	for _, s := range all {
		out[s.ip] = append(out[s.ip], s.w.macs...)
	}
	return out, nil
}

func (p *Prober) unwait(ip netip.Addr, w *probeWait) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiting[ip]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.waiting, ip)
	} else {
		p.waiting[ip] = ws
	}
}

// request builds the frame that asks who has ip.
func (p *Prober) request(ip netip.Addr) (frame []byte, conn net.PacketConn, dst net.HardwareAddr, err error) {
	if ip.Is4() {
		if p.v4 == nil {
			return nil, nil, nil, fmt.Errorf("%w: %s", ErrNoFamily, ip)
		}
		frame, err = ProbeARP(p.mac, ip)
		return frame, p.v4, Broadcast, err
	}
	if p.v6 == nil {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrNoFamily, ip)
	}
	src, err := p.source()
	if err != nil {
		return nil, nil, nil, err
	}
	frame, dst, err = ProbeNS(p.mac, src, ip)
	return frame, p.v6, dst, err
}

// srcTTL is how long a looked-up link-local source is reused: looking it up
// opens and binds a socket, which would be most of a probe's cost.
const srcTTL = 30 * time.Second

func (p *Prober) source() (netip.Addr, error) {
	p.mu.Lock()
	src, at := p.src, p.srcAt
	p.mu.Unlock()
	if src.IsValid() && time.Since(at) < srcTTL {
		return src, nil
	}
	src, err := p.linkLocal()
	if err != nil {
		return netip.Addr{}, err
	}
	p.mu.Lock()
	p.src, p.srcAt = src, time.Now()
	p.mu.Unlock()
	return src, nil
}

// ProbeARP builds an RFC 5227 ARP probe for ip from mac: a broadcast request
// with sender IP 0.0.0.0 and target MAC zero.
func ProbeARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if err := checkMAC(mac); err != nil {
		return nil, err
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("%w: an ARP probe needs an IPv4 address, got %s", ErrBadAddr, ip)
	}
	return arpFrameTo(marp.OperationRequest, mac, netip.IPv4Unspecified(), make(net.HardwareAddr, 6), ip, Broadcast)
}

// arpFrameTo builds one ARP packet in an Ethernet frame to dst.
func arpFrameTo(op marp.Operation, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr, dst net.HardwareAddr) ([]byte, error) {
	p, err := marp.NewPacket(op, sha, spa, tha, tpa)
	if err != nil {
		return nil, fmt.Errorf("building ARP %s for %s: %w", op, tpa, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{Destination: dst, Source: sha, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// ProbeNS builds a neighbour solicitation for ip from src (a link-local
// address of the interface whose MAC is mac) to ip's solicited-node
// multicast group, as a whole Ethernet frame with its ICMPv6 checksum, and
// returns it with its destination MAC.
func ProbeNS(mac net.HardwareAddr, src, ip netip.Addr) ([]byte, net.HardwareAddr, error) {
	if err := checkMAC(mac); err != nil {
		return nil, nil, err
	}
	if !ip.Is6() || ip.Is4In6() || !src.Is6() {
		return nil, nil, fmt.Errorf("%w: a neighbour solicitation needs IPv6 addresses, got %s from %s", ErrBadAddr, ip, src)
	}
	dst, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return nil, nil, err
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: ip.WithZone(""), Options: []ndp.Option{
		&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
	}}
	body, err := ndp.MarshalMessageChecksum(ns, src.WithZone(""), dst)
	if err != nil {
		return nil, nil, err
	}
	hdr := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(body))
	hdr[0] = 0x60
	binary.BigEndian.PutUint16(hdr[4:6], uint16(len(body)))
	hdr[6] = icmpv6NextHdr
	hdr[7] = ndp.HopLimit
	s16, d16 := src.As16(), dst.As16()
	copy(hdr[8:24], s16[:])
	copy(hdr[24:40], d16[:])
	// 33:33 + the group's last four bytes (RFC 2464 section 7).
	dmac := net.HardwareAddr{0x33, 0x33, d16[12], d16[13], d16[14], d16[15]}
	f := ethernet.Frame{Destination: dmac, Source: mac, EtherType: ethernet.EtherTypeIPv6, Payload: append(hdr, body...)}
	b, err := f.MarshalBinary()
	return b, dmac, err
}

func (p *Prober) read(c net.PacketConn) {
	buf := make([]byte, 1600)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENETDOWN) {
				continue // once per link-down; the socket works again after
			}
			p.mu.Lock()
			if p.err == nil {
				p.err = fmt.Errorf("arp: reading probe answers: %w", err)
			}
			p.mu.Unlock()
			return
		}
		claim, ok := ParseClaim(buf[:n])
		if !ok || bytes.Equal(claim.MAC, p.mac) {
			continue
		}
		p.mu.Lock()
		for _, w := range p.waiting[claim.IP] {
			seen := false
			for _, m := range w.macs {
				seen = seen || bytes.Equal(m, claim.MAC)
			}
			if !seen {
				w.macs = append(w.macs, claim.MAC)
			}
		}
		p.mu.Unlock()
	}
}

// Close closes the sockets and waits for the readers.
func (p *Prober) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var err error
	for _, c := range []net.PacketConn{p.v4, p.v6} {
		if c != nil {
			err = errors.Join(err, c.Close())
		}
	}
	p.wg.Wait()
	return err
}
