package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/vipd/vipd/internal/hooks"
)

// hookLog is a HookRunner that records the states notified.
type hookLog struct {
	mu     sync.Mutex
	states []hooks.State
}

func (h *hookLog) Set(string, *hooks.Spec) {}
func (h *hookLog) Notify(ev hooks.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.states = append(h.states, ev.State)
}
func (h *hookLog) Close(context.Context) {}
func (h *hookLog) Status(string) any     { return nil }

// An owner that shuts down notifies STOP only: the elector's release with
// reason "shutdown" is not a BACKUP (a backup hook would run on a node
// that is going away, e.g. stopping a proxy or paging, before STOP).
func TestRunShutdownNotifiesStopNotBackup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hl := &hookLog{}
		r := startRig(t, func(_ *rig, d *Deps) { d.Hooks = hl })
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		r.stop(t)
		want := []hooks.State{hooks.Backup, hooks.Master, hooks.Stop}
		if !slices.Equal(hl.states, want) {
			t.Fatalf("hook states %v, want %v", hl.states, want)
		}
	})
}
