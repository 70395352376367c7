package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// errHang makes a fake attempt block until its context is done.
var errHang = errors.New("hang")

// fakeProber plays a script of attempt outcomes (nil passes), repeating the
// last one.
type fakeProber struct {
	mu      sync.Mutex
	script  []error
	calls   []time.Duration // start of each attempt, since t0
	t0      time.Time
	delay   time.Duration // every attempt takes this long, ignoring ctx
	stopped bool          // an attempt saw its context canceled (not timed out)

	inFlight, maxInFlight atomic.Int32
}

func (f *fakeProber) Probe(ctx context.Context) (string, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	if n > f.maxInFlight.Load() {
		f.maxInFlight.Store(n)
	}
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, time.Since(f.t0))
	err := f.script[min(i, len(f.script)-1)]
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if err == errHang {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.Canceled) {
			f.mu.Lock()
			f.stopped = true
			f.mu.Unlock()
		}
		return "", ctx.Err()
	}
	if err != nil {
		return "bad", err
	}
	return "good", nil
}

func (f *fakeProber) callTimes() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.calls...)
}

// fakes builds fake probers from a script per check name and counts builds.
type fakes struct {
	t0      time.Time
	scripts map[string][]error
	delay   map[string]time.Duration
	built   map[string][]*fakeProber
	watcher map[string]Watcher
}

func newFakes() *fakes {
	return &fakes{t0: time.Now(), scripts: map[string][]error{}, delay: map[string]time.Duration{},
		built: map[string][]*fakeProber{}, watcher: map[string]Watcher{}}
}

func (fs *fakes) build(s Spec) (Prober, Watcher, error) {
	if w, ok := fs.watcher[s.Name]; ok {
		return nil, w, nil
	}
	sc, ok := fs.scripts[s.Name]
	if !ok {
		return nil, nil, errors.New("no script")
	}
	p := &fakeProber{script: sc, t0: fs.t0, delay: fs.delay[s.Name]}
	fs.built[s.Name] = append(fs.built[s.Name], p)
	return p, nil, nil
}

// last is the latest fake built for name.
func (fs *fakes) last(name string) *fakeProber { b := fs.built[name]; return b[len(b)-1] }

// recorder collects onChange calls and fails the test if two overlap.
type recorder struct {
	t0      time.Time
	mu      sync.Mutex
	changes []Result
	in      atomic.Int32
	hook    func(Result)
	t       *testing.T
}

func (r *recorder) onChange(res Result) {
	if r.in.Add(1) != 1 {
		r.t.Error("onChange called concurrently")
	}
	defer r.in.Add(-1)
	if r.hook != nil {
		r.hook(res)
	}
	r.mu.Lock()
	r.changes = append(r.changes, res)
	r.mu.Unlock()
}

// summary renders changes as "name:state@offset" for comparison, those of
// one instant by name (checks run concurrently), each check's in order.
func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := slices.Clone(r.changes)
	slices.SortStableFunc(cs, func(a, b Result) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Name, b.Name))
	})
	var b []string
	for _, c := range cs {
		b = append(b, c.Name+":"+c.State.String()+"@"+c.Since.Sub(r.t0).String())
	}
	return strings.Join(b, " ")
}

func spec(name string, interval, timeout time.Duration, rise, fall int) Spec {
	return Spec{Name: name, Interval: interval, Timeout: timeout, Rise: rise, Fall: fall, File: &File{Path: "/fake/" + name}}
}

// start runs r until the returned stop is called; stop waits for Run.
func start(t *testing.T, r *Runner, rec *recorder) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, rec.onChange) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

var errBad = errors.New("bad")

func TestRunnerPolledHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		// attempts at 0s..7s: u p p p p f f p
		fs.scripts["a"] = []error{nil, nil, errBad, nil, errBad, errBad, nil, nil}
		r, err := newRunner(quiet, []Spec{spec("a", time.Second, time.Second, 2, 2)}, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: fs.t0, t: t}
		stop := start(t, r, rec)
		time.Sleep(7500 * time.Millisecond)
		stop()
		if got, want := rec.summary(), "a:passing@1s a:failing@5s a:passing@7s"; got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
		res := r.Results()[0]
		if res.Passes != 5 || res.Failures != 3 || res.State != Passing || res.LastError != "" || res.Detail != "good" {
			t.Errorf("result %+v", res)
		}
		calls := fs.last("a").callTimes()
		for i, c := range calls {
			if c != time.Duration(i)*time.Second {
				t.Errorf("attempt %d at %s, want %ds (first at once, then every interval)", i, c, i)
			}
		}
		if len(calls) != 8 {
			t.Errorf("%d attempts, want 8", len(calls))
		}
	})
}

func TestRunnerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		fs.scripts["hung"] = []error{errHang}
		r, err := newRunner(quiet, []Spec{spec("hung", time.Second, 300*time.Millisecond, 1, 1)}, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		var probes []string
		r.ObserveProbes(func(check string, took time.Duration) { probes = append(probes, fmt.Sprint(check, " ", took)) })
		rec := &recorder{t0: fs.t0, t: t}
		stop := start(t, r, rec)
		time.Sleep(2500 * time.Millisecond)
		stop()
		// Every attempt's duration reaches the observer (the metrics'
		// probe histogram): here each one ran into its timeout.
		if got, want := strings.Join(probes, ", "), "hung 300ms, hung 300ms, hung 300ms"; got != want {
			t.Errorf("probes observed %q, want %q", got, want)
		}
		if got, want := rec.summary(), "hung:failing@300ms"; got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
		res := r.Results()[0]
		if !strings.Contains(res.LastError, "timed out after 300ms") || res.Latency != 300*time.Millisecond || res.Failures != 3 {
			t.Errorf("result %+v", res)
		}
	})
}

func TestRunnerAttemptsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		// An attempt that ignores its context and runs 2.5 intervals.
		fs.scripts["slow"] = []error{nil}
		fs.delay["slow"] = 2500 * time.Millisecond
		r, err := newRunner(quiet, []Spec{spec("slow", time.Second, time.Second, 1, 1)}, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: fs.t0, t: t}
		stop := start(t, r, rec)
		time.Sleep(6 * time.Second)
		stop()
		p := fs.last("slow")
		if got := p.maxInFlight.Load(); got != 1 {
			t.Errorf("%d attempts in flight at once", got)
		}
		want := []time.Duration{0, 2500 * time.Millisecond, 5 * time.Second}
		if got := p.callTimes(); len(got) != len(want) || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("attempts at %v, want %v", got, want)
		}
	})
}

func TestRunnerUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		fs.scripts["a"] = []error{nil}
		fs.scripts["b"] = []error{nil}
		fs.scripts["c"] = []error{errHang} // stopped mid-attempt by Update
		fs.scripts["d"] = []error{errBad}
		a := spec("a", time.Second, time.Second, 1, 1)
		b := spec("b", time.Second, time.Second, 1, 1)
		c := spec("c", time.Second, time.Hour, 1, 1)
		c.Interval = time.Hour
		r, err := newRunner(quiet, []Spec{a, b, c}, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: fs.t0, t: t}
		// onChange may look at the runner.
		rec.hook = func(Result) { _ = r.Results() }
		stop := start(t, r, rec)
		time.Sleep(1500 * time.Millisecond)
		if got, want := rec.summary(), "a:passing@0s b:passing@0s"; got != want {
			t.Fatalf("before update: changes %q, want %q", got, want)
		}

		// A spec that cannot be built changes nothing.
		bad := spec("nope", time.Second, time.Second, 1, 1)
		if err := r.Update([]Spec{a, bad}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("Update with an unbuildable check: %v, want an error naming it", err)
		}
		if got := names(r.Results()); got != "a b c" {
			t.Errorf("after failed Update: checks %s", got)
		}

		b2 := b
		b2.Rise = 2
		d := spec("d", time.Second, time.Second, 1, 1)
		if err := r.Update([]Spec{d, a, b2}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		res := r.Results()
		if got := names(res); got != "d a b" {
			t.Errorf("after Update: checks %s, want d a b (config order, c gone)", got)
		}
		if res[1].State != Passing || res[1].Passes != 2 {
			t.Errorf("unchanged a lost its state: %+v", res[1])
		}
		if res[2].State != Unknown || res[2].Passes != 1 { // b2's first attempt ran at once
			t.Errorf("changed b not reset: %+v", res[2])
		}
		if !fs.last("c").stopped {
			t.Error("removed c's attempt was not canceled")
		}
		time.Sleep(2 * time.Second) // to 3.5s
		stop()
		want := "a:passing@0s b:passing@0s b:unknown@1.5s d:failing@1.5s b:passing@2.5s"
		if got := rec.summary(); got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
		if n := len(fs.built["a"]); n != 1 {
			t.Errorf("unchanged a was built %d times, want once", n)
		}
		if got := fs.built["a"][0].callTimes(); len(got) != 4 || got[3] != 3*time.Second {
			t.Errorf("a's attempts %v: want its cadence undisturbed (0s 1s 2s 3s)", got)
		}
	})
}

func names(rs []Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name)
	}
	return strings.Join(s, " ")
}

func TestRunnerSerialOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		var specs []Spec
		for i := range 20 {
			n := string(rune('a' + i))
			fs.scripts[n] = []error{nil, errBad, nil, errBad, nil, errBad, nil, errBad}
			specs = append(specs, spec(n, 100*time.Millisecond, 100*time.Millisecond, 1, 1))
		}
		r, err := newRunner(quiet, specs, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: fs.t0, t: t}
		// A slow onChange: others' changes queue up meanwhile.
		rec.hook = func(Result) { time.Sleep(10 * time.Millisecond) }
		stop := start(t, r, rec)
		time.Sleep(750 * time.Millisecond)
		stop()
		per := map[string]string{}
		for _, c := range rec.changes {
			per[c.Name] += c.State.String()[:1]
		}
		for n, seq := range per {
			if seq != "pfpfpfpf" {
				t.Errorf("check %s: changes %s, want pfpfpfpf in order", n, seq)
			}
		}
		if len(per) != 20 {
			t.Errorf("changes of %d checks, want 20", len(per))
		}
	})
}

// fakeWatcher replays events sent on ch: an observation, or a break.
type fakeWatcher struct {
	ch     chan watchEvent
	starts chan time.Time
}

type watchEvent struct {
	ok     bool
	detail string
	err    error // non-nil: Watch returns it
}

func (w *fakeWatcher) Watch(ctx context.Context, observe func(bool, string)) error {
	w.starts <- time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-w.ch:
			if e.err != nil {
				return e.err
			}
			observe(e.ok, e.detail)
		}
	}
}

func TestRunnerWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakes()
		w := &fakeWatcher{ch: make(chan watchEvent), starts: make(chan time.Time, 100)}
		fs.watcher["ep"] = w
		s := spec("ep", time.Minute, time.Second, 3, 3) // rise/fall do not apply
		r, err := newRunner(quiet, []Spec{s}, fs.build)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: fs.t0, t: t}
		stop := start(t, r, rec)
		state := func() Result { synctest.Wait(); return r.Results()[0] }
		if got := state(); got.State != Unknown {
			t.Fatalf("before any observation: %v", got.State)
		}
		w.ch <- watchEvent{ok: true, detail: "ready on node-a"}
		if got := state(); got.State != Passing || got.Detail != "ready on node-a" {
			t.Errorf("after a ready observation: %+v", got)
		}
		w.ch <- watchEvent{detail: "no ready endpoint on node-a"}
		if got := state(); got.State != Failing || got.LastError != "no ready endpoint on node-a" {
			t.Errorf("after a not-ready observation: %+v", got)
		}
		w.ch <- watchEvent{ok: true}
		w.ch <- watchEvent{err: errors.New("connection refused")}
		if got := state(); got.State != Failing || !strings.Contains(got.LastError, "connection refused") {
			t.Errorf("after the watch broke: %+v", got)
		}
		<-w.starts // the first start, at t0
		// Restarted after 100ms; broken again at once, after 200ms more.
		t1 := <-w.starts
		if d := t1.Sub(fs.t0); d != 100*time.Millisecond {
			t.Errorf("first restart after %s, want 100ms", d)
		}
		w.ch <- watchEvent{err: errors.New("gone")}
		t2 := <-w.starts
		if d := t2.Sub(t1); d != 200*time.Millisecond {
			t.Errorf("second restart after %s, want 200ms", d)
		}
		w.ch <- watchEvent{ok: true}
		if got := state(); got.State != Passing {
			t.Errorf("after the restarted watch saw ready: %+v", got)
		}
		stop()
		want := "ep:passing@0s ep:failing@0s ep:passing@0s ep:failing@0s ep:passing@300ms"
		if got := rec.summary(); got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
	})
}

func TestRunnerErrors(t *testing.T) {
	good := Spec{Name: "drain", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, File: &File{Path: "/nonexistent/drain"}}
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"no kind", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1}}, `"x": must set exactly one kind`},
		{"two kinds", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1, TCP: &TCP{Address: "a:1"}, File: &File{Path: "/a"}}}, `"x": must set exactly one kind`},
		{"exec program missing", []Spec{{Name: "script", Interval: time.Second, Rise: 1, Fall: 1, Exec: &Exec{Command: []string{"/nonexistent/check.sh"}}}}, `"script": exec`},
		{"duplicate", []Spec{good, good}, `"drain": defined twice`},
		{"no name", []Spec{{Interval: time.Second, Rise: 1, Fall: 1, File: &File{Path: "/a"}}}, "no name"},
		{"zero interval", []Spec{{Name: "x", Rise: 1, Fall: 1, File: &File{Path: "/a"}}}, `"x": interval`},
		{"zero rise", []Spec{{Name: "x", Interval: time.Second, Fall: 1, File: &File{Path: "/a"}}}, `"x": rise`},
		{"relative file", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1, File: &File{Path: "drain"}}}, `"x": file: path`},
		{"bad tcp", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1, TCP: &TCP{Address: "nohost"}}}, `"x": tcp: address`},
		{"bad url", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTP{URL: "ftp://a"}}}, `"x": http: url`},
		{"missing ca", []Spec{{Name: "x", Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTP{URL: "https://a", CAFile: "/nonexistent/ca.pem"}}}, `"x": http:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRunner(quiet, tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRunner: %v, want an error containing %s", err, tc.want)
			}
			r, err := NewRunner(quiet, []Spec{good})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Update(tc.specs); err == nil {
				t.Error("Update accepted it")
			}
			if got := names(r.Results()); got != "drain" {
				t.Errorf("a failed Update changed the checks to %q", got)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	r, err := NewRunner(quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, nil); err == nil {
		t.Error("second Run: no error")
	}
}
