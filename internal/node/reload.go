package node

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/metrics"
)

// Reload is one validated new configuration for the running daemon
// (SIGHUP; docs/reload.md).
type Reload struct {
	// Err: the new config could not be used (unreadable, invalid, or a
	// change that needs a restart); the reload is refused with it.
	Err  error
	Spec Spec
	// Elector applies the mode's part (internal/modes Mode.Reload). The
	// daemon calls it after it has added the new groups and set their
	// inputs, and forgets removed groups only after it returned (the
	// elector has reported them Owner=false by then).
	Elector func() error
	// Done receives the outcome: nil once applied, or why nothing was.
	Done chan<- error
}

// ReloadStatus is the reloads' record on /status.
type ReloadStatus struct {
	Applied   uint64    `json:"applied"`
	Failed    uint64    `json:"failed"`
	LastError string    `json:"lastError,omitempty"`
	LastAt    time.Time `json:"lastAt,omitzero"`
}

// NeedsRestart names the settings of next that differ from cur and cannot
// change while the daemon runs; nil if there is none.
func NeedsRestart(cur, next Spec) error {
	var keys []string
	for _, f := range []struct {
		key     string
		changed bool
	}{
		{"node", cur.Node != next.Node},
		{"mode", cur.Mode != next.Mode},
		{"http.listen", cur.HTTPListen != next.HTTPListen},
		{"binding.lifetime", cur.Lifetime != next.Lifetime},
		{"binding.refresh", cur.Refresh != next.Refresh},
		{"announce", cur.Announce != next.Announce},
		{"health.startupDelay", cur.StartupDelay != next.StartupDelay},
		{"health.minMoveInterval", cur.MinMoveInterval != next.MinMoveInterval},
		{"verify", cur.Verify != next.Verify},
	} {
		if f.changed {
			keys = append(keys, f.key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("%v changed: that needs a restart (the running daemon keeps its current config)", keys)
}

// watches keeps the link watch and one conflict watch per interface in
// step with the groups' interfaces.
type watches struct {
	sup       *supervisor
	ctx       context.Context
	links     LinkSource
	conflicts ConflictSource
	tracker   *eligibilityTracker
	binder    *addr.Binder
	manager   *Manager

	ifnames   []string
	stopLinks func()
	byIf      map[string]func()
}

// set watches exactly ifnames: the link watch restarts when the list
// changes (its first update re-evaluates every group); conflict watches
// start and stop per interface.
func (w *watches) set(ifnames []string) {
	if w.stopLinks == nil || !slices.Equal(w.ifnames, ifnames) {
		if w.stopLinks != nil {
			w.stopLinks()
		}
		names := slices.Clone(ifnames)
		w.ifnames = names
		w.stopLinks = w.sup.Go(w.ctx, "links", func(ctx context.Context) error {
			return w.links.Watch(ctx, names, w.tracker.setLinks)
		})
	}
	want := map[string]bool{}
	for _, ifname := range ifnames {
		want[ifname] = true
		if _, ok := w.byIf[ifname]; ok {
			continue
		}
		w.byIf[ifname] = w.sup.Go(w.ctx, "conflicts "+ifname, func(ctx context.Context) error {
			return w.conflicts(ctx, ifname, w.binder.Held, w.manager.Conflict)
		})
	}
	for ifname, stop := range w.byIf {
		if !want[ifname] {
			stop()
			delete(w.byIf, ifname)
		}
	}
}

func (w *watches) stopAll() {
	if w.stopLinks != nil {
		w.stopLinks()
	}
	for _, stop := range w.byIf {
		stop()
	}
}

// reloader applies reloads one at a time.
type reloader struct {
	log     *slog.Logger
	manager *Manager
	tracker *eligibilityTracker
	health  HealthRunner
	hooks   HookRunner
	notify  *notifier
	watches *watches
	metrics *metrics.Metrics

	mu   sync.Mutex
	spec Spec
	st   ReloadStatus
}

func (r *reloader) status() ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *reloader) serve(ctx context.Context, reloads <-chan Reload) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-reloads:
			err := r.apply(req)
			r.mu.Lock()
			r.st.LastAt = time.Now()
			if err != nil {
				r.st.Failed++
				r.st.LastError = err.Error()
			} else {
				r.st.Applied++
				r.st.LastError = ""
			}
			r.mu.Unlock()
			if err != nil {
				r.log.Error("reload refused: still running the previous config", "err", err)
			} else {
				r.log.Info("reload applied")
			}
			if req.Done != nil {
				req.Done <- err
			}
		}
	}
}

// apply is one reload, as a diff: kept groups whose VIPs did not change are
// not touched beyond their inputs, so no VIP whose owner does not change
// moves or is re-bound.
func (r *reloader) apply(req Reload) error {
	if req.Err != nil {
		return req.Err
	}
	r.mu.Lock()
	cur := r.spec
	r.mu.Unlock()
	next := req.Spec
	if err := NeedsRestart(cur, next); err != nil {
		return err
	}
	if err := r.health.Update(next.Checks); err != nil {
		return fmt.Errorf("checks: %w", err)
	}
	for _, c := range cur.Checks {
		if !slices.ContainsFunc(next.Checks, func(n health.Spec) bool { return n.Name == c.Name }) {
			r.metrics.ForgetCheck(c.Name)
		}
	}
	old := map[string]Group{}
	for _, g := range cur.Groups {
		old[g.Name] = g
	}
	kept := map[string]bool{}
	var removed []string
	for _, g := range next.Groups {
		kept[g.Name] = true
		prev, ok := old[g.Name]
		switch {
		case !ok:
			r.manager.Add(g)
			r.notify.forget(g.Name)
			r.log.Info("reload adds a group", "group", g.Name)
		case !reflect.DeepEqual(prev, g):
			r.manager.Update(g)
			r.log.Info("reload changes a group", "group", g.Name)
		}
		r.hooks.Set(g.Name, g.Notify)
	}
	for _, g := range cur.Groups {
		if !kept[g.Name] {
			removed = append(removed, g.Name)
		}
	}
	// New groups' inputs (and every changed track or priority) reach the
	// elector before it learns about the groups, as at start.
	r.tracker.setGroups(next.Groups)
	r.tracker.setChecks(r.health.Results())
	r.watches.set(Interfaces(next.Groups))
	var electErr error
	if req.Elector != nil {
		electErr = req.Elector()
	}
	for _, name := range removed {
		r.notify.stop(name, "removed")
		r.manager.Remove(name)
		r.hooks.Set(name, nil)
		r.log.Info("reload removed a group", "group", name)
	}
	r.mu.Lock()
	r.spec = next
	r.mu.Unlock()
	if electErr != nil {
		// The daemon's part is applied; the mode's is not (it checks
		// what needs a restart before it changes anything).
		return fmt.Errorf("mode %s: %w", next.Mode, electErr)
	}
	return nil
}
