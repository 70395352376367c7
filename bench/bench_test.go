package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// logWriter sends the benchmark's output to the test log, a line at a time
// (tabwriter writes cells separately).
type logWriter struct {
	t   *testing.T
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// TestBenchOneRound runs every mode through one round of every scenario in
// the lab and checks correctness only, with generous bounds (no timing
// races): a new owner answers, it is the only holder once the old master's
// VIP is gone, a crashed vipd's VIP is gone within binding.lifetime + 2s,
// vipd never lets two nodes answer in a graceful handover (nor at all in
// Lease mode, whose fencing rule forbids it), and each round ends with node1
// the single owner. The health-check rounds (100ms checks, fall 2) also
// require vipd's new owner to answer within 5s of the service turning 503,
// and run for every mode except weight in Lease (no preemption). Longer
// runs: go run ./bench -rounds N.
func TestBenchOneRound(t *testing.T) {
	lab.Require(t)
	kubetest.Require(t)
	if err := vrrplab.KeepalivedAvailable(); err != nil {
		lab.Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	o := options{rounds: 1, advert: 100 * time.Millisecond, idleFor: time.Second,
		leftCap: 8 * time.Second, modes: slices.Clone(allModes), out: &logWriter{t: t},
		floodFor: 1500 * time.Millisecond, floodRate: 20000,
		// The sub-second target of issue #12 keeps the check rounds short.
		checks: checkSettings{interval: 100 * time.Millisecond, timeout: 100 * time.Millisecond, fall: 2, rise: 2, policy: config.PolicyRelease}}
	res, err := runBench(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	report(o.out, res, o.idleFor)
	reportFlood(o.out, res, o)
	if err := writePictures(o.out, t.TempDir(), res); err != nil {
		t.Errorf("timelines: %v", err)
	}
	t.Logf("all modes, 1 round each: %s", time.Since(start).Round(time.Second))
	for _, sc := range res.scenarios {
		t.Logf("scenario %s: %s over all modes", sc.Name, res.spent[sc.Name].Round(100*time.Millisecond))
	}

	// The flood row: measured for both VRRP implementations; vipd must not
	// let a backup take over nor lose the master's adverts in the kernel
	// (issue #11, 5). keepalived's figures are reported, not judged.
	for _, name := range []string{"vipd-vrrp", "keepalived"} {
		f := res.floods[name]
		if f == nil || f.sent == 0 {
			t.Errorf("%s: no flood measured", name)
			continue
		}
		if name == "vipd-vrrp" && (f.stats.Takeovers > 0 || f.lostVIP || len(f.backupVI) > 0 || f.drops[0]+f.drops[1] > 0) {
			t.Errorf("vipd-vrrp under the flood: takeovers %d %v, VIP lost %v, backups holding it %v, kernel drops %v",
				f.stats.Takeovers, f.stats.Takers, f.lostVIP, f.backupVI, f.drops)
		}
	}
	for _, m := range res.modes {
		name := m.Name()
		vipd := name != "keepalived"
		for _, sc := range res.scenarios {
			rs := res.results[name][sc.Name]
			if why := res.skipped[name][sc.Name]; why != "" {
				if sc.Key != "check-weight" || name != "vipd-lease" {
					t.Errorf("%s %s skipped: %s", name, sc.Name, why)
				}
				continue
			}
			if len(rs) != 1 {
				t.Errorf("%s %s: %d rounds recorded, want 1", name, sc.Name, len(rs))
				continue
			}
			r := rs[0]
			what := name + " " + sc.Name
			if r.f.To == "" || r.f.To == "node1" {
				t.Errorf("%s: no new owner answered (%s)", what, r.f)
			}
			// keepalived leaves a SIGKILLed node's VIP bound (no lifetime):
			// two holders by design, cleaned by the benchmark.
			if vipd || sc.Name != "SIGKILL" {
				if len(r.holders) != 1 || r.holders[0] != r.f.To {
					t.Errorf("%s: holders %v after the old master's VIP went, want only %s", what, r.holders, r.f.To)
				}
				limit := o.leftCap
				if m.Lifetime() > 0 {
					limit = m.Lifetime() + 2*time.Second
				}
				if r.left < 0 || r.left > limit {
					t.Errorf("%s: old master's VIP gone %s, want within %s of the event", what, fmtLeft(r.left, o.leftCap), limit)
				}
			}
			if vipd && (sc.Name == "SIGTERM" || name == "vipd-lease") && r.f.Overlap > 0 {
				t.Errorf("%s: two nodes answered for %s (%s)", what, r.f.Overlap, r.f)
			}
			if vipd && strings.HasPrefix(sc.Key, "check-") && r.takeover > 5*time.Second {
				t.Errorf("%s: new owner answered %s after the service turned 503, want within 5s", what, r.takeover)
			}
			if len(r.restored) != 1 || r.restored[0] != "node1" {
				t.Errorf("%s: holders %v after the round, want only node1", what, r.restored)
			}
		}
		if id := res.idles[name]; id.mem[0].RSS <= 0 || id.mem[0].Anon <= 0 || id.mem[0].Anon > id.mem[0].RSS {
			t.Errorf("%s: idle memory reading %+v", name, id.mem[0])
		}
	}
}
