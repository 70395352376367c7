package arp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// Sender sends one announcement (all forms) for ip out of its interface.
// Implementations are safe for concurrent use.
type Sender interface {
	Announce(ip netip.Addr) error
	Close() error
}

// NDPConn is the part of *ndp.Conn a Sender needs; injected in tests.
type NDPConn interface {
	WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error
	Close() error
}

const etherTypeARP = 0x0806

// ErrWrite marks a failed socket write (as opposed to a bad address): the
// Announcer then reopens the interface's Sender, which recovers from an
// interface that was deleted and recreated under the same name.
var ErrWrite = errors.New("socket write failed")

// Open opens the raw sockets for ifi (needs CAP_NET_RAW). IPv4 uses an
// AF_PACKET socket carrying frames built with mdlayher/arp; IPv6 uses an
// mdlayher/ndp ICMPv6 socket bound to ifi's link-local address, opened on the
// first IPv6 announcement (and retried on the next one if that fails), so an
// interface without a link-local address can still announce IPv4.
//
// We do not use arp.Dial/arp.Client: it refuses an interface that has no
// IPv4 address yet, and we only ever write, never resolve.
func Open(ifi *net.Interface) (Sender, error) {
	if ifi == nil {
		return nil, errors.New("arp: nil interface")
	}
	if err := checkMAC(ifi.HardwareAddr); err != nil {
		return nil, fmt.Errorf("arp: interface %s: %w", ifi.Name, err)
	}
	pc, err := packet.Listen(ifi, packet.Raw, etherTypeARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("arp: opening ARP socket on %s: %w", ifi.Name, err)
	}
	return &dualSender{
		ifi: ifi,
		v4:  NewIPv4Sender(ifi, pc),
		openV6: func() (NDPConn, error) {
			c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
			fromVIP := false
			if err != nil {
				// No usable link-local address: it is still tentative (DAD
				// runs for a second or two after the link comes up, i.e. at
				// boot and after every link flap, exactly when a takeover
				// happens) or the interface has none. Send from the VIP
				// itself instead, as keepalived does: it is an address of
				// this interface, bound nodad, so usable at once.
				var uerr error
				if c, _, uerr = ndp.Listen(ifi, ndp.Unspecified); uerr != nil {
					return nil, fmt.Errorf("no usable link-local address (%w) and no unbound socket either: %w", err, uerr)
				}
				fromVIP = true
			}
			// We never read: block every ICMPv6 type so the socket's
			// receive queue does not fill up with the LAN's traffic.
			var f ipv6.ICMPFilter
			f.SetAll(true)
			if err := c.SetICMPFilter(&f); err != nil {
				c.Close()
				return nil, err
			}
			if fromVIP {
				return vipSourced{NDPConn: c, ifindex: ifi.Index}, nil
			}
			return c, nil
		},
	}, nil
}

// dropAll is a BPF program accepting no packet: the ARP socket is write-only,
// so nothing should be queued on it.
var dropAll = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(err) // constant program; cannot fail
	}
	return raw
}()

// NewIPv4Sender returns a Sender that writes GratuitousARP's two frames to
// pc, an AF_PACKET raw socket (or a fake in tests). IPv6 addresses are
// rejected.
func NewIPv4Sender(ifi *net.Interface, pc net.PacketConn) Sender {
	return &v4Sender{mac: ifi.HardwareAddr, pc: pc}
}

type v4Sender struct {
	mac net.HardwareAddr
	pc  net.PacketConn
}

func (s *v4Sender) Announce(ip netip.Addr) error {
	req, rep, err := GratuitousARP(s.mac, ip)
	if err != nil {
		return err
	}
	dst := &packet.Addr{HardwareAddr: Broadcast}
	// Request first: it is the form every implementation honours.
	if _, err := s.pc.WriteTo(req, dst); err != nil {
		return fmt.Errorf("sending gratuitous ARP request for %s: %w: %w", ip, ErrWrite, err)
	}
	if _, err := s.pc.WriteTo(rep, dst); err != nil {
		return fmt.Errorf("sending gratuitous ARP reply for %s: %w: %w", ip, ErrWrite, err)
	}
	return nil
}

func (s *v4Sender) Close() error { return s.pc.Close() }

// NewIPv6Sender returns a Sender that writes UnsolicitedNA to ff02::1 on c.
// With an *ndp.Conn the control message defaults to hop limit 255 and the
// link-local source the conn was opened with. IPv4 addresses are rejected.
// The Router flag follows the interface's IPv6 forwarding setting, read at
// every announcement (see UnsolicitedNA).
func NewIPv6Sender(ifi *net.Interface, c NDPConn) Sender {
	name := ifi.Name
	return &v6Sender{mac: ifi.HardwareAddr, c: c, router: cachedFor(time.Second, time.Now, func() bool { return ipv6Forwarding(name) })}
}

// cachedFor returns f's result, calling f again only once ttl has passed: a
// burst of 1,000 announcements reads the forwarding setting once, not 1,000
// times, and a change still shows within ttl.
func cachedFor(ttl time.Duration, now func() time.Time, f func() bool) func() bool {
	var mu sync.Mutex
	var at time.Time
	var v bool
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if t := now(); at.IsZero() || t.Sub(at) >= ttl {
			v, at = f(), t
		}
		return v
	}
}

type v6Sender struct {
	mac    net.HardwareAddr
	c      NDPConn
	router func() bool
}

// ipv6Forwarding reports whether ifname forwards IPv6 in the caller's
// network namespace (/proc/sys/net follows the calling thread's namespace).
func ipv6Forwarding(ifname string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return err == nil && len(b) > 0 && b[0] == '1'
}

func (s *v6Sender) Announce(ip netip.Addr) error {
	na, err := UnsolicitedNA(s.mac, ip, s.router())
	if err != nil {
		return err
	}
	if err := s.c.WriteTo(na, nil, AllNodes); err != nil {
		return fmt.Errorf("sending unsolicited neighbour advertisement for %s: %w: %w", ip, ErrWrite, err)
	}
	return nil
}

func (s *v6Sender) Close() error { return s.c.Close() }

// dualSender dispatches by address family and opens IPv6 lazily.
type dualSender struct {
	ifi    *net.Interface
	v4     Sender
	openV6 func() (NDPConn, error)

	mu     sync.Mutex
	v6     Sender
	closed bool
}

func (s *dualSender) Announce(ip netip.Addr) error {
	if err := checkIP(ip); err != nil {
		return err
	}
	if ip.Unmap().Is4() {
		return s.v4.Announce(ip.Unmap())
	}
	v6, err := s.ipv6()
	if err != nil {
		return err
	}
	return v6.Announce(ip)
}

func (s *dualSender) ipv6() (Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	if s.v6 == nil {
		c, err := s.openV6()
		if err != nil {
			return nil, fmt.Errorf("arp: opening NDP socket on %s (needs a link-local address): %w", s.ifi.Name, err)
		}
		s.v6 = NewIPv6Sender(s.ifi, c)
	}
	return s.v6, nil
}

func (s *dualSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.v4.Close()
	if s.v6 != nil {
		err = errors.Join(err, s.v6.Close())
	}
	return err
}

// vipSourced sends each neighbour advertisement from its target address
// (the VIP) when the interface has no usable link-local address.
type vipSourced struct {
	NDPConn
	ifindex int
}

func (v vipSourced) WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error {
	if na, ok := m.(*ndp.NeighborAdvertisement); ok && cm == nil {
		cm = &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: na.TargetAddress.AsSlice(), IfIndex: v.ifindex}
	}
	return v.NDPConn.WriteTo(m, cm, dst)
}
