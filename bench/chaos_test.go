package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/chaos"
)

func TestWriteChaosSummary(t *testing.T) {
	ms := func(d time.Duration) chaos.Ms { return chaos.Ms(d) }
	ok := &chaos.Report{Mode: "vrrp", Seed: 1, Planned: 2, Faults: make([]chaos.FaultResult, 2), Duration: ms(65 * time.Second),
		Total: chaos.KindStats{Lost: 12, TwoOwners: ms(1500 * time.Millisecond),
			Interruption: chaos.Stats{N: 2, Median: ms(20 * time.Millisecond), P95: ms(320 * time.Millisecond), Max: ms(330 * time.Millisecond)}}}
	bad := &chaos.Report{Mode: "gossip", Seed: 1, Planned: 5, Faults: make([]chaos.FaultResult, 3), Aborted: "lab gone",
		Violations: make([]chaos.Violation, 2)}
	var b strings.Builder
	writeChaosSummary(&b, []*chaos.Report{ok, bad})
	out := b.String()
	for _, want := range []string{
		"vrrp    2/2", "1m5s", "20ms / 320ms / 330ms", "12 ", "1.5s", " 0\n",
		"gossip  3/5", "2 (aborted: lab gone)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := splitList(" vrrp, ,gossip,"); strings.Join(got, "|") != "vrrp|gossip" {
		t.Errorf("splitList = %q", got)
	}
}
