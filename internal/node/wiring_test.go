package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
)

// fakeHealth is a HealthRunner driven by the test: set publishes a result
// (serially, from the test goroutine), Update keeps the results of checks it
// keeps and starts new ones unknown.
type fakeHealth struct {
	mu        sync.Mutex
	onChange  func(health.Result)
	results   []health.Result
	updates   [][]health.Spec
	updateErr error
}

func newFakeHealth(names ...string) *fakeHealth {
	h := &fakeHealth{}
	for _, n := range names {
		h.results = append(h.results, health.Result{Name: n})
	}
	return h
}

func (h *fakeHealth) Run(ctx context.Context, onChange func(health.Result)) error {
	h.mu.Lock()
	h.onChange = onChange
	h.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (h *fakeHealth) Results() []health.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results)
}

func (h *fakeHealth) Update(specs []health.Spec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.updates = append(h.updates, specs)
	if h.updateErr != nil {
		return h.updateErr
	}
	var next []health.Result
	for _, s := range specs {
		r := health.Result{Name: s.Name}
		for _, old := range h.results {
			if old.Name == s.Name {
				r = old
			}
		}
		next = append(next, r)
	}
	h.results = next
	return nil
}

// set publishes r as the runner does on a state change.
func (h *fakeHealth) set(r health.Result) {
	h.mu.Lock()
	for i := range h.results {
		if h.results[i].Name == r.Name {
			h.results[i] = r
		}
	}
	on := h.onChange
	h.mu.Unlock()
	on(r)
}

// fakeHooks is a HookRunner that records what it is told.
type fakeHooks struct {
	mu     sync.Mutex
	events []hooks.Event
	specs  map[string]*hooks.Spec
	closed bool
	late   []hooks.Event // notified after Close
	// closing, if set, is closed when Close starts; Close then waits for
	// release before it returns.
	closing, release chan struct{}
}

func newFakeHooks() *fakeHooks { return &fakeHooks{specs: map[string]*hooks.Spec{}} }

func (h *fakeHooks) Set(group string, spec *hooks.Spec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if spec == nil {
		delete(h.specs, group)
		return
	}
	h.specs[group] = spec
}

func (h *fakeHooks) Notify(ev hooks.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.late = append(h.late, ev)
		return
	}
	h.events = append(h.events, ev)
}

func (h *fakeHooks) Close(context.Context) {
	h.mu.Lock()
	h.closed = true
	closing, release := h.closing, h.release
	h.mu.Unlock()
	if closing != nil {
		close(closing)
		<-release
	}
}

func (h *fakeHooks) Status(group string) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.specs[group] == nil {
		return nil
	}
	return "hooks of " + group
}

// take returns the events so far, as "GROUP STATE<-PREVIOUS prio: reason".
func (h *fakeHooks) take() []string {
	synctest.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		out = append(out, fmt.Sprintf("%s %s<-%s %d: %s", ev.Group, ev.State, ev.Previous, ev.Priority, ev.Reason))
	}
	h.events = nil
	return out
}

var webNotify = &hooks.Spec{Command: []string{"/bin/notify"}}

// healthRig starts the daemon with web gated on check "api" (policy
// release, or keep) and weighted by "load" (-30 while failing).
func healthRig(t *testing.T, keep bool, tweak func(*rig, *Deps)) (*rig, *fakeHealth, *fakeHooks) {
	t.Helper()
	h := newFakeHealth("api", "load")
	hk := newFakeHooks()
	r := startRig(t, func(r *rig, d *Deps) {
		g := web
		g.Track = []Track{{"api", 0}, {"load", -30}}
		g.KeepWhenNoneHealthy = keep
		g.Notify = webNotify
		r.spec.Groups = []Group{g}
		r.spec.Checks = []health.Spec{{Name: "api"}, {Name: "load"}}
		d.Health, d.Hooks = h, hk
		if tweak != nil {
			tweak(r, d)
		}
	})
	return r, h, hk
}

// The hook states follow the group: nothing while only "not known yet",
// BACKUP once eligible, MASTER on a take, FAULT when a gate fails (policy
// release: the owner steps down), BACKUP and MASTER again, STOP at shutdown.
func TestHooksFollowTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h, hk := healthRig(t, false, nil)
		if hk.specs["web"] != webNotify {
			t.Fatalf("hook spec not set at start: %v", hk.specs)
		}
		if got := hk.take(); len(got) != 0 {
			t.Fatalf("events while the check is not known yet: %q", got)
		}
		h.set(health.Result{Name: "api", State: health.Passing})
		if got := hk.take(); !slices.Equal(got, []string{"web BACKUP<- 100: starting"}) {
			t.Fatalf("eligible: %q", got)
		}
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		if got := hk.take(); !slices.Equal(got, []string{"web MASTER<-BACKUP 100: told"}) {
			t.Fatalf("take: %q", got)
		}
		// A failing weight changes the priority, not the state: no event.
		h.set(health.Result{Name: "load", State: health.Failing})
		if got := hk.take(); len(got) != 0 {
			t.Fatalf("a weight change notified: %q", got)
		}
		h.set(health.Result{Name: "api", State: health.Failing, LastError: "connection refused"})
		if got := hk.take(); !slices.Equal(got, []string{"web FAULT<-MASTER 70: check api failing: connection refused"}) {
			t.Fatalf("gate failing: %q", got)
		}
		if r.kernel.bound() != 0 {
			t.Fatal("the owner kept its VIPs with its gate failing")
		}
		h.set(health.Result{Name: "api", State: health.Passing})
		h.set(health.Result{Name: "load", State: health.Passing})
		if got := hk.take(); !slices.Equal(got, []string{"web BACKUP<-FAULT 70: ineligible (check api failing: connection refused)"}) {
			t.Fatalf("gate passing again: %q", got)
		}
		r.elector.own <- "web"
		<-r.elector.errs
		if got := hk.take(); !slices.Equal(got, []string{"web MASTER<-BACKUP 100: told"}) {
			t.Fatalf("take again: %q", got)
		}
		r.stop(t)
		if got := hk.take(); !slices.Equal(got, []string{"web STOP<-MASTER 100: shutdown"}) {
			t.Fatalf("shutdown: %q", got)
		}
		if len(hk.late) != 0 {
			t.Fatalf("notified after Close: %+v", hk.late)
		}
	})
}

// STOP is a group's last event: a check that changes while the daemon
// shuts down (the checks and the tracker outlive the election) notifies
// nothing after it, and the runner is never told anything after Close.
func TestHooksNothingAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h, hk := healthRig(t, false, nil)
		hk.closing, hk.release = make(chan struct{}), make(chan struct{})
		h.set(health.Result{Name: "api", State: health.Passing})
		r.elector.own <- "web"
		<-r.elector.errs
		hk.take()
		r.cancel()
		<-hk.closing
		h.set(health.Result{Name: "api", State: health.Failing, LastError: "connection refused"})
		h.set(health.Result{Name: "api", State: health.Passing})
		close(hk.release)
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
		if got := hk.take(); !slices.Equal(got, []string{"web STOP<-MASTER 100: shutdown"}) {
			t.Fatalf("shutdown: %q", got)
		}
		if len(hk.late) != 0 {
			t.Fatalf("notified after STOP and Close: %+v", hk.late)
		}
	})
}

// The same for a group this node does not own at shutdown (the elector
// reports nothing for it, so only STOP marks the end).
func TestHooksNothingAfterStopOfABackup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h, hk := healthRig(t, false, nil)
		hk.closing, hk.release = make(chan struct{}), make(chan struct{})
		h.set(health.Result{Name: "api", State: health.Passing})
		hk.take()
		r.cancel()
		<-hk.closing
		h.set(health.Result{Name: "api", State: health.Failing, LastError: "connection refused"})
		close(hk.release)
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
		if got := hk.take(); !slices.Equal(got, []string{"web STOP<-BACKUP 100: shutdown"}) {
			t.Fatalf("shutdown: %q", got)
		}
		if len(hk.late) != 0 {
			t.Fatalf("notified after STOP and Close: %+v", hk.late)
		}
	})
}
