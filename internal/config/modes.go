package config

import (
	"strconv"
	"strings"
)

// modeRules is one election mode's part of the schema: which keys belong
// to it, its defaults and its validation. Adding a mode adds its schema
// file and one line to modeTable (and one to internal/modes' registry,
// tested to list the same names).
type modeRules struct {
	name string
	// keys lists the mode's own sections that are set in c (mode-wide and
	// per group); every other mode refuses them.
	keys     func(c *Config) []string
	defaults func(c *Config)
	validate func(c *Config, host Host, errs *Errors)
}

var modeTable = [...]modeRules{
	{name: ModeStatic},
	{name: ModeVRRP, keys: vrrpKeys, defaults: (*Config).applyVRRPDefaults, validate: (*Config).validateVRRP},
	{name: ModeLease, keys: leaseKeys, defaults: (*Config).applyLeaseDefaults,
		validate: func(c *Config, _ Host, errs *Errors) { c.validateLease(errs) }},
	{name: ModeGossip, keys: gossipKeys, defaults: (*Config).applyGossipDefaults,
		validate: func(c *Config, _ Host, errs *Errors) { c.validateGossip(errs) }},
}

// ModeNames lists the election modes this build knows, in table order.
func ModeNames() []string {
	out := make([]string, len(modeTable))
	for i, m := range modeTable {
		out[i] = m.name
	}
	return out
}

func lookupMode(name string) (modeRules, bool) {
	for _, m := range modeTable {
		if m.name == name {
			return m, true
		}
	}
	return modeRules{}, false
}

// validateModeName checks that the mode is one this build knows.
func (c *Config) validateModeName(errs *Errors) {
	list := strings.Join(ModeNames(), ", ")
	if c.Mode == "" {
		errs.add("mode", nil, "is required: one of %s", list)
	} else if _, known := lookupMode(c.Mode); !known {
		errs.add("mode", c.Mode, "must be one of %s", list)
	}
}

// validateMode checks that only the mode's own sections are set and runs
// its rules (vrrp.go, lease.go, gossip.go). It runs after validateGroups,
// so VIP addresses and interfaces are known.
func (c *Config) validateMode(host Host, errs *Errors) {
	mode, known := lookupMode(c.Mode)
	for _, m := range modeTable {
		if m.name == c.Mode || m.keys == nil {
			continue
		}
		for _, k := range m.keys(c) {
			errs.add(k, nil, "is set but mode is %q", c.Mode)
		}
	}
	if known && mode.validate != nil {
		mode.validate(c, host, errs)
	}
}

// applyModeDefaults fills the current mode's defaults, creating its section
// when absent so later code never checks for nil.
func (c *Config) applyModeDefaults() {
	if m, ok := lookupMode(c.Mode); ok && m.defaults != nil {
		m.defaults(c)
	}
}

// groupKeys lists "groups[i].<name>" for every group where set is true.
func groupKeys(c *Config, name string, set func(g *Group) bool) []string {
	var out []string
	for i := range c.Groups {
		if set(&c.Groups[i]) {
			out = append(out, "groups["+strconv.Itoa(i)+"]."+name)
		}
	}
	return out
}

func vrrpKeys(c *Config) []string {
	var out []string
	if c.VRRP != nil {
		out = append(out, "vrrp")
	}
	out = append(out, groupKeys(c, "vrrp", func(g *Group) bool { return g.VRRP != nil })...)
	// keepalived's virtual_ipaddress_excluded: a VRRP notion.
	for gi, g := range c.Groups {
		for vi, v := range g.VIPs {
			if v.Excluded {
				out = append(out, "groups["+strconv.Itoa(gi)+"].vips["+strconv.Itoa(vi)+"].excluded")
			}
		}
	}
	return out
}

func leaseKeys(c *Config) []string {
	var out []string
	if c.Lease != nil {
		out = append(out, "lease")
	}
	return append(out, groupKeys(c, "lease", func(g *Group) bool { return g.Lease != nil })...)
}

func gossipKeys(c *Config) []string {
	if c.Gossip != nil {
		return []string{"gossip"}
	}
	return nil
}
