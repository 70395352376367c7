package config

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Host is what validation needs to know about the machine: which interfaces
// exist and which subnets they hold. Injected so rules are table-tested
// without touching the real host.
type Host interface {
	// InterfaceExists reports whether a link with this name exists.
	InterfaceExists(name string) bool
	// InterfaceFor returns the interface that has a subnet containing ip.
	InterfaceFor(ip netip.Addr) (string, bool)
}

// LocalHost reads interfaces from the running kernel (the current network namespace).
type LocalHost struct{}

// InterfaceExists implements Host.
func (LocalHost) InterfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// InterfaceFor implements Host: the first interface with a non-host prefix
// containing ip (a /32 or /128, like a VIP itself, says nothing about a subnet).
func (LocalHost) InterfaceFor(ip netip.Addr) (string, bool) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", false
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(ipn.String())
			if err != nil || p.IsSingleIP() {
				continue
			}
			if p.Contains(ip) {
				return ifc.Name, true
			}
		}
	}
	return "", false
}

var groupNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate checks every rule and returns Errors listing all failures. It also
// fills VIP.Addr and a missing VIP.Interface from host.
func (c *Config) Validate(host Host) error {
	var errs Errors
	if c.APIVersion != APIVersion {
		errs.add("apiVersion", c.APIVersion, "must be %q", APIVersion)
	}
	if c.Kind != Kind {
		errs.add("kind", c.Kind, "must be %q", Kind)
	}
	if c.Node == "" {
		errs.add("node", c.Node, "must not be empty (and the hostname could not be read)")
	} else if len(c.Node) > 253 {
		errs.add("node", c.Node, "must be at most 253 characters")
	}
	c.validateModeName(&errs)
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		errs.add("http.listen", c.HTTP.Listen, "must be host:port")
	}
	c.validateBinding(&errs)
	c.validateAnnounce(&errs)
	c.validateGroups(host, &errs)
	c.validateHealth(&errs)
	c.validateVerify(&errs)
	c.validateMode(host, &errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *Config) validateBinding(errs *Errors) {
	b := c.Binding
	switch {
	case b.Lifetime < 2*time.Second || b.Lifetime > time.Hour:
		errs.add("binding.lifetime", b.Lifetime, "must be between 2s and 1h")
	case b.Lifetime%time.Second != 0:
		errs.add("binding.lifetime", b.Lifetime, "must be whole seconds (the kernel counts address lifetimes in seconds)")
	}
	switch {
	case b.Refresh < 100*time.Millisecond:
		errs.add("binding.refresh", b.Refresh, "must be at least 100ms")
	case b.Refresh*2 > b.Lifetime:
		errs.add("binding.refresh", b.Refresh, "must be at most half of binding.lifetime (%s) so one missed refresh does not drop the VIP", b.Lifetime)
	}
}

func (c *Config) validateAnnounce(errs *Errors) {
	a := c.Announce
	if a.Count < 1 || a.Count > 100 {
		errs.add("announce.count", a.Count, "must be between 1 and 100")
	}
	if a.Interval < 10*time.Millisecond || a.Interval > 10*time.Second {
		errs.add("announce.interval", a.Interval, "must be between 10ms and 10s")
	}
	if r := *a.Refresh; r != 0 && (r < time.Second || r > time.Hour) {
		errs.add("announce.refresh", r, "must be 0 (off) or between 1s and 1h")
	}
}

func (c *Config) validateGroups(host Host, errs *Errors) {
	if len(c.Groups) == 0 {
		errs.add("groups", nil, "at least one group with at least one VIP is required")
	}
	names := map[string]string{}
	addrs := map[netip.Addr]string{}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		gk := "groups[" + strconv.Itoa(gi) + "]"
		if !groupNameRE.MatchString(g.Name) {
			errs.add(gk+".name", g.Name, "must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric")
		} else if prev, dup := names[g.Name]; dup {
			errs.add(gk+".name", g.Name, "duplicates %s.name", prev)
		} else {
			names[g.Name] = gk
		}
		if g.Priority < 1 || g.Priority > 254 {
			errs.add(gk+".priority", g.Priority, "must be between 1 and 254")
		}
		if len(g.VIPs) == 0 {
			errs.add(gk+".vips", nil, "at least one VIP is required")
		}
		for vi := range g.VIPs {
			v := &g.VIPs[vi]
			vk := gk + ".vips[" + strconv.Itoa(vi) + "]"
			addr, ok := parseVIP(v.Address, vk+".address", errs)
			if !ok {
				continue
			}
			v.Addr = addr
			if prev, dup := addrs[addr]; dup {
				errs.add(vk+".address", v.Address, "duplicates %s.address", prev)
			} else {
				addrs[addr] = vk
			}
			if v.Interface == "" {
				name, found := host.InterfaceFor(addr)
				if !found {
					errs.add(vk+".interface", nil, "not set, and no interface has a subnet containing %s: set it", addr)
					continue
				}
				v.Interface = name
			} else if !host.InterfaceExists(v.Interface) {
				errs.add(vk+".interface", v.Interface, "no such network interface on this node")
			}
		}
	}
}

// parseVIP accepts "IP" or "IP/prefix" and returns the IP. Zone, unspecified,
// loopback, multicast and link-local addresses cannot be VIPs.
func parseVIP(s, key string, errs *Errors) (netip.Addr, bool) {
	if s == "" {
		errs.add(key, nil, "is required")
		return netip.Addr{}, false
	}
	var addr netip.Addr
	if p, err := netip.ParsePrefix(s); err == nil {
		addr = p.Addr()
	} else if a, err2 := netip.ParseAddr(s); err2 == nil {
		addr = a
	} else if strings.Contains(s, "/") {
		errs.add(key, s, "is not a valid CIDR (IP/prefix-length, prefix within the address family)")
		return netip.Addr{}, false
	} else {
		errs.add(key, s, "is not an IPv4 or IPv6 address")
		return netip.Addr{}, false
	}
	switch {
	case addr.Zone() != "":
		errs.add(key, s, "must not carry a zone")
	case addr.Is4In6():
		errs.add(key, s, "must be written as plain IPv4, not IPv4-mapped IPv6")
	case addr.IsUnspecified(), addr.IsLoopback(), addr.IsMulticast(), addr.IsLinkLocalUnicast():
		errs.add(key, s, "must be a unicast address that is not loopback, link-local or unspecified")
	default:
		return addr, true
	}
	return netip.Addr{}, false
}
