package chaos

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
)

// The short chaos run CI does per mode: seeded (the same faults on every
// run, so a failure replays with `vipd chaos --mode M --faults N --seed S`),
// and short enough that the three modes together take a few minutes.
// VIPD_CHAOS_FAULTS and VIPD_CHAOS_SEED override them.
const (
	labFaults = 20
	labSeed   = 1
)

func TestChaosLab(t *testing.T) {
	lab.Require(t)
	faults, seed := labFaults, uint64(labSeed)
	if s := os.Getenv("VIPD_CHAOS_FAULTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("VIPD_CHAOS_FAULTS=%q: want a positive number", s)
		}
		faults = n
	}
	if s := os.Getenv("VIPD_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VIPD_CHAOS_SEED=%q: want a number", s)
		}
		seed = n
	}
	bin := lab.BuildVipd(t)
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			if mode == ModeLease {
				kubetest.Require(t)
			}
			start := time.Now()
			w := &logWriter{t: t}
			rep, err := Run(t.Context(), Options{Mode: mode, Nodes: 3, Faults: faults, Seed: seed, Vipd: bin, Out: w})
			w.flush()
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_ = rep.WriteText(&b)
			t.Logf("%s(took %s)", b.String(), time.Since(start).Round(time.Second))
			if !rep.OK() {
				t.Errorf("mode %s: %d violations%s; replay: %s", mode, len(rep.Violations), abortedSuffix(rep), rep.ReplayCommand())
			}
		})
	}
}

func abortedSuffix(r *Report) string {
	if r.Aborted == "" {
		return ""
	}
	return ", aborted: " + r.Aborted
}

// logWriter sends the run's progress lines to t.Log as they come.
type logWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(strings.TrimRight(string(w.buf[:i]), " "))
		w.buf = w.buf[i+1:]
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.t.Log(string(w.buf))
		w.buf = nil
	}
}
