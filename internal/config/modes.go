package config

import "strconv"

// validateModes checks that only the current mode's sections are set and
// runs that mode's own rules (vrrp.go, lease.go, gossip.go).
func (c *Config) validateModes(host Host, errs *Errors) {
	if c.VRRP != nil && c.Mode != ModeVRRP {
		errs.add("vrrp", nil, "is set but mode is %q", c.Mode)
	}
	if c.Lease != nil && c.Mode != ModeLease {
		errs.add("lease", nil, "is set but mode is %q", c.Mode)
	}
	if c.Gossip != nil && c.Mode != ModeGossip {
		errs.add("gossip", nil, "is set but mode is %q", c.Mode)
	}
	for gi, g := range c.Groups {
		gk := "groups[" + strconv.Itoa(gi) + "]"
		if g.VRRP != nil && c.Mode != ModeVRRP {
			errs.add(gk+".vrrp", nil, "is set but mode is %q", c.Mode)
		}
		if g.Lease != nil && c.Mode != ModeLease {
			errs.add(gk+".lease", nil, "is set but mode is %q", c.Mode)
		}
		for vi, v := range g.VIPs {
			if v.Excluded && c.Mode != ModeVRRP {
				errs.add(gk+".vips["+strconv.Itoa(vi)+"].excluded", true, "is only for mode vrrp (keepalived virtual_ipaddress_excluded) but mode is %q", c.Mode)
			}
		}
	}
	switch c.Mode {
	case ModeVRRP:
		c.validateVRRP(host, errs)
	case ModeLease:
		c.validateLease(errs)
	case ModeGossip:
		c.validateGossip(errs)
	}
}

// applyModeDefaults fills the current mode's defaults, creating its section
// when absent so later code never checks for nil.
func (c *Config) applyModeDefaults() {
	switch c.Mode {
	case ModeVRRP:
		c.applyVRRPDefaults()
	case ModeLease:
		c.applyLeaseDefaults()
	case ModeGossip:
		c.applyGossipDefaults()
	}
}
