package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
	"github.com/vipd/vipd/internal/httpapi"
	"github.com/vipd/vipd/internal/metrics"
)

// ConflictSource watches ifname for other hosts claiming an address for
// which held is true and calls report for each claim, until ctx is done
// (nil) or the watch breaks (the error; the daemon restarts it).
type ConflictSource func(ctx context.Context, ifname string, held func(netip.Addr) bool, report func(ip netip.Addr, mac string)) error

// Deps is everything Run talks to; RunSystem fills it with the real kernel,
// sockets and listener, unit tests with fakes.
type Deps struct {
	Log       *slog.Logger
	Elector   election.Elector
	Kernel    addr.Kernel
	Announcer Announcer
	Links     LinkSource
	Conflicts ConflictSource
	// Probers opens the owner-verification prober of an interface;
	// LocalAddr reports whether this host holds an address (its kernel
	// answers for it). Verification runs when both are set and
	// Spec.Verify.Interval > 0 (docs/verify.md).
	Probers   func(ifname string) (Prober, error)
	LocalAddr func(netip.Addr) bool
	// Listener serves /healthz, /readyz, /status and /metrics; nil serves
	// nothing.
	Listener net.Listener
	// Metrics is the daemon's instrumentation (nil: none, and no /metrics).
	Metrics *metrics.Metrics
	// Health runs the checks (nil: the config has none; RunSystem builds
	// internal/health's). Hooks runs notify hooks (nil: none).
	Health HealthRunner
	Hooks  HookRunner
	// Reloads delivers validated new configurations (SIGHUP); nil: none.
	Reloads <-chan Reload
	// Tuning knobs, zero for the defaults.
	StopTimeout  time.Duration // how long the elector may take to stop (default 10s)
	LinkWait     time.Duration // how long the election waits for the first link states (default 2s)
	ConflictHold time.Duration // DefaultConflictHold
	// Restart backoff of a failed watcher: doubles from RestartMin up to
	// RestartMax (defaults 100ms and 30s).
	RestartMin, RestartMax time.Duration
}

// Run is the daemon: it removes VIPs left by an earlier run, starts the
// binder, the link and conflict watchers and the endpoints, runs the
// election until ctx is done or the elector fails, and shuts down in order:
// the elector first (it removes the VIPs, then tells its peers), then
// everything else. Every goroutine it starts has ended when it returns, and
// no VIP is left bound.
func Run(ctx context.Context, spec Spec, d Deps) error {
	d.defaults()
	log := d.Log
	binder := addr.NewBinder(log, d.Kernel, spec.Lifetime, spec.Refresh)
	// Crowded interfaces' VIPs are renewed less often (logged; /status
	// binding.scaled), planned for every configured VIP at start.
	binder.SetUpkeep(addr.PlanUpkeep(AllVIPs(spec.Groups), spec.Lifetime, spec.Refresh, spec.MaxLifetime))
	removed, err := binder.RemoveStale(AllVIPs(spec.Groups))
	if err != nil {
		return err
	}
	for _, v := range removed {
		log.Warn("removed a stale VIP left by an earlier run", "vip", v)
	}
	// The watchers outlive the election: while the elector shuts down, the
	// binder still refreshes and the endpoints still answer.
	watchCtx, stopWatchers := context.WithCancel(context.WithoutCancel(ctx))
	electCtx, stopElection := context.WithCancel(ctx)
	manager := NewManager(watchCtx, log, spec.Groups, binder, d.Announcer)
	manager.conflictHold = d.ConflictHold
	manager.metrics = d.Metrics
	sup := &supervisor{log: log, min: d.RestartMin, max: d.RestartMax}
	var wg sync.WaitGroup
	var srv *http.Server
	// The one way out, in order: the election is stopped (by now it has
	// removed its VIPs and said goodbye, see below), the endpoints, the
	// watchers and the conflict reactions end and are waited for, and
	// whatever is still bound is released: vipd never leaves a VIP behind
	// when it exits (and the kernel lifetime covers a crash).
	defer func() {
		stopElection()
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}
		stopWatchers()
		sup.wg.Wait()
		manager.Wait()
		wg.Wait()
		binder.ReleaseAll()
	}()

	notify := &notifier{hooks: d.Hooks, manager: manager, last: map[string]hooks.State{}}
	for _, g := range spec.Groups {
		d.Hooks.Set(g.Name, g.Notify)
	}
	// Hooks are the last to go: STOP runs after the election removed the
	// VIPs, and every queued hook ends (or is killed) before Run returns.
	defer func() {
		for _, name := range manager.names() {
			notify.stop(name, "shutdown")
		}
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.StopTimeout)
		d.Hooks.Close(hctx)
		cancel()
	}()
	tracker := newEligibilityTracker(spec.Groups, time.Now, spec.StartupDelay, spec.MinMoveInterval, func(group string, in election.Input, b Breakdown) {
		prev, _ := manager.status(group)
		manager.SetEligibility(group, in, b)
		d.Elector.SetInput(group, in)
		if prev.Eligible == in.Eligible && prev.Degraded == in.Degraded && prev.Priority == in.Priority && prev.Why == in.Reason {
			return
		}
		switch {
		case in.Eligible && in.Degraded:
			log.Warn("degraded: a last resort for the group", "group", group, "priority", in.Priority, "why", in.Reason)
		case in.Eligible:
			log.Info("eligible", "group", group, "priority", in.Priority, "why", in.Reason)
		case pendingReason(in.Reason):
			log.Debug("not eligible yet", "group", group, "why", in.Reason)
		default:
			log.Warn("not eligible", "group", group, "why", in.Reason)
		}
	})
	manager.onBindFailure = tracker.bindFailed
	manager.onBound = tracker.bound
	manager.onLapse = tracker.lapsed
	manager.onLapseEnd = tracker.lapseEnded
	manager.onOwner = tracker.setOwner
	manager.onChange = notify.changed
	tracker.start()
	wg.Go(func() { tracker.run(watchCtx) })

	// A VIP not refreshed for its lifetime is not renewed or restored:
	// the group is given up until the election confirms its owner.
	binder.OnLapse(manager.Lapsed)
	sup.Go(watchCtx, "binder", binder.Run)
	sup.Go(watchCtx, "health", func(ctx context.Context) error { return d.Health.Run(ctx, tracker.setCheck) })
	w := &watches{sup: sup, ctx: watchCtx, links: d.Links, conflicts: d.Conflicts, tracker: tracker,
		binder: binder, manager: manager, byIf: map[string]func(){}}
	w.set(Interfaces(spec.Groups))
	defer w.stopAll()

	rl := &reloader{log: log, spec: spec, manager: manager, tracker: tracker, health: d.Health, hooks: d.Hooks,
		notify: notify, watches: w, metrics: d.Metrics}
	if d.Reloads != nil {
		// Reloads end when shutdown begins, and the last one has ended
		// before the watches it changes are stopped (this defer runs
		// before w.stopAll's).
		reloadCtx, stopReloads := context.WithCancel(ctx)
		var served sync.WaitGroup
		served.Go(func() { rl.serve(reloadCtx, d.Reloads) })
		defer func() {
			stopReloads()
			served.Wait()
		}()
	}

	var verify *verifier
	if spec.Verify.Interval > 0 && d.Probers != nil && d.LocalAddr != nil {
		verify = newVerifier(spec.Verify, log, manager, func(group string) bool {
			st, ok := manager.status(group)
			ready, _ := d.Elector.Ready()
			return ok && st.Eligible && ready
		}, d.Probers, d.LocalAddr)
		wg.Go(func() { verify.run(watchCtx) })
	}
	dm := &daemon{spec: spec, binder: binder, manager: manager, elector: d.Elector, sup: sup, health: d.Health, hooks: d.Hooks,
		reloads: rl, announcer: d.Announcer, verify: verify}
	observe(d.Metrics, d)
	d.Metrics.SetSnapshot(dm.snapshot)
	defer d.Metrics.SetSnapshot(nil)
	if d.Listener != nil {
		var mh http.Handler
		if d.Metrics != nil {
			mh = d.Metrics.Handler()
		}
		srv = &http.Server{Handler: httpapi.Handler(dm, mh), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(d.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		})
	}

	// The election starts from the links' real state, not from "unknown":
	// a mode's first word to its peers (gossip's first node meta, VRRP's
	// first timer) then carries this node's real eligibility and priority.
	// Bounded, so a link watch that cannot start delays nothing for long
	// (the groups stay ineligible until it does).
	linkWait := time.NewTimer(d.LinkWait)
	select {
	case <-tracker.known:
	case <-linkWait.C:
		log.Warn("link states not known yet; starting the election with every group ineligible", "after", d.LinkWait)
	case <-ctx.Done():
	}
	linkWait.Stop()
	log.Info("vipd started", "mode", spec.Mode, "groups", len(spec.Groups), "version", spec.Version)
	for _, p := range spec.Unauthenticated {
		log.Warn("unauthenticated election path", "path", p)
	}
	electErr := make(chan error, 1)
	go func() { electErr <- d.Elector.Run(electCtx, manager.Report) }()

	select {
	case err = <-electErr:
		if ctx.Err() == nil {
			if err == nil {
				err = errors.New("election stopped unexpectedly")
			}
			err = fmt.Errorf("election: %w", err)
		}
	case <-ctx.Done():
		stopElection()
		// The elector reports "shutdown" (VIPs removed) and then says
		// goodbye to its peers (priority-0 advert, Lease release,
		// memberlist leave).
		t := time.NewTimer(d.StopTimeout)
		select {
		case err = <-electErr:
		case <-t.C:
			log.Error("election did not stop in time; removing the VIPs without it", "after", d.StopTimeout)
			binder.ReleaseAll()
			err = <-electErr
		}
		t.Stop()
	}
	if err != nil {
		log.Error("vipd stopping on error", "err", err)
		return err
	}
	log.Info("vipd stopped")
	return nil
}

func (d *Deps) defaults() {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Health == nil {
		d.Health = noChecks{}
	}
	if d.Hooks == nil {
		d.Hooks = noHooks{}
	}
	if d.StopTimeout <= 0 {
		d.StopTimeout = 10 * time.Second
	}
	if d.LinkWait <= 0 {
		d.LinkWait = 2 * time.Second
	}
	if d.ConflictHold <= 0 {
		d.ConflictHold = DefaultConflictHold
	}
	if d.RestartMin <= 0 {
		d.RestartMin = 100 * time.Millisecond
	}
	if d.RestartMax <= 0 {
		d.RestartMax = 30 * time.Second
	}
}

// RunSystem runs the daemon on this host: HTTP listener, netlink, raw
// sockets. The listener is opened first, so a busy port ends vipd before it
// touches any interface.
func RunSystem(ctx context.Context, spec Spec, elector election.Elector, log *slog.Logger, reloads <-chan Reload) error {
	ln, err := net.Listen("tcp", spec.HTTPListen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	defer ln.Close()
	kernel, err := addr.NewNetlink()
	if err != nil {
		return err
	}
	defer kernel.Close()
	announcer := arp.NewAnnouncer(log.With("component", "announce"), spec.Announce, arp.Open)
	defer announcer.Close()
	checks, err := health.NewRunner(log.With("component", "health"), spec.Checks)
	if err != nil {
		return err
	}
	log.Info("serving /healthz, /readyz, /status, /metrics", "http", ln.Addr().String())
	return Run(ctx, spec, Deps{
		Log: log, Elector: elector, Kernel: kernel, Announcer: announcer,
		Links: NetlinkLinks{}, Conflicts: WatchConflicts, Probers: OpenProber, LocalAddr: LocalAddr, Listener: ln, Reloads: reloads, Health: checks,
		Hooks:   hookRunner{hooks.New(log.With("component", "hooks"))},
		Metrics: metrics.New(metrics.Info{Version: spec.Version, Mode: spec.Mode}),
	})
}

// hookRunner adapts internal/hooks.Runner to HookRunner.
type hookRunner struct{ r *hooks.Runner }

func (h hookRunner) Set(group string, spec *hooks.Spec) { h.r.Set(group, spec) }
func (h hookRunner) Notify(ev hooks.Event)              { h.r.Notify(ev) }
func (h hookRunner) Close(ctx context.Context)          { _ = h.r.Close(ctx) }
func (h hookRunner) Status(group string) any {
	if st, ok := h.r.Status()[group]; ok {
		return st
	}
	return nil
}

// WatchConflicts is the ConflictSource of this host: arp.WatchConflicts on
// the interface as it exists now. Its packet sockets are bound to that
// interface's index, and a deleted interface only makes them report
// ENETDOWN, so the watch also ends, with an error, when the interface is
// deleted: the daemon restarts it, and it binds to the re-created one.
func WatchConflicts(ctx context.Context, ifname string, held func(netip.Addr) bool, report func(netip.Addr, string)) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return fmt.Errorf("subscribing to link updates: %w", err)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		close(done)
		wg.Wait()
	}()
	wg.Go(func() {
		for {
			select {
			case <-wctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					cancel(errors.New("link updates: subscription closed"))
					return
				}
				if u.Header.Type == unix.RTM_DELLINK && int(u.Index) == ifi.Index {
					cancel(fmt.Errorf("interface %s (index %d) was deleted", ifname, ifi.Index))
					return
				}
			}
		}
	})
	err = arp.WatchConflicts(wctx, ifi, held, func(c arp.Claim) { report(c.IP, c.MAC.String()) })
	if cause := context.Cause(wctx); err == nil && ctx.Err() == nil && cause != nil {
		err = cause
	}
	return err
}

// supervisor runs watchers, restarting a failed one with backoff, and keeps
// their state for /healthz and /status.
type supervisor struct {
	log      *slog.Logger
	min, max time.Duration
	wg       sync.WaitGroup

	mu       sync.Mutex
	watchers []*WatcherStatus
}

// Go runs fn until ctx is done or stop is called, restarting it whenever it
// returns early. stop ends it, waits for it and forgets its status.
func (s *supervisor) Go(ctx context.Context, name string, fn func(context.Context) error) (stop func()) {
	st := &WatcherStatus{Name: name, Running: true}
	s.mu.Lock()
	s.watchers = append(s.watchers, st)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	stop = func() {
		cancel()
		<-ended
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, w := range s.watchers {
			if w == st {
				s.watchers = append(s.watchers[:i:i], s.watchers[i+1:]...)
				break
			}
		}
	}
	s.wg.Go(func() {
		defer close(ended)
		backoff := s.min
		for {
			started := time.Now()
			err := fn(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			if time.Since(started) > s.max {
				backoff = s.min // it ran well for a while: start over
			}
			s.mu.Lock()
			st.Running, st.LastError, st.FailingSince = false, err.Error(), time.Now()
			s.mu.Unlock()
			s.log.Error("watch failed; restarting it", "watch", name, "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, s.max)
			s.mu.Lock()
			st.Running, st.FailingSince = true, time.Time{}
			st.Restarts++
			s.mu.Unlock()
		}
	})
	return stop
}

// Status returns every watcher's state.
func (s *supervisor) Status() []WatcherStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WatcherStatus, len(s.watchers))
	for i, w := range s.watchers {
		out[i] = *w
	}
	return out
}

// daemon is what the endpoints report on.
type daemon struct {
	spec    Spec
	binder  *addr.Binder
	manager *Manager
	elector election.Elector
	sup     *supervisor
	health  HealthRunner
	hooks   HookRunner
	reloads *reloader
	// announcer's counters are read for metrics (when it has them).
	announcer Announcer
	// verify is owner verification (nil: off).
	verify *verifier
}

// Healthy: the process works: the VIP refresh loop runs and every watcher
// runs (a failed one is being restarted, and says why).
func (d *daemon) Healthy() (bool, string) {
	var why []string
	if !d.binder.Healthy() {
		why = append(why, "VIP refresh loop is stuck")
	}
	for _, w := range d.sup.Status() {
		if !w.Running {
			why = append(why, fmt.Sprintf("%s watch failing since %s (restarts %d): %s",
				w.Name, w.FailingSince.Format(time.RFC3339), w.Restarts, w.LastError))
		}
	}
	sort.Strings(why)
	return len(why) == 0, strings.Join(why, "; ")
}

// Ready: eligible to own. The daemon's eligibility (links, bind holds) and
// the mode's own condition (Lease: API reachable; gossip: accepted by peers;
// VRRP: can send adverts).
func (d *daemon) Ready() (bool, string) {
	if ok, why := d.manager.Ready(); !ok {
		return false, why
	}
	if ok, why := d.elector.Ready(); !ok {
		return false, d.spec.Mode + ": " + why
	}
	// Last: this node answers for a VIP it should not, or its VIP is
	// answered by another MAC as well (docs/verify.md).
	return d.verify.Ready()
}

func (d *daemon) Status() any {
	healthy, unhealthy := d.Healthy()
	ready, why := d.Ready()
	return Status{
		PID:  os.Getpid(),
		Node: d.spec.Node, Mode: d.spec.Mode, Version: d.spec.Version,
		Healthy: healthy, Unhealthy: unhealthy, Ready: ready, NotReady: why, Unauthenticated: d.spec.Unauthenticated,
		Groups:   d.groups(),
		Checks:   d.health.Results(),
		Reloads:  d.reloads.status(),
		Binding:  d.binder.Stats(),
		Watchers: d.sup.Status(),
		Election: d.elector.Status(),
		Verify:   d.verify.summary(),
	}
}

// groups is the groups' status with their hook records.
func (d *daemon) groups() []GroupStatus {
	gs := d.manager.Groups()
	for i := range gs {
		gs[i].Hooks = d.hooks.Status(gs[i].Name)
		for j := range gs[i].VIPs {
			if ip, err := netip.ParseAddr(gs[i].VIPs[j].Address); err == nil {
				gs[i].VIPs[j].Verify = d.verify.status(gs[i].Name, ip)
			}
		}
	}
	return gs
}
