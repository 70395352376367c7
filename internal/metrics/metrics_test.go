package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReasonLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"master-down-timer", "master-down-timer"},
		{"member-failed:node2", "member-failed"},
		{"ineligible: link eth0 down", "ineligible"},
		{"higher-priority-advert (check api failing)", "higher-priority-advert"},
		{"handed-over-by:node-3", "handed-over-by"},
		{"", "unknown"},
		{strings.Repeat("x", 100), strings.Repeat("x", 40)},
	} {
		if got := ReasonLabel(tc.in); got != tc.want {
			t.Errorf("ReasonLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEventMetrics(t *testing.T) {
	m := New(Info{Version: "v1.2.3", Mode: "vrrp"})
	m.Transition("api", true, "master-down-timer")
	m.Transition("api", false, "higher-priority-advert (check api failing)")
	m.Transition("api", true, "master-down-timer")
	m.Takeover("api", 3*time.Millisecond)
	m.Takeover("api", 2*time.Second)
	m.LeaseRenew("api", 20*time.Millisecond, "")
	m.LeaseRenew("api", 5*time.Second, "timeout")
	m.Probe("readyz", 4*time.Millisecond)

	want := `
# HELP vipd_transitions_total Ownership transitions of a group on this node, by previous and new state (owner, backup) and the election's reason.
# TYPE vipd_transitions_total counter
vipd_transitions_total{from="backup",group="api",reason="master-down-timer",to="owner"} 2
vipd_transitions_total{from="owner",group="api",reason="higher-priority-advert",to="backup"} 1
# HELP vipd_build_info Always 1: the running vipd's version and election mode.
# TYPE vipd_build_info gauge
vipd_build_info{mode="vrrp",version="v1.2.3"} 1
# HELP vipd_lease_renew_errors_total Lease renewals that failed, by kind (conflict, not-found, timeout, api).
# TYPE vipd_lease_renew_errors_total counter
vipd_lease_renew_errors_total{group="api",kind="timeout"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"vipd_transitions_total", "vipd_build_info", "vipd_lease_renew_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.takeover); n != 1 {
		t.Errorf("takeover series = %d, want 1", n)
	}
	wantHist := `
# HELP vipd_takeover_duration_seconds Time from the election's decision that this node owns a group to the first announcement of its first VIP on the wire.
# TYPE vipd_takeover_duration_seconds histogram
vipd_takeover_duration_seconds_bucket{group="api",le="0.001"} 0
vipd_takeover_duration_seconds_bucket{group="api",le="0.0025"} 0
vipd_takeover_duration_seconds_bucket{group="api",le="0.005"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.01"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.025"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.05"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.1"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.25"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="0.5"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="1"} 1
vipd_takeover_duration_seconds_bucket{group="api",le="2.5"} 2
vipd_takeover_duration_seconds_bucket{group="api",le="5"} 2
vipd_takeover_duration_seconds_bucket{group="api",le="10"} 2
vipd_takeover_duration_seconds_bucket{group="api",le="+Inf"} 2
vipd_takeover_duration_seconds_sum{group="api"} 2.003
vipd_takeover_duration_seconds_count{group="api"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(wantHist), "vipd_takeover_duration_seconds"); err != nil {
		t.Error(err)
	}

	m.ForgetGroup("api")
	if n := testutil.CollectAndCount(m.transitions) + testutil.CollectAndCount(m.takeover) + testutil.CollectAndCount(m.renewErrors); n != 0 {
		t.Errorf("after ForgetGroup: %d series left", n)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Transition("g", true, "x")
	m.Takeover("g", time.Second)
	m.LeaseRenew("g", time.Second, "api")
	m.Probe("c", time.Second)
	m.ForgetGroup("g")
	m.ForgetCheck("c")
	m.SetSnapshot(func(*Snapshot) {})
}

func TestSnapshotMetrics(t *testing.T) {
	m := New(Info{Version: "dev", Mode: "gossip"})
	// Without a snapshot (before the daemon starts) there is nothing to
	// read, and nothing is invented.
	if n := testutil.CollectAndCount(snapshotCollector{m}); n != 0 {
		t.Fatalf("no snapshot: %d metrics", n)
	}
	owner := false
	m.SetSnapshot(func(s *Snapshot) {
		s.Ready, s.Healthy = true, true
		s.Groups = []Group{{Name: "web", Owner: owner, Eligible: true, Priority: 150, BindFailures: 1,
			VIPs: []VIP{{Address: "198.51.100.10", Owned: owner, Conflicts: 3}}}}
		s.Announcements = []Announcements{{Interface: "eth0", Family: "ipv4", Sent: 7, Failed: 1}}
		s.Checks = []Check{{Name: "readyz", Passing: true, Passes: 9, Failures: 2}}
		s.Hooks = []Hooks{{Group: "web", Runs: 4, Failures: 1}}
		s.Reloads = Reloads{Applied: 2, Failed: 1}
		s.VRRP = &VRRP{Received: 10, Sent: 20, Dropped: map[string]uint64{"ttl": 5, "unknown-vrid": 1}}
		s.GossipMembers = map[string]int{"alive": 3, "failed": 0, "left": 1}
	})
	gather := func() string {
		t.Helper()
		srv := httptest.NewServer(m.Handler())
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	out := gather()
	for _, line := range []string{
		`vipd_ready 1`,
		`vipd_group_owner{group="web"} 0`,
		`vipd_group_eligible{group="web"} 1`,
		`vipd_group_priority{group="web"} 150`,
		`vipd_bind_failures_total{group="web"} 1`,
		`vipd_vip_owned{group="web",vip="198.51.100.10"} 0`,
		`vipd_conflicts_total{group="web",vip="198.51.100.10"} 3`,
		`vipd_announcements_sent_total{family="ipv4",interface="eth0"} 7`,
		`vipd_announcements_failed_total{family="ipv4",interface="eth0"} 1`,
		`vipd_health_check_passing{check="readyz"} 1`,
		`vipd_health_check_attempts_total{check="readyz",result="fail"} 2`,
		`vipd_hook_runs_total{group="web"} 4`,
		`vipd_hook_failures_total{group="web"} 1`,
		`vipd_config_reloads_total{result="applied"} 2`,
		`vipd_vrrp_packets_dropped_total{reason="ttl"} 5`,
		`vipd_vrrp_adverts_sent_total 20`,
		`vipd_gossip_members{state="alive"} 3`,
		`vipd_build_info{mode="gossip",version="dev"} 1`,
		// The process and Go collectors are registered too.
		`process_start_time_seconds`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	// Read at scrape time: a change shows on the next scrape.
	owner = true
	if out := gather(); !strings.Contains(out, `vipd_vip_owned{group="web",vip="198.51.100.10"} 1`) {
		t.Error("ownership change not seen on the next scrape")
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	m.SetSnapshot(nil)
	if n := testutil.CollectAndCount(snapshotCollector{m}); n != 0 {
		t.Errorf("snapshot removed: %d metrics", n)
	}
}
