package config

import (
	"strings"
	"testing"
	"time"
)

const vrrpHead = "apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: vrrp\n"

func TestVRRPDefaults(t *testing.T) {
	c, err := Parse([]byte(vrrpHead + `
groups:
- name: web
  vips: [{address: 198.51.100.100}, {address: "2001:db8::100"}]
  vrrp: {vrid: 51}
- name: api
  priority: 150
  vips: [{address: 203.0.113.7}]
  vrrp: {vrid: 51, advertInterval: 100ms, preempt: false, preemptDelay: 5s, unicastPeers: [203.0.113.2, 203.0.113.3], unicastSource: [203.0.113.1]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	w := c.Groups[0].VRRP
	if w.AdvertInterval != time.Second || !*w.Preempt || *w.PreemptDelay != 0 || w.Interface != "eth0" || len(w.Peers) != 0 {
		t.Errorf("web defaults: %+v", w)
	}
	if f := c.Groups[0].Families(); len(f) != 2 || f[0] != 4 || f[1] != 6 {
		t.Errorf("families %v", f)
	}
	a := c.Groups[1].VRRP
	if a.AdvertInterval != 100*time.Millisecond || *a.Preempt || *a.PreemptDelay != 5*time.Second || a.Interface != "eth1" || len(a.Peers) != 2 ||
		len(a.Sources) != 1 || a.Sources[0].String() != "203.0.113.1" {
		t.Errorf("api: %+v", a)
	}
}

func TestVRRPModeWideDefaults(t *testing.T) {
	c, err := Parse([]byte(vrrpHead + `
vrrp: {advertInterval: 200ms, preempt: false, preemptDelay: 2s}
groups:
- name: web
  vips: [{address: 198.51.100.100}]
  vrrp: {vrid: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if v := c.Groups[0].VRRP; v.AdvertInterval != 200*time.Millisecond || *v.Preempt || *v.PreemptDelay != 2*time.Second {
		t.Errorf("group: %+v", v)
	}
}

func TestVRRPValidation(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string // substrings of the error, each naming key, value and rule
	}{
		{"vrid missing", `
groups: [{name: a, vips: [{address: 198.51.100.100}]}]`,
			[]string{"groups[0].vrrp.vrid: is required"}},
		{"vrid out of range", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 256}}]`,
			[]string{"groups[0].vrrp.vrid: 256: must be between 1 and 255"}},
		{"interval not centiseconds", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, advertInterval: 15ms}}]`,
			[]string{"groups[0].vrrp.advertInterval: 15ms: must be between 10ms and 40.95s in steps of 10ms"}},
		{"interval too long", `
vrrp: {advertInterval: 41s}
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1}}]`,
			[]string{"vrrp.advertInterval: 41s: must be between", "groups[0].vrrp.advertInterval: 41s"}},
		{"negative preempt delay", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, preemptDelay: -1s}}]`,
			[]string{"groups[0].vrrp.preemptDelay: -1s: must be between 0 and 1h"}},
		{"advert interface missing", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, interface: eth9}}]`,
			[]string{`groups[0].vrrp.interface: "eth9": no such network interface on this node`}},
		{"duplicate vrid on one interface and family", `
groups:
- {name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 7}}
- {name: b, vips: [{address: 198.51.100.101}], vrrp: {vrid: 7}}`,
			[]string{"groups[1].vrrp.vrid: 7: duplicates groups[0].vrrp.vrid on interface eth0 for IPv4"}},
		{"peer of another family", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastPeers: ["2001:db8::2"]}}]`,
			[]string{`groups[0].vrrp.unicastPeers[0]: "2001:db8::2": is IPv6 but the group has no IPv6 VIP`}},
		{"peer not an address", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastPeers: [node-b]}}]`,
			[]string{`groups[0].vrrp.unicastPeers[0]: "node-b": is not an IPv4 or IPv6 address`}},
		{"peer missing for a family", `
groups: [{name: a, vips: [{address: 198.51.100.100}, {address: "2001:db8::100"}], vrrp: {vrid: 1, unicastPeers: [198.51.100.2]}}]`,
			[]string{"groups[0].vrrp.unicastPeers: has no IPv6 peer but the group has IPv6 VIPs"}},
		{"peer interval bounds", `
groups:
- {name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, advertInterval: 100ms, minPeerAdvertInterval: 200ms, maxPeerAdvertInterval: 50ms}}
- {name: b, vips: [{address: 198.51.100.101}], vrrp: {vrid: 2, minPeerAdvertInterval: 5ms, maxPeerAdvertInterval: 41s}}`,
			[]string{"groups[0].vrrp.minPeerAdvertInterval: 200ms: must be at most the group's advertInterval (100ms)",
				"groups[0].vrrp.maxPeerAdvertInterval: 50ms: must be at least the group's advertInterval (100ms)",
				"groups[1].vrrp.minPeerAdvertInterval: 5ms: must be between 10ms and 40.95s in steps of 10ms",
				"groups[1].vrrp.maxPeerAdvertInterval: 41s: must be between 10ms and 40.95s"}},
		{"multicast peer", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastPeers: [224.0.0.18]}}]`,
			[]string{`groups[0].vrrp.unicastPeers[0]: "224.0.0.18": must be a plain unicast address`}},
		{"unicast source without peers", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastSource: [198.51.100.11]}}]`,
			[]string{`groups[0].vrrp.unicastSource[0]: "198.51.100.11": needs unicastPeers`}},
		{"two unicast sources of one family", `
groups: [{name: a, vips: [{address: "2001:db8::100"}], vrrp: {vrid: 1, unicastPeers: ["2001:db8::12"], unicastSource: ["2001:db8::11", "2001:db8::13"]}}]`,
			[]string{`groups[0].vrrp.unicastSource[1]: "2001:db8::13": is a second IPv6 source (2001:db8::11 is the first): one per family`}},
		{"unicast source of another family", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastPeers: [198.51.100.12], unicastSource: ["2001:db8::11"]}}]`,
			[]string{`groups[0].vrrp.unicastSource[0]: "2001:db8::11": is IPv6 but the group has no IPv6 VIP`}},
		{"unicast source with a zone", `
groups: [{name: a, vips: [{address: "2001:db8::100"}], vrrp: {vrid: 1, unicastPeers: ["2001:db8::12"], unicastSource: ["fe80::1%eth0"]}}]`,
			[]string{`groups[0].vrrp.unicastSource[0]: "fe80::1%eth0": must be a plain unicast address of this node`}},
		{"unicast source is a peer", `
groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, unicastPeers: [198.51.100.12], unicastSource: [198.51.100.12]}}]`,
			[]string{`groups[0].vrrp.unicastSource[0]: "198.51.100.12": is also listed in unicastPeers`}},
		{"every VIP excluded", `
groups: [{name: a, vips: [{address: 198.51.100.100, excluded: true}], vrrp: {vrid: 1}}]`,
			[]string{"groups[0].vips: are all excluded: at least one VIP must be advertised"}},
		{"peer only for an excluded family", `
groups: [{name: a, vips: [{address: 198.51.100.100}, {address: "2001:db8::100", excluded: true}], vrrp: {vrid: 1, unicastPeers: [198.51.100.12, "2001:db8::12"]}}]`,
			[]string{`groups[0].vrrp.unicastPeers[1]: "2001:db8::12": is IPv6 but the group has no IPv6 VIP`}},
		{"lifetime shorter than Master_Down_Interval", `
binding: {lifetime: 3s}
groups:
- {name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, advertInterval: 100ms}}
- {name: b, vips: [{address: 198.51.100.101}], vrrp: {vrid: 2, advertInterval: 1s}}`,
			[]string{"binding.lifetime: 3s: must be at least 6s in mode vrrp: binding.refresh (1s) + 4 × groups[1].vrrp.advertInterval (1s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(vrrpHead + c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate(fakeHost{})
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestVRRPDerivedLifetime: an unset binding.lifetime outlives the slowest
// group's Master_Down_Interval after a crash (issue #11, 7c: with 1s adverts
// and a 3s lifetime the VIP expired ~850ms before keepalived took over).
func TestVRRPDerivedLifetime(t *testing.T) {
	for _, c := range []struct {
		extra, interval string
		want            time.Duration
	}{
		{"", "100ms", 3 * time.Second},                         // 1s + 0.4s + 1s -> 3s (the default)
		{"", "200ms", 3 * time.Second},                         // 2.8s -> 3s
		{"", "1s", 6 * time.Second},                            // 1s + 4s + 1s
		{"", "3s", 14 * time.Second},                           // 1s + 12s + 1s
		{"binding: {refresh: 500ms}\n", "1s", 6 * time.Second}, // 5.5s -> 6s
		{"binding: {lifetime: 10s}\n", "1s", 10 * time.Second}, // explicit and long enough
	} {
		cfg, err := Parse([]byte(vrrpHead + c.extra + "groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1, advertInterval: " + c.interval + "}}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(fakeHost{}); err != nil {
			t.Errorf("%q %s: %v", c.extra, c.interval, err)
		}
		if cfg.Binding.Lifetime != c.want {
			t.Errorf("%q advertInterval %s: lifetime %s, want %s", c.extra, c.interval, cfg.Binding.Lifetime, c.want)
		}
	}
	// Other modes keep the plain default.
	cfg, err := Parse([]byte("apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: static\ngroups: [{name: a, vips: [{address: 198.51.100.100}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Binding.Lifetime != DefaultLifetime {
		t.Errorf("static: lifetime %s", cfg.Binding.Lifetime)
	}
}

// TestVRRPExcluded: an excluded IPv6 VIP needs no IPv6 peer and does not
// take the group's VRID for IPv6; it is only for mode vrrp.
func TestVRRPExcluded(t *testing.T) {
	c, err := Parse([]byte(vrrpHead + `
groups:
- {name: a, vips: [{address: 198.51.100.100}, {address: "2001:db8::100", excluded: true}], vrrp: {vrid: 7, unicastPeers: [198.51.100.12]}}
- {name: b, vips: [{address: "2001:db8::101"}], vrrp: {vrid: 7}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if f := c.Groups[0].RouterFamilies(); len(f) != 1 || f[0] != 4 {
		t.Errorf("router families %v", f)
	}
	c, err = Parse([]byte("apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: static\ngroups: [{name: a, vips: [{address: 198.51.100.100, excluded: true}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err == nil || !strings.Contains(err.Error(), `groups[0].vips[0].excluded: is set but mode is`) {
		t.Errorf("static with excluded: %v", err)
	}
}

func TestVRRPSectionOnlyInVRRPMode(t *testing.T) {
	cfg, err := Parse([]byte("apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: static\n" +
		"groups: [{name: a, vips: [{address: 198.51.100.100}], vrrp: {vrid: 1}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(fakeHost{}); err == nil || !strings.Contains(err.Error(), `groups[0].vrrp: is set but mode is "static"`) {
		t.Fatalf("err = %v", err)
	}
}
