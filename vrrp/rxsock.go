package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// rxSock is the receiving half of a VRRP Conn: a blocking raw socket read by
// one goroutine, outside Go's network poller. A socket in the poller wakes
// the poller's thread for every datagram queued (edge-triggered epoll fires
// on each arrival), even while nobody reads: under a 20,000/s flood that was
// most of vipd's CPU (issue #11, 5). A blocking socket wakes its reader only
// while the reader waits in recvmsg, so the pause between reads (pacer)
// really batches. The Conn's sending socket stays in the poller with a
// filter that drops everything, so it queues nothing.
type rxSock struct {
	family int
	mu     sync.Mutex   // held by the reader around each system call, and by close
	fd     atomic.Int64 // -1 once closed
	closed atomic.Bool
	pace   pacer
	buf    []byte
	oob    []byte
	queue  []Packet // read but not yet returned
}

// rxTimeout bounds how long a blocked read goes without looking at closed
// (shutdown wakes it at once; this is the fallback).
const rxTimeout = 500 * time.Millisecond

func openRx(ifi *net.Interface, family int) (*rxSock, error) {
	af := unix.AF_INET
	if family == 6 {
		af = unix.AF_INET6
	}
	fd, err := unix.Socket(af, unix.SOCK_RAW|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	r := &rxSock{family: family, buf: make([]byte, 1500), oob: make([]byte, 128)}
	r.fd.Store(int64(fd))
	if err := r.setup(ifi); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	return r, nil
}

func (r *rxSock) setup(ifi *net.Interface) error {
	fd := int(r.fd.Load())
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name); err != nil {
		return err
	}
	if err := setRecvBuffer(fd); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(rxTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	// Nothing is queued before the real filter is attached (SetFilter).
	if err := attach(fd, dropAll); err != nil {
		return err
	}
	if r.family == 4 {
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: GroupV4.As4(), Ifindex: int32(ifi.Index)})
	}
	for _, o := range []int{unix.IPV6_RECVHOPLIMIT, unix.IPV6_RECVPKTINFO} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o, 1); err != nil {
			return err
		}
	}
	return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
		&unix.IPv6Mreq{Multiaddr: GroupV6.As16(), Interface: uint32(ifi.Index)})
}

// dropAll is the filter of a socket that must queue nothing.
var dropAll = []bpf.RawInstruction{{Op: unix.BPF_RET | unix.BPF_K, K: 0}}

func attach(fd int, prog []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

func (r *rxSock) setFilter(prog []bpf.RawInstruction) error {
	fd := int(r.fd.Load())
	if fd < 0 {
		return net.ErrClosed
	}
	return attach(fd, prog)
}

// drops is the kernel's count of datagrams dropped for a full buffer.
func (r *rxSock) drops() uint64 {
	fd := r.fd.Load()
	if fd < 0 {
		return 0
	}
	var mi [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mi))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 || l < 4*(unix.SK_MEMINFO_DROPS+1) {
		return 0
	}
	return uint64(mi[unix.SK_MEMINFO_DROPS])
}

// recv returns up to len(ps) packets (at least one), blocking for the first.
func (r *rxSock) recv(ps []Packet) (int, error) {
	for len(r.queue) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(ps, r.queue)
	r.queue = r.queue[n:]
	return n, nil
}

// fill reads one datagram blocking, then whatever else is queued, up to
// recvBatch, without blocking.
func (r *rxSock) fill() error {
	r.pace.before()
	r.mu.Lock()
	defer r.mu.Unlock()
	fd := int(r.fd.Load())
	if r.closed.Load() || fd < 0 {
		return net.ErrClosed
	}
	r.queue = r.queue[:0]
	flags := 0
	for len(r.queue) < recvBatch {
		n, oobn, _, from, err := unix.Recvmsg(fd, r.buf, r.oob, flags)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
				if flags != 0 || r.closed.Load() {
					break // drained (or a timed-out wait: look at closed)
				}
				continue
			}
			return err
		}
		if r.closed.Load() {
			return net.ErrClosed
		}
		if n == 0 && from == nil {
			// shutdown woke us
			return net.ErrClosed
		}
		if p, ok := r.parse(r.buf[:n], r.oob[:oobn], from); ok {
			r.queue = append(r.queue, p)
		}
		flags = unix.MSG_DONTWAIT
	}
	r.pace.after(len(r.queue))
	if r.closed.Load() {
		return net.ErrClosed
	}
	return nil
}

func (r *rxSock) parse(b, oob []byte, from unix.Sockaddr) (Packet, bool) {
	if r.family == 4 {
		return parseIPv4(b)
	}
	sa, ok := from.(*unix.SockaddrInet6)
	if !ok {
		return Packet{}, false
	}
	p := Packet{Src: netip.AddrFrom16(sa.Addr).Unmap(), TTL: -1, Payload: append([]byte(nil), b...)}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Packet{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				p.TTL = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		case unix.IPV6_PKTINFO:
			if len(m.Data) >= 16 {
				p.Dst = netip.AddrFrom16([16]byte(m.Data[:16])).Unmap()
			}
		}
	}
	return p, true
}

// parseIPv4 reads the IPv4 header a raw socket hands over with the datagram.
func parseIPv4(b []byte) (Packet, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Packet{}, false
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 || hl > len(b) {
		return Packet{}, false
	}
	p := b[hl:]
	// Trust the header's total length over the read size.
	if n := int(binary.BigEndian.Uint16(b[2:4])) - hl; n >= 0 && n < len(p) {
		p = p[:n]
	}
	return Packet{
		Src:     netip.AddrFrom4([4]byte(b[12:16])),
		Dst:     netip.AddrFrom4([4]byte(b[16:20])),
		TTL:     int(b[8]),
		Payload: append([]byte(nil), p...),
	}, true
}

// close wakes a blocked reader (shutdown) and closes the socket once it has
// left its system call.
func (r *rxSock) close() error {
	if r.closed.Swap(true) {
		return nil
	}
	_ = unix.Shutdown(int(r.fd.Load()), unix.SHUT_RD)
	r.mu.Lock()
	defer r.mu.Unlock()
	fd := int(r.fd.Swap(-1))
	return unix.Close(fd)
}
