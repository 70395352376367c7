package keepalived

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// Warning is a directive that was not carried over, or changed meaning.
type Warning struct {
	Pos string // file:line
	Msg string
}

func (w Warning) String() string { return w.Pos + ": " + w.Msg }

// Result is a converted config and what the conversion could not keep.
type Result struct {
	Config   *config.Config
	Warnings []Warning
	// Sources lists every file read, for the output's header.
	Sources []string
	// from points parts of the output back to their source lines.
	from origins
}

type script struct {
	name   string // vipd check name
	weight int
	node   *Node
}

type converter struct {
	res      Result
	scripts  map[string]*script
	files    map[string]*script
	instance map[string]*instance
	order    []*instance
}

type instance struct {
	name    string
	node    *Node
	group   config.Group
	inSync  bool
	hasVIPs bool
	// from holds origins relative to the group (priority, vips/ADDR).
	from origins
	// notify are its notify directives (a sync group may drop them).
	notify []*Node
}

// Convert turns a parsed keepalived.conf into a vipd config in mode vrrp.
func Convert(tree []*Node) (*Result, error) {
	c := &converter{scripts: map[string]*script{}, files: map[string]*script{}, instance: map[string]*instance{}}
	cfg := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Mode: config.ModeVRRP}
	c.res.Config = cfg
	c.res.from = origins{}
	seen := map[string]bool{}
	walk(tree, func(n *Node) {
		if !seen[n.File] {
			seen[n.File] = true
			c.res.Sources = append(c.res.Sources, n.File)
		}
	})
	// Scripts and track files first: instances refer to them by name.
	for _, n := range tree {
		switch n.Key() {
		case "vrrp_script":
			c.vrrpScript(n)
		case "vrrp_track_file":
			c.trackFile(n)
		}
	}
	for _, n := range tree {
		switch n.Key() {
		case "global_defs":
			c.globalDefs(n)
		case "vrrp_script", "vrrp_track_file":
		case "vrrp_instance":
			c.vrrpInstance(n)
		case "vrrp_sync_group":
		case "virtual_server", "virtual_server_group", "real_server":
			c.warn(n, "LVS load balancing (%s) is not part of vipd: keep keepalived's check process or use a load balancer for it", n.Key())
		default:
			c.warn(n, "%s is not carried over: vipd has no equivalent", n.Key())
		}
	}
	for _, n := range tree {
		if n.Key() == "vrrp_sync_group" {
			c.syncGroup(n)
		}
	}
	for _, in := range c.order {
		if in.inSync {
			continue
		}
		if !in.hasVIPs {
			c.warn(in.node, "vrrp_instance %s has no virtual_ipaddress: vipd has nothing to move for it, so it is left out", in.name)
			continue
		}
		cfg.Groups = append(cfg.Groups, in.group)
		c.res.from.graft("groups/"+in.group.Name, in.from)
	}
	for _, g := range cfg.Groups {
		if len(g.Track) > 0 {
			// keepalived applies a check's result at once; vipd's default
			// damper would make a failback up to 10s later than the
			// cluster being replaced (the node-by-node lab showed it).
			zero := time.Duration(0)
			cfg.Health.MinMoveInterval = &zero
			c.res.from.add("health/minMoveInterval", origin{note: "keepalived moves at once; vipd's default 10s damps a flapping check"})
			break
		}
	}
	return &c.res, nil
}

func walk(ns []*Node, f func(*Node)) {
	for _, n := range ns {
		f(n)
		walk(n.Block, f)
	}
}

func (c *converter) warn(n *Node, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, Warning{n.Pos(), fmt.Sprintf(format, args...)})
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// label makes a keepalived name (VI_1, chk_haproxy) a DNS label.
func label(s string) string {
	s = strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		s = "x"
	}
	return s
}

// seconds reads keepalived's timer syntax: decimal seconds.
func (c *converter) seconds(n *Node) (time.Duration, bool) {
	if len(n.Args()) < 1 {
		c.warn(n, "%s needs a value; ignored", n.Key())
		return 0, false
	}
	f, err := strconv.ParseFloat(n.Args()[0], 64)
	if err != nil || f < 0 || f > 1e6 {
		c.warn(n, "%s %q is not a number of seconds; ignored", n.Key(), n.Args()[0])
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), true
}

func (c *converter) integer(n *Node, lo, hi int) (int, bool) {
	if len(n.Args()) < 1 {
		c.warn(n, "%s needs a value; ignored", n.Key())
		return 0, false
	}
	v, err := strconv.Atoi(n.Args()[0])
	if err != nil || v < lo || v > hi {
		c.warn(n, "%s %q is not a whole number in %d..%d; ignored", n.Key(), n.Args()[0], lo, hi)
		return 0, false
	}
	return v, true
}

func (c *converter) globalDefs(g *Node) {
	cfg := c.res.Config
	for _, n := range g.Block {
		switch n.Key() {
		case "router_id":
			if len(n.Args()) > 0 {
				cfg.Node = n.Args()[0]
				c.res.from.directive("node", n)
			}
		case "vrrp_version":
			if v, ok := c.integer(n, 2, 3); ok && v == 2 {
				c.warn(n, "vrrp_version 2: vipd speaks VRRPv3 only (RFC 5798); set vrrp_version 3 on the keepalived nodes before mixing them with vipd")
			}
		case "vrrp_garp_master_repeat":
			if v, ok := c.integer(n, 1, 100); ok {
				cfg.Announce.Count = v
				c.res.from.directive("announce/count", n)
			}
		case "vrrp_garp_interval", "vrrp_gna_interval":
			if d, ok := c.seconds(n); ok {
				if d < 10*time.Millisecond {
					c.warn(n, "%s %s is below vipd's 10ms floor for announce.interval; vipd uses its default", n.Key(), d)
					break
				}
				cfg.Announce.Interval = d
				c.res.from.directive("announce/interval", n)
			}
		case "vrrp_garp_master_refresh":
			if d, ok := c.seconds(n); ok {
				cfg.Announce.Refresh = &d
				c.res.from.directive("announce/refresh", n)
			}
		case "vrrp_startup_delay", "vrrp_delay_after_boot":
			if d, ok := c.seconds(n); ok {
				cfg.Health.StartupDelay = d
				c.res.from.directive("health/startupDelay", n)
			}
		case "enable_script_security", "script_user":
			c.warn(n, "%s is not carried over: vipd runs checks as its own user unless a check names `user:`, and hooks as its own user", n.Key())
		case "vrrp_garp_master_delay", "vrrp_garp_lower_prio_repeat", "vrrp_garp_lower_prio_delay", "vrrp_min_garp":
			c.warn(n, "%s is not carried over: vipd sends its announcement burst at once and repeats it every announce.refresh", n.Key())
		case "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_alert", "smtp_helo_name":
			c.warn(n, "%s: vipd sends no e-mail; use a notify hook", n.Key())
		default:
			c.warn(n, "global_defs %s is not carried over: vipd has no equivalent", n.Key())
		}
	}
}

func (c *converter) vrrpScript(n *Node) {
	if len(n.Args()) < 1 {
		c.warn(n, "vrrp_script without a name; ignored")
		return
	}
	s := &script{name: label(n.Args()[0]), node: n}
	k := config.Check{Name: s.name, Exec: &config.ExecCheck{}, Rise: 1, Fall: 1}
	at := "checks/" + s.name
	c.res.from.block(at, n)
	for _, d := range n.Block {
		switch d.Key() {
		case "script":
			argv, ignored, err := ScriptArgv(d.Raw)
			if err != nil {
				c.warn(d, "script: %v", err)
			}
			if len(ignored) > 0 {
				c.warn(d, "keepalived runs only the first word after script (%q) and ignores %q; quote the whole command", strings.Join(argv, " "), strings.Join(ignored, " "))
			}
			k.Exec.Command = argv
			c.res.from.directive(at+"/exec/command", d)
		case "interval":
			if v, ok := c.seconds(d); ok {
				k.Interval = v
				c.res.from.directive(at+"/interval", d)
			}
		case "timeout":
			if v, ok := c.seconds(d); ok {
				k.Timeout = v
				c.res.from.directive(at+"/timeout", d)
			}
		case "weight":
			if v, ok := c.integer(d, -253, 253); ok {
				s.weight = v
			}
			if len(d.Args()) > 1 {
				c.warn(d, "weight %s: vipd has no reverse weights; the sign is kept as written", strings.Join(d.Args()[1:], " "))
			}
		case "rise":
			if v, ok := c.integer(d, 1, 100); ok {
				k.Rise = v
				c.res.from.directive(at+"/rise", d)
			}
		case "fall":
			if v, ok := c.integer(d, 1, 100); ok {
				k.Fall = v
				c.res.from.directive(at+"/fall", d)
			}
		case "user":
			if len(d.Args()) > 0 {
				k.Exec.User = d.Args()[0]
				c.res.from.directive(at+"/exec/user", d)
			}
			if len(d.Args()) > 1 {
				c.warn(d, "user's group %q is not carried over: vipd runs the script with the user's own groups", d.Args()[1])
			}
		case "init_fail":
			c.warn(d, "init_fail is vipd's default: a check is not passing until it has passed")
		default:
			c.warn(d, "vrrp_script %s is not carried over", d.Key())
		}
	}
	iv := k.Interval
	if iv == 0 {
		iv = config.DefaultCheckInterval
	}
	if k.Timeout > iv {
		c.warn(n, "timeout %s is longer than the interval %s; vipd needs timeout <= interval, so it is %s", k.Timeout, iv, iv)
		k.Timeout = iv
	}
	c.res.Config.Checks = append(c.res.Config.Checks, k)
	c.scripts[n.Args()[0]] = s
}

func (c *converter) trackFile(n *Node) {
	if len(n.Args()) < 1 {
		c.warn(n, "vrrp_track_file without a name; ignored")
		return
	}
	s := &script{name: label("file-" + n.Args()[0]), node: n}
	k := config.Check{Name: s.name, File: &config.FileCheck{}}
	c.res.from.block("checks/"+s.name, n)
	for _, d := range n.Block {
		switch d.Key() {
		case "file":
			if len(d.Args()) > 0 {
				k.File.Path = d.Args()[0]
				c.res.from.directive("checks/"+s.name+"/file/path", d)
			}
		case "weight":
			if v, ok := c.integer(d, -253, 253); ok {
				s.weight = v
			}
		default:
			c.warn(d, "vrrp_track_file %s is not carried over", d.Key())
		}
	}
	c.warn(n, "vrrp_track_file: keepalived reads a number from the file and scales the weight by it; vipd's file check only fails while the file exists. Review this check")
	c.res.Config.Checks = append(c.res.Config.Checks, k)
	c.files[n.Args()[0]] = s
}

func (c *converter) ensureInterfaceCheck(name string, t *Node) string {
	cn := label("if-" + name)
	c.res.from.add("checks/"+cn, origin{what: "track_interface " + name, pos: t.Pos()})
	if _, ok := c.res.Config.CheckByName(cn); !ok {
		c.res.Config.Checks = append(c.res.Config.Checks, config.Check{Name: cn, Interface: &config.InterfaceCheck{Name: name}, Rise: 1, Fall: 1})
	}
	return cn
}

// trackWeight reads "NAME [weight N]" lines; ok=false for a bad weight.
func (c *converter) trackWeight(d *Node, def int) int {
	a := d.Tokens
	for i := 1; i+1 < len(a); i++ {
		if a[i] == "weight" {
			v, err := strconv.Atoi(a[i+1])
			if err != nil || v < -253 || v > 253 {
				c.warn(d, "weight %q is not in -253..253; using %d", a[i+1], def)
				return def
			}
			if i+2 < len(a) {
				c.warn(d, "%q: vipd has no reverse weights", strings.Join(a[i+2:], " "))
			}
			return v
		}
	}
	return def
}

// notifyKey is the vipd notify key of each keepalived notify directive.
var notifyKey = map[string]string{"notify": "command", "notify_master": "master", "notify_backup": "backup", "notify_fault": "fault", "notify_stop": "stop"}

func (c *converter) notify(d *Node, n **config.Notify) {
	argv, ignored, err := ScriptArgv(d.Raw)
	if err != nil || len(argv) == 0 {
		c.warn(d, "%s: no command (%v); ignored", d.Key(), err)
		return
	}
	if len(ignored) > 0 {
		c.warn(d, "keepalived ignores %q after the command; quote the whole command", strings.Join(ignored, " "))
	}
	if *n == nil {
		*n = &config.Notify{}
	}
	switch d.Key() {
	case "notify":
		(*n).Command = argv
	case "notify_master":
		(*n).Master = argv
	case "notify_backup":
		(*n).Backup = argv
	case "notify_fault":
		(*n).Fault = argv
	case "notify_stop":
		(*n).Stop = argv
	}
}

func (c *converter) vrrpInstance(n *Node) {
	if len(n.Args()) < 1 {
		c.warn(n, "vrrp_instance without a name; ignored")
		return
	}
	in := &instance{name: n.Args()[0], node: n, from: origins{}}
	in.from.block("", n)
	g := &in.group
	g.Name = label(in.name)
	g.VRRP = &config.GroupVRRP{}
	cfg := c.res.Config
	var vipLines []*Node
	for _, d := range n.Block {
		switch d.Key() {
		case "interface":
			if len(d.Args()) > 0 {
				g.VRRP.Interface = d.Args()[0]
				in.from.directive("vrrp/interface", d)
			}
		case "state":
			c.warn(d, "state is only keepalived's starting state; vipd starts as backup and the priorities decide (as keepalived does after the first advert)")
		case "virtual_router_id":
			if v, ok := c.integer(d, 1, 255); ok {
				g.VRRP.VRID = v
				in.from.directive("vrrp/vrid", d)
			}
		case "priority":
			if v, ok := c.integer(d, 1, 255); ok {
				if v == 255 {
					c.warn(d, "priority 255 (address owner) is not supported by vipd; using 254")
					v = 254
				}
				g.Priority = v
				in.from.directive("priority", d)
			}
		case "advert_int":
			if v, ok := c.seconds(d); ok {
				g.VRRP.AdvertInterval = v
				in.from.directive("vrrp/advertInterval", d)
			}
		case "nopreempt":
			f := false
			g.VRRP.Preempt = &f
			in.from.directive("vrrp/preempt", d)
		case "preempt":
			t := true
			g.VRRP.Preempt = &t
			in.from.directive("vrrp/preempt", d)
		case "preempt_delay":
			if v, ok := c.seconds(d); ok {
				g.VRRP.PreemptDelay = &v
				in.from.directive("vrrp/preemptDelay", d)
			}
		case "unicast_src_ip":
			if len(d.Args()) > 0 {
				g.VRRP.UnicastSource = append(g.VRRP.UnicastSource, d.Args()[0])
				in.from.directive("vrrp/unicastSource", d)
			}
		case "unicast_peer":
			in.from.directive("vrrp/unicastPeers", d)
			for _, p := range d.Block {
				g.VRRP.UnicastPeers = append(g.VRRP.UnicastPeers, p.Key())
				if len(p.Tokens) > 1 {
					c.warn(p, "peer options %q are not carried over", strings.Join(p.Args(), " "))
				}
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			vipLines = append(vipLines, d)
		case "track_interface":
			for _, t := range d.Block {
				cn := c.ensureInterfaceCheck(t.Key(), t)
				g.Track = append(g.Track, config.Track{Check: cn, Weight: c.trackWeight(t, 0)})
				in.from.directive("track/"+cn, t)
			}
		case "track_script":
			for _, t := range d.Block {
				s, ok := c.scripts[t.Key()]
				if !ok {
					c.warn(t, "track_script %s names no vrrp_script; ignored (keepalived ignores it too)", t.Key())
					continue
				}
				g.Track = append(g.Track, config.Track{Check: s.name, Weight: c.trackWeight(t, s.weight)})
				in.from.directive("track/"+s.name, t)
			}
		case "track_file":
			for _, t := range d.Block {
				s, ok := c.files[t.Key()]
				if !ok {
					c.warn(t, "track_file %s names no vrrp_track_file; ignored", t.Key())
					continue
				}
				g.Track = append(g.Track, config.Track{Check: s.name, Weight: c.trackWeight(t, s.weight)})
				in.from.directive("track/"+s.name, t)
			}
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
			c.notify(d, &g.Notify)
			in.notify = append(in.notify, d)
			in.from.directive("notify/"+notifyKey[d.Key()], d)
		case "garp_master_repeat":
			if v, ok := c.integer(d, 1, 100); ok {
				cfg.Announce.Count = v
				c.res.from.directive("announce/count", d)
				c.warn(d, "garp_master_repeat is node-wide in vipd (announce.count)")
			}
		case "garp_master_refresh":
			if v, ok := c.seconds(d); ok {
				cfg.Announce.Refresh = &v
				c.res.from.directive("announce/refresh", d)
				c.warn(d, "garp_master_refresh is node-wide in vipd (announce.refresh)")
			}
		case "garp_master_delay":
			c.warn(d, "garp_master_delay: vipd sends its announcement burst at once and repeats it every announce.refresh")
		case "authentication":
			c.warn(d, "authentication is not part of VRRPv3 (RFC 5798) and vipd has none; keepalived must drop it too to interoperate")
		case "use_vmac", "vmac_xmit_base":
			c.warn(d, "%s: vipd binds VIPs on the interface itself and uses no VRRP virtual MAC", d.Key())
		default:
			c.warn(d, "vrrp_instance %s is not carried over: vipd has no equivalent", d.Key())
		}
	}
	for _, d := range vipLines {
		for _, v := range d.Block {
			vip, ok := c.vip(v, g.VRRP.Interface)
			if !ok {
				continue
			}
			vip.Excluded = d.Key() == "virtual_ipaddress_excluded"
			g.VIPs = append(g.VIPs, vip)
			in.from.directive("vips/"+vip.Address, v)
			in.hasVIPs = true
		}
	}
	if len(g.VRRP.UnicastSource) > 0 && len(g.VRRP.UnicastPeers) == 0 {
		c.warn(n, "unicast_src_ip without unicast_peer: keepalived sends multicast then, and so does vipd; the source is dropped")
		g.VRRP.UnicastSource = nil
	}
	c.instance[in.name] = in
	c.order = append(c.order, in)
}

// vip reads one virtual_ipaddress line: ADDR[/PREFIX] [dev IF] [label L] ...
func (c *converter) vip(v *Node, iface string) (config.VIP, bool) {
	addr := v.Key()
	a := addr
	if i := strings.IndexByte(a, '/'); i >= 0 {
		a = a[:i]
	}
	if _, err := netip.ParseAddr(a); err != nil {
		c.warn(v, "%q is not an IP address; ignored", addr)
		return config.VIP{}, false
	}
	vip := config.VIP{Address: addr, Interface: iface}
	args := v.Args()
	for i := 0; i < len(args); i++ {
		if i+1 < len(args) {
			switch args[i] {
			case "dev":
				vip.Interface = args[i+1]
				i++
				continue
			case "label":
				c.warn(v, "label %s: vipd adds VIPs without a label", args[i+1])
				i++
				continue
			}
		}
		c.warn(v, "virtual_ipaddress option %q is not carried over", strings.Join(args[i:], " "))
		break
	}
	return vip, true
}

func (c *converter) syncGroup(n *Node) {
	var members []*instance
	var notify *config.Notify
	var notifyFrom origins = origins{}
	trackingWeight := false
	for _, d := range n.Block {
		switch d.Key() {
		case "group":
			for _, m := range d.Block {
				in, ok := c.instance[m.Key()]
				if !ok {
					c.warn(m, "sync group member %s names no vrrp_instance; ignored", m.Key())
					continue
				}
				members = append(members, in)
			}
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
			c.notify(d, &notify)
			notifyFrom.directive(notifyKey[d.Key()], d)
		case "sync_group_tracking_weight":
			trackingWeight = true
		case "track_script", "track_interface", "track_file":
			c.warn(d, "sync-group %s is not carried over: track in the member instances", d.Key())
		default:
			c.warn(d, "vrrp_sync_group %s is not carried over", d.Key())
		}
	}
	if len(members) == 0 {
		return
	}
	// One vipd group does what a sync group does: one owner for all its
	// VIPs. Its first instance gives the VRRP settings.
	base := members[0].group
	base.Name = label(n.Args0())
	base.VIPs = nil
	base.Track = nil
	at := "groups/" + base.Name
	c.res.from.block(at, n)
	for _, m := range members {
		c.res.from.block(at, m.node)
		for p, from := range m.from {
			// Settings come from the first member; VIPs, tracks and
			// peers from every member.
			if m == members[0] || strings.HasPrefix(p, "vips/") || strings.HasPrefix(p, "track/") || strings.HasPrefix(p, "vrrp/unicast") {
				if p != "" && !strings.HasPrefix(p, "notify/") {
					for _, o := range from {
						c.res.from.add(join(at, p), o)
					}
				}
			}
		}
		// keepalived runs a member's notify scripts as well as the sync
		// group's; a vipd group has one set of hooks.
		if notify != nil || m != members[0] {
			for _, d := range m.notify {
				c.warn(d, "%s of instance %s is not carried over: the vipd group has one set of notify hooks, taken from %s (keepalived runs both); merge the scripts if both are needed", d.Key(), m.name, notifySource(notify != nil, n.Args0(), members[0].name))
			}
		}
		m.inSync = true
		g := m.group
		base.VIPs = append(base.VIPs, g.VIPs...)
		for _, t := range g.Track {
			if t.Weight != 0 && !trackingWeight {
				// keepalived 2.2 ignores weights in a sync group (unless
				// sync_group_tracking_weight): a failing check faults it.
				c.warn(m.node, "instance %s is in sync group %s, where keepalived ignores track weights: check %s gates the group (weight 0)", m.name, n.Args0(), t.Check)
				t.Weight = 0
			}
			if !hasTrack(base.Track, t.Check) {
				base.Track = append(base.Track, t)
			}
		}
		if g.VRRP.VRID != base.VRRP.VRID {
			c.warn(m.node, "instance %s has VRID %d but the sync group's vipd group uses %d (from %s) for every family: give the keepalived instances one VRID before mixing", m.name, g.VRRP.VRID, base.VRRP.VRID, members[0].name)
		}
		if g.Priority != base.Priority {
			c.warn(m.node, "instance %s has priority %d; the vipd group uses %d from %s", m.name, g.Priority, base.Priority, members[0].name)
		}
		for _, p := range g.VRRP.UnicastPeers {
			if m != members[0] {
				base.VRRP.UnicastPeers = append(base.VRRP.UnicastPeers, p)
			}
		}
		if m != members[0] {
			base.VRRP.UnicastSource = append(base.VRRP.UnicastSource, g.VRRP.UnicastSource...)
		}
	}
	if notify != nil {
		base.Notify = notify
		c.res.from.graft(at+"/notify", notifyFrom)
	} else {
		for p, from := range members[0].from {
			if strings.HasPrefix(p, "notify/") {
				for _, o := range from {
					c.res.from.add(join(at, p), o)
				}
			}
		}
	}
	if len(base.VIPs) == 0 {
		c.warn(n, "sync group %s has no virtual_ipaddress; left out", n.Args0())
		return
	}
	c.res.Config.Groups = append(c.res.Config.Groups, base)
}

func notifySource(syncLevel bool, group, first string) string {
	if syncLevel {
		return "vrrp_sync_group " + group
	}
	return "the first member, " + first
}

// Args0 is the first argument or "".
func (n *Node) Args0() string {
	if len(n.Tokens) > 1 {
		return n.Tokens[1]
	}
	return ""
}

func hasTrack(ts []config.Track, name string) bool {
	for _, t := range ts {
		if t.Check == name {
			return true
		}
	}
	return false
}

// YAML renders the result with a header naming its sources.
func (r *Result) YAML() ([]byte, error) {
	out, err := config.Marshal(r.Config)
	if err != nil {
		return nil, err
	}
	if out, err = annotate(out, r.from); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Converted by `vipd convert keepalived` from:\n")
	for _, s := range r.Sources {
		b.WriteString("#   " + s + "\n")
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "# %d directive(s) were not carried over or changed meaning; see the warnings.\n", len(r.Warnings))
	}
	b.Write(out)
	return []byte(b.String()), nil
}
