package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost has eth0 (198.51.100.0/24, 2001:db8::/64) and eth1 (203.0.113.0/24).
type fakeHost struct{}

func (fakeHost) InterfaceExists(name string) bool { return name == "eth0" || name == "eth1" }

func (fakeHost) InterfaceFor(ip netip.Addr) (string, bool) {
	switch {
	case netip.MustParsePrefix("198.51.100.0/24").Contains(ip), netip.MustParsePrefix("2001:db8::/64").Contains(ip):
		return "eth0", true
	case netip.MustParsePrefix("203.0.113.0/24").Contains(ip):
		return "eth1", true
	}
	return "", false
}

const base = `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: static
groups:
  - name: web
    vips:
      - address: 198.51.100.100
`

func TestDefaultsAndInterfaceDetection(t *testing.T) {
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != DefaultHTTPListen || c.Binding.Lifetime != DefaultLifetime || c.Binding.Refresh != DefaultRefresh ||
		c.Announce.Count != DefaultAnnounceCount || c.Announce.Interval != DefaultAnnounceInterval ||
		*c.Announce.Refresh != DefaultAnnounceRefresh || c.Groups[0].Priority != DefaultPriority {
		t.Fatalf("defaults not applied: %+v", c)
	}
	v := c.Groups[0].VIPs[0]
	if v.Interface != "eth0" || v.Addr != netip.MustParseAddr("198.51.100.100") {
		t.Fatalf("vip = %+v, want 198.51.100.100 on eth0 (by subnet)", v)
	}
}

func TestNodeDefaultsToHostname(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(base, "node: n1\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.Hostname()
	if c.Node != h {
		t.Fatalf("node = %q, want hostname %q", c.Node, h)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", base + "colour: blue\n", `line 9: unknown key "colour"`},
		{"unknown nested key", strings.Replace(base, "      - address: 198.51.100.100\n", "      - address: 198.51.100.100\n        iface: eth0\n", 1), `line 9: unknown key "iface"`},
		{"bad duration", base + "binding:\n  lifetime: soon\n", "line 10: `soon` is not a duration (write e.g. 3s or 200ms)"},
		{"wrong type", base + "announce:\n  count: many\n", "line 10: `many` has the wrong type: want a whole number"},
		{"list where a mapping belongs", base + "http: [a]\n", "line 9: cannot unmarshal !!seq into config.HTTP"},
		{"empty", "", "config is empty"},
		{"two documents", base + "---\n" + base, "only one YAML document is allowed"},
		{"not yaml", "groups: [", "did not find expected node content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"api version", repl("apiVersion: vipd.io/v1alpha1", "apiVersion: v2"), `apiVersion: "v2": must be "vipd.io/v1alpha1"`},
		{"kind", repl("kind: Config", "kind: Pod"), `kind: "Pod": must be "Config"`},
		{"mode missing", repl("mode: static\n", ""), `mode: is required: one of static, vrrp, lease, gossip`},
		{"mode unknown", repl("mode: static", "mode: carp"), `mode: "carp": must be one of static, vrrp, lease, gossip`},
		{"listen", add("http:\n  listen: 9610\n"), `http.listen: "9610": must be host:port`},
		{"lifetime short", add("binding:\n  lifetime: 1s\n  refresh: 200ms\n"), `binding.lifetime: 1s: must be between 2s and 1h`},
		{"lifetime fraction", add("binding:\n  lifetime: 2500ms\n"), `binding.lifetime: 2.5s: must be whole seconds (the kernel counts address lifetimes in seconds)`},
		{"refresh too slow", add("binding:\n  lifetime: 4s\n  refresh: 3s\n"), `binding.refresh: 3s: must be at most half of binding.lifetime (4s) so one missed refresh does not drop the VIP`},
		{"refresh too fast", add("binding:\n  refresh: 10ms\n"), `binding.refresh: 10ms: must be at least 100ms`},
		{"announce count", add("announce:\n  count: 101\n"), `announce.count: 101: must be between 1 and 100`},
		{"announce interval", add("announce:\n  interval: 1ms\n"), `announce.interval: 1ms: must be between 10ms and 10s`},
		{"announce refresh", add("announce:\n  refresh: 500ms\n"), `announce.refresh: 500ms: must be 0 (off) or between 1s and 1h`},
		{"no groups", func(string) string {
			return "apiVersion: vipd.io/v1alpha1\nkind: Config\nmode: static\n"
		}, `groups: at least one group with at least one VIP is required`},
		{"group name", repl("name: web", "name: Web_1"), `groups[0].name: "Web_1": must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric`},
		{"duplicate group", add("  - name: web\n    vips:\n      - address: 198.51.100.101\n"), `groups[1].name: "web": duplicates groups[0].name`},
		{"priority", repl("    vips:", "    priority: 255\n    vips:"), `groups[0].priority: 255: must be between 1 and 254`},
		{"no vips", repl("    vips:\n      - address: 198.51.100.100\n", "    vips: []\n"), `groups[0].vips: at least one VIP is required`},
		{"not an address", repl("198.51.100.100", "198.51.100.300"), `groups[0].vips[0].address: "198.51.100.300": is not an IPv4 or IPv6 address`},
		{"bad cidr", repl("198.51.100.100", "198.51.100.100/33"), `groups[0].vips[0].address: "198.51.100.100/33": is not a valid CIDR (IP/prefix-length, prefix within the address family)`},
		{"missing address", repl("address: 198.51.100.100", "interface: eth0"), `groups[0].vips[0].address: is required`},
		{"loopback", repl("198.51.100.100", "127.0.0.5"), `groups[0].vips[0].address: "127.0.0.5": must be a unicast address that is not loopback, link-local or unspecified`},
		{"link-local v6", repl("198.51.100.100", "fe80::1"), `groups[0].vips[0].address: "fe80::1": must be a unicast address that is not loopback, link-local or unspecified`},
		{"multicast", repl("198.51.100.100", "224.0.0.18"), `groups[0].vips[0].address: "224.0.0.18": must be a unicast address that is not loopback, link-local or unspecified`},
		{"zone", repl("198.51.100.100", "2001:db8::1%eth0"), `groups[0].vips[0].address: "2001:db8::1%eth0": must not carry a zone`},
		{"mapped", repl("198.51.100.100", "::ffff:198.51.100.100"), `groups[0].vips[0].address: "::ffff:198.51.100.100": must be written as plain IPv4, not IPv4-mapped IPv6`},
		{"duplicate vip", add("  - name: api\n    vips:\n      - address: 198.51.100.100/24\n"), `groups[1].vips[0].address: "198.51.100.100/24": duplicates groups[0].vips[0].address`},
		{"no such interface", repl("      - address: 198.51.100.100\n", "      - address: 198.51.100.100\n        interface: eth9\n"), `groups[0].vips[0].interface: "eth9": no such network interface on this node`},
		{"no interface by subnet", repl("198.51.100.100", "2001:db8:1::5"), `groups[0].vips[0].interface: not set, and no interface has a subnet containing 2001:db8:1::5: set it`},
		{"section of another mode", add("vrrp: {}\n"), `vrrp: is set but mode is "static"`},
		{"group section of another mode", repl("    vips:", "    lease: {}\n    vips:"), `groups[0].lease: is set but mode is "static"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.edit(base)))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = c.Validate(fakeHost{})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("err is %T, want Errors", err)
			}
			for _, e := range errs {
				if e.Error() == tc.want {
					return
				}
			}
			t.Fatalf("errors:\n%v\nwant exactly the line %q", err, tc.want)
		})
	}
}

func TestValidationReportsEveryError(t *testing.T) {
	c, err := Parse([]byte("apiVersion: v0\nkind: Config\nmode: x\ngroups:\n  - name: A\n    vips:\n      - address: nope\n"))
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := c.Validate(fakeHost{}).(Errors)
	if len(errs) != 4 {
		t.Fatalf("got %d errors, want 4 (apiVersion, mode, name, address):\n%v", len(errs), errs)
	}
}

func repl(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("test edit does not apply: " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}

func add(extra string) func(string) string {
	return func(s string) string { return s + extra }
}

// TestExamples checks every example config parses and validates (on a host
// with the interfaces they name), so the docs never show a broken config.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			// A gossip key file names a path on the node; a key of the
			// right form stands in for it here.
			if c.Gossip != nil && c.Gossip.KeyFile != "" {
				c.Gossip.KeyFile = filepath.Join(t.TempDir(), "gossip.key")
				if err := os.WriteFile(c.Gossip.KeyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Validate(fakeHost{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("groups: [{name: a, vips: [{address: '2001:db8::1/64'}]}]"))
	f.Add([]byte("binding: {lifetime: 3s, refresh: 1s}\nannounce: {refresh: 0s}"))
	f.Add([]byte("mode: vrrp\nvrrp: {}\ngroups: [{name: a, vrrp: {}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		_ = c.Validate(fakeHost{}) // must not panic, whatever it says
	})
}
