package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Packet is one received VRRP datagram with the IP facts validation needs.
type Packet struct {
	Src, Dst netip.Addr
	TTL      int // TTL or hop limit
	Payload  []byte
}

// Conn sends and receives VRRP on one interface for one address family.
// It is the I/O seam of the elector: tests use an in-memory network.
type Conn interface {
	// Source is the address adverts are sent from: the interface's primary
	// IPv4 address, or its IPv6 link-local address (RFC 5798 §5.1.2.1).
	Source() netip.Addr
	// Send transmits payload to dst (the multicast group or a unicast peer)
	// with TTL / hop limit 255 from Source.
	Send(payload []byte, dst netip.Addr) error
	// Recv blocks for the next datagram; it fails once the Conn is closed.
	Recv() (Packet, error)
	// Ready re-checks that adverts can be sent: the source address exists
	// and is usable (an IPv6 link-local address is tentative for about a
	// second after the link comes up, while duplicate address detection runs).
	Ready() error
	Close() error
}

// OpenFunc opens the Conn for an interface and family (4 or 6).
type OpenFunc func(ctx context.Context, ifname string, family int) (Conn, error)

// Open is the real OpenFunc: a raw IP socket for protocol 112, bound to the
// interface (SO_BINDTODEVICE, so unicast and multicast stay on it), joined
// to 224.0.0.18 / ff02::12. It needs CAP_NET_RAW.
func Open(ctx context.Context, ifname string, family int) (Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp interface %q: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		}); err != nil {
			return err
		}
		return serr
	}}
	src, err := waitSource(ctx, ifi, family)
	if err != nil {
		return nil, err
	}
	if family == 4 {
		pc, err := lc.ListenPacket(ctx, "ip4:112", "0.0.0.0")
		if err != nil {
			return nil, fmt.Errorf("vrrp: raw IPv4 socket on %s: %w", ifname, err)
		}
		c, err := newConn4(pc, ifi, src)
		if err != nil {
			pc.Close()
			return nil, fmt.Errorf("vrrp: IPv4 on %s: %w", ifname, err)
		}
		return c, nil
	}
	pc, err := lc.ListenPacket(ctx, "ip6:112", "::")
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", ifname, err)
	}
	c, err := newConn6(pc, ifi, src)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("vrrp: IPv6 on %s: %w", ifname, err)
	}
	return c, nil
}

// waitSource finds the interface's source address, waiting up to 5s for an
// IPv6 link-local address to finish duplicate address detection.
func waitSource(ctx context.Context, ifi *net.Interface, family int) (netip.Addr, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		src, err := SourceAddr(ifi.Name, family)
		if err == nil || time.Now().After(deadline) {
			return src, err
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SourceAddr returns the interface's primary address for VRRP: the first
// IPv4 address with a subnet (a /32 is a VIP, never a source), or the
// usable (non-tentative) IPv6 link-local address.
func SourceAddr(ifname string, family int) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp interface %q: %w", ifname, err)
	}
	fam := netlink.FAMILY_V4
	if family == 6 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp interface %q: listing addresses: %w", ifname, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		switch {
		case family == 4 && ip.Is4() && ones < bits:
			return ip, nil
		case family == 6 && ip.Is6() && ip.IsLinkLocalUnicast() &&
			a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0:
			return ip, nil
		}
	}
	if family == 4 {
		return netip.Addr{}, fmt.Errorf("vrrp interface %q has no IPv4 address with a subnet to send adverts from", ifname)
	}
	return netip.Addr{}, fmt.Errorf("vrrp interface %q has no usable IPv6 link-local address to send adverts from", ifname)
}

type conn4 struct {
	ifi *net.Interface
	raw *ipv4.RawConn
	mu  sync.Mutex
	src netip.Addr
}

func newConn4(pc net.PacketConn, ifi *net.Interface, src netip.Addr) (*conn4, error) {
	raw, err := ipv4.NewRawConn(pc)
	if err != nil {
		return nil, err
	}
	grp := &net.IPAddr{IP: GroupV4.AsSlice()}
	if err := raw.JoinGroup(ifi, grp); err != nil {
		return nil, fmt.Errorf("joining %s: %w", GroupV4, err)
	}
	if err := raw.SetMulticastInterface(ifi); err != nil {
		return nil, err
	}
	if err := raw.SetMulticastLoopback(false); err != nil {
		return nil, err
	}
	if err := raw.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return nil, err
	}
	return &conn4{ifi: ifi, raw: raw, src: src}, nil
}

func (c *conn4) Source() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src
}

func (c *conn4) Send(p []byte, dst netip.Addr) error {
	src := c.Source()
	h := &ipv4.Header{
		Version: ipv4.Version, Len: ipv4.HeaderLen,
		TOS:      0xc0, // precedence "internetwork control", as keepalived
		TotalLen: ipv4.HeaderLen + len(p),
		TTL:      TTL, Protocol: IPProtocol,
		Src: src.AsSlice(), Dst: dst.AsSlice(),
	}
	err := c.raw.WriteTo(h, p, &ipv4.ControlMessage{IfIndex: c.ifi.Index})
	if err != nil {
		c.refreshSource()
	}
	return err
}

// refreshSource re-reads the primary address after a failed send (it may
// have been changed by the administrator).
func (c *conn4) refreshSource() {
	if s, err := SourceAddr(c.ifi.Name, 4); err == nil {
		c.mu.Lock()
		c.src = s
		c.mu.Unlock()
	}
}

func (c *conn4) Ready() error { return c.ready(4) }
func (c *conn6) Ready() error { return c.ready(6) }

func (c *conn4) ready(fam int) error { return readySource(&c.mu, &c.src, c.ifi.Name, fam) }
func (c *conn6) ready(fam int) error { return readySource(&c.mu, &c.src, c.ifi.Name, fam) }

func readySource(mu *sync.Mutex, src *netip.Addr, ifname string, fam int) error {
	s, err := SourceAddr(ifname, fam)
	if err != nil {
		return err
	}
	mu.Lock()
	*src = s
	mu.Unlock()
	return nil
}

func (c *conn4) Recv() (Packet, error) {
	buf := make([]byte, 1500)
	for {
		h, p, cm, err := c.raw.ReadFrom(buf)
		if err != nil {
			if isTemporary(err) {
				continue
			}
			return Packet{}, err
		}
		if cm != nil && cm.IfIndex != 0 && cm.IfIndex != c.ifi.Index {
			continue
		}
		src, _ := netip.AddrFromSlice(h.Src.To4())
		dst, _ := netip.AddrFromSlice(h.Dst.To4())
		// Raw IPv4 sockets hand over the whole datagram; trust the header's
		// total length over the read size.
		if n := h.TotalLen - h.Len; n >= 0 && n < len(p) {
			p = p[:n]
		}
		return Packet{Src: src, Dst: dst, TTL: h.TTL, Payload: append([]byte(nil), p...)}, nil
	}
}

func (c *conn4) Close() error { return c.raw.Close() }

type conn6 struct {
	ifi *net.Interface
	pc  *ipv6.PacketConn
	mu  sync.Mutex
	src netip.Addr
}

func newConn6(pc net.PacketConn, ifi *net.Interface, src netip.Addr) (*conn6, error) {
	p := ipv6.NewPacketConn(pc)
	grp := &net.IPAddr{IP: GroupV6.AsSlice()}
	if err := p.JoinGroup(ifi, grp); err != nil {
		return nil, fmt.Errorf("joining %s: %w", GroupV6, err)
	}
	if err := p.SetMulticastInterface(ifi); err != nil {
		return nil, err
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return nil, err
	}
	if err := p.SetMulticastHopLimit(TTL); err != nil {
		return nil, err
	}
	if err := p.SetHopLimit(TTL); err != nil {
		return nil, err
	}
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return nil, err
	}
	return &conn6{ifi: ifi, pc: p, src: src}, nil
}

func (c *conn6) Source() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src
}

func (c *conn6) Send(p []byte, dst netip.Addr) error {
	src := c.Source()
	cm := &ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: c.ifi.Index, HopLimit: TTL}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// The index, not the name: Go resolves zone names through a
		// process-wide cache that does not know network namespaces (and
		// may be up to a minute old).
		to.Zone = strconv.Itoa(c.ifi.Index)
	}
	_, err := c.pc.WriteTo(p, cm, to)
	if err != nil {
		// The link-local address goes away with the link (and comes back
		// after DAD): look it up again.
		if s, serr := SourceAddr(c.ifi.Name, 6); serr == nil {
			c.mu.Lock()
			c.src = s
			c.mu.Unlock()
		}
	}
	return err
}

func (c *conn6) Recv() (Packet, error) {
	buf := make([]byte, 1500)
	for {
		n, cm, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			if isTemporary(err) {
				continue
			}
			return Packet{}, err
		}
		if cm == nil {
			continue
		}
		if cm.IfIndex != 0 && cm.IfIndex != c.ifi.Index {
			continue
		}
		ia, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		src, _ := netip.AddrFromSlice(ia.IP)
		dst, _ := netip.AddrFromSlice(cm.Dst)
		return Packet{Src: src.Unmap(), Dst: dst.Unmap(), TTL: cm.HopLimit, Payload: append([]byte(nil), buf[:n]...)}, nil
	}
}

func (c *conn6) Close() error { return c.pc.Close() }

func isTemporary(err error) bool {
	return errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS)
}
