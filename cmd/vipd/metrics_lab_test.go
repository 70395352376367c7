package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

// scrapeMetrics reads h's /metrics into series → value ("name{labels}" as
// the text format writes it); ok false while vipd does not answer.
func scrapeMetrics(t *testing.T, h *lab.Host) (map[string]float64, bool) {
	t.Helper()
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/metrics")
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics on %s: %d %s", h.Name, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics on %s: bad line %q", h.Name, line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out, true
}

// TestLabMetricsFailover: /metrics of two real vipd processes in VRRP mode,
// scraped before and after failovers: the ownership gauges move, each
// takeover is one transition with its reason and one takeover histogram
// observation, announcements are counted, and the owner's JSON log has
// the one transition line.
func TestLabMetricsFailover(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	v4, v6 := l.VIPv4(86), l.VIPv6(86)
	r := vrrplab.Router{VRID: 86, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{v4, v6}}
	paths := [2]string{filepath.Join(l.TempDir(), "vipd-node1.yaml"), filepath.Join(l.TempDir(), "vipd-node2.yaml")}
	start := func(i, prio int) *lab.Process {
		t.Helper()
		h := l.Nodes[i]
		writeConfigFile(t, paths[i], vrrplab.VipdConfig(h, prio, r, nil))
		p, err := l.Start(h, bin, "run", "--config", paths[i], "--log-format", "json")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	owned4 := fmt.Sprintf(`vipd_vip_owned{group="web",vip="%s"}`, v4)
	owned6 := fmt.Sprintf(`vipd_vip_owned{group="web",vip="%s"}`, v6)
	const (
		owner    = `vipd_group_owner{group="web"}`
		takeover = `vipd_takeover_duration_seconds_count{group="web"}`
		tookSum  = `vipd_takeover_duration_seconds_sum{group="web"}`
	)
	transition := func(from, to, reason string) string {
		return fmt.Sprintf(`vipd_transitions_total{from="%s",group="web",reason="%s",to="%s"}`, from, reason, to)
	}
	waitMetric := func(h *lab.Host, series string, want float64) map[string]float64 {
		t.Helper()
		var m map[string]float64
		testutil.WaitFor(t, fmt.Sprintf("%s %s = %v", h.Name, series, want), 10*time.Second, func() bool {
			var ok bool
			m, ok = scrapeMetrics(t, h)
			return ok && m[series] == want
		})
		return m
	}
	expect := func(h *lab.Host, m map[string]float64, want map[string]float64) {
		t.Helper()
		for s, v := range want {
			if got, ok := m[s]; !ok || got != v {
				t.Errorf("%s: %s = %v (present %v), want %v", h.Name, s, got, ok, v)
			}
		}
	}

	// A take sets the ownership gauges' source at once and records the
	// transition counter last (after the first announcement and the
	// takeover time): each step waits for that counter, so every other
	// series of the step is final when it is read.
	// node1 (150) alone first: the owner without a race; then node2 (100).
	p1 := start(0, 150)
	m1 := waitMetric(n1, transition("backup", "owner", "master-down-timer"), 1)
	start(1, 100)
	m2 := waitMetric(n2, `vipd_ready`, 1)
	testutil.WaitFor(t, "node2 hears node1", 10*time.Second, func() bool {
		m2, _ = scrapeMetrics(t, n2)
		return m2["vipd_vrrp_adverts_received_total"] > 0
	})
	// Before: node1 owns both VIPs, took over once; node2 owns nothing and
	// has neither a transition nor a takeover.
	expect(n1, m1, map[string]float64{owner: 1, owned4: 1, owned6: 1, takeover: 1,
		transition("backup", "owner", "master-down-timer"):       1,
		`vipd_build_info{mode="vrrp",version="` + version + `"}`: 1})
	expect(n2, m2, map[string]float64{owner: 0, owned4: 0, owned6: 0, `vipd_group_eligible{group="web"}`: 1})
	for s := range m2 {
		if strings.HasPrefix(s, "vipd_transitions_total") || strings.HasPrefix(s, "vipd_takeover_duration_seconds_count") {
			t.Errorf("node2 before any failover: %s = %v", s, m2[s])
		}
	}
	if m1[`vipd_announcements_sent_total{family="ipv4",interface="eth0"}`] < 1 || m1[`vipd_announcements_sent_total{family="ipv6",interface="eth0"}`] < 1 {
		t.Errorf("node1 announcements not counted: %v", m1)
	}

	// 1. The owner crashes: node2 takes over when its Master_Down_Timer fires.
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	m2 = waitMetric(n2, transition("backup", "owner", "master-down-timer"), 1)
	expect(n2, m2, map[string]float64{owner: 1, owned4: 1, owned6: 1, takeover: 1,
		transition("backup", "owner", "master-down-timer"): 1})
	if s := m2[tookSum]; s <= 0 || s > 1 {
		t.Errorf("node2 takeover took %vs; want a real, sub-second duration", s)
	}
	t.Logf("node2 took over from the crashed node1: decision to first announcement %.2fms", 1000*m2[tookSum])
	if m2[`vipd_announcements_sent_total{family="ipv4",interface="eth0"}`] < 1 {
		t.Errorf("node2 announcements not counted after its takeover")
	}

	// 2. node1 comes back at the higher priority and preempts: node2 gives
	// the group up (higher-priority-advert), node1 takes it (preempt).
	p1 = start(0, 150)
	m2 = waitMetric(n2, transition("owner", "backup", "higher-priority-advert"), 1)
	expect(n2, m2, map[string]float64{owner: 0, owned4: 0, owned6: 0, takeover: 1,
		transition("owner", "backup", "higher-priority-advert"): 1})
	m1 = waitMetric(n1, transition("backup", "owner", "preempt"), 1)
	expect(n1, m1, map[string]float64{owner: 1, owned4: 1, owned6: 1, takeover: 1})
	t.Logf("node1 preempted: decision to first announcement %.2fms", 1000*m1[tookSum])

	// The new owner's JSON log has exactly one transition line for it.
	// The line follows the counter and reaches the test through a pipe.
	var lines []map[string]any
	testutil.WaitFor(t, "node1's transition log line", 10*time.Second, func() bool {
		lines = nil
		for line := range strings.Lines(p1.Output()) {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "transition" {
				lines = append(lines, m)
			}
		}
		return len(lines) > 0
	})
	if len(lines) != 1 {
		t.Fatalf("node1 logged %d transition lines, want 1:\n%s", len(lines), p1.Output())
	}
	ln := lines[0]
	vips, _ := ln["vips"].([]any)
	if ln["group"] != "web" || ln["from"] != "backup" || ln["to"] != "owner" || ln["reason"] != "preempt" ||
		ln["node"] != n1.Name || len(vips) != 2 || vips[0] != v4.String() || vips[1] != v6.String() {
		t.Errorf("transition line %v", ln)
	}
	if took, ok := ln["takeover"].(float64); !ok || took <= 0 || time.Duration(took) > time.Second {
		t.Errorf("transition line's takeover %v (ns), want a real, sub-second duration", ln["takeover"])
	}
}
