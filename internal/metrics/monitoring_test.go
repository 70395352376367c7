package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

const monitoringDir = "../../deploy/monitoring"

// registryNames is every series name vipd exposes, with a value for every
// metric (histograms as _bucket, _sum and _count).
func registryNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Info{Version: "test", Mode: "vrrp"})
	m.Transition("g", true, "x")
	m.Takeover("g", time.Millisecond)
	m.LeaseRenew("g", time.Millisecond, "api")
	m.Probe("c", time.Millisecond)
	m.SetSnapshot(func(s *Snapshot) {
		s.Groups = []Group{{Name: "g", VIPs: []VIP{{Address: "198.51.100.1", Verified: true, AnsweringMACs: 1}}}}
		s.Verify = &Verify{}
		s.Announcements = []Announcements{{Interface: "eth0", Family: "ipv4"}}
		s.Checks = []Check{{Name: "c"}}
		s.Hooks = []Hooks{{Group: "g"}}
		s.VRRP = &VRRP{Dropped: map[string]uint64{"ttl": 1}}
		s.GossipMembers = map[string]int{"alive": 1}
	})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

// metricRef finds metric names in PromQL, crudely: vipd's own, and the
// process and Go collectors'.
var metricRef = regexp.MustCompile(`\b(?:vipd|process|go)_[a-z0-9_]+\b`)

// TestMonitoringUsesRealMetrics: every metric the alert rules and the
// Grafana dashboard query exists in vipd's registry, so a renamed metric
// breaks this test, not someone's pager.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	names := registryNames(t)

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	data, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	if len(exprs) < 6 {
		t.Fatalf("alerts.yaml: %d alerts, want at least 6", len(exprs))
	}

	data, err = os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	n := 0
	walkExprs(dash, func(e string) {
		n++
		exprs["dashboard expr "+e] = e
	})
	if n < 20 {
		t.Fatalf("dashboard: %d queries found, want at least 20", n)
	}
	used := map[string]bool{}
	for where, e := range exprs {
		refs := metricRef.FindAllString(e, -1)
		if len(refs) == 0 {
			t.Errorf("%s: no vipd metric in %q", where, e)
		}
		for _, r := range refs {
			used[r] = true
			if !names[r] {
				t.Errorf("%s: %s is not a metric vipd exposes", where, r)
			}
		}
	}
	// The other way round: the dashboard shows every vipd metric.
	var unshown []string
	for n := range names {
		if metricRef.MatchString(n) && len(n) > 5 && n[:5] == "vipd_" && !used[n] {
			unshown = append(unshown, n)
		}
	}
	slices.Sort(unshown)
	for _, n := range unshown {
		// A histogram is shown through _bucket, _sum or _count.
		if used[n+"_bucket"] || used[n+"_count"] {
			continue
		}
		if b, ok := trimHistogramSuffix(n); ok && (used[b+"_bucket"] || used[b+"_count"]) {
			continue
		}
		t.Errorf("%s is exposed but neither the dashboard nor the alerts use it", n)
	}
}

func trimHistogramSuffix(n string) (string, bool) {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if len(n) > len(s) && n[len(n)-len(s):] == s {
			return n[:len(n)-len(s)], true
		}
	}
	return "", false
}

// walkExprs calls f with every "expr" string in a decoded JSON document.
func walkExprs(v any, f func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				f(s)
				continue
			}
			walkExprs(x, f)
		}
	case []any:
		for _, x := range v {
			walkExprs(x, f)
		}
	}
}

// TestAlertRules runs promtool on the rules: syntax and every alert's unit
// tests (deploy/monitoring/alerts_test.yaml). promtool comes with Debian's
// prometheus package (scripts/test installs it).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
			t.Fatal("promtool is required (VIPD_REQUIRE_LAB=1) but not on the PATH: apt-get install prometheus")
		}
		t.Skip("promtool not on the PATH (apt-get install prometheus); set VIPD_REQUIRE_LAB=1 to make this a failure")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoringDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
	// Every alert has a unit test.
	data, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(monitoringDir, "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(data), -1) {
		if !regexp.MustCompile(`alertname: ` + m[1] + `\n`).Match(tests) {
			t.Errorf("alert %s has no promtool test", m[1])
		}
	}
}
