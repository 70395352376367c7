package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

// fakeKernel is an addr.Kernel that keeps addresses in a map and logs
// every change into the shared event log.
type fakeKernel struct {
	log    *eventLog
	mu     sync.Mutex
	addrs  map[netip.Addr]string // -> interface
	failOn map[netip.Addr]error  // Replace fails for these
	// replaces counts every Replace of an address (adds and refreshes).
	replaces map[netip.Addr]int
	// stall, when set, makes the next Replace wait for it to close (a
	// vipd stopped in the middle of a renewal).
	stall chan struct{}
}

func newFakeKernel(log *eventLog) *fakeKernel {
	return &fakeKernel{log: log, addrs: map[netip.Addr]string{}, failOn: map[netip.Addr]error{}, replaces: map[netip.Addr]int{}}
}

func (k *fakeKernel) Replace(ifname string, a netip.Addr, _ time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st := k.stall; st != nil {
		k.stall = nil
		k.log.add("kernel stalled")
		k.mu.Unlock()
		<-st
		k.mu.Lock()
	}
	if err := k.failOn[a]; err != nil {
		return err
	}
	k.replaces[a]++
	if _, ok := k.addrs[a]; !ok {
		k.log.add("kernel add " + a.String())
	}
	k.addrs[a] = ifname
	return nil
}

func (k *fakeKernel) Delete(_ string, a netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.addrs[a]; ok {
		k.log.add("kernel del " + a.String())
	}
	delete(k.addrs, a)
	return nil
}

func (k *fakeKernel) Find(ifname string, a netip.Addr) ([]addr.Found, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.addrs[a]; ok {
		return []addr.Found{{Prefix: netip.PrefixFrom(a, a.BitLen())}}, nil
	}
	return nil, nil
}

func (k *fakeKernel) WatchDeleted(ctx context.Context, _ func(int, netip.Addr)) error {
	<-ctx.Done()
	return nil
}

func (k *fakeKernel) Index(string) (int, error) { return 1, nil }

func (k *fakeKernel) bound() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.addrs)
}

type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, s)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ev...)
}

// fakeElector owns a group while told to (own) and eligible; it reports
// shutdown and then logs its goodbye, as real electors do.
type fakeElector struct {
	log      *eventLog
	inputs   *election.Inputs
	own      chan string
	drop     chan string // report Owner=false "removed" (a reload removed the group)
	errs     chan error  // what Reports returned
	hang     chan struct{}
	notReady string
}

func newFakeElector(log *eventLog, groups ...string) *fakeElector {
	return &fakeElector{log: log, inputs: election.NewInputs(groups), own: make(chan string), drop: make(chan string), errs: make(chan error, 10)}
}

func (e *fakeElector) SetInput(g string, in election.Input) {
	e.log.add(fmt.Sprintf("input %s eligible=%v %s", g, in.Eligible, in.Reason))
	e.inputs.Set(g, in)
}
func (e *fakeElector) Ready() (bool, string) { return e.notReady == "", e.notReady }
func (e *fakeElector) Status() any           { return "fake" }

func (e *fakeElector) Run(ctx context.Context, report election.Reporter) error {
	e.log.add("elector run")
	owned := map[string]bool{}
	for {
		select {
		case g := <-e.own:
			in := e.inputs.Get(g)
			if !in.Eligible {
				continue
			}
			err := report(election.Transition{Group: g, Owner: true, Reason: "told", At: time.Now()})
			owned[g] = err == nil
			e.errs <- err
		case g := <-e.drop:
			if owned[g] {
				_ = report(election.Transition{Group: g, Owner: false, Reason: "removed", At: time.Now()})
			}
			delete(owned, g)
			e.errs <- nil
		case <-e.inputs.Changed():
			for g, o := range owned {
				if o && !e.inputs.Get(g).Eligible {
					_ = report(election.Transition{Group: g, Owner: false, Reason: "ineligible", At: time.Now()})
					owned[g] = false
				}
			}
		case <-ctx.Done():
			if e.hang != nil {
				<-e.hang
			}
			for g, o := range owned {
				if o {
					_ = report(election.Transition{Group: g, Owner: false, Reason: "shutdown", At: time.Now()})
				}
			}
			e.log.add("elector goodbye")
			return nil
		}
	}
}

type fakeLinks struct {
	mu      sync.Mutex
	update  func(map[string]LinkState)
	initial map[string]LinkState // nil: never reports
}

func (l *fakeLinks) Watch(ctx context.Context, _ []string, update func(map[string]LinkState)) error {
	l.mu.Lock()
	l.update = update
	init := l.initial
	l.mu.Unlock()
	if init != nil {
		update(init)
	}
	<-ctx.Done()
	return nil
}

func (l *fakeLinks) set(s map[string]LinkState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.update(s)
}

// fakeConflicts fails the first fails starts, then watches until ctx ends.
type fakeConflicts struct {
	mu     sync.Mutex
	fails  int
	starts int
}

func (c *fakeConflicts) watch(ctx context.Context, _ string, _ func(netip.Addr) bool, _ func(netip.Addr, string)) error {
	c.mu.Lock()
	c.starts++
	fail := c.starts <= c.fails
	c.mu.Unlock()
	if fail {
		return errors.New("socket: network is down")
	}
	<-ctx.Done()
	return nil
}

// pipeListener is an in-memory net.Listener (net.Pipe), so the real HTTP
// endpoints are exercised inside a synctest bubble.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9610} }

// get performs one HTTP GET over a fresh pipe and returns status and body;
// t nil (outside the test goroutine): an error is returned as the body.
func (l *pipeListener) get(t *testing.T, path string) (int, string) {
	if t != nil {
		t.Helper()
	}
	client, server := net.Pipe()
	l.conns <- server
	defer client.Close()
	fmt.Fprintf(client, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil && t == nil {
		return 0, err.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

type rig struct {
	log      *eventLog
	kernel   *fakeKernel
	elector  *fakeElector
	links    *fakeLinks
	confl    *fakeConflicts
	ln       *pipeListener
	cancel   context.CancelFunc
	done     chan error
	announce *recorder
	// spec is what Run starts with; a tweak may change it.
	spec Spec
}

var up = LinkState{Exists: true, Up: true}

func startRig(t *testing.T, tweak func(*rig, *Deps)) *rig {
	log := &eventLog{}
	r := &rig{log: log, kernel: newFakeKernel(log), elector: newFakeElector(log, "web"),
		links: &fakeLinks{initial: map[string]LinkState{"eth0": up}}, confl: &fakeConflicts{},
		ln: newPipeListener(), announce: &recorder{}, done: make(chan error, 1),
		spec: Spec{Node: "n1", Mode: "fake", Lifetime: 3 * time.Second, Refresh: time.Second, Groups: []Group{web}}}
	d := Deps{Log: quiet, Elector: r.elector, Kernel: r.kernel, Announcer: r.announce, Links: r.links,
		Conflicts: r.confl.watch, Listener: r.ln}
	if tweak != nil {
		tweak(r, &d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- Run(ctx, r.spec, d) }()
	synctest.Wait()
	return r
}

func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func contains(evs []string, s string) int {
	for i, e := range evs {
		if e == s {
			return i
		}
	}
	return -1
}

// The whole life of the daemon with fakes: stale VIP removed, inputs from
// the links before anything is owned, a take binds and announces, status and
// endpoints show it, and shutdown removes the VIPs before the elector says
// goodbye; every goroutine has ended when Run returns (synctest checks).
func TestRunLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, func(r *rig, _ *Deps) { r.kernel.addrs[vipA] = "eth0" })
		evs := r.log.all()
		if evs[0] != "kernel del "+vipA.String() {
			t.Fatalf("first event %q, want the stale VIP removed: %v", evs[0], evs)
		}
		// The election starts from the links' real state.
		if in, run := contains(evs, "input web eligible=true "), contains(evs, "elector run"); in < 0 || run < in {
			t.Fatalf("the eligible input from the links must come before the elector runs: %v", evs)
		}
		if code, body := r.ln.get(t, "/readyz"); code != 200 {
			t.Fatalf("/readyz %d %q", code, body)
		}
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		if r.kernel.bound() != 2 {
			t.Fatalf("kernel holds %d VIPs, want 2", r.kernel.bound())
		}
		if code, body := r.ln.get(t, "/status"); code != 200 || !strings.Contains(body, `"owner": true`) || !strings.Contains(body, `"election": "fake"`) {
			t.Fatalf("/status %d %s", code, body)
		}
		if code, _ := r.ln.get(t, "/healthz"); code != 200 {
			t.Fatalf("/healthz %d", code)
		}
		r.stop(t)
		evs = r.log.all()
		bye := contains(evs, "elector goodbye")
		delA, delB := contains(evs, "kernel del "+vipA.String()+""), -1
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i] == "kernel del "+vipB.String() {
				delB = i
				break
			}
		}
		if bye < 0 || delB < 0 || delB > bye {
			t.Fatalf("VIPs must be removed before the elector says goodbye: %v (A %d)", evs, delA)
		}
		if r.kernel.bound() != 0 {
			t.Fatal("VIPs left after Run returned")
		}
	})
}

// A VIP that cannot be bound: the elector's take fails, the group is
// ineligible (with the reason) before the error reaches the elector, /readyz
// says why, and after the backoff the group is eligible again.
func TestRunFailedBindMakesIneligibleThenRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, func(r *rig, _ *Deps) { r.kernel.failOn[vipB] = errors.New("file exists") })
		r.elector.own <- "web"
		err := <-r.elector.errs
		if !errors.Is(err, ErrBind) {
			t.Fatalf("take = %v, want ErrBind", err)
		}
		if in := r.elector.inputs.Get("web"); in.Eligible || !strings.Contains(in.Reason, "bind failed (retry in 2s)") {
			t.Fatalf("input after the failed take: %+v", in)
		}
		if r.kernel.bound() != 0 {
			t.Fatal("a VIP of the failed take is still bound")
		}
		if code, body := r.ln.get(t, "/readyz"); code != 503 || !strings.Contains(body, "file exists") {
			t.Fatalf("/readyz %d %q, want 503 naming the error", code, body)
		}
		r.kernel.mu.Lock()
		delete(r.kernel.failOn, vipB)
		r.kernel.mu.Unlock()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if in := r.elector.inputs.Get("web"); !in.Eligible {
			t.Fatalf("still ineligible after the backoff: %+v", in)
		}
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		r.stop(t)
	})
}

// Link loss: the group becomes ineligible with the link's name, the owner
// gives the VIPs up, /readyz says why; the link returning makes it eligible.
func TestRunLinkLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, nil)
		r.elector.own <- "web"
		<-r.elector.errs
		r.links.set(map[string]LinkState{"eth0": {Exists: true}})
		synctest.Wait()
		if r.kernel.bound() != 0 {
			t.Fatal("VIPs still bound with the link down")
		}
		if code, body := r.ln.get(t, "/readyz"); code != 503 || body != "not eligible: web: link eth0 down" {
			t.Fatalf("/readyz %d %q", code, body)
		}
		r.links.set(map[string]LinkState{"eth0": up})
		synctest.Wait()
		if code, _ := r.ln.get(t, "/readyz"); code != 200 {
			t.Fatalf("/readyz %d after the link came back", code)
		}
		r.stop(t)
	})
}

// The mode's own readiness is part of /readyz, named.
func TestRunModeReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, func(r *rig, _ *Deps) { r.elector.notReady = "refused by peers" })
		if code, body := r.ln.get(t, "/readyz"); code != 503 || body != "fake: refused by peers" {
			t.Fatalf("/readyz %d %q", code, body)
		}
		r.stop(t)
	})
}

// A watcher that fails is restarted with backoff; /healthz shows it failing
// meanwhile and is green again once it runs.
func TestRunRestartsAFailedWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRig(t, func(r *rig, d *Deps) {
			r.confl.fails = 2
			d.RestartMin, d.RestartMax = time.Second, 10*time.Second
		})
		code, body := r.ln.get(t, "/healthz")
		if code != 503 || !strings.Contains(body, "conflicts eth0 watch failing") || !strings.Contains(body, "network is down") {
			t.Fatalf("/healthz %d %q, want 503 naming the failing watch", code, body)
		}
		time.Sleep(time.Second) // first restart: fails again
		synctest.Wait()
		time.Sleep(2 * time.Second) // backoff doubled: now it runs
		synctest.Wait()
		if code, body := r.ln.get(t, "/healthz"); code != 200 {
			t.Fatalf("/healthz %d %q after the restart", code, body)
		}
		r.confl.mu.Lock()
		starts := r.confl.starts
		r.confl.mu.Unlock()
		if starts != 3 {
			t.Fatalf("watch started %d times, want 3", starts)
		}
		r.stop(t)
	})
}

// An elector that does not stop in time: the VIPs are removed without it,
// and Run still waits for it before returning.
func TestRunElectorMissesStopTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := make(chan struct{})
		r := startRig(t, func(r *rig, d *Deps) { r.elector.hang = hang; d.StopTimeout = 10 * time.Second })
		r.elector.own <- "web"
		<-r.elector.errs
		r.cancel()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if r.kernel.bound() != 0 {
			t.Fatal("VIPs still bound after the stop timeout")
		}
		select {
		case <-r.done:
			t.Fatal("Run returned before the elector stopped")
		default:
		}
		close(hang)
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	})
}

// A link watch that never reports delays the election by LinkWait only;
// the groups stay ineligible meanwhile and after.
func TestRunStartsWithoutLinkStatesAfterLinkWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := startRig(t, func(r *rig, _ *Deps) { r.links.initial = nil })
		if got := contains(r.log.all(), "elector run"); got >= 0 {
			t.Fatalf("elector ran before LinkWait: %v", r.log.all())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if contains(r.log.all(), "elector run") < 0 || time.Since(start) != 2*time.Second {
			t.Fatalf("elector did not run after LinkWait (2s): %v", r.log.all())
		}
		if in := r.elector.inputs.Get("web"); in.Eligible || in.Reason != LinksUnknown {
			t.Fatalf("input %+v, want ineligible: %s", in, LinksUnknown)
		}
		r.stop(t)
	})
}
