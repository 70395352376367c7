package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// An AddrWatch follows address changes on several lab hosts in the kernel's
// own order across their namespaces, so a test can tell for certain whether
// one host gained an address before or after another lost it.
//
// Why not one netlink subscription per namespace (as tests did before): each
// socket was read by its own goroutine that stamped time.Now() on receipt;
// when the test process was descheduled for a few ms, both sockets became
// readable and both goroutines woke together, so the stamps (µs apart) said
// nothing about which change came first. A Lease handover (the old holder
// deletes, then writes the Lease; the new one confirms, then adds) was
// reported as "two owners at once for 18µs" at load 25 on 2 cores.
//
// Here ONE socket, created in the lab's switch namespace with
// NETLINK_LISTEN_ALL_NSID, receives the address notifications of every
// namespace the switch namespace has an nsid for (assigned below). Address
// changes notify their listeners synchronously, before the add/delete system
// call returns, and all of them are queued on that one socket, so the order
// of messages on it is the order in which the changes were made: a delete
// that returned before an add began is always read before it. (One
// exception, in the kernel, not here: an IPv6 address is announced when it
// becomes usable, from the addrconf work just after the add returns; see
// AddrEvent.Tentative.) Each message gets a sequence number in that order;
// the receive time is kept only for human-readable figures. Checked on this
// project's kernel (6.18) by TestAddrWatchOrder.
//
// Hand-written on golang.org/x/sys/unix (and syscall's netlink parsers) because no Go netlink library offers
// a listen-all-nsid subscription (vishvananda/netlink's AddrSubscribe binds a
// socket to one namespace and drops the nsid control message).
type AddrWatch struct {
	f     *os.File
	names map[int32]string // nsid (in the switch namespace) -> host name
	done  chan struct{}

	mu      sync.Mutex
	events  []AddrEvent
	changed chan struct{} // closed (and replaced) when events grow
	err     error
	closed  bool
}

// AddrEvent is one address change on a watched host.
type AddrEvent struct {
	Seq   uint64       // 1, 2, ...: the kernel's order of changes across all watched hosts
	At    time.Time    // when the test process read it (figures only: never to order events)
	Host  string       // the host's name
	Addr  netip.Prefix // the address and its prefix length
	Index int          // the interface index in the host's namespace
	Added bool         // RTM_NEWADDR (also sent when an existing address is refreshed); false: RTM_DELADDR
	// Tentative: an RTM_NEWADDR for an IPv6 address still in duplicate
	// address detection, which does not answer yet. The kernel sends
	// another RTM_NEWADDR when it leaves that state; for an address added
	// with nodad (vipd's VIPs) that is the first and only one, sent from
	// the kernel's addrconf work just after the add returns, and an
	// address deleted before it gives an RTM_DELADDR alone.
	Tentative bool
}

// IsZero reports whether e is no event (Seq 0).
func (e AddrEvent) IsZero() bool { return e.Seq == 0 }

// Before reports whether e happened before o in the kernel's order.
func (e AddrEvent) Before(o AddrEvent) bool { return e.Seq < o.Seq }

// WatchAddrs starts an AddrWatch on hosts (all of one lab) and stops it when
// t's test ends; a failure of the watch (e.g. lost notifications) fails t
// then. Start it before the changes to follow: addresses present before are
// not reported.
func WatchAddrs(t TB, hosts ...*Host) *AddrWatch {
	t.Helper()
	w, err := StartAddrWatch(hosts...)
	if err != nil {
		t.Fatalf("watch addresses: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("address watch: %v", err)
		}
	})
	return w
}

// StartAddrWatch is WatchAddrs without TB; the caller must Close it.
func StartAddrWatch(hosts ...*Host) (*AddrWatch, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no hosts to watch")
	}
	l := hosts[0].lab
	for _, h := range hosts {
		if h.lab != l {
			return nil, fmt.Errorf("host %s is not in lab %s", h.Name, l.ID)
		}
	}
	nl, err := netlink.NewHandleAt(l.swNS)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	w := &AddrWatch{names: map[int32]string{}, done: make(chan struct{}), changed: make(chan struct{})}
	for _, h := range hosts {
		id, err := nsidOf(nl, h)
		if err != nil {
			return nil, err
		}
		w.names[id] = h.Name
	}
	var fd int
	err = doIn(l.swNS, func() error {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := setupWatchSocket(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// os.NewFile registers the non-blocking fd with Go's poller, so Close
	// wakes the reader.
	w.f = os.NewFile(uintptr(fd), "netlink-addr-watch")
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.f.Close()
		return nil, err
	}
	go w.read(rc)
	return w, nil
}

// nsidOf returns the nsid of h's namespace in the switch namespace (nl),
// assigning one if it has none yet. The kernel may assign one by itself
// meanwhile (it does when it reports a veth peer), hence the second look.
func nsidOf(nl *netlink.Handle, h *Host) (int32, error) {
	id, err := nl.GetNetNsIdByFd(int(h.ns))
	if err == nil && id < 0 {
		// -1 asks the kernel for any free id (`ip netns set NAME auto`).
		if serr := nl.SetNetNsIdByFd(int(h.ns), -1); serr != nil && !errors.Is(serr, unix.EEXIST) {
			return 0, fmt.Errorf("assign an nsid to %s: %w", h.NetNS, serr)
		}
		id, err = nl.GetNetNsIdByFd(int(h.ns))
	}
	if err != nil {
		return 0, fmt.Errorf("nsid of %s: %w", h.NetNS, err)
	}
	if id < 0 {
		return 0, fmt.Errorf("nsid of %s: none assigned", h.NetNS)
	}
	return int32(id), nil
}

func setupWatchSocket(fd int) error {
	// Room for bursts while the test process is descheduled; an overrun
	// (ENOBUFS) would lose events and is reported as the watch's error.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1); err != nil {
		return fmt.Errorf("NETLINK_LISTEN_ALL_NSID: %w", err)
	}
	for _, g := range []int{unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			return fmt.Errorf("join netlink group %d: %w", g, err)
		}
	}
	return nil
}

func (w *AddrWatch) read(rc interface {
	Read(func(fd uintptr) bool) error
}) {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			// The socket overran: events were lost, so no order is
			// certain any more; keep reading for the figures.
			w.fail(errors.New("netlink receive buffer overrun: address events lost"))
			continue
		case err != nil:
			w.mu.Lock()
			closed := w.closed
			w.mu.Unlock()
			if !closed {
				w.fail(fmt.Errorf("reading netlink: %w", err))
			}
			return
		}
		at := time.Now()
		nsid, ok := listenNSID(oob[:oobn])
		if !ok {
			continue // the switch namespace's own
		}
		host, ok := w.names[nsid]
		if !ok {
			continue // another namespace of the lab
		}
		evs, err := parseAddrMessages(buf[:n])
		if err != nil {
			w.fail(err)
		}
		w.mu.Lock()
		for _, e := range evs {
			e.Seq, e.At, e.Host = uint64(len(w.events)+1), at, host
			w.events = append(w.events, e)
		}
		if len(evs) > 0 {
			close(w.changed)
			w.changed = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

// fail records the watch's first error.
func (w *AddrWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// listenNSID returns the nsid the kernel attaches to a message from another
// namespace on a NETLINK_LISTEN_ALL_NSID socket (none: the socket's own).
func listenNSID(oob []byte) (int32, bool) {
	ms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range ms {
		if m.Header.Level == unix.SOL_NETLINK && m.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(m.Data) >= 4 {
			return *(*int32)(unsafe.Pointer(&m.Data[0])), true
		}
	}
	return 0, false
}

// parseAddrMessages decodes RTM_NEWADDR/RTM_DELADDR messages (Seq, At and
// Host left for the caller).
func parseAddrMessages(b []byte) ([]AddrEvent, error) {
	ms, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, fmt.Errorf("parse netlink message: %w", err)
	}
	var out []AddrEvent
	for i := range ms {
		m := &ms[i]
		if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
			continue
		}
		if len(m.Data) < unix.SizeofIfAddrmsg {
			return out, fmt.Errorf("short address message (%d bytes)", len(m.Data))
		}
		ifa := (*unix.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return out, fmt.Errorf("parse address attributes: %w", err)
		}
		// IFA_LOCAL is the address itself where it differs from IFA_ADDRESS
		// (the peer of a point-to-point link); IPv6 sends IFA_ADDRESS only.
		var addr, local []byte
		flags := uint32(ifa.Flags)
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_ADDRESS:
				addr = a.Value
			case unix.IFA_LOCAL:
				local = a.Value
			case unix.IFA_FLAGS: // all 32 bits of the flags
				if len(a.Value) >= 4 {
					flags = *(*uint32)(unsafe.Pointer(&a.Value[0]))
				}
			}
		}
		if local != nil {
			addr = local
		}
		ip, ok := netip.AddrFromSlice(addr)
		if !ok {
			continue
		}
		out = append(out, AddrEvent{
			Addr:      netip.PrefixFrom(ip.Unmap(), int(ifa.Prefixlen)),
			Index:     int(ifa.Index),
			Added:     m.Header.Type == unix.RTM_NEWADDR,
			Tentative: m.Header.Type == unix.RTM_NEWADDR && flags&unix.IFA_F_TENTATIVE != 0,
		})
	}
	return out, nil
}

// Events returns every event so far, in the kernel's order.
func (w *AddrWatch) Events() []AddrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// Next waits for the first event after event number after (0: any) that
// match accepts, and returns it.
func (w *AddrWatch) Next(ctx context.Context, after uint64, match func(AddrEvent) bool) (AddrEvent, error) {
	for {
		w.mu.Lock()
		for _, e := range w.events[min(after, uint64(len(w.events))):] {
			if match(e) {
				w.mu.Unlock()
				return e, nil
			}
		}
		after = uint64(len(w.events))
		ch, err := w.changed, w.err
		w.mu.Unlock()
		if err != nil {
			return AddrEvent{}, err
		}
		select {
		case <-ch:
		case <-w.done:
			return AddrEvent{}, errors.New("address watch closed")
		case <-ctx.Done():
			return AddrEvent{}, ctx.Err()
		}
	}
}

// Err is the watch's failure, if any (from then on events may be missing).
func (w *AddrWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Holdings returns who held a, in the kernel's order (see HoldingsOf).
func (w *AddrWatch) Holdings(a netip.Addr) []Holding { return HoldingsOf(w.Events(), a) }

// Holders returns the hosts that hold a now (as far as read), sorted.
func (w *AddrWatch) Holders(a netip.Addr) []string {
	var out []string
	for _, h := range w.Holdings(a) {
		if h.To.IsZero() {
			out = append(out, h.Host)
		}
	}
	sort.Strings(out)
	return out
}

// Close stops the watch and returns its failure, if any.
func (w *AddrWatch) Close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		w.f.Close()
		<-w.done
	}
	return w.Err()
}

// Holding is one time a host held an address: from the event that added it
// to the one that removed it (To zero: still held).
type Holding struct {
	Host     string
	From, To AddrEvent
}

// HoldingsOf turns events (in the kernel's order) into the holdings of
// address a, ordered by their start. An RTM_NEWADDR for an address already
// held is a refresh (e.g. a new lifetime), not a new holding; a tentative
// one is no holding yet (the address does not answer).
func HoldingsOf(events []AddrEvent, a netip.Addr) []Holding {
	a = a.Unmap()
	open := map[string]int{} // host -> index in out
	var out []Holding
	for _, e := range events {
		if e.Addr.Addr() != a {
			continue
		}
		i, held := open[e.Host]
		switch {
		case e.Added && !held && !e.Tentative:
			open[e.Host] = len(out)
			out = append(out, Holding{Host: e.Host, From: e})
		case !e.Added && held:
			out[i].To = e
			delete(open, e.Host)
		}
	}
	return out
}

// Overlap is a stretch during which two hosts held the address at once.
type Overlap struct {
	A, B Holding       // A began first
	For  time.Duration // by the receive times (figures only; may read 0 for a real overlap)
}

// Overlaps returns every pair of holdings of different hosts that overlap
// in the kernel's order: B began before A ended. The receive times play no
// part in the decision; open holdings end at now for the figure.
func Overlaps(hs []Holding, now time.Time) []Overlap {
	hs = slices.Clone(hs)
	sort.SliceStable(hs, func(i, j int) bool { return hs[i].From.Seq < hs[j].From.Seq })
	var out []Overlap
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			a, b := hs[i], hs[j]
			if a.Host == b.Host || (!a.To.IsZero() && !b.From.Before(a.To)) {
				continue
			}
			end := now
			for _, h := range []Holding{a, b} {
				if !h.To.IsZero() && h.To.At.Before(end) {
					end = h.To.At
				}
			}
			out = append(out, Overlap{A: a, B: b, For: max(end.Sub(b.From.At), 0)})
		}
	}
	return out
}

// String describes o in the kernel's order, e.g. "node1 added it (event
// #7) before node2 removed it (#8)".
func (o Overlap) String() string {
	if o.A.To.IsZero() {
		return fmt.Sprintf("%s added it (event #%d) while %s held it (since #%d)", o.B.Host, o.B.From.Seq, o.A.Host, o.A.From.Seq)
	}
	return fmt.Sprintf("%s added it (event #%d) before %s removed it (#%d)", o.B.Host, o.B.From.Seq, o.A.Host, o.A.To.Seq)
}
