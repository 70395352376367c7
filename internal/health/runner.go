package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// Watch restart backoff: a broken watch is retried after 100ms, doubling up
// to 30s, so a dead API server is not hammered and a blip costs little.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 30 * time.Second
)

// builder turns a Spec into its prober or watcher (exactly one non-nil).
// Tests swap it for fakes.
type builder func(Spec) (Prober, Watcher, error)

// Runner runs a set of checks and keeps each one's Result.
//
// Polled checks (Prober) go through rise/fall hysteresis; event checks
// (Watcher) do not: an informer's observation is already a settled fact, so
// the state follows each observation (Unknown until the first) and a broken
// watch makes the check Failing until a new observation arrives.
type Runner struct {
	log   *slog.Logger
	build builder

	updateMu sync.Mutex // one Update at a time (plan, then apply)

	mu       sync.Mutex
	checks   []*check // config order
	runCtx   context.Context
	stopping bool // Run's ctx is done: start no more goroutines
	ran      bool
	wg       sync.WaitGroup

	// State changes are queued under mu in the order they happen and handed
	// to onChange by one goroutine of Run's, so onChange is never called
	// concurrently, sees every check's changes in order, may itself call
	// Results or Update, and a slow onChange delays no check.
	onChange func(Result)
	queue    []Result
	// probed, when set, is told every polled attempt's duration
	// (ObserveProbes); guarded by mu.
	probed func(check string, took time.Duration)
	notify chan struct{} // cap 1: the queue is not empty
	closed bool          // Run is ending: queue nothing more
}

// check is one running check. Everything but spec, prober, watcher and
// cancel is guarded by Runner.mu.
type check struct {
	spec    Spec
	prober  Prober
	watcher Watcher
	cancel  context.CancelFunc

	res     Result
	cnt     counters
	stopped bool // removed or replaced by Update: drop its late results
}

// NewRunner builds every check of specs; an error names the check that
// could not be built. Nothing runs until Run.
func NewRunner(log *slog.Logger, specs []Spec) (*Runner, error) {
	return newRunner(log, specs, buildCheck)
}

func newRunner(log *slog.Logger, specs []Spec, b builder) (*Runner, error) {
	r := &Runner{log: log, build: b}
	checks, err := r.plan(specs)
	if err != nil {
		return nil, err
	}
	r.checks = checks
	return r, nil
}

// plan returns the checks specs describe: the running check where its Spec
// is unchanged, a new (Unknown, not started) one otherwise.
func (r *Runner) plan(specs []Spec) ([]*check, error) {
	old := map[string]*check{}
	r.mu.Lock()
	for _, c := range r.checks {
		old[c.spec.Name] = c
	}
	r.mu.Unlock()
	seen := map[string]bool{}
	out := make([]*check, 0, len(specs))
	now := time.Now()
	for _, s := range specs {
		if s.Name == "" {
			return nil, errors.New("health check with no name")
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("health check %q: defined twice", s.Name)
		}
		seen[s.Name] = true
		if c, ok := old[s.Name]; ok && reflect.DeepEqual(c.spec, s) {
			out = append(out, c)
			continue
		}
		if err := checkTiming(s); err != nil {
			return nil, fmt.Errorf("health check %q: %w", s.Name, err)
		}
		p, w, err := r.build(s)
		if err != nil {
			return nil, fmt.Errorf("health check %q: %w", s.Name, err)
		}
		out = append(out, &check{spec: s, prober: p, watcher: w, res: Result{Name: s.Name, Since: now}})
	}
	return out, nil
}

func checkTiming(s Spec) error {
	if s.Interval <= 0 {
		return fmt.Errorf("interval %s must be positive", s.Interval)
	}
	if s.Timeout < 0 {
		return fmt.Errorf("timeout %s must not be negative", s.Timeout)
	}
	if s.Rise < 1 || s.Fall < 1 {
		return fmt.Errorf("rise (%d) and fall (%d) must be at least 1", s.Rise, s.Fall)
	}
	return nil
}

// Run runs every check until ctx is done, calling onChange (serially, never
// concurrently) with the check's Result on every State change, including a
// reset to Unknown by Update. It returns nil once every goroutine it started
// (including those Update started) has ended; the probers bound each attempt
// by ctx, so that is at most one attempt's timeout after ctx is done.
// onChange runs on a goroutine of its own: a slow one delays no check (the
// changes queue meanwhile) and it may call Results and Update. The changes
// made before the checks stopped are delivered before Run returns.
func (r *Runner) Run(ctx context.Context, onChange func(Result)) error {
	r.mu.Lock()
	if r.ran {
		r.mu.Unlock()
		return errors.New("health runner: Run called twice")
	}
	r.ran = true
	r.runCtx = ctx
	r.onChange = onChange
	r.notify = make(chan struct{}, 1)
	for _, c := range r.checks {
		r.startLocked(c)
	}
	r.mu.Unlock()

	quit := make(chan struct{})
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for {
			select {
			case <-r.notify:
				r.deliver()
			case <-quit:
				r.mu.Lock()
				r.closed = true
				r.mu.Unlock()
				r.deliver() // what the checks reported before they ended
				return
			}
		}
	}()

	<-ctx.Done()
	r.mu.Lock()
	r.stopping = true // every wg.Add happened under mu before this
	r.mu.Unlock()
	r.wg.Wait()
	close(quit)
	<-delivered
	return nil
}

// deliver hands the queued changes to onChange, one at a time.
func (r *Runner) deliver() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.mu.Unlock()
			return
		}
		res := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		r.onChange(res)
	}
}

// startLocked starts c's goroutine if Run is running. r.mu is held.
func (r *Runner) startLocked(c *check) {
	if r.runCtx == nil || r.stopping {
		return
	}
	ctx, cancel := context.WithCancel(r.runCtx)
	c.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		if c.watcher != nil {
			r.watch(ctx, c)
		} else {
			r.poll(ctx, c)
		}
	}()
}

// Update applies a new set of checks without disturbing the others: a
// check whose Spec is unchanged keeps running with its state and counters;
// a changed or added one starts Unknown (a changed one that was not Unknown
// is reported to onChange); a removed one stops and disappears from Results
// (no callback: the caller knows). If any new or changed Spec cannot be
// built, Update returns the error and changes nothing. Results follow the
// new config order.
func (r *Runner) Update(specs []Spec) error {
	r.updateMu.Lock()
	defer r.updateMu.Unlock()
	checks, err := r.plan(specs)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[*check]bool{}
	for _, c := range checks {
		keep[c] = true
	}
	byName := map[string]*check{}
	for _, c := range r.checks {
		byName[c.spec.Name] = c
		if keep[c] {
			continue
		}
		c.stopped = true
		if c.cancel != nil {
			c.cancel()
		}
	}
	for _, c := range checks {
		if c.cancel != nil { // kept, already running
			continue
		}
		if prev, ok := byName[c.spec.Name]; ok && !keep[prev] && prev.res.State != Unknown {
			r.changedLocked(c, prev.res.State, "check changed by reload")
		}
		r.startLocked(c)
	}
	r.checks = checks
	return nil
}

// ObserveProbes makes the runner call f after every attempt of a polled
// check with its duration (the daemon's metrics). f must not block.
func (r *Runner) ObserveProbes(f func(check string, took time.Duration)) {
	r.mu.Lock()
	r.probed = f
	r.mu.Unlock()
}

// Results is a snapshot of every check's Result, in config order. It never
// waits for an attempt.
func (r *Runner) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Result, len(r.checks))
	for i, c := range r.checks {
		out[i] = c.res
	}
	return out
}

// poll runs c's attempts: the first at once, then every Interval counted
// from the start of the previous one; an attempt that runs late delays the
// next, so attempts never overlap.
func (r *Runner) poll(ctx context.Context, c *check) {
	timeout := c.spec.Timeout
	if timeout == 0 {
		timeout = c.spec.Interval
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, timeout)
		detail, err := c.prober.Probe(actx)
		if err != nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		cancel()
		latency := time.Since(start)
		if ctx.Err() != nil {
			return // stopped mid-attempt: the result says nothing about the target
		}
		r.record(c, err == nil, detail, err, latency, true)
		timer.Reset(max(0, c.spec.Interval-time.Since(start)))
	}
}

// watch runs c's Watcher, restarting it with backoff when it breaks.
func (r *Runner) watch(ctx context.Context, c *check) {
	backoff := watchBackoffMin
	for {
		start := time.Now()
		err := c.watcher.Watch(ctx, func(ok bool, detail string) {
			if ctx.Err() != nil {
				return
			}
			var err error
			if !ok {
				err = errors.New(detail)
				if detail == "" {
					err = errors.New("not passing")
				}
			}
			r.record(c, ok, detail, err, 0, false)
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch ended")
		}
		// A watch that held for a while earns a quick restart; one that
		// keeps breaking at once backs off.
		if time.Since(start) >= watchBackoffMax {
			backoff = watchBackoffMin
		}
		r.record(c, false, "", fmt.Errorf("watch broken (retrying in %s): %w", backoff, err), 0, false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// record applies one attempt or observation to c. Polled checks go through
// hysteresis; watched ones take the observed state at once.
func (r *Runner) record(c *check, ok bool, detail string, err error, latency time.Duration, hysteresis bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.stopped {
		return
	}
	if hysteresis && r.probed != nil {
		r.probed(c.spec.Name, latency)
	}
	c.res.Detail = detail
	c.res.Latency = latency
	if ok {
		c.res.Passes++
		c.res.LastError = ""
	} else {
		c.res.Failures++
		c.res.LastError = err.Error()
	}
	prev := c.cnt.State
	if hysteresis {
		c.cnt = step(c.cnt, ok, c.spec.Rise, c.spec.Fall)
	} else if ok {
		c.cnt = counters{State: Passing}
	} else {
		c.cnt = counters{State: Failing}
	}
	if c.cnt.State != prev {
		r.changedLocked(c, prev, "")
	}
}

// changedLocked publishes c's new state (c.cnt.State). r.mu is held.
func (r *Runner) changedLocked(c *check, prev State, why string) {
	c.res.State = c.cnt.State
	c.res.Since = time.Now()
	attrs := []any{"check", c.spec.Name, "state", c.res.State, "was", prev}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	if c.res.LastError != "" {
		attrs = append(attrs, "error", c.res.LastError)
	}
	if c.res.Detail != "" {
		attrs = append(attrs, "detail", c.res.Detail)
	}
	r.log.Info("health check state changed", attrs...)
	if r.onChange != nil && !r.closed {
		r.queue = append(r.queue, c.res)
		select {
		case r.notify <- struct{}{}:
		default: // already signalled
		}
	}
}
