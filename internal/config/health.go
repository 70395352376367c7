package config

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Health-check defaults, documented with their reasons in docs/health.md.
const (
	// DefaultCheckInterval: keepalived's vrrp_script default; sub-second
	// checks are allowed down to MinCheckInterval.
	DefaultCheckInterval = time.Second
	// DefaultCheckRise and DefaultCheckFall: one lost probe (a GC pause, a
	// dropped SYN) never moves a VIP; two in a row do.
	DefaultCheckRise = 2
	DefaultCheckFall = 2
	// MinCheckInterval keeps a check from becoming the node's busiest task.
	MinCheckInterval = 50 * time.Millisecond
	// DefaultNotifyTimeout: a hook that runs longer is killed (with its
	// process group); hooks never delay a failover either way.
	DefaultNotifyTimeout = 30 * time.Second
	// DefaultMinMoveInterval: after health made this node give a group up
	// (or weigh less), its recovery may pull the group back only this long
	// after; a check that flaps every few seconds moves the VIP at most
	// once per interval. Failures are never delayed.
	DefaultMinMoveInterval = 10 * time.Second
	// Policies for a group when none of its nodes is healthy.
	PolicyKeep    = "keep"
	PolicyRelease = "release"
)

// Check is one health check (top-level `checks:`), referenced by name from
// groups' `track:`.
type Check struct {
	// Name is how groups refer to it: a DNS label.
	Name string `yaml:"name,omitempty"`
	// Interval between attempts. Default 1s, at least 50ms.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Timeout of one attempt. Default: the interval; at most the interval.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Rise: passes in a row that make it passing. Default 2.
	Rise int `yaml:"rise,omitempty"`
	// Fall: failures in a row that make it failing. Default 2.
	Fall int `yaml:"fall,omitempty"`

	// Exactly one kind.
	HTTP      *HTTPCheck      `yaml:"http,omitempty"`
	TCP       *TCPCheck       `yaml:"tcp,omitempty"`
	Exec      *ExecCheck      `yaml:"exec,omitempty"`
	Endpoints *EndpointsCheck `yaml:"endpoints,omitempty"`
	Interface *InterfaceCheck `yaml:"interface,omitempty"`
	File      *FileCheck      `yaml:"file,omitempty"`
}

// HTTPCheck: GET URL; passes on an expected status.
type HTTPCheck struct {
	URL                string `yaml:"url,omitempty"`
	CAFile             string `yaml:"caFile,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify,omitempty"`
	CertFile           string `yaml:"certFile,omitempty"`
	KeyFile            string `yaml:"keyFile,omitempty"`
	BearerTokenFile    string `yaml:"bearerTokenFile,omitempty"`
	Host               string `yaml:"host,omitempty"`
	// ExpectStatus is a status ("200") or range ("200-399", the default).
	ExpectStatus string `yaml:"expectStatus,omitempty"`
}

// TCPCheck: a connection to Address (host:port) opens.
type TCPCheck struct {
	Address string `yaml:"address,omitempty"`
}

// ExecCheck: Command (argv, no shell) exits 0.
type ExecCheck struct {
	Command []string `yaml:"command,omitempty"`
	// User runs the command as this user (keepalived's script user).
	User string `yaml:"user,omitempty"`
}

// EndpointsCheck: Service has a ready endpoint on this node.
type EndpointsCheck struct {
	Namespace string `yaml:"namespace,omitempty"`
	Service   string `yaml:"service,omitempty"`
	// Kubeconfig path; empty: lease.kubeconfig in mode lease, else in-cluster.
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	// Server overrides the API server URL (empty: lease.server in mode lease).
	Server string `yaml:"server,omitempty"`
}

// InterfaceCheck: the named link is up with carrier.
type InterfaceCheck struct {
	Name string `yaml:"name,omitempty"`
}

// FileCheck fails while Path exists (a drain switch).
type FileCheck struct {
	Path string `yaml:"path,omitempty"`
}

// Track is one check's effect on a group: a gate (Weight 0) or a weight.
type Track struct {
	Check string `yaml:"check,omitempty"`
	// Weight 0 (default) makes the check a gate: failing, the node is not
	// eligible. N > 0 adds N while passing; N < 0 subtracts |N| while
	// failing (keepalived). -253..253.
	Weight int `yaml:"weight,omitempty"`
}

// Notify runs commands on a group's transitions (docs/hooks.md).
type Notify struct {
	// Command runs on every transition with keepalived's arguments:
	// GROUP name STATE priority (STATE: MASTER, BACKUP, FAULT, STOP).
	Command []string `yaml:"command,omitempty"`
	// Master, Backup, Fault and Stop run as written on entering that
	// state (keepalived's notify_master etc.).
	Master []string `yaml:"master,omitempty"`
	Backup []string `yaml:"backup,omitempty"`
	Fault  []string `yaml:"fault,omitempty"`
	Stop   []string `yaml:"stop,omitempty"`
	// Timeout kills a hook's process group. Default 30s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// HealthPolicy is node-wide anti-flap (top-level `health:`).
type HealthPolicy struct {
	// StartupDelay: for this long after start, the node takes no group
	// from a healthy owner (keepalived's vrrp_startup_delay). Default 0.
	StartupDelay time.Duration `yaml:"startupDelay,omitempty"`
	// MinMoveInterval: minimum time between two health-caused moves of one
	// group toward this node. Default 10s; 0 turns it off.
	MinMoveInterval *time.Duration `yaml:"minMoveInterval,omitempty"`
}

// CheckByName returns the named check.
func (c *Config) CheckByName(name string) (*Check, bool) {
	for i := range c.Checks {
		if c.Checks[i].Name == name {
			return &c.Checks[i], true
		}
	}
	return nil, false
}

func (c *Config) applyHealthDefaults() {
	for i := range c.Checks {
		k := &c.Checks[i]
		if k.Interval == 0 {
			k.Interval = DefaultCheckInterval
		}
		if k.Timeout == 0 {
			k.Timeout = k.Interval
		}
		if k.Rise == 0 {
			k.Rise = DefaultCheckRise
		}
		if k.Fall == 0 {
			k.Fall = DefaultCheckFall
		}
		if k.HTTP != nil && k.HTTP.ExpectStatus == "" {
			k.HTTP.ExpectStatus = "200-399"
		}
		if k.Endpoints != nil && c.Lease != nil {
			if k.Endpoints.Kubeconfig == "" {
				k.Endpoints.Kubeconfig = c.Lease.Kubeconfig
			}
			if k.Endpoints.Server == "" {
				k.Endpoints.Server = c.Lease.Server
			}
		}
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.WhenNoneHealthy == "" {
			g.WhenNoneHealthy = PolicyKeep
		}
		if g.Notify != nil && g.Notify.Timeout == 0 {
			g.Notify.Timeout = DefaultNotifyTimeout
		}
	}
	if c.Health.MinMoveInterval == nil {
		d := DefaultMinMoveInterval
		c.Health.MinMoveInterval = &d
	}
}

var expectStatusRE = regexp.MustCompile(`^([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?$`)

// ParseExpectStatus reads "200" or "200-399" (validated).
func ParseExpectStatus(s string) (lo, hi int, ok bool) {
	m := expectStatusRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	lo, _ = strconv.Atoi(m[1])
	hi = lo
	if m[2] != "" {
		hi, _ = strconv.Atoi(m[2])
	}
	return lo, hi, lo <= hi
}

func (c *Config) validateHealth(errs *Errors) {
	names := map[string]string{}
	for i := range c.Checks {
		k := &c.Checks[i]
		key := "checks[" + strconv.Itoa(i) + "]"
		if !groupNameRE.MatchString(k.Name) {
			errs.add(key+".name", k.Name, "must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric")
		} else if prev, dup := names[k.Name]; dup {
			errs.add(key+".name", k.Name, "duplicates %s.name", prev)
		} else {
			names[k.Name] = key
		}
		if k.Interval < MinCheckInterval || k.Interval > time.Hour {
			errs.add(key+".interval", k.Interval, "must be between %s and 1h", MinCheckInterval)
		}
		if k.Timeout < 10*time.Millisecond || k.Timeout > k.Interval {
			errs.add(key+".timeout", k.Timeout, "must be between 10ms and the interval (%s), so attempts never overlap", k.Interval)
		}
		if k.Rise < 1 || k.Rise > 100 {
			errs.add(key+".rise", k.Rise, "must be between 1 and 100")
		}
		if k.Fall < 1 || k.Fall > 100 {
			errs.add(key+".fall", k.Fall, "must be between 1 and 100")
		}
		kinds := 0
		for _, set := range []bool{k.HTTP != nil, k.TCP != nil, k.Exec != nil, k.Endpoints != nil, k.Interface != nil, k.File != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			errs.add(key, nil, "must set exactly one of http, tcp, exec, endpoints, interface, file (has %d)", kinds)
			continue
		}
		switch {
		case k.HTTP != nil:
			validateHTTPCheck(key+".http", k.HTTP, errs)
		case k.TCP != nil:
			if _, port, err := net.SplitHostPort(k.TCP.Address); err != nil || port == "" {
				errs.add(key+".tcp.address", k.TCP.Address, "must be host:port")
			} else if !validPort(port) {
				errs.add(key+".tcp.address", k.TCP.Address, "port must be 1..65535")
			}
		case k.Exec != nil:
			if len(k.Exec.Command) == 0 || k.Exec.Command[0] == "" {
				errs.add(key+".exec.command", nil, "must name a program (argv list; no shell unless you name one)")
			}
		case k.Endpoints != nil:
			if !groupNameRE.MatchString(k.Endpoints.Service) {
				errs.add(key+".endpoints.service", k.Endpoints.Service, "must be a Service name (a DNS label)")
			}
			if !groupNameRE.MatchString(k.Endpoints.Namespace) {
				errs.add(key+".endpoints.namespace", k.Endpoints.Namespace, "must be a namespace name (a DNS label)")
			}
			if s := k.Endpoints.Server; s != "" {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					errs.add(key+".endpoints.server", s, "must be an http(s) URL")
				}
			}
		case k.Interface != nil:
			if !validLinkName(k.Interface.Name) {
				errs.add(key+".interface.name", k.Interface.Name, "must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')")
			}
		case k.File != nil:
			if !strings.HasPrefix(k.File.Path, "/") {
				errs.add(key+".file.path", k.File.Path, "must be an absolute path")
			}
		}
	}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		gk := "groups[" + strconv.Itoa(gi) + "]"
		seen := map[string]bool{}
		for ti, t := range g.Track {
			tk := gk + ".track[" + strconv.Itoa(ti) + "]"
			if _, ok := names[t.Check]; !ok {
				errs.add(tk+".check", t.Check, "names no check in checks[]")
			} else if seen[t.Check] {
				errs.add(tk+".check", t.Check, "is tracked twice by this group")
			}
			seen[t.Check] = true
			if t.Weight < -253 || t.Weight > 253 {
				errs.add(tk+".weight", t.Weight, "must be between -253 and 253 (0: the check gates)")
			}
		}
		if g.WhenNoneHealthy != PolicyKeep && g.WhenNoneHealthy != PolicyRelease {
			errs.add(gk+".whenNoneHealthy", g.WhenNoneHealthy, "must be %q or %q", PolicyKeep, PolicyRelease)
		}
		if n := g.Notify; n != nil {
			if len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) == 0 {
				errs.add(gk+".notify", nil, "names no command: set command, master, backup, fault or stop")
			}
			for _, cmd := range []struct {
				k string
				v []string
			}{{"command", n.Command}, {"master", n.Master}, {"backup", n.Backup}, {"fault", n.Fault}, {"stop", n.Stop}} {
				if len(cmd.v) > 0 && cmd.v[0] == "" {
					errs.add(gk+".notify."+cmd.k, nil, "must start with a program")
				}
			}
			if n.Timeout < 100*time.Millisecond || n.Timeout > time.Hour {
				errs.add(gk+".notify.timeout", n.Timeout, "must be between 100ms and 1h")
			}
		}
	}
	if d := c.Health.StartupDelay; d < 0 || d > time.Hour {
		errs.add("health.startupDelay", d, "must be between 0 and 1h")
	}
	if d := *c.Health.MinMoveInterval; d < 0 || d > time.Hour {
		errs.add("health.minMoveInterval", d, "must be between 0 (off) and 1h")
	}
}

func validateHTTPCheck(key string, h *HTTPCheck, errs *Errors) {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.add(key+".url", h.URL, "must be an http:// or https:// URL")
	} else if p := u.Port(); p != "" && !validPort(p) {
		errs.add(key+".url", h.URL, "port must be 1..65535")
	} else if u.Scheme == "http" && (h.CAFile != "" || h.CertFile != "" || h.InsecureSkipVerify) {
		errs.add(key+".url", h.URL, "is plain http: caFile, certFile and insecureSkipVerify need https")
	}
	if h.InsecureSkipVerify && h.CAFile != "" {
		errs.add(key+".insecureSkipVerify", true, "contradicts caFile: set one")
	}
	switch {
	case h.CertFile != "" && h.KeyFile == "":
		errs.add(key+".keyFile", nil, "is required with certFile (the client certificate's key)")
	case h.KeyFile != "" && h.CertFile == "":
		errs.add(key+".certFile", nil, "is required with keyFile (the client certificate)")
	}
	if _, _, ok := ParseExpectStatus(h.ExpectStatus); !ok {
		errs.add(key+".expectStatus", h.ExpectStatus, "must be a status (200) or a range (200-399) of 100-599")
	}
}

// validLinkName is the kernel's rule for a link name (dev_valid_name): a
// name it refuses can never exist, so a check on it would fail forever.
// "eth0:1" is an address label, not a link.
func validLinkName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r == '/' || r == ':' || unicode.IsSpace(r)
	})
}
