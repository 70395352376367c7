package hooks

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/command"
)

const (
	// QueueSize is how many events may wait per group behind the one whose
	// hooks run. A full queue drops its oldest pending event: the newest
	// transitions say where the group is now, and a hook stuck until its
	// timeout must not make vipd hold an unbounded backlog.
	QueueSize = 32
	// DefaultTimeout applies when a Spec has none (the config's default).
	DefaultTimeout = 30 * time.Second
	// outputMax bounds the output kept in Status and logs.
	outputMax = 256
)

// Event is one transition of a group, as the daemon reports it.
type Event struct {
	Group    string
	State    State
	Previous State
	// Reason is why (a check's name, "peer with higher priority", ...).
	Reason string
	// VIPs are the group's addresses.
	VIPs []string
	// Peer is the node that owns the group now, when known.
	Peer     string
	Priority int
	// At is when the transition happened (the hooks may run later).
	At time.Time
}

// GroupStatus is one group's hook counters, for /status.
type GroupStatus struct {
	// Runs counts hook processes run (the generic command and the
	// state's command count one each); Failures those that did not exit
	// 0 (timeouts and start errors included); Timeouts those killed by
	// the timeout.
	Runs     uint64 `json:"runs"`
	Failures uint64 `json:"failures"`
	Timeouts uint64 `json:"timeouts"`
	// Dropped counts events never run: pushed out of a full queue, or
	// still queued when Close gave up waiting.
	Dropped uint64 `json:"dropped"`
	// Pending events wait behind the running one.
	Pending int  `json:"pending"`
	Running bool `json:"running"`
	// LastState is the state of the last event whose hooks ran.
	LastState State     `json:"lastState,omitempty"`
	LastRun   time.Time `json:"lastRun,omitzero"`
	// LastError is the last failure's error, at LastFailure; it stays
	// after later successes (Failures says how many).
	LastError   string    `json:"lastError,omitempty"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	// LastOutput is the start of the last hook's output, on one line.
	LastOutput string `json:"lastOutput,omitempty"`
}

// Runner runs groups' hooks: asynchronously (Notify never waits), in
// order per group and never two at once for one group, groups
// independently. One goroutine per group exists while that group has
// events to run; none outlives Close.
type Runner struct {
	log *slog.Logger

	// stop kills every running hook (their process groups) when Close
	// gives up waiting.
	stop     context.Context
	stopHard context.CancelFunc
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
	groups map[string]*group

	// onRun, if set (tests), is called after each hook process.
	onRun func(ev Event, argv []string, r command.Result)
}

type group struct {
	spec    *Spec // nil: removed; the entry lives while work remains
	queue   []queued
	working bool // a goroutine runs this group's queue
	st      GroupStatus
}

// queued carries the spec current at Notify: a Stop notified before its
// group's removal (Set nil) or a reload still runs the hooks it was for.
type queued struct {
	ev   Event
	spec *Spec
}

// New returns a Runner with no groups (log nil: discard).
func New(log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{log: log, stop: ctx, stopHard: cancel, groups: map[string]*group{}}
}

// Set installs a group's hooks for the events notified from now on (nil
// removes them). Events already queued run with the hooks they were
// notified under.
func (r *Runner) Set(name string, spec *Spec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[name]
	if spec == nil {
		if g != nil {
			g.spec = nil
			if !g.working {
				delete(r.groups, name)
			}
		}
		return
	}
	cp := *spec
	if g == nil {
		g = &group{}
		r.groups[name] = g
	}
	g.spec = &cp
}

// Notify queues ev for its group's hooks and returns at once. Events of a
// group without hooks, and any after Close, are ignored. A full queue
// drops its oldest pending event (counted in Dropped, logged).
func (r *Runner) Notify(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[ev.Group]
	if r.closed || g == nil || g.spec == nil {
		return
	}
	if len(g.queue) >= QueueSize {
		old := g.queue[0].ev
		g.queue = g.queue[1:]
		g.st.Dropped++
		r.log.Warn("hook queue full: dropped the oldest pending event", "group", ev.Group,
			"dropped_state", string(old.State), "dropped_at", old.At, "queue", QueueSize, "dropped_total", g.st.Dropped)
	}
	ev.VIPs = append([]string(nil), ev.VIPs...) // the caller may reuse its slice
	g.queue = append(g.queue, queued{ev: ev, spec: g.spec})
	g.st.Pending = len(g.queue)
	if !g.working {
		g.working = true
		r.wg.Add(1)
		go r.work(ev.Group, g)
	}
}

// work runs g's queue until it is empty.
func (r *Runner) work(name string, g *group) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if r.stop.Err() != nil && len(g.queue) > 0 {
			g.st.Dropped += uint64(len(g.queue))
			r.log.Warn("hooks: shutting down, pending events dropped", "group", name, "dropped", len(g.queue))
			g.queue = nil
		}
		if len(g.queue) == 0 {
			g.working, g.st.Running, g.st.Pending = false, false, 0
			if g.spec == nil {
				delete(r.groups, name)
			}
			r.mu.Unlock()
			return
		}
		q := g.queue[0]
		g.queue = g.queue[1:]
		g.st.Pending, g.st.Running = len(g.queue), true
		r.mu.Unlock()

		r.runEvent(name, g, q)
	}
}

// runEvent runs the generic command (with keepalived's arguments) and then
// the state's command, each to its end or timeout.
func (r *Runner) runEvent(name string, g *group, q queued) {
	ev, spec := q.ev, q.spec
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	env := []string{
		"VIPD_GROUP=" + clean(name),
		"VIPD_STATE=" + clean(string(ev.State)),
		"VIPD_PREVIOUS_STATE=" + clean(string(ev.Previous)),
		"VIPD_REASON=" + clean(ev.Reason),
		"VIPD_VIPS=" + clean(strings.Join(ev.VIPs, " ")),
		"VIPD_PEER=" + clean(ev.Peer),
		"VIPD_PRIORITY=" + strconv.Itoa(ev.Priority),
	}
	type hook struct {
		kind string
		argv []string
	}
	var run []hook
	if len(spec.Command) > 0 {
		argv := append(append([]string(nil), spec.Command...), "GROUP", name, string(ev.State), strconv.Itoa(ev.Priority))
		run = append(run, hook{"command", argv})
	}
	var own []string
	switch ev.State {
	case Master:
		own = spec.Master
	case Backup:
		own = spec.Backup
	case Fault:
		own = spec.Fault
	case Stop:
		own = spec.Stop
	}
	if len(own) > 0 {
		run = append(run, hook{strings.ToLower(string(ev.State)), own})
	}
	for _, h := range run {
		if r.stop.Err() != nil {
			r.mu.Lock()
			g.st.Dropped++
			r.mu.Unlock()
			continue
		}
		res := command.Run(r.stop, command.Options{Argv: h.argv, Env: env, Timeout: timeout})
		out := command.Summary(res.Output, outputMax)

		r.mu.Lock()
		g.st.Runs++
		g.st.LastState, g.st.LastRun, g.st.LastOutput = ev.State, time.Now(), out
		if res.Err != nil {
			g.st.Failures++
			g.st.LastError, g.st.LastFailure = res.Err.Error(), g.st.LastRun
			if res.TimedOut {
				g.st.Timeouts++
			}
		}
		r.mu.Unlock()

		attrs := []any{"group", name, "state", string(ev.State), "hook", h.kind, "exit", res.ExitCode,
			"duration", res.Duration.Round(time.Millisecond), "output", out}
		if !ev.At.IsZero() {
			attrs = append(attrs, "since_transition", time.Since(ev.At).Round(time.Millisecond))
		}
		if res.Err != nil {
			r.log.Warn("hook failed", append(attrs, "err", res.Err.Error(), "timed_out", res.TimedOut)...)
		} else {
			r.log.Info("hook ran", attrs...)
		}
		if r.onRun != nil {
			r.onRun(ev, h.argv, res)
		}
	}
}

// clean keeps a value exec can pass: NUL ends a C string.
func clean(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// Status returns every group's counters. It never waits for a hook.
func (r *Runner) Status() map[string]GroupStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]GroupStatus, len(r.groups))
	for name, g := range r.groups {
		m[name] = g.st
	}
	return m
}

// Close stops accepting events and lets the queued hooks run (each bounded
// by its timeout) until ctx is done; then it kills the running hooks'
// process groups and drops what is still queued. It returns when every
// goroutine of the Runner has ended: nil if all queued hooks ran, else
// ctx's error.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.stopHard()
		return nil
	case <-ctx.Done():
		r.stopHard()
		<-done
		return ctx.Err()
	}
}
