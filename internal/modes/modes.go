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
	"reflect"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
	"github.com/vipd/vipd/internal/node"
)

// Mode is one election mode as the daemon needs it.
type Mode struct {
	// Name is the config's mode value.
	Name string
	// New translates the validated config into the mode's own options and
	// builds its elector. It touches no interface (sockets are opened in Run).
	New func(c *config.Config, log *slog.Logger) (election.Elector, error)
	// Reload applies a validated new config to an elector New built, while
	// it runs (SIGHUP, docs/reload.md): groups added, removed or changed,
	// and the mode's own settings. The daemon has already called SetInput
	// for every added group. Before Reload returns, every removed group the
	// elector owned has been reported Owner=false. A change the mode cannot
	// apply in place returns an error that names the setting and says it
	// needs a restart; nothing is changed then.
	Reload func(e election.Elector, c *config.Config) error
}

// registry lists every mode; config's table (config.ModeNames) must list
// the same names (tested).
var registry = [...]Mode{
	{Name: config.ModeStatic, New: newStatic, Reload: reloadStatic},
	{Name: config.ModeVRRP, New: newVRRP, Reload: reloadVRRP},
	{Name: config.ModeLease, New: newLease, Reload: reloadLease},
	{Name: config.ModeGossip, New: newGossip, Reload: reloadGossip},
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

func reloadStatic(e election.Elector, c *config.Config) error {
	s, ok := e.(*election.Static)
	if !ok {
		return fmt.Errorf("mode static: elector is a %T", e)
	}
	s.Reconfigure(c.GroupNames())
	return nil
}

// Reload applies next's mode part to a running elector (Mode.Reload).
func Reload(e election.Elector, next *config.Config) error {
	m, ok := Lookup(next.Mode)
	if !ok {
		return fmt.Errorf("mode %q is not available in this build", next.Mode)
	}
	if m.Reload == nil {
		return fmt.Errorf("mode %s cannot reload its groups: restart vipd", next.Mode)
	}
	return m.Reload(e, next)
}

// CheckReload refuses, before anything changes, a new config whose
// differences need a restart: the daemon's own (node.NeedsRestart) and the
// mode's transport settings (a gossip key or bind address, the Lease API
// and timing), which the running elector cannot change in place.
func CheckReload(cur, next *config.Config) error {
	if err := node.NeedsRestart(NodeSpec(cur, ""), NodeSpec(next, "")); err != nil {
		return err
	}
	var keys []string
	switch {
	case cur.Lease != nil && next.Lease != nil && *cur.Lease != *next.Lease:
		keys = append(keys, "lease")
	case cur.Gossip != nil && next.Gossip != nil && !reflect.DeepEqual(withoutKeys(cur.Gossip), withoutKeys(next.Gossip)):
		keys = append(keys, "gossip")
	}
	if len(keys) > 0 {
		return fmt.Errorf("%v changed: that needs a restart (the running daemon keeps its current config)", keys)
	}
	return nil
}

// withoutKeys is g without what may change while it runs: the keys read
// from g.KeyFile (the elector re-reads that file, so new keys in the same
// file are a rotation, and comparing them would refuse every reload after
// one) and the settings the gossip elector applies in place (expect,
// quorum, rejoinInterval; docs/gossip.md).
func withoutKeys(g *config.Gossip) config.Gossip {
	c := *g
	c.Keys = nil
	c.Expect, c.Quorum, c.RejoinInterval = 0, false, 0
	return c
}

// NodeSpec translates the daemon's part of a validated config.
func NodeSpec(c *config.Config, version string) node.Spec {
	s := node.Spec{
		Node: c.Node, Mode: c.Mode, Version: version, HTTPListen: c.HTTP.Listen,
		Lifetime: c.Binding.Lifetime, Refresh: c.Binding.Refresh, MaxLifetime: c.MaxBindingLifetime(),
		Announce: arp.Schedule{Count: c.Announce.Count, Interval: c.Announce.Interval},
	}
	if c.Announce.Refresh != nil {
		s.Announce.Refresh = *c.Announce.Refresh
	}
	s.StartupDelay = c.Health.StartupDelay
	if v := c.Verify; v.Interval != nil {
		s.Verify = node.VerifySpec{Interval: *v.Interval, Window: v.Window, MaxRate: v.MaxRate, Reaction: v.Reaction}
	}
	if c.Health.MinMoveInterval != nil {
		s.MinMoveInterval = *c.Health.MinMoveInterval
	}
	for _, g := range c.Groups {
		ng := node.Group{Name: g.Name, Priority: g.Priority, KeepWhenNoneHealthy: g.WhenNoneHealthy != config.PolicyRelease}
		for _, v := range g.VIPs {
			ng.VIPs = append(ng.VIPs, addr.VIP{Interface: v.Interface, Addr: v.Addr})
		}
		for _, t := range g.Track {
			ng.Track = append(ng.Track, node.Track{Check: t.Check, Weight: t.Weight})
		}
		if n := g.Notify; n != nil {
			ng.Notify = &hooks.Spec{Command: n.Command, Master: n.Master, Backup: n.Backup, Fault: n.Fault, Stop: n.Stop, Timeout: n.Timeout}
		}
		s.Groups = append(s.Groups, ng)
	}
	for _, k := range c.Checks {
		s.Checks = append(s.Checks, HealthSpec(k, c.Node))
	}
	s.Unauthenticated = c.UnauthenticatedPaths()
	return s
}

// HealthSpec translates one validated check.
func HealthSpec(k config.Check, nodeName string) health.Spec {
	h := health.Spec{Name: k.Name, Interval: k.Interval, Timeout: k.Timeout, Rise: k.Rise, Fall: k.Fall}
	switch {
	case k.HTTP != nil:
		lo, hi, _ := config.ParseExpectStatus(k.HTTP.ExpectStatus)
		h.HTTP = &health.HTTP{URL: k.HTTP.URL, CAFile: k.HTTP.CAFile, InsecureSkipVerify: k.HTTP.InsecureSkipVerify,
			CertFile: k.HTTP.CertFile, KeyFile: k.HTTP.KeyFile, BearerTokenFile: k.HTTP.BearerTokenFile, Host: k.HTTP.Host,
			StatusMin: lo, StatusMax: hi}
	case k.TCP != nil:
		h.TCP = &health.TCP{Address: k.TCP.Address}
	case k.Exec != nil:
		h.Exec = &health.Exec{Command: k.Exec.Command, User: k.Exec.User}
	case k.Endpoints != nil:
		h.Endpoints = &health.Endpoints{Namespace: k.Endpoints.Namespace, Service: k.Endpoints.Service, NodeName: nodeName,
			Kubeconfig: k.Endpoints.Kubeconfig, Server: k.Endpoints.Server}
	case k.Interface != nil:
		h.Interface = &health.Interface{Name: k.Interface.Name}
	case k.File != nil:
		h.File = &health.File{Path: k.File.Path}
	}
	return h
}
