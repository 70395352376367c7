package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// router is one of our virtual routers: what we expect to hear on its VRID.
type router struct {
	Group  string
	Iface  string
	Family int
	VRID   uint8
	// VIPs are the advertised addresses (excluded VIPs are not advertised).
	VIPs []netip.Addr
	// Peers are the unicast peers of this family; empty in multicast mode.
	Peers []netip.Addr
}

func (rt router) name() string {
	return fmt.Sprintf("vrrp vrid %d IPv%d on %s", rt.VRID, rt.Family, rt.Iface)
}

func routers(c *config.Config) []router {
	var out []router
	for _, g := range c.Groups {
		if g.VRRP == nil {
			continue
		}
		for _, fam := range g.RouterFamilies() {
			rt := router{Group: g.Name, Iface: g.VRRP.Interface, Family: fam, VRID: uint8(g.VRRP.VRID)}
			for _, v := range g.VIPs {
				if !v.Excluded && v.Addr.Is4() == (fam == 4) {
					rt.VIPs = append(rt.VIPs, v.Addr)
				}
			}
			for _, p := range g.VRRP.Peers {
				if p.Is4() == (fam == 4) {
					rt.Peers = append(rt.Peers, p)
				}
			}
			out = append(out, rt)
		}
	}
	return out
}

func sameSet(a, b []netip.Addr) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, netip.Addr.Compare)
	slices.SortFunc(y, netip.Addr.Compare)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// judgeAdvert classifies a router heard on one of our VRIDs. A router is
// expected when it is one of our unicast peers (multicast mode has no list
// of nodes, so nobody is). Its VIP set is ours when it advertises exactly
// our addresses. Only a stranger advertising other addresses is a VRID
// collision (FAIL): two virtual routers share the VRID, so each sees the
// other's adverts as address-mismatch and drops them (RFC 5798 §6.4.2;
// vipd counts them), both can be master, and both own their VIPs' virtual
// MAC in keepalived's use_vmac setups. The other cases are our own group
// (OK) or a configuration that disagrees with ours (WARN).
func judgeAdvert(rt router, h Heard) Line {
	expected := slices.Contains(rt.Peers, h.Src)
	same := sameSet(rt.VIPs, h.VIPs)
	what := fmt.Sprintf("%s priority %d interval %s advertises %s (%d heard)", h.Src, h.Priority, h.Interval, addrList(h.VIPs), h.Count)
	if h.Priority == 0 {
		what += ", priority 0: it is leaving"
	}
	check := rt.name() + " (group " + rt.Group + ")"
	switch {
	case same && (expected || len(rt.Peers) == 0):
		return Line{OK, check, what + ": another node of this group", ""}
	case same:
		return Line{Warn, check, what + ": our VIPs, but not one of our unicastPeers (" + addrList(rt.Peers) + "); vipd drops its adverts, so both may become master",
			"add " + h.Src.String() + " to unicastPeers on every node, or stop that router"}
	case expected:
		return Line{Warn, check, what + ": our unicast peer, but our VIPs are " + addrList(rt.VIPs) + "; each side drops the other's adverts (address mismatch), so both may become master",
			"make the group's VIPs the same on every node (and on keepalived's virtual_ipaddress)"}
	default:
		return Line{Fail, check, what + ", but our VIPs are " + addrList(rt.VIPs) + ": a VRID collision with another virtual router on this segment; both become master",
			fmt.Sprintf("choose a VRID unused on this segment for group %s (every node of the group, and keepalived peers, must change together), or stop that router", rt.Group)}
	}
}

// checkVRRPListen listens on each interface and family of our routers for
// adverts of our VRIDs.
func (r *run) checkVRRPListen(c *config.Config, links map[string]Link, capsOK bool) {
	rts := routers(c)
	d := r.opts.Listen
	if d == 0 {
		d = ListenFor(c)
	}
	if d < 0 {
		r.add(Line{Warn, "vrrp listen", "skipped (--listen negative): a VRID collision on the segment would go unnoticed", "run without --listen, or with --listen 3s"})
		return
	}
	if !capsOK {
		r.add(Line{Warn, "vrrp listen", "skipped: listening for adverts needs CAP_NET_RAW", "fix the capabilities above and run doctor again"})
		return
	}
	type key struct {
		iface  string
		family int
	}
	var keys []key
	vrids := map[key][]uint8{}
	for _, rt := range rts {
		k := key{rt.Iface, rt.Family}
		if _, ok := links[rt.Iface]; !ok {
			continue // reported by the interface check
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		if !slices.Contains(vrids[k], rt.VRID) {
			vrids[k] = append(vrids[k], rt.VRID)
		}
	}
	// All interfaces and families at once: the whole listen takes d.
	type result struct {
		heard []Heard
		err   error
	}
	results := make([]result, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			h, err := r.deps.ListenVRRP(r.ctx, k.iface, k.family, vrids[k], d)
			results[i] = result{h, err}
		})
	}
	wg.Wait()
	for i, k := range keys {
		res := results[i]
		if res.err != nil {
			r.add(Line{Warn, fmt.Sprintf("vrrp listen IPv%d on %s", k.family, k.iface), "cannot listen: " + res.err.Error(),
				"check the interface has an IPv4 address with a subnet (IPv4) or a link-local address (IPv6), and that vipd could open its socket"})
			continue
		}
		for _, rt := range rts {
			if rt.Iface != k.iface || rt.Family != k.family {
				continue
			}
			var heard []Heard
			for _, h := range res.heard {
				if h.VRID == rt.VRID && !r.deps.LocalAddr(h.Src) {
					heard = append(heard, h)
				}
			}
			if len(heard) == 0 {
				r.add(Line{OK, rt.name() + " (group " + rt.Group + ")", fmt.Sprintf("no other router heard in %s", d.Round(100*time.Millisecond)), ""})
				continue
			}
			for _, h := range heard {
				r.add(judgeAdvert(rt, h))
			}
		}
	}
}

// checkVRRPPeers checks that the kernel has a route to every unicast peer,
// leaving by the group's interface (vipd's VRRP socket is bound to it).
func (r *run) checkVRRPPeers(c *config.Config, links map[string]Link) {
	for _, g := range c.Groups {
		if g.VRRP == nil {
			continue
		}
		for _, p := range g.VRRP.Peers {
			check := "vrrp peer " + p.String() + " (group " + g.Name + ")"
			out, err := r.deps.RouteGet(p)
			switch {
			case err != nil:
				r.add(Line{Fail, check, "no route: " + err.Error(), "add an address in the peer's subnet to " + g.VRRP.Interface + " or a route to it"})
			case out != g.VRRP.Interface:
				r.add(Line{Warn, check, "routed via " + out + ", but adverts are sent on " + g.VRRP.Interface + " (the socket is bound to it)",
					"route the peer via " + g.VRRP.Interface + ", or set vrrp.interface to " + out})
			default:
				r.add(Line{OK, check, "routed via " + out, ""})
			}
		}
	}
}

// mergeHeard groups decoded adverts by source, VRID and VIP set.
func mergeHeard(in []Heard) []Heard {
	var out []Heard
	for _, h := range in {
		i := slices.IndexFunc(out, func(o Heard) bool {
			return o.Src == h.Src && o.VRID == h.VRID && sameSet(o.VIPs, h.VIPs)
		})
		if i < 0 {
			h.Count = max(h.Count, 1)
			out = append(out, h)
			continue
		}
		out[i].Count += max(h.Count, 1)
		out[i].Priority, out[i].Interval = h.Priority, h.Interval
	}
	return out
}
