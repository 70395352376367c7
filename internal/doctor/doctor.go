// Package doctor is `vipd doctor`: a preflight a person runs on a node
// before or after installing vipd. Each check prints one line,
//
//	OK|WARN|FAIL  <check>: <finding> — <what to do>
//
// and the exit status is 0 when every line is OK, 1 when any is WARN and 2
// when any is FAIL (docs/doctor.md). Every piece of I/O (files under /proc,
// netlink, sockets, the API server) goes through Deps, so the decisions are
// table-tested without root; SystemDeps is the real machine.
package doctor

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// Verdict is one line's outcome; larger is worse.
type Verdict int

// Verdicts, in increasing severity.
const (
	OK Verdict = iota
	Warn
	Fail
)

func (v Verdict) String() string {
	switch v {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	}
	return "FAIL"
}

// Line is one check's result.
type Line struct {
	Verdict Verdict
	// Check names what was looked at, e.g. "interface eth0".
	Check string
	// Finding is what was seen.
	Finding string
	// Action is what to do about it; empty when nothing is to be done.
	Action string
}

func (l Line) String() string {
	s := fmt.Sprintf("%-4s  %s: %s", l.Verdict, l.Check, l.Finding)
	if l.Action != "" {
		s += " — " + l.Action
	}
	return s
}

// ExitCode is the process exit status for lines: 0 all OK, 1 any WARN, 2 any FAIL.
func ExitCode(lines []Line) int {
	worst := OK
	for _, l := range lines {
		worst = max(worst, l.Verdict)
	}
	return int(worst)
}

// Options are the command's flags.
type Options struct {
	// ConfigPath is the vipd config file to check.
	ConfigPath string
	// Listen is how long to listen for VRRP adverts; 0: three advert
	// intervals of the config, at least MinListen; negative: do not listen.
	Listen time.Duration
	// Out, if set, receives each line as soon as it is decided (the VRRP
	// listen takes seconds, so a person sees progress).
	Out io.Writer
}

// MinListen is the shortest default VRRP listen: a master sends at least
// one advert per second with keepalived's default advert_int, so 3 s hears
// three of them.
const MinListen = 3 * time.Second

// ListenFor is the default VRRP listen for c: three of the slowest advert
// interval of its groups (a backup declares a master dead after about as
// long), at least MinListen.
func ListenFor(c *config.Config) time.Duration {
	d := MinListen
	for _, g := range c.Groups {
		if g.VRRP != nil {
			d = max(d, 3*g.VRRP.AdvertInterval)
		}
	}
	return d
}

// run collects lines and streams them to Out.
type run struct {
	ctx   context.Context
	deps  Deps
	opts  Options
	lines []Line
}

func (r *run) add(ls ...Line) {
	for _, l := range ls {
		r.lines = append(r.lines, l)
		if r.opts.Out != nil {
			fmt.Fprintln(r.opts.Out, l)
		}
	}
}

// Run performs every check and returns the lines in the order printed.
func Run(ctx context.Context, opts Options, deps Deps) []Line {
	r := &run{ctx: ctx, deps: deps, opts: opts}
	cfg, asked, cfgLine := r.loadConfig()
	r.add(cfgLine)
	caps := r.checkCapabilities()
	r.add(caps)
	if cfg == nil {
		r.add(Line{Warn, "remaining checks", "skipped (interfaces, VIP subnets, sysctls, VRRP, peers, API server, http endpoint): they need a config that loads",
			"fix the config (vipd validate --config " + opts.ConfigPath + "), then run vipd doctor again"})
		return r.lines
	}
	links := r.checkInterfaces(cfg, asked)
	r.checkVIPSubnets(cfg, links)
	r.checkSysctls(cfg, links)
	switch cfg.Mode {
	case config.ModeVRRP:
		r.checkVRRPListen(cfg, links, caps.Verdict == OK)
		r.checkVRRPPeers(cfg, links)
	case config.ModeGossip:
		r.checkGossipPeers(cfg)
	case config.ModeLease:
		r.checkLease(cfg)
	}
	for _, p := range cfg.UnauthenticatedPaths() {
		r.add(Line{Warn, "unauthenticated", p, unauthAction(cfg.Mode)})
	}
	r.add(r.checkHTTP(cfg))
	return r.lines
}

func unauthAction(mode string) string {
	switch mode {
	case config.ModeGossip:
		return "set gossip.keyFile (docs/gossip.md), or firewall the gossip port to the cluster's nodes"
	case config.ModeVRRP:
		return "if hosts you do not trust share the segment, use mode lease (the API server authenticates every node)"
	}
	return "restrict who can reach it"
}

// recordingHost answers "yes" for every interface name and records the
// names, so a missing interface is reported by the interface check (with
// what to do) rather than failing the whole config, which would skip every
// other check. Subnet lookup (a VIP without interface) stays real.
type recordingHost struct {
	config.Host
	asked []string
}

func (h *recordingHost) InterfaceExists(name string) bool {
	if !slices.Contains(h.asked, name) {
		h.asked = append(h.asked, name)
	}
	return true
}

func (r *run) loadConfig() (*config.Config, []string, Line) {
	check := "config " + r.opts.ConfigPath
	data, err := r.deps.ReadFile(r.opts.ConfigPath)
	if err != nil {
		return nil, nil, Line{Fail, check, err.Error(), "pass the file vipd runs with (--config)"}
	}
	c, err := config.Parse(data)
	if err == nil {
		h := &recordingHost{Host: r.deps.Host}
		if err = c.Validate(h); err == nil {
			return c, h.asked, Line{OK, check, fmt.Sprintf("valid, mode %s, %d group(s), node %q (interfaces are checked below)", c.Mode, len(c.Groups), c.Node), ""}
		}
	}
	msg := strings.ReplaceAll(err.Error(), "\n  ", "; ")
	return nil, nil, Line{Fail, check, msg, "fix the keys named (docs/config.md); vipd refuses to start with this file"}
}

// groupInterfaces lists, in config order without repeats, every interface
// the config uses (VIPs and VRRP), each with the VIPs bound on it.
func groupInterfaces(c *config.Config) ([]string, map[string][]netip.Addr) {
	var names []string
	vips := map[string][]netip.Addr{}
	add := func(n string) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, g := range c.Groups {
		for _, v := range g.VIPs {
			add(v.Interface)
			vips[v.Interface] = append(vips[v.Interface], v.Addr)
		}
		if g.VRRP != nil {
			add(g.VRRP.Interface)
		}
	}
	return names, vips
}
