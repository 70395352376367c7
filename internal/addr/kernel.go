package addr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is the part of the kernel's address API the binder needs. The
// netlink implementation is Netlink; unit tests use a fake.
type Kernel interface {
	// Replace adds a as a host address (/32 or /128) on ifname with the given
	// valid lifetime and preferred lifetime 0, or refreshes it if present.
	Replace(ifname string, a netip.Addr, lifetime time.Duration) error
	// Delete removes a from ifname; a missing address is not an error.
	Delete(ifname string, a netip.Addr) error
	// Find lists how a is configured on ifname (empty when absent).
	Find(ifname string, a netip.Addr) ([]Found, error)
	// WatchDeleted calls fn for every address deleted on any interface until
	// ctx is done.
	WatchDeleted(ctx context.Context, fn func(ifindex int, a netip.Addr)) error
	// Index returns the interface index of ifname.
	Index(ifname string) (int, error)
}

// Found is one existing configuration of an address on an interface.
type Found struct {
	Prefix netip.Prefix
	// Permanent is true for an address without a lifetime (added by hand or by
	// another tool); vipd's own addresses always have a finite lifetime.
	Permanent bool
}

// Netlink implements Kernel with github.com/vishvananda/netlink in the
// network namespace it was created in. It keeps one netlink socket (the
// handle serialises requests on it) instead of opening one per call: the
// refresh loop talks to the kernel every second for every VIP.
//
// It is also a BatchKernel: the refresh loop and takeovers go through
// ReplaceAll / DeleteAll on a raw socket, with interface indexes cached.
type Netlink struct {
	h    *netlink.Handle
	sock *nlSocket

	mu    sync.Mutex
	index map[string]int // interface name -> index, for batched requests
}

// NewNetlink opens the netlink handle.
func NewNetlink() (*Netlink, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	s, err := openNLSocket()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Netlink{h: h, sock: s, index: map[string]int{}}, nil
}

// Close releases the handle.
func (n *Netlink) Close() {
	n.h.Close()
	n.sock.close()
}

// cachedIndex returns ifname's index, looked up once; forget drops it (the
// interface was deleted and may come back with another index).
func (n *Netlink) cachedIndex(ifname string) (int, error) {
	n.mu.Lock()
	idx, ok := n.index[ifname]
	n.mu.Unlock()
	if ok {
		return idx, nil
	}
	idx, err := n.Index(ifname)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	n.index[ifname] = idx
	n.mu.Unlock()
	return idx, nil
}

func (n *Netlink) forget(ifname string) {
	n.mu.Lock()
	delete(n.index, ifname)
	n.mu.Unlock()
}

// ReplaceAll implements BatchKernel.
func (n *Netlink) ReplaceAll(vips []VIP, lifetime time.Duration) []error {
	return n.batch(unix.RTM_NEWADDR, vips, lifetime)
}

// DeleteAll implements BatchKernel.
func (n *Netlink) DeleteAll(vips []VIP) []error {
	errs := n.batch(unix.RTM_DELADDR, vips, 0)
	for i, err := range errs {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			errs[i] = nil // already gone
		}
	}
	return errs
}

func (n *Netlink) batch(typ uint16, vips []VIP, lifetime time.Duration) []error {
	errs := make([]error, len(vips))
	for attempt := 0; ; attempt++ {
		var todo []int
		var idx []int
		var addrs []netip.Addr
		for i, v := range vips {
			if attempt > 0 && errs[i] == nil {
				continue
			}
			x, err := n.cachedIndex(v.Interface)
			if err != nil {
				errs[i] = err
				continue
			}
			todo = append(todo, i)
			idx = append(idx, x)
			addrs = append(addrs, v.Addr)
		}
		res := n.sock.do(typ, idx, addrs, lifetime)
		stale := false
		for k, i := range todo {
			errs[i] = res[k]
			if errors.Is(res[k], unix.ENODEV) {
				// The interface was recreated: look its index up again.
				n.forget(vips[i].Interface)
				stale = true
			}
		}
		if !stale || attempt > 0 {
			break
		}
	}
	for i, err := range errs {
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			op := "binding"
			if typ == unix.RTM_DELADDR {
				op = "removing"
			}
			errs[i] = fmt.Errorf("%s %s on %s: %w", op, vips[i].Addr, vips[i].Interface, err)
		}
	}
	return errs
}

func hostNet(a netip.Addr) *net.IPNet {
	bits := a.BitLen()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)}
}

// Replace implements Kernel.
func (n *Netlink) Replace(ifname string, a netip.Addr, lifetime time.Duration) error {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	na := &netlink.Addr{
		IPNet: hostNet(a),
		// Preferred lifetime 0 marks the address deprecated: it answers ARP/NDP
		// and traffic to it, but the kernel never picks it as the source of
		// the node's own connections.
		PreferedLft: 0,
		ValidLft:    int(lifetime / time.Second),
	}
	if a.Is6() {
		// No DAD: the VIP must answer at once, and during a takeover the old
		// owner may still hold it for a moment.
		na.Flags = unix.IFA_F_NODAD
	}
	if err := n.h.AddrReplace(link, na); err != nil {
		return fmt.Errorf("binding %s on %s: %w", a, ifname, err)
	}
	return nil
}

// Delete implements Kernel.
func (n *Netlink) Delete(ifname string, a netip.Addr) error {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	found, err := n.Find(ifname, a)
	if err != nil {
		return err
	}
	for _, f := range found {
		bits := f.Prefix.Bits()
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}}
		if err := n.h.AddrDel(link, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("removing %s from %s: %w", f.Prefix, ifname, err)
		}
	}
	return nil
}

// Find implements Kernel.
func (n *Netlink) Find(ifname string, a netip.Addr) ([]Found, error) {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := n.h.AddrList(link, family)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", ifname, err)
	}
	var out []Found
	for _, la := range list {
		ip, ok := netip.AddrFromSlice(la.IP)
		if !ok || ip.Unmap() != a {
			continue
		}
		ones, _ := la.Mask.Size()
		out = append(out, Found{
			Prefix: netip.PrefixFrom(a, ones),
			// The kernel reports "forever" as 0xffffffff.
			Permanent: la.Flags&unix.IFA_F_PERMANENT != 0 || uint32(la.ValidLft) == ^uint32(0),
		})
	}
	return out, nil
}

// WatchDeleted implements Kernel. It sees RTM_DELADDR only (see
// watchDeletedFiltered); a receive-buffer overrun ends it with
// ErrEventsLost.
func (n *Netlink) WatchDeleted(ctx context.Context, fn func(ifindex int, a netip.Addr)) error {
	return watchDeletedFiltered(ctx, fn)
}

// Index implements Kernel.
func (n *Netlink) Index(ifname string) (int, error) {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return link.Attrs().Index, nil
}
