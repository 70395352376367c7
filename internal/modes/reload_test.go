package modes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// edit replaces old by new in y once; the test edit must apply.
func edit(t *testing.T, y, old, new string) string {
	t.Helper()
	if !strings.Contains(y, old) {
		t.Fatalf("test edit does not apply: %q", old)
	}
	return strings.Replace(y, old, new, 1)
}

const restartSuffix = " changed: that needs a restart (the running daemon keeps its current config)"

// TestCheckReloadRefuses: a change the running daemon cannot apply is
// refused before anything changes, naming every such key.
func TestCheckReloadRefuses(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // edit of healthConfig
		keys     string // the keys the error names
	}{
		{"node", "node: cp-1", "node: cp-2", "[node]"},
		{"mode", "mode: static", "mode: gossip\ngossip: {insecure: true}", "[mode]"},
		{"http.listen", "kind: Config\n", "kind: Config\nhttp: {listen: \"127.0.0.1:9611\"}\n", "[http.listen]"},
		{"binding.lifetime", "kind: Config\n", "kind: Config\nbinding: {lifetime: 5s}\n", "[binding.lifetime]"},
		{"binding.refresh", "kind: Config\n", "kind: Config\nbinding: {refresh: 500ms}\n", "[binding.refresh]"},
		{"announce.count", "kind: Config\n", "kind: Config\nannounce: {count: 3}\n", "[announce]"},
		{"announce.interval", "kind: Config\n", "kind: Config\nannounce: {interval: 100ms}\n", "[announce]"},
		{"announce.refresh", "kind: Config\n", "kind: Config\nannounce: {refresh: 0s}\n", "[announce]"},
		{"health.startupDelay", "health: {startupDelay: 30s}", "health: {startupDelay: 31s}", "[health.startupDelay]"},
		{"health.startupDelay off", "health: {startupDelay: 30s}", "health: {}", "[health.startupDelay]"},
		{"health.minMoveInterval", "health: {startupDelay: 30s}", "health: {startupDelay: 30s, minMoveInterval: 0s}", "[health.minMoveInterval]"},
		{"several at once, all named", "node: cp-1\nmode: static\nhealth: {startupDelay: 30s}",
			"node: cp-2\nmode: static\nhttp: {listen: \"[::1]:9610\"}\nhealth: {startupDelay: 30s, minMoveInterval: 1s}",
			"[node http.listen health.minMoveInterval]"},
	}
	cur := loadConfig(t, healthConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := loadConfig(t, edit(t, healthConfig, tc.old, tc.new))
			err := CheckReload(cur, next)
			if err == nil || err.Error() != tc.keys+restartSuffix {
				t.Fatalf("err = %v, want %q", err, tc.keys+restartSuffix)
			}
		})
	}
}

const leaseReloadConfig = `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: lease
lease: {namespace: vipd, kubeconfig: /etc/vipd/kubeconfig, server: "https://127.0.0.1:6443"}
groups:
- name: web
  vips: [{address: 198.51.100.100}]
  track: [{check: web}]
checks:
- name: web
  http: {url: "https://127.0.0.1:8443/healthz"}
`

func gossipReloadConfig(t *testing.T) (string, string) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: gossip
gossip: {bind: "198.51.100.10:7946", peers: [198.51.100.11, 198.51.100.12], expect: 3, quorum: true, keyFile: ` + key + `}
groups:
- name: web
  priority: 120
  vips: [{address: 198.51.100.100}]
`, key
}

// TestCheckReloadModeSections: the Lease's API access and timing and the
// gossip transport cannot change under a running elector.
func TestCheckReloadModeSections(t *testing.T) {
	gossipYAML, key := gossipReloadConfig(t)
	_, otherKey := gossipReloadConfig(t)
	tests := []struct {
		name, base, old, new, keys string
	}{
		{"lease.namespace", leaseReloadConfig, "namespace: vipd", "namespace: kube-system", "[lease]"},
		{"lease.kubeconfig", leaseReloadConfig, "kubeconfig: /etc/vipd/kubeconfig", "kubeconfig: /etc/vipd/other", "[lease]"},
		{"lease.server", leaseReloadConfig, `server: "https://127.0.0.1:6443"`, `server: "https://198.51.100.1:6443"`, "[lease]"},
		{"lease.leaseDuration", leaseReloadConfig, "namespace: vipd,", "namespace: vipd, leaseDuration: 7s,", "[lease]"},
		{"lease.retryPeriod", leaseReloadConfig, "namespace: vipd,", "namespace: vipd, retryPeriod: 400ms,", "[lease]"},
		{"gossip.bind", gossipYAML, `bind: "198.51.100.10:7946"`, `bind: "198.51.100.10:7947"`, "[gossip]"},
		{"gossip.peers", gossipYAML, "peers: [198.51.100.11, 198.51.100.12]", "peers: [198.51.100.11, 198.51.100.13]", "[gossip]"},
		{"gossip.profile", gossipYAML, "expect: 3", "expect: 3, profile: lan", "[gossip]"},
		{"gossip.keyFile", gossipYAML, key, otherKey, "[gossip]"},
		// The daemon's keys come first; the section is not listed with them.
		{"node and lease", leaseReloadConfig, "node: n1\n", "node: n2\n", "[node]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := loadConfig(t, tc.base)
			next := loadConfig(t, edit(t, tc.base, tc.old, tc.new))
			err := CheckReload(cur, next)
			if err == nil || err.Error() != tc.keys+restartSuffix {
				t.Fatalf("err = %v, want %q", err, tc.keys+restartSuffix)
			}
		})
	}
}

// TestCheckReloadAccepts: groups, VIPs, priorities, checks, tracks, policy
// and hooks are what a reload is for.
func TestCheckReloadAccepts(t *testing.T) {
	gossipYAML, _ := gossipReloadConfig(t)
	const group = "- name: plain\n  vips: [{address: 198.51.100.102}]\n"
	tests := []struct {
		name, base, old, new string
	}{
		{"unchanged", healthConfig, "", ""},
		{"priority", healthConfig, "priority: 150", "priority: 90"},
		{"VIP added", healthConfig, "{address: 198.51.100.102}", "{address: 198.51.100.102}, {address: \"2001:db8::102\"}"},
		{"VIP changed", healthConfig, "{address: 198.51.100.102}", "{address: 198.51.100.103}"},
		{"group added", healthConfig, group, group + "- name: new\n  vips: [{address: 198.51.100.110}]\n  track: [{check: web}]\n"},
		{"group removed", healthConfig, group, ""},
		{"check timing", healthConfig, "  interval: 200ms\n  timeout: 150ms\n  rise: 3\n  fall: 4\n", "  interval: 100ms\n  timeout: 50ms\n  rise: 1\n  fall: 1\n"},
		{"check target", healthConfig, `address: "127.0.0.1:8404"`, `address: "127.0.0.1:8405"`},
		{"check kind", healthConfig, "tcp: {address: \"127.0.0.1:8404\"}", "exec: {command: [/usr/bin/pidof, haproxy]}"},
		{"check added", healthConfig, "checks:\n", "checks:\n- name: extra\n  file: {path: /run/extra}\n"},
		{"check removed with its track", healthConfig, "- name: web\n  http: {url: \"https://127.0.0.1:8443/\", insecureSkipVerify: true, expectStatus: 204-302}\n", ""},
		{"track added", healthConfig, "track: [{check: ingress}, ", "track: [{check: web, weight: 5}, {check: ingress}, "},
		{"weight changed", healthConfig, "weight: -60", "weight: -100"},
		{"gate becomes a weight", healthConfig, "{check: apiserver}", "{check: apiserver, weight: -50}"},
		{"tracks removed", healthConfig, "  track: [{check: ingress}, {check: script, weight: 10}]\n", ""},
		{"whenNoneHealthy", healthConfig, "whenNoneHealthy: release", "whenNoneHealthy: keep"},
		{"notify changed", healthConfig, "timeout: 5s", "timeout: 10s"},
		{"notify removed", healthConfig, "  notify: {master: [/bin/true]}\n", ""},
		{"notify added", healthConfig, group, "- name: plain\n  vips: [{address: 198.51.100.102}]\n  notify: {command: [/n.sh]}\n"},
		{"lease: groups and checks", leaseReloadConfig, "  track: [{check: web}]\n", "  priority: 200\n  track: [{check: web, weight: 10}]\n- name: api\n  vips: [{address: 198.51.100.101}]\n  lease: {name: api-vip}\n"},
		{"gossip: groups", gossipYAML, "priority: 120", "priority: 121"},
		// The gossip elector applies these in place (docs/gossip.md).
		{"gossip.expect", gossipYAML, "expect: 3", "expect: 5"},
		{"gossip.quorum", gossipYAML, "quorum: true", "quorum: false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := loadConfig(t, tc.base)
			y := tc.base
			if tc.old != "" {
				y = edit(t, y, tc.old, tc.new)
			}
			if err := CheckReload(cur, loadConfig(t, y)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckReloadGossipKeyRotation: the gossip elector re-reads its key
// file while it runs (docs/gossip.md), so new keys in the same file are
// not a change that needs a restart, neither on the reload after the
// rotation nor on any later one (the daemon keeps comparing with the
// config it started with until a reload succeeds).
func TestCheckReloadGossipKeyRotation(t *testing.T) {
	y, key := gossipReloadConfig(t)
	cur := loadConfig(t, y)
	if err := os.WriteFile(key, []byte("ZmVkY2JhOTg3NjU0MzIxMA==\nMDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckReload(cur, loadConfig(t, y)); err != nil {
		t.Fatalf("rotated keys: %v", err)
	}
	if err := CheckReload(cur, loadConfig(t, edit(t, y, "priority: 120", "priority: 130"))); err != nil {
		t.Fatalf("a later priority change: %v", err)
	}
}
