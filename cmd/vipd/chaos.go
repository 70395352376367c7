package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"

	"github.com/vipd/vipd/internal/chaos"
	"github.com/vipd/vipd/internal/kubetest"
)

// chaosCmd runs `vipd chaos`: N vipd nodes in a throw-away namespace lab,
// a seeded random sequence of faults, the invariants checked after each
// (internal/chaos, docs/chaos.md). Exit 1 on any violation, 2 on bad
// flags or when it cannot run here.
func chaosCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("chaos", stderr)
	mode := fs.String("mode", chaos.ModeVRRP, "election mode: vrrp, lease (a real kube-apiserver + etcd in the lab) or gossip")
	nodes := fs.Int("nodes", 3, "vipd nodes (2..6)")
	faults := fs.Int("faults", 20, "number of faults")
	seed := fs.Uint64("seed", 0, "seed of the fault sequence (default: random, printed; the same seed gives the same sequence)")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			seedSet = true
		}
	})
	bad := func(err error) error { return &exitError{code: 2, err: err} }
	if _, err := chaos.ParseMode(*mode); err != nil {
		return bad(fmt.Errorf("--mode: %w", err))
	}
	if *nodes < 2 || *nodes > 6 {
		return bad(fmt.Errorf("--nodes %d: must be 2..6", *nodes))
	}
	if *faults < 1 || *faults > 100000 {
		return bad(fmt.Errorf("--faults %d: must be 1..100000", *faults))
	}
	if !seedSet {
		*seed = rand.Uint64() >> 1 // printed and easy to retype
	}
	if os.Geteuid() != 0 {
		return bad(errors.New("chaos builds network namespaces: run it as root"))
	}
	if *mode == chaos.ModeLease {
		if _, _, err := kubetest.Binaries(); err != nil {
			return bad(fmt.Errorf("--mode lease needs etcd and kube-apiserver: %w", err))
		}
	}
	// Fail before an hour of faults, not after.
	var jf *os.File
	if *jsonFile != "" {
		var err error
		if jf, err = os.Create(*jsonFile); err != nil {
			return bad(fmt.Errorf("--json: %w", err))
		}
		defer jf.Close()
	}
	// A closed stdout must not kill us before the lab is torn down.
	signal.Ignore(syscall.SIGPIPE)
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the vipd binary: %w", err)
	}
	rep, err := chaos.Run(ctx, chaos.Options{Mode: *mode, Nodes: *nodes, Faults: *faults, Seed: *seed, Vipd: bin, Out: stdout})
	if err != nil {
		return err
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if jf != nil {
		if err := rep.WriteJSON(jf); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		if err := jf.Close(); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	switch {
	case rep.Aborted != "":
		return &exitError{code: 1, err: fmt.Errorf("chaos run aborted: %s", rep.Aborted)}
	case len(rep.Violations) > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d invariant violations (replay: %s)", len(rep.Violations), rep.ReplayCommand())}
	}
	return nil
}
