package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// rxSock is the receiving half of a VRRP Conn: a non-blocking raw socket in
// an epoll instance of its own (EPOLLONESHOT), and that epoll instance in
// Go's network poller. Two designs it replaces:
//   - the raw socket itself in the poller: the poller's thread woke for
//     every datagram queued (edge-triggered), even while nobody read, so
//     under a flood the reader's pause batched reads but not wake-ups (most
//     of vipd's CPU, issue #11, 5);
//   - a blocking read outside the poller: a goroutine blocked in a system
//     call holds its P until sysmon retakes it, and every retake sets sysmon
//     back to polling every 20µs; at 10ms adverts that churn cost more CPU
//     than the adverts themselves (issue #15).
//
// With EPOLLONESHOT the socket signals once, then not again until the
// reader re-arms it, which it does only once it has drained the queue and
// is about to wait: datagrams that arrive during a pause (pacer) wake
// nobody, and an idle reader is parked in the poller like any goroutine.
// The Conn's sending socket stays in the poller with a filter that drops
// everything, so it queues nothing.
type rxSock struct {
	family int
	fd     int // the raw socket; valid until close
	epfd   int // the epoll instance (also owned by ep)
	ep     *os.File
	rc     syscall.RawConn // ep's, to wait in the poller

	mu     sync.Mutex // serialises the reader's system calls on fd, epfd and close
	closed atomic.Bool
	armed  bool // fd is armed in epfd: one readiness event to come
	// drained: the reader's last read ended on an empty queue, so the next
	// recv waits before reading (arming signals anything queued since):
	// an idle backup reads each advert with one recvmsg that finds it and
	// one that finds the queue empty, not a third (issue #15).
	drained bool
	pace    pacer

	// Buffers of the single reader (recvmsg without allocations).
	buf    []byte
	oob    []byte
	name   unix.RawSockaddrInet6
	iov    unix.Iovec
	msg    unix.Msghdr
	events [1]unix.EpollEvent
}

func openRx(ifi *net.Interface, family int) (*rxSock, error) {
	af := unix.AF_INET
	if family == 6 {
		af = unix.AF_INET6
	}
	fd, err := unix.Socket(af, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	r := &rxSock{family: family, fd: fd, epfd: -1, buf: make([]byte, 1500), oob: make([]byte, 128)}
	if err := r.setup(ifi); err != nil {
		unix.Close(fd)
		if r.epfd >= 0 && r.ep == nil {
			unix.Close(r.epfd)
		}
		if r.ep != nil {
			r.ep.Close()
		}
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	return r, nil
}

func (r *rxSock) setup(ifi *net.Interface) error {
	fd := r.fd
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name); err != nil {
		return err
	}
	if err := setRecvBuffer(fd); err != nil {
		return err
	}
	// Nothing is queued before the real filter is attached (SetFilter).
	if err := attach(fd, dropAll); err != nil {
		return err
	}
	if r.family == 4 {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: GroupV4.As4(), Ifindex: int32(ifi.Index)}); err != nil {
			return err
		}
	} else {
		for _, o := range []int{unix.IPV6_RECVHOPLIMIT, unix.IPV6_RECVPKTINFO} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o, 1); err != nil {
				return err
			}
		}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
			&unix.IPv6Mreq{Multiaddr: GroupV6.As16(), Interface: uint32(ifi.Index)}); err != nil {
			return err
		}
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	r.epfd = epfd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	r.armed = true
	// A non-blocking descriptor given to os.NewFile goes into the poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	r.ep = os.NewFile(uintptr(epfd), "vrrp-rx-epoll")
	rc, err := r.ep.SyscallConn()
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	r.rc = rc
	return nil
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return net.ErrClosed
	}
	return attach(r.fd, prog)
}

// queued reports whether a datagram waits in the receive queue (SIOCINQ:
// the size of the first one), without reading it.
func (r *rxSock) queued() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return false
	}
	var n int32
	_, err := rawSyscall(unix.SYS_IOCTL, uintptr(r.fd), unix.SIOCINQ, uintptr(unsafe.Pointer(&n)), 0, 0, 0)
	return err == nil && n > 0
}

// drops is the kernel's count of datagrams dropped for a full buffer.
func (r *rxSock) drops() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0
	}
	var mi [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mi))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(r.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 || l < 4*(unix.SK_MEMINFO_DROPS+1) {
		return 0
	}
	return uint64(mi[unix.SK_MEMINFO_DROPS])
}

// recv fills ps with up to len(ps) datagrams (at least one), waiting for
// the first; their payloads are appended to buf, which it returns (the
// packets' Payloads point into it).
func (r *rxSock) recv(ps []Packet, buf []byte) (int, []byte, error) {
	r.pace.before()
	for {
		if r.drained {
			if err := r.wait(); err != nil {
				return 0, buf, err
			}
		}
		n, nbuf, err := r.read(ps, buf)
		if n > 0 {
			r.pace.after(n)
			return n, nbuf, nil
		}
		if err != nil {
			return 0, buf, err
		}
	}
}

// read takes what is queued, up to len(ps) datagrams, without waiting.
func (r *rxSock) read(ps []Packet, buf []byte) (int, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drained = false
	n := 0
	for n < len(ps) {
		if r.closed.Load() {
			return 0, buf, net.ErrClosed
		}
		size, oobn, err := r.recvmsg()
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS) {
				r.drained = true
				return n, buf, nil
			}
			if n > 0 {
				return n, buf, nil // a hard error comes back on the next read
			}
			return 0, buf, err
		}
		var p Packet
		var ok bool
		if p, buf, ok = r.parse(r.buf[:size], r.oob[:oobn], buf); ok {
			ps[n] = p
			n++
		}
	}
	return n, buf, nil
}

// recvmsg is unix.Recvmsg without its allocations (a Sockaddr per datagram)
// and as a raw system call (rawSyscall).
func (r *rxSock) recvmsg() (n, oobn int, err error) {
	r.iov.Base = &r.buf[0]
	r.iov.SetLen(len(r.buf))
	r.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.name)), Namelen: uint32(unsafe.Sizeof(r.name)), Iov: &r.iov, Iovlen: 1, Control: &r.oob[0]}
	r.msg.SetControllen(len(r.oob))
	m, err := rawSyscall(unix.SYS_RECVMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.msg)), unix.MSG_DONTWAIT, 0, 0, 0)
	if err != nil {
		return 0, 0, err
	}
	return int(m), int(r.msg.Controllen), nil
}

// wait parks the reader in the poller until the socket has something to
// read (or ep is closed), arming the socket first if its event was taken.
func (r *rxSock) wait() error {
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return net.ErrClosed
	}
	if !r.armed {
		// Level-triggered: data queued since the last read signals at once.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(r.fd)}
		if _, err := rawSyscall(unix.SYS_EPOLL_CTL, uintptr(r.epfd), unix.EPOLL_CTL_MOD, uintptr(r.fd), uintptr(unsafe.Pointer(&ev)), 0, 0); err != nil {
			r.mu.Unlock()
			return fmt.Errorf("epoll: %w", err)
		}
		r.armed = true
	}
	r.mu.Unlock()
	var werr error
	err := r.rc.Read(func(epfd uintptr) bool {
		n, err := rawSyscall(unix.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&r.events[0])), uintptr(len(r.events)), 0, 0, 0)
		switch {
		case n > 0:
			return true
		case err != nil && !errors.Is(err, unix.EINTR):
			werr = err
			return true
		}
		return false
	})
	if err != nil {
		if r.closed.Load() {
			return net.ErrClosed
		}
		return err
	}
	if werr != nil {
		return fmt.Errorf("epoll: %w", werr)
	}
	// The one-shot event was taken: the socket is disarmed.
	r.mu.Lock()
	r.armed = false
	r.mu.Unlock()
	return nil
}

// parse turns a datagram into a Packet whose payload is appended to buf.
func (r *rxSock) parse(b, oob, buf []byte) (Packet, []byte, bool) {
	if r.family == 4 {
		return parseIPv4(b, buf)
	}
	if r.name.Family != unix.AF_INET6 {
		return Packet{}, buf, false
	}
	p := Packet{Src: netip.AddrFrom16(r.name.Addr).Unmap(), TTL: -1}
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return Packet{}, buf, false
		}
		oob = rest
		if h.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch h.Type {
		case unix.IPV6_HOPLIMIT:
			if len(data) >= 4 {
				p.TTL = int(int32(binary.NativeEndian.Uint32(data)))
			}
		case unix.IPV6_PKTINFO:
			if len(data) >= 16 {
				p.Dst = netip.AddrFrom16([16]byte(data[:16])).Unmap()
			}
		}
	}
	p.Payload, buf = appendPayload(buf, b)
	return p, buf, true
}

// appendPayload copies b to the end of buf and returns the copy and buf.
func appendPayload(buf, b []byte) ([]byte, []byte) {
	start := len(buf)
	buf = append(buf, b...)
	return buf[start:len(buf):len(buf)], buf
}

// parseIPv4 reads the IPv4 header a raw socket hands over with the datagram.
func parseIPv4(b, buf []byte) (Packet, []byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Packet{}, buf, false
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 || hl > len(b) {
		return Packet{}, buf, false
	}
	p := b[hl:]
	// Trust the header's total length over the read size.
	if n := int(binary.BigEndian.Uint16(b[2:4])) - hl; n >= 0 && n < len(p) {
		p = p[:n]
	}
	pkt := Packet{
		Src: netip.AddrFrom4([4]byte(b[12:16])),
		Dst: netip.AddrFrom4([4]byte(b[16:20])),
		TTL: int(b[8]),
	}
	pkt.Payload, buf = appendPayload(buf, p)
	return pkt, buf, true
}

// close wakes a waiting reader and closes both descriptors; a reader in a
// read finishes it first (mu).
func (r *rxSock) close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Closing ep evicts the reader from the poller (and waits for it to
	// leave its callback).
	return errors.Join(r.ep.Close(), unix.Close(r.fd))
}
