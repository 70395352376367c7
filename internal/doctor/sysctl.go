package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/config"
)

// The kernel's semantics (Documentation/networking/ip-sysctl.rst and
// net/ipv4/arp.c, devinet.c) decide each verdict below. For the IPv4 ARP
// keys the value in force on an interface is max(conf/all, conf/<iface>):
// setting either one is enough to break it, so both are read and both are
// named in the fix.

// sysctlValues is one key for conf/all and conf/<iface>.
type sysctlValues struct {
	Key       string // e.g. "arp_ignore"
	Iface     string
	All, IfcV int
}

func (s sysctlValues) effective() int { return max(s.All, s.IfcV) }

func (s sysctlValues) describe() string {
	return fmt.Sprintf("%d (max of all=%d, %s=%d)", s.effective(), s.All, s.Iface, s.IfcV)
}

func (s sysctlValues) fix(want int) string {
	return fmt.Sprintf("sysctl -w net.ipv4.conf.all.%[1]s=%[2]d net.ipv4.conf.%[3]s.%[1]s=%[2]d, and persist it in /etc/sysctl.d/", s.Key, want, s.Iface)
}

// judgeArpIgnore decides arp_ignore for an interface holding IPv4 VIPs;
// outside lists those of its VIPs in none of its subnets. The owner must
// answer ARP requests for its VIPs: the takeover's gratuitous ARPs are
// sent whatever this says, but a client or router whose entry ages out
// (or that never had one) asks, and an owner that does not answer is
// unreachable to it.
//
//	0     answer for any local address: fine.
//	1     answer only for addresses on the receiving interface: fine, vipd
//	      binds each VIP on the interface the requests come in on.
//	2     as 1, and only if the requester's address and the VIP lie in one
//	      subnet of that interface (inet_confirm_addr with both): a VIP is
//	      bound as a /32, so this holds only for VIPs inside the interface's
//	      own subnet and requesters in it. VIPs outside every subnet get no
//	      answer at all (FAIL); inside, requesters from another subnet
//	      sharing the segment (a router's secondary address) get none (WARN).
//	3     do not answer for scope-host addresses: fine, VIPs are scope global.
//	4..7  reserved; the kernel answers as with 0: fine but surely a typo (WARN).
//	8     never answer for local addresses: nobody can resolve a VIP (FAIL).
func judgeArpIgnore(s sysctlValues, outside []netip.Addr) Line {
	check := "sysctl " + s.Iface + " arp_ignore"
	v := s.effective()
	switch {
	case v == 0:
		return Line{OK, check, s.describe() + ": answers ARP for every local address", ""}
	case v == 1:
		return Line{OK, check, s.describe() + ": answers ARP for addresses on the receiving interface, where vipd binds the VIPs", ""}
	case v == 2 && len(outside) > 0:
		return Line{Fail, check, s.describe() + ": the kernel answers ARP only when requester and VIP share a subnet of " + s.Iface + "; " + addrList(outside) + " lie in none, so nobody can resolve them once announcements age out", s.fix(1)}
	case v == 2:
		return Line{Warn, check, s.describe() + ": the kernel answers ARP for a VIP only to requesters inside " + s.Iface + "'s subnet; a router or client on the segment with an address in another subnet gets no answer once its entry ages out", s.fix(1) + " (1 still answers only on the VIP's interface)"}
	case v == 3:
		return Line{OK, check, s.describe() + ": does not answer for scope-host addresses; VIPs are scope global", ""}
	case v == 8:
		return Line{Fail, check, s.describe() + ": the kernel answers no ARP request for a local address, so nobody can resolve the VIPs once announcements age out", s.fix(1)}
	default:
		return Line{Warn, check, s.describe() + ": a reserved value (the kernel answers as with 0)", s.fix(1)}
	}
}

// judgeArpAnnounce: arp_announce picks the source address of ARP requests
// the kernel sends for the node's own traffic. It never touches vipd's
// announcements (vipd writes those frames itself), and a VIP is used as an
// ARP source only on the node that holds it, so every value works.
func judgeArpAnnounce(s sysctlValues) Line {
	return Line{OK, "sysctl " + s.Iface + " arp_announce", s.describe() + ": only chooses the source of the kernel's own ARP requests; vipd sends its announcements itself", ""}
}

// judgeArpNotify: arp_notify makes the kernel send a gratuitous ARP for the
// interface's primary address when the link comes up or its MAC changes;
// it says nothing about VIPs, which vipd announces itself on takeover and
// on its refresh timer. Every value works.
func judgeArpNotify(s sysctlValues) Line {
	return Line{OK, "sysctl " + s.Iface + " arp_notify", s.describe() + ": concerns the interface's own address on link up; vipd announces the VIPs itself", ""}
}

// judgeRPFilter decides rp_filter (in force: max(all, iface)). Strict mode
// (1) drops a packet arriving on an interface that is not the one the
// node would use to reach its source. With one path that never happens;
// with asymmetric paths (default routes on several interfaces, a peer
// routed out of another interface) clients' packets to the VIP and peers'
// VRRP adverts can be dropped silently. asym names why paths may be
// asymmetric; empty when the routes show one path.
func judgeRPFilter(s sysctlValues, asym []string) Line {
	check := "sysctl " + s.Iface + " rp_filter"
	switch v := s.effective(); {
	case v == 0:
		return Line{OK, check, s.describe() + ": off", ""}
	case v == 2:
		return Line{OK, check, s.describe() + ": loose; drops only packets from sources with no route at all", ""}
	case v == 1 && len(asym) == 0:
		return Line{OK, check, s.describe() + ": strict, fine while every reply to a VIP's client leaves through " + s.Iface + " (one path here)", ""}
	case v == 1:
		return Line{Warn, check, s.describe() + ": strict with asymmetric paths (" + strings.Join(asym, "; ") + "): packets to the VIPs or VRRP adverts arriving on " + s.Iface + " from a source routed elsewhere are dropped", s.fix(2) + " (loose)"}
	default:
		return Line{Warn, check, s.describe() + ": not a documented value (0 off, 1 strict, 2 loose)", s.fix(2)}
	}
}

// judgeDisableIPv6 decides disable_ipv6 of an interface holding IPv6 VIPs:
// the interface's own value is the one in force (writing conf/all copies
// to every interface), and 1 removes every IPv6 address from it.
func judgeDisableIPv6(ifname string, v int) Line {
	check := "sysctl " + ifname + " disable_ipv6"
	if v != 0 {
		return Line{Fail, check, fmt.Sprintf("%d: IPv6 is off on %s, so its IPv6 VIPs cannot be bound", v, ifname),
			fmt.Sprintf("sysctl -w net.ipv6.conf.%s.disable_ipv6=0 (and persist it), or drop the IPv6 VIPs", ifname)}
	}
	return Line{OK, check, "0: IPv6 is on", ""}
}

// judgeAcceptDAD decides accept_dad (in force: max(all, iface)) for an
// interface holding IPv6 VIPs. vipd binds IPv6 VIPs with IFA_F_NODAD, so
// duplicate address detection never delays or fails a VIP, whatever this
// says. It only governs the interface's own addresses: 1 delays the
// link-local VRRP source by about a second after link up (vipd waits).
// 2 also disables IPv6 on the whole interface when its MAC-based
// link-local address is found duplicated (a cloned VM's MAC), taking every
// IPv6 VIP with it: WARN.
func judgeAcceptDAD(ifname string, all, ifc int) Line {
	check := "sysctl " + ifname + " accept_dad"
	v := max(all, ifc)
	desc := fmt.Sprintf("%d (max of all=%d, %s=%d)", v, all, ifname, ifc)
	if v >= 2 {
		return Line{Warn, check, desc + ": a duplicate MAC-based link-local address on the segment disables IPv6 on " + ifname + ", and its IPv6 VIPs with it",
			fmt.Sprintf("sysctl -w net.ipv6.conf.all.accept_dad=1 net.ipv6.conf.%s.accept_dad=1 unless you rely on that", ifname)}
	}
	return Line{OK, check, desc + ": VIPs are bound without DAD (nodad), so it never delays a takeover", ""}
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// readSysctl reads an integer /proc/sys key.
func (r *run) readSysctl(path string) (int, error) {
	b, err := r.deps.ReadFile("/proc/sys/" + path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, strings.TrimSpace(string(b)))
	}
	return v, nil
}

func (r *run) readPair(family, key, ifname string) (sysctlValues, error) {
	s := sysctlValues{Key: key, Iface: ifname}
	var err error
	if s.All, err = r.readSysctl("net/" + family + "/conf/all/" + key); err != nil {
		return s, err
	}
	s.IfcV, err = r.readSysctl("net/" + family + "/conf/" + ifname + "/" + key)
	return s, err
}

// asymmetry lists reasons the node's paths may be asymmetric for ifname:
// default routes leaving by other interfaces, or VRRP unicast peers
// routed out of another interface.
func (r *run) asymmetry(c *config.Config, ifname string) []string {
	var why []string
	if r.deps.DefaultRouteLinks != nil {
		if links, err := r.deps.DefaultRouteLinks(); err == nil {
			var other []string
			for _, l := range links {
				if l != ifname && !slices.Contains(other, l) {
					other = append(other, l)
				}
			}
			if len(other) > 0 {
				why = append(why, "default route via "+strings.Join(other, ", "))
			}
		}
	}
	for _, g := range c.Groups {
		if g.VRRP == nil || g.VRRP.Interface != ifname {
			continue
		}
		for _, p := range g.VRRP.Peers {
			if out, err := r.deps.RouteGet(p); err == nil && out != ifname {
				why = append(why, "peer "+p.String()+" routed via "+out)
			}
		}
	}
	return why
}

// checkSysctls reads the ARP, rp_filter and IPv6 keys of every interface
// holding VIPs.
func (r *run) checkSysctls(c *config.Config, links map[string]Link) {
	names, vips := groupInterfaces(c)
	for _, n := range names {
		if _, ok := links[n]; !ok {
			continue
		}
		var v4, v6, outside []netip.Addr
		for _, a := range vips[n] {
			if a.Is4() {
				v4 = append(v4, a)
				if _, in := links[n].Subnet(a); !in {
					outside = append(outside, a)
				}
			} else {
				v6 = append(v6, a)
			}
		}
		if len(v4) > 0 {
			type judge func(s sysctlValues) Line
			for _, k := range []struct {
				key string
				j   judge
			}{
				{"arp_ignore", func(s sysctlValues) Line { return judgeArpIgnore(s, outside) }},
				{"arp_announce", judgeArpAnnounce},
				{"arp_notify", judgeArpNotify},
				{"rp_filter", func(s sysctlValues) Line { return judgeRPFilter(s, r.asymmetry(c, n)) }},
			} {
				s, err := r.readPair("ipv4", k.key, n)
				if err != nil {
					r.add(Line{Warn, "sysctl " + n + " " + k.key, "cannot read: " + err.Error(), "check it by hand (sysctl net.ipv4.conf." + n + "." + k.key + ")"})
					continue
				}
				r.add(k.j(s))
			}
		}
		if len(v6) > 0 {
			if d, err := r.readSysctl("net/ipv6/conf/" + n + "/disable_ipv6"); err != nil {
				r.add(Line{Fail, "sysctl " + n + " disable_ipv6", "cannot read (" + err.Error() + "): IPv6 is probably off on this node, so IPv6 VIPs cannot be bound", "enable IPv6 (ipv6.disable=0 on the kernel command line), or drop the IPv6 VIPs"})
			} else {
				r.add(judgeDisableIPv6(n, d))
			}
			all, err1 := r.readSysctl("net/ipv6/conf/all/accept_dad")
			ifc, err2 := r.readSysctl("net/ipv6/conf/" + n + "/accept_dad")
			if err1 == nil && err2 == nil {
				r.add(judgeAcceptDAD(n, all, ifc))
			}
		}
	}
}
