package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/node"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := node.Status{
		Node: "n1", Mode: "vrrp", Version: "dev",
		Healthy: false, Unhealthy: "conflicts eth0 watch failing since 2026-12-04T11:59:58Z (restarts 1): network is down",
		Ready: false, NotReady: "not eligible: web: link eth0 down",
		Groups: []node.GroupStatus{{Name: "web", Owner: true, Since: now.Add(-90 * time.Second), Reason: "master-down-timer",
			VIPs: []node.VIPStatus{{Address: "198.51.100.100", Interface: "eth0", Bound: true}}}},
	}
	var b strings.Builder
	printStatus(&b, st, now)
	for _, want := range []string{
		"node n1, mode vrrp, vipd dev\n",
		"healthy: no (conflicts eth0 watch failing since 2026-12-04T11:59:58Z (restarts 1): network is down)\n",
		"ready: no (not eligible: web: link eth0 down)\n",
		"web    yes    1m30s ago  master-down-timer  198.51.100.100 on eth0 (bound)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// Unauthenticated paths are printed as warnings right under the header.
func TestPrintStatusUnauthenticated(t *testing.T) {
	st := node.Status{Node: "n1", Mode: "gossip", Version: "dev", Healthy: true, Ready: true,
		Unauthenticated: []string{"gossip: gossip.insecure is true (no gossip.keyFile): any host can join"}}
	var b strings.Builder
	printStatus(&b, st, time.Now())
	want := "ready: yes\nWARNING: unauthenticated: gossip: gossip.insecure is true (no gossip.keyFile): any host can join\n\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, b.String())
	}
	b.Reset()
	st.Unauthenticated = nil
	printStatus(&b, st, time.Now())
	if strings.Contains(b.String(), "WARNING") {
		t.Errorf("a warning without unauthenticated paths:\n%s", b.String())
	}
}

// The candidacy line shows how the effective priority came about, and the
// checks table each check's state and last error.
func TestPrintStatusCandidacyAndChecks(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := node.Status{
		Node: "n1", Mode: "vrrp", Version: "dev", Healthy: true, Ready: false,
		NotReady: "not eligible: web: degraded: check api failing: HTTP 503",
		Groups: []node.GroupStatus{{Name: "web", Since: now, Eligible: true, Degraded: true, Priority: 40,
			Why: "check api failing: HTTP 503",
			Candidacy: node.Breakdown{Base: 100, Effective: 40, Degraded: true,
				Weights: []node.WeightTerm{{Check: "haproxy", Weight: -60, State: health.Failing, Applied: -60}, {Check: "uplink", Weight: 20, State: health.Unknown}},
				Gates:   []node.GateTerm{{Check: "api", State: health.Failing, Error: "HTTP 503"}},
				Held:    "held until 12:00:10"}}},
		Checks: []health.Result{{Name: "api", State: health.Failing, Since: now.Add(-3 * time.Second), LastError: "status 503, want 200-399"}},
	}
	var b strings.Builder
	printStatus(&b, st, now)
	for _, want := range []string{
		"group web: degraded (last resort), priority 40 = 100 base -60 haproxy (failing) (+20 uplink: unknown, not applied); gate api failing (HTTP 503); improvement held until 12:00:10; why: check api failing: HTTP 503\n",
		"api    failing  3s ago  status 503, want 200-399",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// A VIP whose verification found something shows the result and the MACs;
// a verified-ok VIP shows nothing extra.
func TestPrintStatusVerify(t *testing.T) {
	st := node.Status{Node: "n1", Mode: "vrrp", Version: "dev", Healthy: true, Groups: []node.GroupStatus{{Name: "web", Owner: true,
		VIPs: []node.VIPStatus{
			{Address: "198.51.100.10", Interface: "eth0", Bound: true, Verify: &node.VerifyStatus{Result: node.VerifyOK, MACs: []string{"self"}}},
			{Address: "198.51.100.11", Interface: "eth0", Bound: true, Verify: &node.VerifyStatus{Result: "split", MACs: []string{"self", "02:00:00:00:00:02"}}},
		}}}}
	var b strings.Builder
	printStatus(&b, st, time.Now())
	out := b.String()
	if !strings.Contains(out, "198.51.100.11 on eth0 (bound) (verify: split self+02:00:00:00:00:02)") {
		t.Errorf("split not shown:\n%s", out)
	}
	if strings.Contains(out, "198.51.100.10 on eth0 (bound) (verify") {
		t.Errorf("an ok verification shown:\n%s", out)
	}
}
