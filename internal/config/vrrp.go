package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// VRRP defaults (docs/vrrp.md). The advert interval matches keepalived's
// advert_int default so a mixed cluster agrees out of the box.
const (
	DefaultVRRPAdvertInterval = time.Second
	// The advert interval's limits on the wire (vrrp.MinInterval and
	// vrrp.MaxInterval, held to them by TestLimitsMatchModePackages).
	MinVRRPAdvertInterval = 10 * time.Millisecond
	MaxVRRPAdvertInterval = 40950 * time.Millisecond // 12 bits of centiseconds
	MaxVRRPPreemptDelay   = time.Hour
)

// VRRP holds the mode-wide settings of mode "vrrp": defaults for every
// group's vrrp section (see docs/vrrp.md).
type VRRP struct {
	// AdvertInterval is the default advertisement interval. Default 1s.
	AdvertInterval time.Duration `yaml:"advertInterval,omitempty"`
	// Preempt is the default preemption mode. Default true.
	Preempt *bool `yaml:"preempt,omitempty"`
	// PreemptDelay is the default preempt delay. Default 0.
	PreemptDelay time.Duration `yaml:"preemptDelay,omitempty"`
}

// GroupVRRP is one group's virtual-router settings in mode "vrrp". A group
// with IPv4 and IPv6 VIPs runs two virtual routers with the same VRID, one
// per family, kept in sync (one owner for the whole group).
type GroupVRRP struct {
	// VRID is the virtual router ID, 1..255, required; unique per interface
	// and address family, and equal on every node (and keepalived) of the group.
	VRID int `yaml:"vrid,omitempty"`
	// AdvertInterval is how often the master advertises: 10ms..40.95s in
	// steps of 10ms. Default: vrrp.advertInterval (1s).
	AdvertInterval time.Duration `yaml:"advertInterval,omitempty"`
	// Preempt: a higher-priority backup takes over from a lower-priority
	// master. false is keepalived's nopreempt. Default: vrrp.preempt (true).
	Preempt *bool `yaml:"preempt,omitempty"`
	// PreemptDelay postpones preemption until a lower-priority master has
	// been seen this long (keepalived preempt_delay), 0..1h.
	PreemptDelay *time.Duration `yaml:"preemptDelay,omitempty"`
	// Interface adverts are sent and received on. Default: the interface of
	// the group's first VIP.
	Interface string `yaml:"interface,omitempty"`
	// UnicastPeers, if set, replace multicast: adverts go to each peer
	// (keepalived unicast_peer) and are accepted only from them. Every
	// address family of the group's VIPs needs at least one peer.
	UnicastPeers []string `yaml:"unicastPeers,omitempty"`
	// UnicastSource is the address unicast adverts are sent from, at most
	// one per address family (keepalived unicast_src_ip), and this node's
	// address in the peers' unicastPeers. Default: the interface's primary
	// IPv4 address and its IPv6 link-local address. Only with UnicastPeers.
	UnicastSource []string `yaml:"unicastSource,omitempty"`
	// MinPeerAdvertInterval and MaxPeerAdvertInterval bound the advert
	// interval (Max Advertise Interval) accepted from other routers, which
	// a backup adopts to time the master out; adverts outside are dropped
	// so one spoofed advert cannot blind the backups. Default: advertInterval
	// for both (every node of the group advertises at the same interval);
	// widen them for clusters whose nodes differ on purpose.
	MinPeerAdvertInterval *time.Duration `yaml:"minPeerAdvertInterval,omitempty"`
	MaxPeerAdvertInterval *time.Duration `yaml:"maxPeerAdvertInterval,omitempty"`

	// Peers is UnicastPeers parsed, Sources UnicastSource parsed; filled in
	// by validation.
	Peers   []netip.Addr `yaml:"-"`
	Sources []netip.Addr `yaml:"-"`
}

// Families lists the address families (4, 6) of the group's VIPs, in that
// order; valid after validation.
func (g *Group) Families() []int { return g.families(true) }

// RouterFamilies lists the families that get a virtual router in mode
// vrrp: those of the VIPs that are not excluded.
func (g *Group) RouterFamilies() []int { return g.families(false) }

func (g *Group) families(excluded bool) []int {
	var has4, has6 bool
	for _, v := range g.VIPs {
		if v.Excluded && !excluded {
			continue
		}
		if v.Addr.Is4() {
			has4 = true
		} else if v.Addr.Is6() {
			has6 = true
		}
	}
	var fs []int
	if has4 {
		fs = append(fs, 4)
	}
	if has6 {
		fs = append(fs, 6)
	}
	return fs
}

func (c *Config) applyVRRPDefaults() {
	if c.VRRP == nil {
		c.VRRP = &VRRP{}
	}
	m := c.VRRP
	if m.AdvertInterval == 0 {
		m.AdvertInterval = DefaultVRRPAdvertInterval
	}
	if m.Preempt == nil {
		t := true
		m.Preempt = &t
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.VRRP == nil {
			g.VRRP = &GroupVRRP{}
		}
		if g.VRRP.AdvertInterval == 0 {
			g.VRRP.AdvertInterval = m.AdvertInterval
		}
		if g.VRRP.Preempt == nil {
			p := *m.Preempt
			g.VRRP.Preempt = &p
		}
		if g.VRRP.PreemptDelay == nil {
			d := m.PreemptDelay
			g.VRRP.PreemptDelay = &d
		}
	}
}

// VRRPLifetimeMargin is kept between a crashed master's VIP expiring and the
// latest moment a backup takes over: the new master's bind and first
// announcement, and the kernel's lifetime check, which runs about once a
// second and may fire a little early (ADDRCONF_TIMER_FUZZ_MINUS).
const VRRPLifetimeMargin = time.Second

// VRRPMinLifetime is the shortest binding.lifetime that keeps a SIGKILLed
// master's VIP bound until a backup has taken over. The VIP was last
// refreshed up to refresh before the crash; a backup takes over at the
// latest Master_Down_Interval = 3 × interval + Skew_Time after the last
// advert, and Skew_Time < interval, so 4 × interval bounds it whatever the
// backup's priority. Rounded up to whole seconds (the kernel's unit).
func VRRPMinLifetime(refresh, interval time.Duration) time.Duration {
	d := refresh + 4*interval + VRRPLifetimeMargin
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// vrrpMinLifetime is the largest VRRPMinLifetime over the groups in mode
// vrrp (0 otherwise), capped at the 1h maximum so a bad interval is reported
// against its own key. Defaults must have been applied.
func (c *Config) vrrpMinLifetime() time.Duration {
	var need time.Duration
	if c.Mode != ModeVRRP {
		return 0
	}
	for _, g := range c.Groups {
		if g.VRRP == nil {
			continue
		}
		if iv, _, ok := g.VRRP.slowestMaster(); ok {
			need = max(need, VRRPMinLifetime(c.Binding.Refresh, iv))
		}
	}
	return min(need, time.Hour)
}

// slowestMaster is the longest advert interval a master of group g may use
// as far as its backups accept (maxPeerAdvertInterval when wider than
// advertInterval), and the key that sets it: the backups' Master_Down_Interval
// follows it. ok is false while the interval is invalid (reported elsewhere).
func (g *GroupVRRP) slowestMaster() (d time.Duration, key string, ok bool) {
	if !validAdvertInterval(g.AdvertInterval) {
		return 0, "", false
	}
	d, key = g.AdvertInterval, "advertInterval"
	if m := g.MaxPeerAdvertInterval; m != nil && validAdvertInterval(*m) && *m > d {
		d, key = *m, "maxPeerAdvertInterval"
	}
	return d, key, true
}

func validAdvertInterval(d time.Duration) bool {
	return d >= MinVRRPAdvertInterval && d <= MaxVRRPAdvertInterval && d%MinVRRPAdvertInterval == 0
}

// validateVRRP runs after validateGroups, so VIP addresses and interfaces
// are known; it fills a missing vrrp.interface and Peers.
func (c *Config) validateVRRP(host Host, errs *Errors) {
	ivRule := fmt.Sprintf("must be between %s and %s in steps of %s (VRRPv3 carries centiseconds in 12 bits)",
		MinVRRPAdvertInterval, MaxVRRPAdvertInterval, MinVRRPAdvertInterval)
	if m := c.VRRP; m != nil {
		if !validAdvertInterval(m.AdvertInterval) {
			errs.add("vrrp.advertInterval", m.AdvertInterval, "%s", ivRule)
		}
		if m.PreemptDelay < 0 || m.PreemptDelay > MaxVRRPPreemptDelay {
			errs.add("vrrp.preemptDelay", m.PreemptDelay, "must be between 0 and 1h")
		}
	}
	// The dead-man's switch must not open a gap: a crashed master's VIP has
	// to outlive the backups' Master_Down_Interval (issue #11, 7c).
	worst, worstKey := -1, ""
	var worstNeed, worstIv time.Duration
	for gi, g := range c.Groups {
		if g.VRRP == nil {
			continue
		}
		iv, key, ok := g.VRRP.slowestMaster()
		if !ok {
			continue
		}
		if need := VRRPMinLifetime(c.Binding.Refresh, iv); need > worstNeed {
			worst, worstKey, worstNeed, worstIv = gi, key, need, iv
		}
	}
	if worst >= 0 && c.Binding.Lifetime < worstNeed && c.Binding.Refresh >= 100*time.Millisecond {
		errs.add("binding.lifetime", c.Binding.Lifetime,
			"must be at least %s in mode vrrp: binding.refresh (%s) + 4 × groups[%d].vrrp.%s (%s, bounding Master_Down_Interval = 3 × interval + Skew_Time) + %s margin, rounded up to whole seconds, so a crashed master's VIP is still bound when a backup takes over (leave binding.lifetime unset to derive it)",
			worstNeed, c.Binding.Refresh, worst, worstKey, worstIv, VRRPLifetimeMargin)
	}
	type vrKey struct {
		ifc    string
		family int
		vrid   int
	}
	seen := map[vrKey]string{}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		gk := "groups[" + strconv.Itoa(gi) + "].vrrp"
		v := g.VRRP
		if v == nil { // Parse always sets it; a hand-built Config may not.
			errs.add(gk, nil, "is required in mode vrrp")
			continue
		}
		if v.VRID < 1 || v.VRID > 255 {
			if v.VRID == 0 {
				errs.add(gk+".vrid", nil, "is required: the virtual router ID, 1..255, the same on every node of the group")
			} else {
				errs.add(gk+".vrid", v.VRID, "must be between 1 and 255")
			}
		}
		if !validAdvertInterval(v.AdvertInterval) {
			errs.add(gk+".advertInterval", v.AdvertInterval, "%s", ivRule)
		}
		if d := *v.PreemptDelay; d < 0 || d > MaxVRRPPreemptDelay {
			errs.add(gk+".preemptDelay", d, "must be between 0 and 1h")
		}
		if d := v.MinPeerAdvertInterval; d != nil {
			if !validAdvertInterval(*d) {
				errs.add(gk+".minPeerAdvertInterval", *d, "%s", ivRule)
			} else if validAdvertInterval(v.AdvertInterval) && *d > v.AdvertInterval {
				errs.add(gk+".minPeerAdvertInterval", *d, "must be at most the group's advertInterval (%s): the group's own nodes advertise at that interval", v.AdvertInterval)
			}
		}
		if d := v.MaxPeerAdvertInterval; d != nil {
			if !validAdvertInterval(*d) {
				errs.add(gk+".maxPeerAdvertInterval", *d, "%s", ivRule)
			} else if validAdvertInterval(v.AdvertInterval) && *d < v.AdvertInterval {
				errs.add(gk+".maxPeerAdvertInterval", *d, "must be at least the group's advertInterval (%s): the group's own nodes advertise at that interval", v.AdvertInterval)
			}
		}
		if v.Interface == "" {
			for _, vip := range g.VIPs {
				if vip.Interface != "" {
					v.Interface = vip.Interface
					break
				}
			}
		} else if !host.InterfaceExists(v.Interface) {
			errs.add(gk+".interface", v.Interface, "no such network interface on this node")
		}
		// Peers, sources and VRIDs concern the families that get a router.
		families := g.RouterFamilies()
		if len(families) == 0 && len(g.VIPs) > 0 {
			errs.add(gk[:len(gk)-len(".vrrp")]+".vips", nil, "are all excluded: at least one VIP must be advertised (excluded VIPs ride on the group's virtual router)")
		}
		v.Peers = v.Peers[:0]
		peerFam := map[int]bool{}
		seenPeer := map[netip.Addr]bool{}
		for pi, s := range v.UnicastPeers {
			pk := gk + ".unicastPeers[" + strconv.Itoa(pi) + "]"
			p, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				errs.add(pk, s, "is not an IPv4 or IPv6 address")
				continue
			case p.Is4In6() || p.Zone() != "" || p.IsUnspecified() || p.IsMulticast() || p.IsLoopback():
				errs.add(pk, s, "must be a plain unicast address (no zone, not IPv4-mapped, multicast, loopback or unspecified)")
				continue
			case seenPeer[p]:
				errs.add(pk, s, "is listed twice")
				continue
			}
			fam := 6
			if p.Is4() {
				fam = 4
			}
			if !containsInt(families, fam) {
				errs.add(pk, s, "is IPv%d but the group has no IPv%d VIP: peers must be of the VIPs' address families", fam, fam)
				continue
			}
			seenPeer[p] = true
			peerFam[fam] = true
			v.Peers = append(v.Peers, p)
		}
		v.Sources = v.Sources[:0]
		srcFam := map[int]string{}
		for si, s := range v.UnicastSource {
			sk := gk + ".unicastSource[" + strconv.Itoa(si) + "]"
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				errs.add(sk, s, "is not an IPv4 or IPv6 address")
				continue
			case a.Is4In6() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
				errs.add(sk, s, "must be a plain unicast address of this node (no zone, not IPv4-mapped, multicast, loopback or unspecified)")
				continue
			case len(v.UnicastPeers) == 0:
				errs.add(sk, s, "needs unicastPeers: multicast adverts come from the primary IPv4 or the link-local IPv6 address (RFC 5798)")
				continue
			}
			fam := 6
			if a.Is4() {
				fam = 4
			}
			if !containsInt(families, fam) {
				errs.add(sk, s, "is IPv%d but the group has no IPv%d VIP", fam, fam)
				continue
			}
			if prev, dup := srcFam[fam]; dup {
				errs.add(sk, s, "is a second IPv%d source (%s is the first): one per family", fam, prev)
				continue
			}
			if seenPeer[a] {
				errs.add(sk, s, "is also listed in unicastPeers: the source is this node's own address")
				continue
			}
			srcFam[fam] = s
			v.Sources = append(v.Sources, a)
		}
		if len(v.Peers) > 0 {
			for _, f := range families {
				if !peerFam[f] {
					errs.add(gk+".unicastPeers", nil, "has no IPv%d peer but the group has IPv%d VIPs: in unicast mode every family needs a peer", f, f)
				}
			}
		}
		if v.VRID >= 1 && v.VRID <= 255 && v.Interface != "" {
			for _, f := range families {
				k := vrKey{v.Interface, f, v.VRID}
				if prev, dup := seen[k]; dup {
					errs.add(gk+".vrid", v.VRID, "duplicates %s.vrid on interface %s for IPv%d: a VRID is unique per interface and family", prev, v.Interface, f)
					break
				}
				seen[k] = gk
			}
		}
	}
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
