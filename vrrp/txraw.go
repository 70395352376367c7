package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSyscall is the system call path of the adverts' hot loop (sending,
// receiving, the timerfd): unix.RawSyscall6, not unix.Syscall6, for calls
// that never block (non-blocking descriptors only). Syscall6 enters the
// scheduler's syscall state, which wakes sysmon whenever it sleeps, i.e.
// once per advert on an idle node (issue #15); a raw call keeps its P and
// wakes nobody. Its errno is returned as an error (nil on success).
func rawSyscall(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	if e != 0 {
		return r, e
	}
	return r, nil
}

// txRaw sends adverts on a sending socket's descriptor with one raw
// sendmsg, from buffers it reuses (no allocation per advert). The socket
// stays owned by its net.PacketConn (which closes it); txRaw only borrows
// the descriptor, under mu, until close.
type txRaw struct {
	mu     sync.Mutex
	fd     int // -1 once closed
	family int
	ifidx  int
	pkt    []byte                // IPv4: header + payload
	oobBuf [8]uint64             // control messages (aligned for Cmsghdr)
	name   unix.RawSockaddrInet6 // large enough for both families
	iov    unix.Iovec
	msg    unix.Msghdr
}

// newTxRaw borrows rc's descriptor; nil if it cannot.
func newTxRaw(rc syscall.RawConn, family, ifindex int) *txRaw {
	t := &txRaw{fd: -1, family: family, ifidx: ifindex}
	if err := rc.Control(func(fd uintptr) { t.fd = int(fd) }); err != nil || t.fd < 0 {
		return nil
	}
	return t
}

// errTxFallback: the raw path cannot send this one (socket buffer full);
// the caller sends it through the poller, which waits.
var errTxFallback = errors.New("vrrp: raw send would block")

// send4 sends payload from src to dst with the IPv4 header x/net's
// RawConn.WriteTo built (IP_HDRINCL socket): TOS 0xc0, TTL 255, protocol
// 112, ID and checksum filled in by the kernel; IP_PKTINFO names the
// interface.
func (t *txRaw) send4(payload []byte, src, dst netip.Addr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fd < 0 {
		return errTxFallback
	}
	n := 20 + len(payload)
	t.pkt = append(t.pkt[:0], make([]byte, 20)...)
	h := t.pkt[:20]
	h[0] = 4<<4 | 5
	h[1] = 0xc0
	binary.BigEndian.PutUint16(h[2:4], uint16(n))
	h[8] = TTL
	h[9] = IPProtocol
	s4, d4 := src.As4(), dst.As4()
	copy(h[12:16], s4[:])
	copy(h[16:20], d4[:])
	t.pkt = append(t.pkt, payload...)

	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&t.name))
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: d4}
	info := unix.Inet4Pktinfo{Ifindex: int32(t.ifidx)}
	oobn := putCmsg(t.oob(), unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unsafe.Sizeof(info)))
	return t.sendmsg(unix.SizeofSockaddrInet4, oobn)
}

// send6 sends payload from src to dst as x/net's ipv6 WriteTo with a
// ControlMessage did: IPV6_HOPLIMIT 255 and IPV6_PKTINFO (source address,
// interface); a link-local destination is scoped to the interface.
func (t *txRaw) send6(payload []byte, src, dst netip.Addr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fd < 0 {
		return errTxFallback
	}
	t.pkt = append(t.pkt[:0], payload...)
	t.name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		t.name.Scope_id = uint32(t.ifidx)
	}
	hop := int32(TTL)
	oobn := putCmsg(t.oob(), unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unsafe.Slice((*byte)(unsafe.Pointer(&hop)), 4))
	info := unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(t.ifidx)}
	oobn += putCmsg(t.oob()[oobn:], unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unsafe.Sizeof(info)))
	return t.sendmsg(unix.SizeofSockaddrInet6, oobn)
}

func (t *txRaw) sendmsg(namelen, oobn int) error {
	t.iov.Base = &t.pkt[0]
	t.iov.SetLen(len(t.pkt))
	t.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&t.name)), Namelen: uint32(namelen), Iov: &t.iov, Iovlen: 1, Control: &t.oob()[0]}
	t.msg.SetControllen(oobn)
	for {
		_, err := rawSyscall(unix.SYS_SENDMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&t.msg)), 0, 0, 0, 0)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return errTxFallback
		}
		return err
	}
}

func (t *txRaw) oob() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&t.oobBuf[0])), len(t.oobBuf)*8)
}

// close stops borrowing the descriptor (before its owner closes it).
func (t *txRaw) close() {
	t.mu.Lock()
	t.fd = -1
	t.mu.Unlock()
}

// putCmsg writes one control message into b and returns the space it took.
func putCmsg(b []byte, level, typ int, data []byte) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	clear(b[unix.CmsgLen(0)+len(data) : unix.CmsgSpace(len(data))])
	return unix.CmsgSpace(len(data))
}
