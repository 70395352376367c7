package main

// The chaos summary row (issue #15): `bench -chaos N` runs internal/chaos
// (the engine behind `vipd chaos`) for each vipd election mode, N seeded
// faults each, and prints one line per mode: how long, the client's
// interruption, lost probes, time with two owners, violations. The full
// per-kind reports go to -chaos-json if given. keepalived has no row: the
// chaos engine checks vipd's own /status against the kernel, which
// keepalived does not expose; its failover figures are the scenario
// table's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/chaos"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
)

// chaosOptions are the chaos summary's parameters.
type chaosOptions struct {
	faults int
	seed   uint64
	modes  []string
	json   string
	out    io.Writer
}

// runChaos runs every mode in turn and prints the summary. A mode that
// cannot start (Lease without a control plane) is reported and skipped; a
// violation is not an error here, it is a figure in the table.
func runChaos(ctx context.Context, o chaosOptions) error {
	if len(o.modes) == 0 {
		o.modes = chaos.Modes
	}
	for _, m := range o.modes {
		if _, err := chaos.ParseMode(m); err != nil {
			return fmt.Errorf("-chaos-modes: %w", err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return err
	}
	var reports []*chaos.Report
	for _, m := range o.modes {
		if m == chaos.ModeLease {
			if _, _, err := kubetest.Binaries(); err != nil {
				fmt.Fprintf(o.out, "chaos %s: skipped: %v\n", m, err)
				continue
			}
		}
		fmt.Fprintf(o.out, "chaos %s: %d faults, seed %d ...\n", m, o.faults, o.seed)
		rep, err := chaos.Run(ctx, chaos.Options{Mode: m, Nodes: 3, Faults: o.faults, Seed: o.seed, Vipd: bin})
		if err != nil {
			return fmt.Errorf("chaos %s: %w", m, err)
		}
		if err := rep.WriteText(o.out); err != nil {
			return err
		}
		reports = append(reports, rep)
	}
	writeChaosSummary(o.out, reports)
	if o.json != "" {
		b, err := json.MarshalIndent(reports, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// writeChaosSummary prints one row per mode (the docs/benchmark.md table).
func writeChaosSummary(w io.Writer, reports []*chaos.Report) {
	d := func(m chaos.Ms) string { return time.Duration(m).Round(time.Millisecond).String() }
	fmt.Fprintf(w, "\nChaos summary (3 nodes; interruption: the client's longest gap per fault, 10ms is none; two owners: excused ones included)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tfaults\tseed\ttook\tinterruption median / p95 / max\tlost probes\ttwo owners\tviolations")
	for _, r := range reports {
		t := r.Total
		v := fmt.Sprint(len(r.Violations))
		if r.Aborted != "" {
			v += " (aborted: " + r.Aborted + ")"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\t%s / %s / %s\t%d\t%s\t%s\n", r.Mode, len(r.Faults), r.Planned, r.Seed,
			d(r.Duration), d(t.Interruption.Median), d(t.Interruption.P95), d(t.Interruption.Max), t.Lost, d(t.TwoOwners), v)
	}
	tw.Flush()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
