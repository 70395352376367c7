package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
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
	return h.addFixedAddrs(l)
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
