package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestEligibility(t *testing.T) {
	g := Group{Name: "web", Priority: 150, VIPs: []addr.VIP{
		{Interface: "eth0", Addr: netip.MustParseAddr("198.51.100.100")},
		{Interface: "eth0", Addr: netip.MustParseAddr("2001:db8::100")},
		{Interface: "bond0", Addr: netip.MustParseAddr("203.0.113.100")},
	}}
	up := LinkState{Exists: true, Up: true}
	tests := []struct {
		name  string
		links map[string]LinkState
		hold  string
		want  election.Input
	}{
		{"all up", map[string]LinkState{"eth0": up, "bond0": up}, "", election.Input{Eligible: true, Priority: 150}},
		{"one down", map[string]LinkState{"eth0": up, "bond0": {Exists: true}}, "", election.Input{Priority: 150, Reason: "link bond0 down"}},
		{"one missing", map[string]LinkState{"bond0": up}, "", election.Input{Priority: 150, Reason: "link eth0 missing"}},
		{"both bad, sorted, each once", map[string]LinkState{"eth0": {Exists: true}}, "", election.Input{Priority: 150, Reason: "link bond0 missing, link eth0 down"}},
		{"links not known yet", nil, "", election.Input{Priority: 150, Reason: LinksUnknown}},
		{"bind hold", map[string]LinkState{"eth0": up, "bond0": up}, "bind failed", election.Input{Priority: 150, Reason: "bind failed"}},
		{"link and hold", map[string]LinkState{"eth0": up}, "bind failed", election.Input{Priority: 150, Reason: "link bond0 missing, bind failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Eligibility(g, tc.links, tc.hold); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

type call struct {
	op  string
	vip netip.Addr
}

// recorder is a Binder and an Announcer that records calls in order.
type recorder struct {
	mu      sync.Mutex
	calls   []call
	bindErr map[netip.Addr]error
}

func (r *recorder) add(op string, a netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{op, a})
}

func (r *recorder) Bind(v addr.VIP) error {
	r.add("bind", v.Addr)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bindErr[v.Addr]
}
func (r *recorder) Unbind(v addr.VIP) error { r.add("unbind", v.Addr); return nil }
func (r *recorder) Start(_ context.Context, _ string, ip netip.Addr) error {
	r.add("announce", ip)
	return nil
}
func (r *recorder) Stop(ip netip.Addr) { r.add("silence", ip) }

func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

var (
	vipA = netip.MustParseAddr("198.51.100.100")
	vipB = netip.MustParseAddr("2001:db8::100")
	web  = Group{Name: "web", Priority: 100, VIPs: []addr.VIP{{Interface: "eth0", Addr: vipA}, {Interface: "eth0", Addr: vipB}}}
)

func TestReportBindsAnnouncesAndReleasesInOrder(t *testing.T) {
	r := &recorder{}
	m := NewManager(context.Background(), quiet, []Group{web}, r, r)
	at := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", Peer: "n2", At: at}); err != nil {
		t.Fatal(err)
	}
	// Every VIP is bound before any is announced: a group is taken whole or not at all.
	want := []call{{"bind", vipA}, {"bind", vipB}, {"announce", vipA}, {"announce", vipB}}
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("owner: calls %v, want %v", got, want)
	}
	g := m.Groups()[0]
	if !g.Owner || g.Reason != "elected" || g.Peer != "n2" || !g.Since.Equal(at) || !g.VIPs[0].Bound || !g.VIPs[1].Bound {
		t.Fatalf("status after owning: %+v", g)
	}
	if err := m.Report(election.Transition{Group: "web", Owner: false, Reason: "shutdown", At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	want = []call{{"silence", vipA}, {"unbind", vipA}, {"silence", vipB}, {"unbind", vipB}}
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("release: calls %v, want %v", got, want)
	}
	if g := m.Groups()[0]; g.Owner || g.VIPs[0].Bound || g.Reason != "shutdown" {
		t.Fatalf("status after release: %+v", g)
	}
	// Unknown groups are ignored, not a crash.
	if err := m.Report(election.Transition{Group: "nope", Owner: true}); err != nil {
		t.Fatal(err)
	}
}

// A failed bind undoes the take, announces nothing, makes the group
// ineligible before Report returns, and returns the error.
func TestReportFailedBindStepsDown(t *testing.T) {
	r := &recorder{bindErr: map[netip.Addr]error{vipB: errors.New("no such device")}}
	m := NewManager(context.Background(), quiet, []Group{web}, r, r)
	var failed []string
	m.onBindFailure = func(g string, err error) { failed = append(failed, g+": "+err.Error()) }
	err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()})
	if !errors.Is(err, ErrBind) {
		t.Fatalf("Report = %v, want ErrBind", err)
	}
	want := []call{{"bind", vipA}, {"bind", vipB}, {"unbind", vipA}}
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v (no announcement, the bound VIP removed again)", got, want)
	}
	if len(failed) != 1 || failed[0] != "web: "+err.Error() {
		t.Fatalf("onBindFailure calls %q", failed)
	}
	g := m.Groups()[0]
	if g.Owner || g.VIPs[0].Bound || g.VIPs[1].Bound || g.VIPs[1].Error != "no such device" || g.BindFailures != 1 {
		t.Fatalf("status after failed take: %+v", g)
	}
}

func TestReady(t *testing.T) {
	m := NewManager(context.Background(), quiet, []Group{{Name: "a"}, {Name: "b"}}, &recorder{}, &recorder{})
	if ok, why := m.Ready(); ok || why != "not eligible: a: "+election.AwaitingInput+"; b: "+election.AwaitingInput {
		t.Fatalf("before any input: Ready() = %v, %q", ok, why)
	}
	m.SetEligibility("a", election.Input{Eligible: true, Priority: 100}, Breakdown{})
	m.SetEligibility("b", election.Input{Eligible: true, Priority: 100}, Breakdown{})
	if ok, _ := m.Ready(); !ok {
		t.Fatal("not ready with every group eligible")
	}
	m.SetEligibility("b", election.Input{Priority: 100, Reason: "link eth1 down"}, Breakdown{})
	m.SetEligibility("a", election.Input{Priority: 100, Reason: "link eth0 down"}, Breakdown{})
	ok, why := m.Ready()
	if ok || why != "not eligible: a: link eth0 down; b: link eth1 down" {
		t.Fatalf("Ready() = %v, %q", ok, why)
	}
}

func TestConflictIsCountedAndAnsweredRateLimitedAfterTheHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		one := Group{Name: "web", VIPs: web.VIPs[:1]}
		m := NewManager(ctx, quiet, []Group{one}, r, r)
		_ = m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()})
		r.take()
		m.Conflict(vipA, "02:00:00:00:00:99")
		m.Conflict(vipA, "02:00:00:00:00:99") // within the gap: counted, not answered
		synctest.Wait()
		if got := r.take(); len(got) != 0 {
			t.Fatalf("answered before the hold: %v", got)
		}
		time.Sleep(DefaultConflictHold)
		synctest.Wait()
		if got := r.take(); !slices.Equal(got, []call{{"announce", vipA}}) {
			t.Fatalf("after the hold: calls %v, want one announcement", got)
		}
		time.Sleep(2 * conflictReactionGap)
		m.Conflict(vipA, "02:00:00:00:00:98")
		time.Sleep(DefaultConflictHold)
		synctest.Wait()
		if got := r.take(); !slices.Equal(got, []call{{"announce", vipA}}) {
			t.Fatalf("after the gap: calls %v, want one announcement", got)
		}
		v := m.Groups()[0].VIPs[0]
		if v.Conflicts != 3 || v.LastConflict != "02:00:00:00:00:98" {
			t.Fatalf("status %+v, want 3 conflicts, last 02:00:00:00:00:98", v)
		}
		// Not owning: counted only.
		_ = m.Report(election.Transition{Group: "web", Owner: false, Reason: "lost", At: time.Now()})
		r.take()
		time.Sleep(2 * conflictReactionGap)
		m.Conflict(vipA, "02:00:00:00:00:97")
		time.Sleep(2 * DefaultConflictHold)
		synctest.Wait()
		if got := r.take(); len(got) != 0 {
			t.Fatalf("a non-owner re-announced: %v", got)
		}
		cancel()
		m.Wait()
	})
}

// Issue #11, defect 1: a legitimate new master (keepalived preempting) sends
// its advert and its gratuitous ARPs at once. The conflict arrives while this
// node still owns; the election then makes it step down within the hold. It
// must not re-announce over the new master, then or ever.
func TestConflictNeverReannouncesAfterSteppingDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := NewManager(ctx, quiet, []Group{web}, r, r)
		_ = m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()})
		m.Conflict(vipA, "02:00:00:00:00:99") // the new master's GARP
		time.Sleep(time.Millisecond)
		_ = m.Report(election.Transition{Group: "web", Owner: false, Reason: "higher-priority-advert", At: time.Now()})
		// ...and even if it takes the group back at once (a new epoch), the
		// old reaction stays cancelled.
		_ = m.Report(election.Transition{Group: "web", Owner: true, Reason: "preempt", At: time.Now()})
		r.take()
		time.Sleep(10 * DefaultConflictHold)
		synctest.Wait()
		if got := r.take(); len(got) != 0 {
			t.Fatalf("re-announced after stepping down: %v", got)
		}
		cancel()
		m.Wait()
	})
}

// Reading the status never waits for a transition's netlink calls.
func TestStatusDoesNotWaitForTheKernel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		b := &blockingBinder{release: release}
		m := NewManager(context.Background(), quiet, []Group{web}, b, &recorder{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()})
		}()
		synctest.Wait() // Report is blocked inside Bind
		got := make(chan []GroupStatus)
		go func() { got <- m.Groups() }()
		synctest.Wait()
		select {
		case <-got:
		default:
			t.Fatal("Groups() blocked while a bind was in progress")
		}
		close(release)
		<-done
	})
}

type blockingBinder struct{ release chan struct{} }

func (b *blockingBinder) Bind(addr.VIP) error   { <-b.release; return nil }
func (b *blockingBinder) Unbind(addr.VIP) error { return nil }

// Reporting Owner=true again for an owned group re-announces its VIPs (how
// an elector asks for it: election.Reporter) and changes nothing else: no
// transition, the same Since.
func TestRepeatedOwnerReportReannounces(t *testing.T) {
	r := &recorder{}
	m := NewManager(context.Background(), quiet, []Group{web}, r, r)
	at := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "master-down-timer", At: at}); err != nil {
		t.Fatal(err)
	}
	r.take()
	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "master-down-timer", At: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var announced []netip.Addr
	for _, c := range r.take() {
		if c.op == "announce" {
			announced = append(announced, c.vip)
		}
		if c.op == "unbind" || c.op == "silence" {
			t.Errorf("repeat report: %v", c)
		}
	}
	if !slices.Equal(announced, []netip.Addr{vipA, vipB}) {
		t.Errorf("announced %v again, want both VIPs", announced)
	}
	if g := m.Groups()[0]; !g.Owner || !g.Since.Equal(at) {
		t.Errorf("status after the repeat: owner %v since %v, want the first take's %v", g.Owner, g.Since, at)
	}
}
