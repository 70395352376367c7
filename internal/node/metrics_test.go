package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/metrics"
)

// One JSON line per ownership transition, with the group, its VIPs, from,
// to, the reason and (taking over) the time from the election's decision to
// the first announcement; and the same transition in the metrics.
func TestTransitionLogLineAndMetrics(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := &recorder{}
	m := NewManager(context.Background(), log, []Group{web}, r, r)
	met := metrics.New(metrics.Info{Version: "test", Mode: "fake"})
	m.metrics = met
	decided := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	// The first announcement goes out 7 ms after the decision.
	m.now = func() time.Time { return decided.Add(7 * time.Millisecond) }

	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "master-down-timer", Peer: "198.51.100.2", At: decided}); err != nil {
		t.Fatal(err)
	}
	// The same ownership reported again is not a transition.
	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "master-down-timer", At: decided}); err != nil {
		t.Fatal(err)
	}
	if err := m.Report(election.Transition{Group: "web", Owner: false, Reason: "higher-priority-advert", Peer: "198.51.100.3", At: decided.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}

	type line struct {
		Level, Msg, Group, Reason, Peer, From, To string
		VIPs                                      []string
		Takeover                                  *time.Duration
	}
	var got []line
	for l := range strings.Lines(buf.String()) {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		if raw["msg"] != "transition" {
			continue
		}
		var ln line
		if err := json.Unmarshal([]byte(l), &ln); err != nil {
			t.Fatal(err)
		}
		got = append(got, ln)
	}
	if len(got) != 2 {
		t.Fatalf("%d transition lines, want 2 (one per ownership change):\n%s", len(got), buf.String())
	}
	take, give := got[0], got[1]
	wantVIPs := []string{vipA.String(), vipB.String()}
	if take.Level != "INFO" || take.Group != "web" || take.From != "backup" || take.To != "owner" || take.Reason != "master-down-timer" ||
		take.Peer != "198.51.100.2" || !slices.Equal(take.VIPs, wantVIPs) || take.Takeover == nil || *take.Takeover != 7*time.Millisecond {
		t.Errorf("takeover line %+v", take)
	}
	if give.From != "owner" || give.To != "backup" || give.Reason != "higher-priority-advert" || !slices.Equal(give.VIPs, wantVIPs) || give.Takeover != nil {
		t.Errorf("release line %+v", give)
	}

	want := `
# HELP vipd_transitions_total Ownership transitions of a group on this node, by previous and new state (owner, backup) and the election's reason.
# TYPE vipd_transitions_total counter
vipd_transitions_total{from="backup",group="web",reason="master-down-timer",to="owner"} 1
vipd_transitions_total{from="owner",group="web",reason="higher-priority-advert",to="backup"} 1
`
	if err := testutil.GatherAndCompare(met.Registry(), strings.NewReader(want), "vipd_transitions_total"); err != nil {
		t.Error(err)
	}
	if out := gatherText(t, met); !strings.Contains(out, `vipd_takeover_duration_seconds_bucket{group="web",le="0.01"} 1`) ||
		!strings.Contains(out, `vipd_takeover_duration_seconds_bucket{group="web",le="0.005"} 0`) {
		t.Errorf("takeover histogram lacks the 7ms observation:\n%s", out)
	}
	// A group a reload removes takes its series with it.
	m.Remove("web")
	if n := testutil.CollectAndCount(met.Registry(), "vipd_transitions_total"); n != 0 {
		t.Errorf("%d transition series left after the group was removed", n)
	}
}

func gatherText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, lp := range mm.GetLabel() {
				labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			if h := mm.GetHistogram(); h != nil {
				for _, bk := range h.GetBucket() {
					b.WriteString(mf.GetName() + "_bucket{" + strings.Join(append(slices.Clone(labels), `le="`+trimFloat(bk.GetUpperBound())+`"`), ",") + "} " + trimFloat(float64(bk.GetCumulativeCount())) + "\n")
				}
				continue
			}
			v := mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
			b.WriteString(mf.GetName() + "{" + strings.Join(labels, ",") + "} " + trimFloat(v) + "\n")
		}
	}
	return b.String()
}

func trimFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// /metrics through the daemon: the ownership gauges follow the group, the
// transition is counted, the takeover observed, and the snapshot reads the
// daemon's own state at scrape time.
func TestRunServesMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		met := metrics.New(metrics.Info{Version: "test", Mode: "fake"})
		r := startRig(t, func(_ *rig, d *Deps) { d.Metrics = met })
		scrape := func() string {
			t.Helper()
			code, body := r.ln.get(t, "/metrics")
			if code != 200 {
				t.Fatalf("/metrics %d %s", code, body)
			}
			return body
		}
		has := func(body string, lines ...string) {
			t.Helper()
			for _, l := range lines {
				if !strings.Contains(body, l+"\n") {
					t.Errorf("/metrics lacks %q", l)
				}
			}
		}
		has(scrape(),
			`vipd_group_owner{group="web"} 0`,
			`vipd_group_eligible{group="web"} 1`,
			`vipd_vip_owned{group="web",vip="198.51.100.100"} 0`,
			`vipd_ready 1`, `vipd_healthy 1`,
			`vipd_build_info{mode="fake",version="test"} 1`,
		)
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		has(scrape(),
			`vipd_group_owner{group="web"} 1`,
			`vipd_vip_owned{group="web",vip="198.51.100.100"} 1`,
			`vipd_vip_owned{group="web",vip="2001:db8::100"} 1`,
			`vipd_transitions_total{from="backup",group="web",reason="told",to="owner"} 1`,
			`vipd_takeover_duration_seconds_count{group="web"} 1`,
		)
		r.stop(t)
		// The daemon is gone: its snapshot no longer answers for it.
		if n := testutil.CollectAndCount(met.Registry(), "vipd_group_owner"); n != 0 {
			t.Errorf("%d ownership series after Run returned", n)
		}
	})
}
