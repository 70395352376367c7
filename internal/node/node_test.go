package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

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
		want  election.Input
	}{
		{"all up", map[string]LinkState{"eth0": up, "bond0": up}, election.Input{Eligible: true, Priority: 150}},
		{"one down", map[string]LinkState{"eth0": up, "bond0": {Exists: true}}, election.Input{Priority: 150, Reason: "link bond0 down"}},
		{"one missing", map[string]LinkState{"bond0": up}, election.Input{Priority: 150, Reason: "link eth0 missing"}},
		{"both bad, sorted, each once", map[string]LinkState{"eth0": {Exists: true}}, election.Input{Priority: 150, Reason: "link bond0 missing, link eth0 down"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Eligibility(g, tc.links); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

type call struct {
	op  string
	vip netip.Addr
}

type recorder struct {
	calls   []call
	bindErr error
}

func (r *recorder) Bind(v addr.VIP) error {
	r.calls = append(r.calls, call{"bind", v.Addr})
	return r.bindErr
}
func (r *recorder) Unbind(v addr.VIP) error {
	r.calls = append(r.calls, call{"unbind", v.Addr})
	return nil
}
func (r *recorder) Start(_ context.Context, _ string, ip netip.Addr) error {
	r.calls = append(r.calls, call{"announce", ip})
	return nil
}
func (r *recorder) Stop(ip netip.Addr) { r.calls = append(r.calls, call{"silence", ip}) }

func TestReportBindsAnnouncesAndReleasesInOrder(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.100")
	b := netip.MustParseAddr("2001:db8::100")
	r := &recorder{}
	m := NewManager(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		[]Group{{Name: "web", Priority: 100, VIPs: []addr.VIP{{Interface: "eth0", Addr: a}, {Interface: "eth0", Addr: b}}}}, r, r)
	at := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", Peer: "n2", At: at})
	want := []call{{"bind", a}, {"announce", a}, {"bind", b}, {"announce", b}}
	if !equalCalls(r.calls, want) {
		t.Fatalf("owner: calls %v, want %v", r.calls, want)
	}
	g := m.Groups()[0]
	if !g.Owner || g.Reason != "elected" || g.Peer != "n2" || !g.Since.Equal(at) || !g.VIPs[0].Bound || !g.VIPs[1].Bound {
		t.Fatalf("status after owning: %+v", g)
	}
	r.calls = nil
	m.Report(election.Transition{Group: "web", Owner: false, Reason: "shutdown", At: at.Add(time.Second)})
	want = []call{{"silence", a}, {"unbind", a}, {"silence", b}, {"unbind", b}}
	if !equalCalls(r.calls, want) {
		t.Fatalf("release: calls %v, want %v", r.calls, want)
	}
	if g := m.Groups()[0]; g.Owner || g.VIPs[0].Bound || g.Reason != "shutdown" {
		t.Fatalf("status after release: %+v", g)
	}
	// A failed bind is shown per VIP and nothing is announced for it.
	r.calls, r.bindErr = nil, errors.New("no such device")
	m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: at})
	if g := m.Groups()[0]; g.VIPs[0].Error != "no such device" || g.VIPs[0].Bound {
		t.Fatalf("status after failed bind: %+v", g)
	}
	for _, c := range r.calls {
		if c.op == "announce" {
			t.Fatalf("announced a VIP that failed to bind: %v", r.calls)
		}
	}
	// Unknown groups are ignored, not a crash.
	m.Report(election.Transition{Group: "nope", Owner: true})
}

func TestReady(t *testing.T) {
	m := NewManager(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		[]Group{{Name: "a"}, {Name: "b"}}, &recorder{}, &recorder{})
	if ok, _ := m.Ready(); !ok {
		t.Fatal("not ready at start")
	}
	m.SetEligibility("b", election.Input{Priority: 100, Reason: "link eth1 down"})
	m.SetEligibility("a", election.Input{Priority: 100, Reason: "link eth0 down"})
	ok, why := m.Ready()
	if ok || why != "not eligible: a: link eth0 down; b: link eth1 down" {
		t.Fatalf("Ready() = %v, %q", ok, why)
	}
}

func equalCalls(a, b []call) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConflictIsCountedAndAnsweredRateLimited(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.100")
	r := &recorder{}
	m := NewManager(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		[]Group{{Name: "web", VIPs: []addr.VIP{{Interface: "eth0", Addr: a}}}}, r, r)
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: now})
	r.calls = nil
	m.Conflict(a, "02:00:00:00:00:99")
	m.Conflict(a, "02:00:00:00:00:99") // within the gap: counted, not answered
	now = now.Add(2 * conflictReactionGap)
	m.Conflict(a, "02:00:00:00:00:98")
	want := []call{{"announce", a}, {"announce", a}}
	if !equalCalls(r.calls, want) {
		t.Fatalf("calls %v, want %v", r.calls, want)
	}
	v := m.Groups()[0].VIPs[0]
	if v.Conflicts != 3 || v.LastConflict != "02:00:00:00:00:98" {
		t.Fatalf("status %+v, want 3 conflicts, last 02:00:00:00:00:98", v)
	}
	// Not owning: counted only.
	m.Report(election.Transition{Group: "web", Owner: false, Reason: "lost", At: now})
	r.calls = nil
	now = now.Add(2 * conflictReactionGap)
	m.Conflict(a, "02:00:00:00:00:97")
	if len(r.calls) != 0 {
		t.Fatalf("a non-owner re-announced: %v", r.calls)
	}
}
