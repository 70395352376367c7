package addr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// BatchKernel is a Kernel that can change many host addresses with one
// system call. The binder uses it when the Kernel has it: with 1,000 VIPs
// the refresh loop renews 1,000 lifetimes every refresh interval, and one
// request/ack round trip (plus an interface lookup) per address cost more
// than the renewals themselves.
type BatchKernel interface {
	Kernel
	// ReplaceAll is Replace for every VIP; errs[i] is vips[i]'s error.
	ReplaceAll(vips []VIP, lifetime time.Duration) (errs []error)
	// DeleteAll removes the host addresses (/32, /128) vips (a missing one
	// is not an error); errs[i] is vips[i]'s error. Unlike Delete it does
	// not look for the address with other prefix lengths: it removes what
	// the binder added.
	DeleteAll(vips []VIP) (errs []error)
}

// ErrEventsLost says the deletion watch's socket overran: deletions may
// have been missed, so the caller should check every held VIP.
var ErrEventsLost = errors.New("address notifications lost (receive buffer overrun)")

// maxBatch bounds the messages of one send: the kernel answers each with an
// ack, and 64 acks fit in one read.
const maxBatch = 64

// nlSocket is a raw rtnetlink socket for batched address requests.
type nlSocket struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte // acks
	msg []byte // requests, reused
}

func openNLSocket() (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	// Acks carry only the request's header, not the whole request.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	// A kernel that never acks must not hold the binder's lock forever.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &nlSocket{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (s *nlSocket) close() { unix.Close(s.fd) }

// addrMsg encodes one RTM_NEWADDR (replace) or RTM_DELADDR request for the
// host address a on ifindex.
func addrMsg(b []byte, typ uint16, seq uint32, ifindex int, a netip.Addr, lifetime time.Duration) []byte {
	family, bits := byte(unix.AF_INET), byte(32)
	if a.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	var ifaFlags uint32
	if typ == unix.RTM_NEWADDR {
		flags |= unix.NLM_F_CREATE | unix.NLM_F_REPLACE
		if a.Is6() {
			ifaFlags = unix.IFA_F_NODAD // see Netlink.Replace
		}
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // length, below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
	// struct ifaddrmsg
	b = append(b, family, bits, byte(ifaFlags), unix.RT_SCOPE_UNIVERSE)
	b = binary.NativeEndian.AppendUint32(b, uint32(ifindex))
	raw := a.AsSlice()
	b = appendAttr(b, unix.IFA_LOCAL, raw)
	b = appendAttr(b, unix.IFA_ADDRESS, raw)
	if typ == unix.RTM_NEWADDR {
		// struct ifa_cacheinfo: preferred 0 (deprecated: never the source
		// of the node's own traffic), valid = lifetime.
		var ci [16]byte
		binary.NativeEndian.PutUint32(ci[4:], uint32(lifetime/time.Second))
		b = appendAttr(b, unix.IFA_CACHEINFO, ci[:])
		var fl [4]byte
		binary.NativeEndian.PutUint32(fl[:], ifaFlags)
		b = appendAttr(b, unix.IFA_FLAGS, fl[:])
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for range (4 - l%4) % 4 {
		b = append(b, 0)
	}
	return b
}

// do sends one request per item (at most maxBatch per send) and returns
// each one's result from its ack.
func (s *nlSocket) do(typ uint16, ifindex []int, addrs []netip.Addr, lifetime time.Duration) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(addrs))
	msg := s.msg
	defer func() { s.msg = msg[:0] }()
	for start := 0; start < len(addrs); start += maxBatch {
		end := min(start+maxBatch, len(addrs))
		msg = msg[:0]
		first := s.seq + 1
		for i := start; i < end; i++ {
			s.seq++
			msg = addrMsg(msg, typ, s.seq, ifindex[i], addrs[i], lifetime)
		}
		if err := unix.Sendto(s.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			for i := start; i < end; i++ {
				errs[i] = fmt.Errorf("netlink send: %w", err)
			}
			continue
		}
		if err := s.acks(first, errs[start:end]); err != nil {
			for i := start; i < end; i++ {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
	}
	return errs
}

// acks reads until every request from seq first on has its ack, storing
// each error in errs[seq-first].
func (s *nlSocket) acks(first uint32, errs []error) error {
	pending := len(errs)
	seen := make([]bool, len(errs))
	for pending > 0 {
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			i := int(m.Header.Seq - first)
			if m.Header.Type != unix.NLMSG_ERROR || i < 0 || i >= len(errs) || seen[i] || len(m.Data) < 4 {
				continue // a stale answer to an earlier, failed batch
			}
			seen[i] = true
			pending--
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				errs[i] = syscall.Errno(-code)
			}
		}
	}
	return nil
}

// watchDeletedFiltered is WatchDeleted on a socket that only ever sees
// RTM_DELADDR: a kernel socket filter drops every RTM_NEWADDR (the echo of
// each of our own renewals, and the kernel's re-deprecation of each renewed
// IPv6 address, two per VIP per refresh interval) before it is queued, so
// vipd is not woken for its own writes.
func watchDeletedFiltered(ctx context.Context, fn func(ifindex int, a netip.Addr)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("address watch: netlink socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink-addr-deleted")
	defer f.Close()
	if err := setupDeletedWatch(fd); err != nil {
		return fmt.Errorf("address watch: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = rerr
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			return fmt.Errorf("address watch: %w", ErrEventsLost)
		case err != nil:
			return fmt.Errorf("address watch: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_DELADDR {
				continue
			}
			if idx, a, ok := parseAddrMsg(m.Data); ok {
				fn(idx, a)
			}
		}
	}
}

func setupDeletedWatch(fd int) error {
	// Room for a burst of deletions (an admin flushing 1,000 VIPs).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, deletedOnly()); err != nil {
		return fmt.Errorf("attaching the RTM_DELADDR filter: %w", err)
	}
	return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR})
}

// deletedOnly is a classic BPF program that accepts a netlink message whose
// nlmsg_type is RTM_DELADDR and drops everything else. Address
// notifications are one message per datagram. nlmsg_type is in host byte
// order and BPF loads big-endian, hence the swap on little-endian hosts.
func deletedOnly() *unix.SockFprog {
	var t [2]byte
	binary.NativeEndian.PutUint16(t[:], unix.RTM_DELADDR)
	want := uint32(binary.BigEndian.Uint16(t[:]))
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: want, SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // constant program
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
}

// parseAddrMsg reads the interface index and address of an ifaddrmsg.
func parseAddrMsg(data []byte) (int, netip.Addr, bool) {
	if len(data) < unix.SizeofIfAddrmsg {
		return 0, netip.Addr{}, false
	}
	idx := int(binary.NativeEndian.Uint32(data[4:8]))
	attrs, err := syscall.ParseNetlinkRouteAttr(&syscall.NetlinkMessage{
		Header: syscall.NlMsghdr{Type: unix.RTM_DELADDR}, Data: data})
	if err != nil {
		return 0, netip.Addr{}, false
	}
	var addr netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_LOCAL:
			if a, ok := netip.AddrFromSlice(at.Value); ok {
				return idx, a.Unmap(), true
			}
		case unix.IFA_ADDRESS:
			if a, ok := netip.AddrFromSlice(at.Value); ok {
				addr = a.Unmap()
			}
		}
	}
	return idx, addr, addr.IsValid()
}
