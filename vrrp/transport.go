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

// RecvBuffer is the receive buffer asked for on every VRRP socket. A
// minimum-size advert takes about 1 KiB of buffer in the kernel's accounting,
// so this holds several thousand datagrams: at 20,000 adverts/s (issue #11,
// 5) a quarter of a second in which vipd is not scheduled, instead of the
// ~200 datagrams of the default 208 KiB (net.core.rmem_default), after which
// the kernel dropped the master's adverts with the flood. The kernel counts
// it twice (bookkeeping overhead) and only fills it under load.
const RecvBuffer = 4 << 20

// setRecvBuffer sets SO_RCVBUFFORCE (above net.core.rmem_max; needs
// CAP_NET_ADMIN, which vipd has to bind VIPs), else SO_RCVBUF (capped at
// rmem_max by the kernel).
func setRecvBuffer(fd int) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, RecvBuffer) == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, RecvBuffer)
}

// recvBatch is how many datagrams one wake-up of the reader takes at most
// (a wake-up, then reads until the queue is empty).
const recvBatch = 64

// Under a flood (more than busyPackets in busyWindow) a reader waits
// coalesce before each read, so adverts are taken from the kernel by the
// batch rather than one wake-up each (issue #11, 5: the cost of a flood is
// wake-ups, not parsing). An advert waits at most that much longer; at
// 20,000/s a pause queues ~40 datagrams, far below RecvBuffer.
const (
	busyWindow  = 10 * time.Millisecond
	busyPackets = 20
	coalesce    = 2 * time.Millisecond
)

// pacer tracks the receive rate of one socket.
type pacer struct {
	windowStart time.Time
	count       int
	busy        bool
	drained     bool // the last read returned less than a full batch
}

// before is called before each read: it pauses while the socket is busy,
// once the queue has been drained (a backlog is read at once).
func (p *pacer) before() {
	if p.busy && p.drained {
		time.Sleep(coalesce)
	}
}

// after accounts n datagrams read.
func (p *pacer) after(n int) {
	now := time.Now()
	if now.Sub(p.windowStart) >= busyWindow {
		p.busy = p.count > busyPackets
		p.windowStart, p.count = now, 0
	}
	p.count += n
	p.drained = n < recvBatch
}

// BatchReceiver is implemented by the real Conns: RecvBatch fills ps with
// the datagrams queued (at least one; it blocks for the first), so the
// elector hands them over in one go. The payloads are appended to buf,
// which is returned: the caller reuses ps and buf once it is done with the
// packets, so receiving allocates nothing.
type BatchReceiver interface {
	RecvBatch(ps []Packet, buf []byte) (int, []byte, error)
}

// Filter is implemented by the real Conns: it attaches FilterProgram (the
// VRIDs served on the socket and, in unicast mode, the peers) in the kernel.
type Filter interface {
	SetFilter(vrids []uint8, peers []netip.Addr) error
}

// KernelDrops is implemented by the real Conns: datagrams the kernel
// dropped because the receive buffer was full.
type KernelDrops interface {
	KernelDrops() uint64
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
	tx  *txRaw  // the raw path of SendFrom; nil: raw.WriteTo only
	rx  *rxSock // receiving socket, outside the poller
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
	// This socket only sends: it must queue nothing (see rxSock).
	if err := raw.SetBPF(dropAll); err != nil {
		return nil, err
	}
	rx, err := openRx(ifi, 4)
	if err != nil {
		return nil, err
	}
	return &conn4{ifi: ifi, raw: raw, tx: borrowTx(pc, 4, ifi.Index), rx: rx, src: src}, nil
}

func (c *conn4) Source() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src
}

// FromSender is implemented by the real Conns: SendFrom is Send from src, a
// configured unicast source, instead of Source.
type FromSender interface {
	SendFrom(payload []byte, src, dst netip.Addr) error
}

// CheckSource implements SourceChecker.
func (c *conn4) CheckSource(a netip.Addr) error { return checkSource(c.ifi.Name, a) }

// CheckSource implements SourceChecker.
func (c *conn6) CheckSource(a netip.Addr) error { return checkSource(c.ifi.Name, a) }

// checkSource fails unless a is a usable (for IPv6: not tentative) address
// of the interface.
func checkSource(ifname string, a netip.Addr) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("vrrp interface %q: %w", ifname, err)
	}
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return fmt.Errorf("vrrp interface %q: listing addresses: %w", ifname, err)
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			if x.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
				return fmt.Errorf("unicast source %s on %s is not usable yet (duplicate address detection)", a, ifname)
			}
			return nil
		}
	}
	return fmt.Errorf("unicast source %s is not an address of %s", a, ifname)
}

func (c *conn4) Send(p []byte, dst netip.Addr) error {
	err := c.SendFrom(p, c.Source(), dst)
	if err != nil {
		c.refreshSource()
	}
	return err
}

// borrowTx is the raw send path on pc's descriptor, nil if there is none.
func borrowTx(pc net.PacketConn, family, ifindex int) *txRaw {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return newTxRaw(rc, family, ifindex)
}

// SendFrom implements FromSender.
func (c *conn4) SendFrom(p []byte, src, dst netip.Addr) error {
	if c.tx != nil {
		if err := c.tx.send4(p, src, dst); err != errTxFallback {
			return err
		}
	}
	h := &ipv4.Header{
		Version: ipv4.Version, Len: ipv4.HeaderLen,
		TOS:      0xc0, // precedence "internetwork control", as keepalived
		TotalLen: ipv4.HeaderLen + len(p),
		TTL:      TTL, Protocol: IPProtocol,
		Src: src.AsSlice(), Dst: dst.AsSlice(),
	}
	return c.raw.WriteTo(h, p, &ipv4.ControlMessage{IfIndex: c.ifi.Index})
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

func (c *conn4) Recv() (Packet, error) { return recvOne(c.rx) }

// RecvBatch implements BatchReceiver.
func (c *conn4) RecvBatch(ps []Packet, buf []byte) (int, []byte, error) {
	return c.rx.recv(ps, buf)
}

// SetFilter attaches FilterProgram for IPv4.
func (c *conn4) SetFilter(vrids []uint8, peers []netip.Addr) error {
	prog, err := FilterProgram(4, vrids, peers)
	if err != nil {
		return err
	}
	return c.rx.setFilter(prog)
}

// KernelDrops implements KernelDrops.
func (c *conn4) KernelDrops() uint64 { return c.rx.drops() }

// Queued implements the elector's queuer.
func (c *conn4) Queued() bool { return c.rx.queued() }

func (c *conn4) Close() error {
	if c.tx != nil {
		c.tx.close()
	}
	return errors.Join(c.rx.close(), c.raw.Close())
}

type conn6 struct {
	ifi *net.Interface
	pc  *ipv6.PacketConn
	tx  *txRaw  // the raw path of SendFrom; nil: pc.WriteTo only
	rx  *rxSock // receiving socket, outside the poller
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
	// This socket only sends: it must queue nothing (see rxSock).
	if err := p.SetBPF(dropAll); err != nil {
		return nil, err
	}
	rx, err := openRx(ifi, 6)
	if err != nil {
		return nil, err
	}
	return &conn6{ifi: ifi, pc: p, tx: borrowTx(pc, 6, ifi.Index), rx: rx, src: src}, nil
}

func (c *conn6) Source() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src
}

// SendFrom implements FromSender.
func (c *conn6) SendFrom(p []byte, src, dst netip.Addr) error {
	if c.tx != nil {
		if err := c.tx.send6(p, src, dst); err != errTxFallback {
			return err
		}
	}
	cm := &ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: c.ifi.Index, HopLimit: TTL}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// The index, not the name: Go resolves zone names through a
		// process-wide cache that does not know network namespaces (and
		// may be up to a minute old).
		to.Zone = strconv.Itoa(c.ifi.Index)
	}
	_, err := c.pc.WriteTo(p, cm, to)
	return err
}

func (c *conn6) Send(p []byte, dst netip.Addr) error {
	err := c.SendFrom(p, c.Source(), dst)
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

func (c *conn6) Recv() (Packet, error) { return recvOne(c.rx) }

// RecvBatch implements BatchReceiver.
func (c *conn6) RecvBatch(ps []Packet, buf []byte) (int, []byte, error) {
	return c.rx.recv(ps, buf)
}

// SetFilter attaches FilterProgram for IPv6.
func (c *conn6) SetFilter(vrids []uint8, peers []netip.Addr) error {
	prog, err := FilterProgram(6, vrids, peers)
	if err != nil {
		return err
	}
	return c.rx.setFilter(prog)
}

// KernelDrops implements KernelDrops.
func (c *conn6) KernelDrops() uint64 { return c.rx.drops() }

// Queued implements the elector's queuer.
func (c *conn6) Queued() bool { return c.rx.queued() }

func (c *conn6) Close() error {
	if c.tx != nil {
		c.tx.close()
	}
	return errors.Join(c.rx.close(), c.pc.Close())
}

func recvOne(rx *rxSock) (Packet, error) {
	var p [1]Packet
	_, _, err := rx.recv(p[:], nil)
	return p[0], err
}
