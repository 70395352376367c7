package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/rawsock"
)

// transport is memberlist's UDP/TCP transport (its NetTransport, same
// sockets, same behaviour on the wire) with a cheaper packet path, because
// an idle member of the fast profile exchanges ~30 packets a second
// (issue #15, docs/benchmark.md "Gossip idle"):
//
//   - UDP datagrams are received and sent with raw system calls
//     (recvfrom/sendto on the non-blocking socket, waiting in Go's poller
//     through its RawConn). The net package's calls enter the scheduler's
//     syscall state, which wakes a sleeping sysmon; sysmon then polled every
//     20 µs while the packet was handled: ~60 % of an idle member's thread
//     context switches.
//   - A received datagram is copied into a buffer of its size. NetTransport
//     allocated 64 KiB per datagram, a garbage collection every few seconds
//     on an otherwise idle node.
//
// TCP (push/pull every few seconds, fallback pings, joins) is as in
// NetTransport.
type transport struct {
	bindAddr string
	tcp      *net.TCPListener
	udp      *net.UDPConn
	rc       syscall.RawConn
	inet6    bool // the UDP socket is AF_INET6 (IPv4 peers as mapped addresses)
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	logger   *log.Logger
	shut     atomic.Bool
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

// udpRecvBufSize is NetTransport's receive buffer request (halved until the
// kernel accepts it).
const udpRecvBufSize = 2 * 1024 * 1024

// newTransport binds UDP and TCP on bindAddr:port. Port 0 picks a free port
// for both (retried, like memberlist, as another process may take the UDP
// port between the two binds).
func newTransport(bindAddr string, port int, logger *log.Logger) (*transport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var t *transport
		if t, err = bindTransport(bindAddr, port, logger); err == nil {
			return t, nil
		}
	}
	return nil, err
}

func bindTransport(bindAddr string, port int, logger *log.Logger) (*transport, error) {
	ip := net.ParseIP(bindAddr)
	if ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP", bindAddr)
	}
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("TCP listener: %w", err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("UDP listener: %w", err)
	}
	t := &transport{bindAddr: bindAddr, tcp: tcp, udp: udp, logger: logger,
		packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn)}
	fail := func(err error) (*transport, error) {
		tcp.Close()
		udp.Close()
		return nil, fmt.Errorf("UDP socket: %w", err)
	}
	for size := udpRecvBufSize; size > 0; size /= 2 {
		if err = udp.SetReadBuffer(size); err == nil {
			break
		}
	}
	if err != nil {
		return fail(err)
	}
	if t.rc, err = udp.SyscallConn(); err != nil {
		return fail(err)
	}
	var domain int
	var derr error
	if err := t.rc.Control(func(fd uintptr) { domain, derr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN) }); err != nil {
		return fail(err)
	}
	if derr != nil {
		return fail(derr)
	}
	t.inet6 = domain == unix.AF_INET6
	t.wg.Add(2)
	go t.tcpLoop()
	go t.udpLoop()
	return t, nil
}

// port is the bound port (the same for UDP and TCP).
func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is NetTransport's: the given address, else a private
// IP when bound to 0.0.0.0, else the bound IP.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	if t.bindAddr == "0.0.0.0" {
		p, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("failed to get interface addresses: %v", err)
		}
		if p == "" {
			return nil, 0, errors.New("no private IP address found, and explicit IP not provided")
		}
		a := net.ParseIP(p)
		if a == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address: %q", p)
		}
		return a, t.port(), nil
	}
	return t.tcp.Addr().(*net.TCPAddr).IP, t.port(), nil
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streamCh }

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// WriteTo sends one datagram to addr (ip:port; a name is resolved).
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return time.Time{}, rerr
		}
		ap = ua.AddrPort()
	}
	if len(b) == 0 {
		return time.Now(), nil
	}
	var sa unix.RawSockaddrInet6 // large enough for an IPv4 one too
	salen, err := t.sockaddr(ap, &sa)
	if err != nil {
		return time.Time{}, err
	}
	var serr error
	werr := t.rc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
				uintptr(unsafe.Pointer(&sa)), salen)
			switch e {
			case 0:
				serr = nil
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the socket buffer is full: wait in the poller
			default:
				serr = &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: e}
				return true
			}
		}
	})
	if werr != nil {
		return time.Time{}, werr
	}
	return time.Now(), serr
}

// sockaddr fills sa for ap in the socket's family and returns its length.
func (t *transport) sockaddr(ap netip.AddrPort, sa *unix.RawSockaddrInet6) (uintptr, error) {
	a := ap.Addr()
	port := ap.Port()
	if !t.inet6 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, fmt.Errorf("gossip: cannot send to %s from an IPv4 socket", ap)
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		s4.Family = unix.AF_INET
		s4.Addr = a.As4()
		pb := (*[2]byte)(unsafe.Pointer(&s4.Port))
		pb[0], pb[1] = byte(port>>8), byte(port)
		return unsafe.Sizeof(*s4), nil
	}
	sa.Family = unix.AF_INET6
	sa.Addr = a.As16() // an IPv4 address as ::ffff:a.b.c.d
	if z := a.Zone(); z != "" {
		if n, err := strconv.Atoi(z); err == nil {
			sa.Scope_id = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
	pb[0], pb[1] = byte(port>>8), byte(port)
	return unsafe.Sizeof(*sa), nil
}

// udpLoop hands every datagram to memberlist, as NetTransport does.
func (t *transport) udpLoop() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	var from unix.RawSockaddrAny
	for {
		n, err := rawsock.Recvfrom(t.rc, buf, &from)
		ts := time.Now()
		if err != nil {
			if t.shut.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: Error reading UDP packet: %v", err)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		addr := fromSockaddr(&from)
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) %s", n, memberlist.LogAddress(addr))
			continue
		}
		t.packetCh <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: addr, Timestamp: ts}
	}
}

// fromSockaddr is the sender's address as net's ReadFrom gives it.
func fromSockaddr(rsa *unix.RawSockaddrAny) *net.UDPAddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		pb := (*[2]byte)(unsafe.Pointer(&s.Port))
		return &net.UDPAddr{IP: net.IPv4(s.Addr[0], s.Addr[1], s.Addr[2], s.Addr[3]), Port: int(pb[0])<<8 | int(pb[1])}
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		pb := (*[2]byte)(unsafe.Pointer(&s.Port))
		ip := make(net.IP, net.IPv6len)
		copy(ip, s.Addr[:])
		a := &net.UDPAddr{IP: ip, Port: int(pb[0])<<8 | int(pb[1])}
		if s.Scope_id != 0 {
			a.Zone = strconv.Itoa(int(s.Scope_id))
		}
		return a
	}
	return &net.UDPAddr{}
}

// tcpLoop accepts streams, as NetTransport does (backing off on errors).
func (t *transport) tcpLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shut.Load() {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logger.Printf("[ERR] memberlist: Error accepting TCP connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		t.streamCh <- conn
	}
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// Shutdown closes both sockets and waits for the loops (memberlist still
// reads the channels until it returns, as with NetTransport).
func (t *transport) Shutdown() error {
	t.shut.Store(true)
	errT, errU := t.tcp.Close(), t.udp.Close()
	t.wg.Wait()
	return errors.Join(errT, errU)
}
