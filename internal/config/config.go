// Package config is vipd's one typed, versioned configuration schema: strict
// YAML decoding (unknown keys are errors with their line), documented
// defaults, and validation that names the key, the value and the rule before
// anything on the host is touched.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIVersion is the only schema version this build reads.
const APIVersion = "vipd.io/v1alpha1"

// Kind is the only kind of document vipd reads.
const Kind = "Config"

// Election modes.
const (
	ModeStatic = "static"
	ModeVRRP   = "vrrp"
	ModeLease  = "lease"
	ModeGossip = "gossip"
)

// Defaults, documented in docs/config.md.
const (
	DefaultHTTPListen       = "127.0.0.1:9610"
	DefaultLifetime         = 3 * time.Second
	DefaultRefresh          = 1 * time.Second
	DefaultAnnounceCount    = 5
	DefaultAnnounceInterval = 200 * time.Millisecond
	DefaultAnnounceRefresh  = 10 * time.Second
	DefaultPriority         = 100
)

// Config is the whole file.
type Config struct {
	APIVersion string `yaml:"apiVersion,omitempty"`
	Kind       string `yaml:"kind,omitempty"`
	// Node names this node in elections, Leases and status. Default: hostname.
	Node string `yaml:"node,omitempty"`
	// Mode is the election: static, vrrp, lease or gossip.
	Mode     string   `yaml:"mode,omitempty"`
	HTTP     HTTP     `yaml:"http,omitempty"`
	Binding  Binding  `yaml:"binding,omitempty"`
	Announce Announce `yaml:"announce,omitempty"`
	Groups   []Group  `yaml:"groups,omitempty"`
	// Checks are the health checks groups track (docs/health.md).
	Checks []Check `yaml:"checks,omitempty"`
	// Health is the node-wide anti-flap policy.
	Health HealthPolicy `yaml:"health,omitempty"`
	// Verify is owner verification (docs/verify.md).
	Verify Verify `yaml:"verify,omitempty"`

	// Mode-wide settings; each is allowed only with its mode.
	VRRP   *VRRP   `yaml:"vrrp,omitempty"`
	Lease  *Lease  `yaml:"lease,omitempty"`
	Gossip *Gossip `yaml:"gossip,omitempty"`
}

// HTTP is the status/health endpoint.
type HTTP struct {
	// Listen is host:port for /healthz, /readyz, /status. Default 127.0.0.1:9610.
	Listen string `yaml:"listen,omitempty"`
}

// Binding controls how VIPs are held on the interface.
type Binding struct {
	// Lifetime is the kernel valid_lft given to each VIP: the dead-man's
	// switch. If vipd stops refreshing (SIGKILL, OOM, hang) the kernel removes
	// the VIP after this long. Whole seconds, 2s..1h. Default 3s; in mode
	// vrrp at least VRRPMinLifetime of every group (derived when unset).
	Lifetime time.Duration `yaml:"lifetime,omitempty"`
	// Refresh is how often the owner renews the lifetime. Must leave at least
	// two refreshes per lifetime. Default 1s.
	Refresh time.Duration `yaml:"refresh,omitempty"`
}

// Announce controls gratuitous ARP / unsolicited NA.
type Announce struct {
	// Count is how many announcements are sent on taking ownership (the first
	// immediately). 1..100, default 5.
	Count int `yaml:"count,omitempty"`
	// Interval is the spacing of that burst. 10ms..10s, default 200ms.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Refresh re-announces periodically while owning so switch FDBs and ARP
	// caches never age out. 0 disables; otherwise 1s..1h. Default 10s.
	Refresh *time.Duration `yaml:"refresh,omitempty"`
}

// Group is a set of VIPs that always move together and are owned by one node.
type Group struct {
	// Name identifies the group (Lease name suffix, metrics label): a DNS label.
	Name string `yaml:"name,omitempty"`
	VIPs []VIP  `yaml:"vips,omitempty"`
	// Priority of this node for this group, 1..254; higher wins. Default 100.
	Priority int `yaml:"priority,omitempty"`

	// Track lists the checks that gate or weigh this node's candidacy.
	Track []Track `yaml:"track,omitempty"`
	// WhenNoneHealthy: "keep" (default: an owner whose gate fails keeps
	// the group until a healthy node takes it) or "release".
	WhenNoneHealthy string `yaml:"whenNoneHealthy,omitempty"`
	// Notify runs hooks on this group's transitions.
	Notify *Notify `yaml:"notify,omitempty"`

	VRRP  *GroupVRRP  `yaml:"vrrp,omitempty"`
	Lease *GroupLease `yaml:"lease,omitempty"`
}

// VIP is one virtual address.
type VIP struct {
	// Address is an IPv4 or IPv6 address, optionally with a prefix length
	// (accepted for keepalived compatibility; the VIP is always bound as a
	// host address, /32 or /128, so it adds no route and is never a source).
	Address string `yaml:"address,omitempty"`
	// Interface to bind on. Default: the interface whose subnet holds Address.
	Interface string `yaml:"interface,omitempty"`
	// Excluded (mode vrrp only; keepalived virtual_ipaddress_excluded): the
	// VIP moves with its group but is not in the group's adverts, and a
	// family whose VIPs are all excluded gets no virtual router of its own.
	Excluded bool `yaml:"excluded,omitempty"`

	// Addr is Address parsed, filled in by validation.
	Addr netip.Addr `yaml:"-"`
}

// Load reads, decodes, defaults and validates the file at path against host.
func Load(path string, host Host) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(host); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly (unknown keys are errors naming key and line)
// and applies defaults. It does not validate.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := &Config{}
	err := dec.Decode(c)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("config is empty")
	}
	var typeErr *yaml.TypeError
	if err != nil && !errors.As(err, &typeErr) {
		return nil, fmt.Errorf("decoding: %s", friendlyYAMLError(err.Error()))
	}
	// Type errors (unknown keys, a word where a number belongs) and numbers
	// that an integer key would silently truncate, in file order.
	var msgs []string
	if typeErr != nil {
		for _, e := range typeErr.Errors {
			if !floatIntoIntRE.MatchString(e) {
				msgs = append(msgs, friendlyYAMLError(e))
			}
		}
	}
	msgs = append(msgs, integerErrors(data)...)
	if len(msgs) > 0 {
		sortByLine(msgs)
		return nil, fmt.Errorf("decoding: %s", strings.Join(msgs, "\n  "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding: only one YAML document is allowed")
	}
	c.applyDefaults()
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			c.Node = h
		}
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.Binding.Refresh == 0 {
		c.Binding.Refresh = DefaultRefresh
	}
	if c.Announce.Count == 0 {
		c.Announce.Count = DefaultAnnounceCount
	}
	if c.Announce.Interval == 0 {
		c.Announce.Interval = DefaultAnnounceInterval
	}
	if c.Announce.Refresh == nil {
		d := DefaultAnnounceRefresh
		c.Announce.Refresh = &d
	}
	for i := range c.Groups {
		if c.Groups[i].Priority == 0 {
			c.Groups[i].Priority = DefaultPriority
		}
	}
	c.applyModeDefaults()
	c.applyVerifyDefaults()
	// After the mode's: an endpoints check inherits the Lease's API access.
	c.applyHealthDefaults()
	if c.Binding.Lifetime == 0 {
		// After the mode's defaults: in mode vrrp the lifetime must outlive
		// the groups' Master_Down_Interval (vrrp.go).
		c.Binding.Lifetime = max(DefaultLifetime, c.vrrpMinLifetime())
	}
}

var (
	unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type config\.\w+`)
	badDurationRE  = regexp.MustCompile("cannot unmarshal !!\\w+ `([^`]*)` into time\\.Duration")
	badTypeRE      = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (?:\\*?config\\.\\w+|\\[\\]config\\.\\w+|(\\[\\]string|\\w+))")
)

// friendlyYAMLError rewrites one of the YAML library's Go-flavoured messages
// into the words of the config file, keeping the line number.
func friendlyYAMLError(s string) string {
	s = strings.TrimPrefix(s, "yaml: ")
	s = unknownFieldRE.ReplaceAllString(s, `unknown key "$1"`)
	s = badDurationRE.ReplaceAllString(s, "`$1` is not a duration (write e.g. 3s or 200ms)")
	s = badTypeRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := badTypeRE.FindStringSubmatch(m)
		want := sub[3]
		switch want {
		case "":
			want = "a mapping or list as documented"
		case "int":
			want = "a whole number"
		case "bool":
			want = "true or false"
		case "[]string":
			// An argv (exec check, notify) or a list of peers, written as
			// one string: keepalived's `script "/path/check.sh"` habit.
			want = "a list (write [a, b], or one '- a' per line)"
		}
		return fmt.Sprintf("`%s` has the wrong type: want %s", sub[2], want)
	})
	return s
}

// GroupNames lists the groups in config order.
func (c *Config) GroupNames() []string {
	names := make([]string, len(c.Groups))
	for i, g := range c.Groups {
		names[i] = g.Name
	}
	return names
}

// Error is one validation failure: the key (a path like groups[0].vips[1].address),
// the offending value, and the rule it breaks.
type Error struct {
	Key   string
	Value any
	Rule  string
}

func (e Error) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Key, e.Rule)
	}
	return fmt.Sprintf("%s: %s: %s", e.Key, formatValue(e.Value), e.Rule)
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Errors is every validation failure found, in config order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return "invalid config:\n  " + strings.Join(lines, "\n  ")
}

func (es *Errors) add(key string, value any, rule string, args ...any) {
	*es = append(*es, Error{Key: key, Value: value, Rule: fmt.Sprintf(rule, args...)})
}
