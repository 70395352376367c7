package modes

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/vrrp"
)

type eth0Host struct{}

func (eth0Host) InterfaceExists(n string) bool          { return n == "eth0" }
func (eth0Host) InterfaceFor(netip.Addr) (string, bool) { return "eth0", true }

func TestSpecsFromConfig(t *testing.T) {
	specs := vrrpSpecsOf(t, `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: vrrp
groups:
- name: web
  priority: 120
  vips: [{address: 198.51.100.100}, {address: "2001:db8::100"}]
  vrrp: {vrid: 51, advertInterval: 200ms, preempt: false, preemptDelay: 3s, unicastPeers: [198.51.100.12, "2001:db8::12"],
         minPeerAdvertInterval: 100ms, maxPeerAdvertInterval: 1s}
- name: api
  vips: [{address: 198.51.100.101}]
  vrrp: {vrid: 52}
`)
	s := specs[0]
	if s.Name != "web" || s.VRID != 51 || s.Interface != "eth0" || s.Interval != 200*time.Millisecond ||
		s.Preempt || s.PreemptDelay != 3*time.Second || len(s.VIPs) != 2 || len(s.Peers) != 2 {
		t.Fatalf("spec %+v", s)
	}
	if s.MinPeerInterval != 100*time.Millisecond || s.MaxPeerInterval != time.Second {
		t.Fatalf("peer intervals %s %s", s.MinPeerInterval, s.MaxPeerInterval)
	}
	if a := specs[1]; a.MinPeerInterval != 0 || a.MaxPeerInterval != 0 || a.Interval != time.Second {
		t.Fatalf("defaults: %+v", a)
	}
}

// TestSpecsExcluded: an excluded VIP (keepalived virtual_ipaddress_excluded)
// gets no router and is not advertised; the unicast source is carried over.
func TestSpecsExcluded(t *testing.T) {
	specs := vrrpSpecsOf(t, `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: vrrp
groups:
- name: web
  vips: [{address: 198.51.100.100}, {address: "2001:db8::100", excluded: true}]
  vrrp: {vrid: 51, unicastPeers: [198.51.100.12], unicastSource: [198.51.100.11]}
`)
	s := specs[0]
	if len(s.VIPs) != 1 || s.VIPs[0] != netip.MustParseAddr("198.51.100.100") ||
		len(s.Sources) != 1 || s.Sources[0] != netip.MustParseAddr("198.51.100.11") {
		t.Fatalf("spec %+v", s)
	}
}

// vrrpSpecsOf parses, validates and translates a vrrp-mode config.
func vrrpSpecsOf(t *testing.T, yaml string) []vrrp.GroupSpec {
	t.Helper()
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(eth0Host{}); err != nil {
		t.Fatal(err)
	}
	specs, err := VRRPSpecs(c)
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// TestReloadVRRP: the registered Reload hands the translated specs to the
// elector New built, and refuses another elector.
func TestReloadVRRP(t *testing.T) {
	parse := func(yaml string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(eth0Host{}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	const head = "apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: vrrp\ngroups:\n"
	c1 := parse(head + "- name: web\n  vips: [{address: 198.51.100.100}]\n  vrrp: {vrid: 51}\n")
	c2 := parse(head + "- name: web\n  vips: [{address: 198.51.100.100}]\n  vrrp: {vrid: 51}\n" +
		"- name: api\n  vips: [{address: 198.51.100.101}]\n  vrrp: {vrid: 52}\n")
	m, ok := Lookup(config.ModeVRRP)
	if !ok || m.Reload == nil {
		t.Fatal("vrrp mode has no Reload")
	}
	e, err := m.New(c1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Before Run, Reconfigure only replaces the list (vrrp's own tests
	// cover a running elector).
	if err := m.Reload(e, c2); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(election.NewStatic(nil), c2); err == nil {
		t.Fatal("Reload accepted a static elector")
	}
}
