package doctor

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vipd/vipd/internal/config"
)

// checkInterfaces reports each interface the config uses (and any name
// validation asked about) and returns the ones that exist.
func (r *run) checkInterfaces(c *config.Config, asked []string) map[string]Link {
	names, _ := groupInterfaces(c)
	for _, n := range asked {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	users := interfaceUsers(c)
	links := map[string]Link{}
	for _, n := range names {
		l, err := r.deps.Link(n)
		check := "interface " + n
		who := ""
		if u := users[n]; len(u) > 0 {
			who = " (group " + strings.Join(u, ", ") + ")"
		}
		switch {
		case errors.Is(err, ErrNoLink):
			r.add(Line{Fail, check, "not present on this node" + who + "; vipd refuses a config naming it",
				"correct the interface in the config (ip -br link lists this node's), or leave vips[].interface unset so vipd picks the interface whose subnet holds the VIP"})
			continue
		case err != nil:
			r.add(Line{Fail, check, "cannot read it: " + err.Error(), "run doctor as root"})
			continue
		}
		links[n] = l
		if !l.Up() {
			admin := "admin up"
			if !l.AdminUp {
				admin = "admin down"
			}
			r.add(Line{Fail, check, fmt.Sprintf("%s, state %s%s: vipd keeps this node ineligible while its link is down", admin, l.OperState, who),
				"bring it up (ip link set " + n + " up) and check the cable, switch port or virtual link"})
			continue
		}
		r.add(Line{OK, check, "present and up" + who, ""})
	}
	return links
}

// interfaceUsers maps an interface to the groups that use it.
func interfaceUsers(c *config.Config) map[string][]string {
	m := map[string][]string{}
	add := func(n, g string) {
		if n != "" && !slices.Contains(m[n], g) {
			m[n] = append(m[n], g)
		}
	}
	for _, g := range c.Groups {
		for _, v := range g.VIPs {
			add(v.Interface, g.Name)
		}
		if g.VRRP != nil {
			add(g.VRRP.Interface, g.Name)
		}
	}
	return m
}

// checkVIPSubnets warns about a VIP outside every subnet of its interface:
// the owner still answers ARP/NDP for it and announces it, so hosts on the
// segment reach it, but routers have no route pointing at this segment
// unless someone adds one.
func (r *run) checkVIPSubnets(c *config.Config, links map[string]Link) {
	for _, g := range c.Groups {
		for _, v := range g.VIPs {
			l, ok := links[v.Interface]
			if !ok {
				continue // reported by the interface check
			}
			check := "vip " + v.Addr.String()
			if p, ok := l.Subnet(v.Addr); ok {
				r.add(Line{OK, check, fmt.Sprintf("in %s of %s (group %s)", p, v.Interface, g.Name), ""})
				continue
			}
			r.add(Line{Warn, check, fmt.Sprintf("in no subnet of %s (%s; group %s): takeover by ARP/NDP works on the segment, but routers may have no route to it", v.Interface, prefixList(l.Prefixes, v.Addr.Is4()), g.Name),
				"use a VIP from the interface's subnet, or route the VIP's prefix to this segment on the router" + arpIgnoreHint(v.Addr)})
		}
	}
}

func arpIgnoreHint(a netip.Addr) string {
	if a.Is4() {
		return " (and keep arp_ignore below 2)"
	}
	return ""
}

// prefixList lists the subnets of one family (v4 or v6) of ps.
func prefixList(ps []netip.Prefix, v4 bool) string {
	var s []string
	for _, p := range ps {
		if !p.IsSingleIP() && p.Addr().Is4() == v4 {
			s = append(s, p.String())
		}
	}
	if len(s) == 0 {
		return "it has no subnet of that family"
	}
	return strings.Join(s, ", ")
}
