package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/hooks"
)

// Ownership and eligibility change from different goroutines (the
// elector's reports, the tracker's inputs); the last hook event must be
// the group's final state whatever the interleaving.
func TestNotifierLastEventIsTheFinalState(t *testing.T) {
	for round := range 100 {
		r := &recorder{}
		m := NewManager(context.Background(), quiet, []Group{web}, r, r)
		hk := &slowHooks{fakeHooks: newFakeHooks()}
		n := &notifier{hooks: hk, manager: m, last: map[string]hooks.State{}}
		m.onChange = n.changed
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range 20 {
				_ = m.Report(election.Transition{Group: "web", Owner: i%2 == 0, Reason: "x", At: time.Now()})
			}
		})
		wg.Go(func() {
			for i := range 21 {
				in := election.Input{Eligible: i%2 == 0, Priority: 100}
				if !in.Eligible {
					in.Reason = "check api failing"
				}
				m.SetEligibility("web", in, Breakdown{})
			}
		})
		wg.Wait()
		// Final: not owner, eligible: BACKUP.
		hk.mu.Lock()
		last := hk.events[len(hk.events)-1]
		hk.mu.Unlock()
		if last.State != hooks.Backup {
			t.Fatalf("round %d: last event %s, but the group is an eligible non-owner", round, last.State)
		}
	}
}

// slowHooks takes a while in Notify, as a runner queueing under load may:
// other changes pile up meanwhile.
type slowHooks struct{ *fakeHooks }

func (h *slowHooks) Notify(ev hooks.Event) {
	for end := time.Now().Add(50 * time.Microsecond); time.Now().Before(end); {
	}
	h.fakeHooks.Notify(ev)
}
