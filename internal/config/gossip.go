package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Gossip defaults, documented in docs/gossip.md.
const (
	DefaultGossipBind           = "0.0.0.0:7946"
	DefaultGossipPort           = 7946
	DefaultGossipProfile        = "fast"
	DefaultGossipRejoinInterval = time.Second
	// GossipMaxGroups is how many groups a member may have in gossip mode:
	// gossip.MaxGroups, which TestLimitsMatchModePackages holds it to. Up to
	// 45 travel in memberlist's node meta, more in a group table
	// (docs/gossip.md).
	GossipMaxGroups = 4096
)

// gossipProfiles returns the failure-detection timing profiles (gossip's
// Profile* constants, held to them by TestLimitsMatchModePackages).
func gossipProfiles() []string { return []string{"fast", "lan", "wan"} }

// Gossip holds the mode-wide settings of mode "gossip" (see docs/gossip.md).
type Gossip struct {
	// Bind is host:port for memberlist's UDP and TCP. Default 0.0.0.0:7946.
	Bind string `yaml:"bind,omitempty"`
	// Advertise is the IP (or IP:port) peers reach this node on. Default:
	// the bind IP when it is specific, else memberlist's choice of a private
	// (RFC 1918) address of this host; set it when the node has none.
	Advertise string `yaml:"advertise,omitempty"`
	// Peers to join: "host" or "host:port" (port defaults to the bind port).
	// This node's own address may be listed: it is skipped.
	Peers []string `yaml:"peers,omitempty"`
	// DNS is a name whose A/AAAA records are the peers, e.g. a headless
	// Service selecting the DaemonSet's pods. Resolved again on every re-join.
	DNS string `yaml:"dns,omitempty"`
	// Expect is the number of members the cluster should have, this node
	// included. 0 (default): unknown. Needed by quorum; also makes re-joining
	// contact every peer while fewer are alive.
	Expect int `yaml:"expect,omitempty"`
	// Quorum: own groups only while a majority (expect/2+1) of members is
	// alive, so a partitioned minority releases its VIPs. Default false
	// (with two nodes a majority survives no failure).
	Quorum bool `yaml:"quorum,omitempty"`
	// Profile is the failure-detection timing: fast (default; a crashed
	// node's groups move in well under a second), lan (memberlist's LAN
	// defaults, ~5 s) or wan.
	Profile string `yaml:"profile,omitempty"`
	// RejoinInterval is how often configured peers that are not members are
	// joined again (healing partitions). 100ms..10m, default 1s.
	RejoinInterval time.Duration `yaml:"rejoinInterval,omitempty"`
	// KeyFile holds the gossip encryption keys, base64, one per line: the
	// first encrypts, all decrypt (rotation). 16, 24 or 32 bytes each
	// (AES-128/192/256). Re-read while running. Required unless Insecure.
	KeyFile string `yaml:"keyFile,omitempty"`
	// Insecure must be true to run without KeyFile: then any host that
	// reaches the gossip port can join and take VIPs (docs/security.md).
	// Refused together with KeyFile, which would make it a lie.
	Insecure bool `yaml:"insecure,omitempty"`

	// Keys are KeyFile's keys, filled in by validation.
	Keys [][]byte `yaml:"-"`
}

func (c *Config) applyGossipDefaults() {
	if c.Gossip == nil {
		c.Gossip = &Gossip{}
	}
	g := c.Gossip
	if g.Bind == "" {
		g.Bind = DefaultGossipBind
	}
	if g.Profile == "" {
		g.Profile = DefaultGossipProfile
	}
	if g.RejoinInterval == 0 {
		g.RejoinInterval = DefaultGossipRejoinInterval
	}
}

var dnsNameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$`)

func (c *Config) validateGossip(errs *Errors) {
	g := c.Gossip
	if g == nil { // Parse always sets it; Validate may be called on a hand-built Config
		c.applyGossipDefaults()
		g = c.Gossip
	}
	if n := len(c.Groups); n > GossipMaxGroups {
		errs.add("groups", n, "mode gossip supports at most %d groups", GossipMaxGroups)
	}
	if host, port, err := net.SplitHostPort(g.Bind); err != nil {
		errs.add("gossip.bind", g.Bind, "must be IP:port, e.g. 0.0.0.0:7946")
	} else {
		if _, err := netip.ParseAddr(host); err != nil {
			errs.add("gossip.bind", g.Bind, "host must be an IP address (0.0.0.0 or [::] for all)")
		}
		if !validPort(port) {
			errs.add("gossip.bind", g.Bind, "port must be 1..65535")
		}
	}
	if g.Advertise != "" {
		host, port, err := net.SplitHostPort(g.Advertise)
		if err != nil {
			host, port = g.Advertise, ""
		}
		if a, err := netip.ParseAddr(host); err != nil || a.IsUnspecified() {
			errs.add("gossip.advertise", g.Advertise, "must be a specific IP address, optionally with :port")
		}
		if port != "" && !validPort(port) {
			errs.add("gossip.advertise", g.Advertise, "port must be 1..65535")
		}
	}
	seen := map[string]int{}
	for i, p := range g.Peers {
		key := "gossip.peers[" + strconv.Itoa(i) + "]"
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			host, port = p, ""
		}
		switch _, ipErr := netip.ParseAddr(host); {
		case host == "":
			errs.add(key, p, "must be host or host:port")
		case ipErr != nil && !dnsNameRE.MatchString(host):
			errs.add(key, p, "host must be an IP address or a DNS name (IPv6 with a port needs brackets: [2001:db8::1]:7946)")
		case port != "" && !validPort(port):
			errs.add(key, p, "port must be 1..65535")
		}
		if j, dup := seen[p]; dup {
			errs.add(key, p, "duplicates gossip.peers[%d]", j)
		}
		seen[p] = i
	}
	if g.DNS != "" && !dnsNameRE.MatchString(g.DNS) {
		errs.add("gossip.dns", g.DNS, "must be a DNS name")
	}
	if g.Expect < 0 || g.Expect > 1000 {
		errs.add("gossip.expect", g.Expect, "must be between 0 (unknown) and 1000")
	}
	if g.Quorum && g.Expect < 2 {
		errs.add("gossip.expect", g.Expect, "must be at least 2 when gossip.quorum is true (a majority of expect members is required to own anything)")
	}
	if !slices.Contains(gossipProfiles(), g.Profile) {
		errs.add("gossip.profile", g.Profile, "must be one of %s", strings.Join(gossipProfiles(), ", "))
	}
	if g.RejoinInterval < 100*time.Millisecond || g.RejoinInterval > 10*time.Minute {
		errs.add("gossip.rejoinInterval", g.RejoinInterval, "must be between 100ms and 10m")
	}
	switch {
	case g.KeyFile == "" && !g.Insecure:
		// Secure by default: without a key any host on the segment can
		// join the cluster and claim every group.
		errs.add("gossip.keyFile", nil, "not set, and gossip.insecure is not true: without a key any host that reaches the gossip port can join the cluster and take the VIPs; put `head -c 32 /dev/urandom | base64` in a file on every node and name it here, or set gossip.insecure: true to run unauthenticated (docs/security.md)")
	case g.KeyFile != "" && g.Insecure:
		errs.add("gossip.insecure", g.Insecure, "must not be set together with gossip.keyFile (the cluster is encrypted and authenticated; remove one)")
	}
	if g.KeyFile != "" {
		keys, err := LoadGossipKeys(g.KeyFile)
		if err != nil {
			errs.add("gossip.keyFile", g.KeyFile, "%v", err)
		}
		g.Keys = keys
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// LoadGossipKeys reads a gossip key file (see Gossip.KeyFile). Errors say
// which line breaks which rule; they never contain key material.
func LoadGossipKeys(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	return ParseGossipKeys(data)
}

// ParseGossipKeys parses key file content: base64 keys, one per line (a
// Kubernetes Secret mounted as a file holds one line, maybe without a final
// newline); blank lines and lines starting with # are ignored.
func ParseGossipKeys(data []byte) ([][]byte, error) {
	var keys [][]byte
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			k, err = base64.RawStdEncoding.DecodeString(s)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is not base64 (standard alphabet); generate a key with: head -c 32 /dev/urandom | base64", i+1)
		}
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("line %d decodes to %d bytes; a key must be 16, 24 or 32 bytes (AES-128/192/256)", i+1, len(k))
		}
		for j, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("line %d repeats key %d", i+1, j+1)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("holds no key; it needs one base64 key per line (the first is used to encrypt)")
	}
	return keys, nil
}
