// Package modes is where each election mode is registered: the one place
// that turns the validated config (internal/config) into the plain values a
// mode's package takes (vrrp.GroupSpec, lease.Options, gossip.Options), so
// those packages never import the config. Adding a mode is its own package,
// its schema in internal/config (one line in config's mode table), one file
// here and one line in registry below (docs/architecture.md).
package modes

import (
	"fmt"
	"log/slog"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/node"
)

// Mode is one election mode as the daemon needs it.
type Mode struct {
	// Name is the config's mode value.
	Name string
	// New translates the validated config into the mode's own options and
	// builds its elector. It touches no interface (sockets are opened in Run).
	New func(c *config.Config, log *slog.Logger) (election.Elector, error)
}

// registry lists every mode; config's table (config.ModeNames) must list
// the same names (tested).
var registry = [...]Mode{
	{Name: config.ModeStatic, New: newStatic},
	{Name: config.ModeVRRP, New: newVRRP},
	{Name: config.ModeLease, New: newLease},
	{Name: config.ModeGossip, New: newGossip},
}

// Lookup returns the registered mode called name.
func Lookup(name string) (Mode, bool) {
	for _, m := range registry {
		if m.Name == name {
			return m, true
		}
	}
	return Mode{}, false
}

// Names lists the registered modes in registry order.
func Names() []string {
	out := make([]string, len(registry))
	for i, m := range registry {
		out[i] = m.Name
	}
	return out
}

// NewElector builds the configured mode's elector.
func NewElector(c *config.Config, log *slog.Logger) (election.Elector, error) {
	m, ok := Lookup(c.Mode)
	if !ok {
		return nil, fmt.Errorf("mode %q is not available in this build", c.Mode)
	}
	return m.New(c, log)
}

func newStatic(c *config.Config, _ *slog.Logger) (election.Elector, error) {
	return election.NewStatic(c.GroupNames()), nil
}

// NodeSpec translates the daemon's part of a validated config.
func NodeSpec(c *config.Config, version string) node.Spec {
	s := node.Spec{
		Node: c.Node, Mode: c.Mode, Version: version, HTTPListen: c.HTTP.Listen,
		Lifetime: c.Binding.Lifetime, Refresh: c.Binding.Refresh,
		Announce: arp.Schedule{Count: c.Announce.Count, Interval: c.Announce.Interval},
	}
	if c.Announce.Refresh != nil {
		s.Announce.Refresh = *c.Announce.Refresh
	}
	for _, g := range c.Groups {
		ng := node.Group{Name: g.Name, Priority: g.Priority}
		for _, v := range g.VIPs {
			ng.VIPs = append(ng.VIPs, addr.VIP{Interface: v.Interface, Addr: v.Addr})
		}
		s.Groups = append(s.Groups, ng)
	}
	return s
}
