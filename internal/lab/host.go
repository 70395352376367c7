package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Do runs fn with an OS thread inside h's namespace; sockets created by fn
// stay in that namespace. fn runs on its own goroutine (see doIn), so it must
// not call t.FailNow; return an error instead. Panics are re-raised here.
func (h *Host) Do(fn func() error) error { return doIn(h.ns, fn) }

// Command returns a command that runs inside h's namespace via
// `ip netns exec` (which also mounts the namespace's /sys). The child gets
// SIGKILL if the creating thread dies. Use Lab.Start for long-running
// processes that the lab should own and kill.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NetNS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs a command in h's namespace and returns its combined output; the
// error includes the output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %v in %s: %v: %s", name, args, h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (h *Host) eth() (netlink.Link, error) {
	l, err := h.nl.LinkByName(h.Link)
	if err != nil {
		return nil, fmt.Errorf("%s: link %s: %w", h.Name, h.Link, err)
	}
	return l, nil
}

// SetLinkUp sets the host-side link (eth0) admin up or down: the host sees
// its own link go down. Bringing it up restores the lab's fixed addresses
// (the kernel flushes IPv6 addresses on link down).
func (h *Host) SetLinkUp(up bool) error {
	l, err := h.eth()
	if err != nil {
		return err
	}
	if !up {
		return h.nl.LinkSetDown(l)
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return err
	}
	if err := h.addFixedAddrs(l); err != nil {
		return err
	}
	return h.waitUsable(h.IPv6.Addr(), 2*time.Second)
}

// SetSwitchPortUp sets the switch-side veth end admin up or down. The host is
// cut off; with veth its eth0 stays admin up but loses carrier.
func (h *Host) SetSwitchPortUp(up bool) error {
	l, err := h.lab.swNL.LinkByName(h.Port)
	if err != nil {
		return fmt.Errorf("switch port %s: %w", h.Port, err)
	}
	if up {
		return h.lab.swNL.LinkSetUp(l)
	}
	return h.lab.swNL.LinkSetDown(l)
}

// SetIsolated stops (true) or resumes (false) forwarding on the host's bridge
// port (port state disabled/forwarding) while both link ends stay up with
// carrier: a silent partition the host cannot detect from its link state.
// Uses the `bridge` tool because netlink v1.3.1 has no port-state setter.
func (h *Host) SetIsolated(isolated bool) error {
	state := "3" // forwarding
	if isolated {
		state = "0" // disabled
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bridge", "-n", h.lab.Switch, "link", "set", "dev", h.Port, "state", state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bridge link set %s state %s: %v: %s", h.Port, state, err, bytes.TrimSpace(out))
	}
	return nil
}

// HTTPClient returns a client whose connections are dialled inside h's
// namespace (e.g. to vipd's 127.0.0.1:9610 there). Only IP literals and
// "localhost" are accepted: a name resolving to several addresses would make
// net.Dialer race dials on other goroutines, i.e. outside the namespace.
func (h *Host) HTTPClient() *http.Client {
	tr := &http.Transport{
		DisableKeepAlives: true, // no idle conns outliving the lab
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			if host == "localhost" {
				host = "127.0.0.1"
			}
			if _, err := netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("lab HTTPClient of %s dials IP literals only, got %q", h.Name, host)
			}
			var c net.Conn
			err = h.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(host, port))
				return err
			})
			return c, err
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Addrs lists the addresses on all links of h's namespace.
func (h *Host) Addrs() ([]netip.Prefix, error) {
	as, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out, nil
}

// HasAddress reports whether a is configured on any link in h's namespace.
func (h *Host) HasAddress(a netip.Addr) (bool, error) {
	ps, err := h.Addrs()
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.Addr() == a.Unmap() {
			return true, nil
		}
	}
	return false, nil
}

// AddAddress adds p to eth0 (IPv6 with nodad), like `ip addr add p dev eth0`.
func (h *Host) AddAddress(p netip.Prefix) error {
	l, err := h.eth()
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = nodadFlag
	}
	if err := h.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("%s: add %s: %w", h.Name, p, err)
	}
	if p.Addr().Is6() {
		return h.waitUsable(p.Addr(), 2*time.Second)
	}
	return nil
}

// waitUsable waits until the kernel has finished adding the IPv6 address a:
// not tentative, and its solicited-node group joined. Even with nodad (no
// tentative flag at all) the join runs later on the addrconf workqueue;
// until then every NS for a is dropped, so a client soliciting right away
// loses its first NS and retries only after 1 s (seen in this lab).
func (h *Host) waitUsable(a netip.Addr, timeout time.Duration) error {
	snm, err := ndp.SolicitedNodeMulticast(a)
	if err != nil {
		return err
	}
	group := hex.EncodeToString(snm.AsSlice())
	deadline := time.Now().Add(timeout)
	for {
		as, err := h.nl.AddrList(nil, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		found, tentative := false, false
		for _, x := range as {
			if ip, ok := netip.AddrFromSlice(x.IP); ok && ip == a {
				found, tentative = true, x.Flags&unix.IFA_F_TENTATIVE != 0
			}
		}
		joined := false
		if found && !tentative {
			err := h.Do(func() error {
				// thread-self: /proc/self/net would show the main thread's namespace.
				b, err := os.ReadFile("/proc/thread-self/net/igmp6")
				joined = bytes.Contains(b, []byte(group))
				return err
			})
			if err != nil {
				return err
			}
		}
		if joined {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready after %s (present %v, tentative %v, group %s joined %v)",
				h.Name, a, timeout, found, tentative, snm, joined)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLinkReady waits until every IPv6 address on h (fixed and link-local)
// has left the tentative state.
func (h *Host) waitLinkReady(timeout time.Duration) error {
	ps, err := h.Addrs()
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Addr().Is6() && !p.Addr().IsLoopback() {
			if err := h.waitUsable(p.Addr(), timeout); err != nil {
				return err
			}
		}
	}
	return nil
}

// DelAddress removes p from eth0.
func (h *Host) DelAddress(p netip.Prefix) error {
	l, err := h.eth()
	if err != nil {
		return err
	}
	if err := h.nl.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil {
		return fmt.Errorf("%s: del %s: %w", h.Name, p, err)
	}
	return nil
}

// Announce sends one gratuitous ARP (IPv4) or unsolicited override NA (IPv6)
// for a from h's eth0 — what a VIP owner does on takeover. For tests that
// move addresses by hand; vipd itself has its own announcer.
func (h *Host) Announce(a netip.Addr) error {
	return h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		if a.Is4() {
			c, err := arp.Dial(ifi)
			if err != nil {
				return err
			}
			defer c.Close()
			p, err := arp.NewPacket(arp.OperationRequest, h.MAC, a, ethernet.Broadcast, a)
			if err != nil {
				return err
			}
			return c.WriteTo(p, ethernet.Broadcast)
		}
		// From the fixed global address (allowed by RFC 4861 7.2.6), not the
		// link-local one: see ndpConn for why no zones.
		c, err := listenNDP(h.IPv6.Addr(), ifi.Index)
		if err != nil {
			return err
		}
		defer c.Close()
		na := &ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: a,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: h.MAC}},
		}
		return c.send(na, netip.IPv6LinkLocalAllNodes())
	})
}

// String is the host name.
func (h *Host) String() string { return h.Name }

// itoa is strconv.Itoa, kept short for payload formatting.
func itoa(i int) string { return strconv.Itoa(i) }

// blackholeMAC is a locally administered MAC no lab host uses: unicast to it
// is flooded by the bridge and accepted by nobody, i.e. silently dropped.
var blackholeMAC = net.HardwareAddr{0x02, 0xde, 0xad, 0x00, 0x00, 0x00}

// Partition silently drops unicast IP traffic between a and b (both
// directions, v4 and v6 fixed addresses) by pinning each one's neighbour entry
// for the other to a MAC nobody has. Sends succeed and vanish, as on a real
// broken path. Broadcast/multicast (ARP, NDP, VRRP adverts) still pass and
// VIPs are not covered; for a total cut use SetIsolated. Undo with Heal.
func (l *Lab) Partition(a, b *Host) error {
	if err := a.pinNeighbors(b, true); err != nil {
		return err
	}
	return b.pinNeighbors(a, true)
}

// Heal undoes Partition.
func (l *Lab) Heal(a, b *Host) error {
	if err := a.pinNeighbors(b, false); err != nil {
		return err
	}
	return b.pinNeighbors(a, false)
}

func (h *Host) pinNeighbors(peer *Host, pin bool) error {
	eth, err := h.eth()
	if err != nil {
		return err
	}
	for _, ip := range []netip.Addr{peer.IPv4.Addr(), peer.IPv6.Addr()} {
		fam := netlink.FAMILY_V4
		if ip.Is6() {
			fam = netlink.FAMILY_V6
		}
		n := &netlink.Neigh{LinkIndex: eth.Attrs().Index, Family: fam, IP: ip.AsSlice()}
		if pin {
			n.State, n.HardwareAddr = netlink.NUD_PERMANENT, blackholeMAC
			err = h.nl.NeighSet(n)
		} else if err = h.nl.NeighDel(n); errors.Is(err, syscall.ENOENT) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("%s: neighbour %s for %s: %w", h.Name, ip, peer.Name, err)
		}
	}
	return nil
}

// WaitAddress polls until a is present (or absent) in h's namespace; the
// error says which and for how long. Use it to see vipd bind or release a VIP.
func (h *Host) WaitAddress(a netip.Addr, present bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		has, err := h.HasAddress(a)
		if err != nil {
			return err
		}
		if has == present {
			return nil
		}
		if time.Now().After(deadline) {
			state := map[bool]string{true: "present", false: "absent"}
			return fmt.Errorf("%s: %s still %s after %s", h.Name, a, state[has], timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// AddressHolders returns the names of the nodes and extras that have a
// configured right now (the client and observer never hold VIPs), e.g. to
// assert that exactly one node owns a VIP.
func (l *Lab) AddressHolders(a netip.Addr) ([]string, error) {
	var out []string
	for _, h := range l.hosts {
		if h == l.Client || h == l.Observer {
			continue
		}
		has, err := h.HasAddress(a)
		if err != nil {
			return nil, err
		}
		if has {
			out = append(out, h.Name)
		}
	}
	return out, nil
}
