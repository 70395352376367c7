package arp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock runs timers synchronously from Advance, so schedules are tested
// without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Duration
	f       func()
	stopped bool
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now + d, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves time forward by d, firing due timers in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now + d
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at < c.timers[j].at })
		var next *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if t.at <= end {
				next = t
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
			}
			break
		}
		if next == nil {
			c.now = end
			c.timers = pending(c.timers)
			c.mu.Unlock()
			return
		}
		c.now = next.at
		next.stopped = true
		c.mu.Unlock()
		next.f()
	}
}

func pending(ts []*fakeTimer) []*fakeTimer {
	out := ts[:0]
	for _, t := range ts {
		if !t.stopped {
			out = append(out, t)
		}
	}
	return out
}

type sendRec struct {
	at time.Duration
	ip netip.Addr
}

// fakeSender records announcements with the fake time they happened at.
type fakeSender struct {
	clock  *fakeClock
	ifname string
	mu     sync.Mutex
	sends  []sendRec
	fail   bool
	closed bool
}

func (s *fakeSender) Announce(ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends = append(s.sends, sendRec{s.clock.Now(), ip})
	if s.fail {
		return fmt.Errorf("%w: ENXIO", ErrWrite)
	}
	return nil
}

func (s *fakeSender) Close() error { s.closed = true; return nil }

func (s *fakeSender) times(ip netip.Addr) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, r := range s.sends {
		if r.ip == ip {
			out = append(out, r.at)
		}
	}
	return out
}

type harness struct {
	a       *Announcer
	clock   *fakeClock
	senders map[string]*fakeSender // latest per interface
	index   map[string]int         // ifindex lookup returns
	opens   int
	failNew bool // newly opened senders fail every write
}

func newHarness(t *testing.T, sched Schedule) *harness {
	h := &harness{clock: &fakeClock{}, senders: map[string]*fakeSender{}, index: map[string]int{}}
	h.a = NewAnnouncer(nil, sched, func(ifi *net.Interface) (Sender, error) {
		h.opens++
		if ifi.Name == "broken" {
			return nil, errors.New("operation not permitted")
		}
		s := &fakeSender{clock: h.clock, ifname: ifi.Name, fail: h.failNew}
		h.senders[ifi.Name] = s
		return s, nil
	})
	h.a.clock = h.clock
	h.a.lookup = func(name string) (*net.Interface, error) {
		if name == "missing" {
			return nil, errors.New("no such network interface")
		}
		return &net.Interface{Name: name, Index: h.index[name], HardwareAddr: testMAC}, nil
	}
	t.Cleanup(func() { h.a.Close() })
	return h
}

func ms(ds ...int) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d) * time.Millisecond
	}
	return out
}

func equalDur(a, b []time.Duration) bool {
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

func TestAnnouncerSchedule(t *testing.T) {
	h := newHarness(t, Schedule{Count: 5, Interval: 200 * time.Millisecond, Refresh: 10 * time.Second})
	if err := h.a.Start(context.Background(), "eth0", testV4); err != nil {
		t.Fatal(err)
	}
	s := h.senders["eth0"]
	// The first one is synchronous: sent before Start returned, at t=0.
	if got := s.times(testV4); !equalDur(got, ms(0)) {
		t.Fatalf("after Start: %v, want [0s]", got)
	}
	h.clock.Advance(time.Second)
	if got := s.times(testV4); !equalDur(got, ms(0, 200, 400, 600, 800)) {
		t.Fatalf("burst: %v, want 5 spaced 200ms", got)
	}
	h.clock.Advance(20 * time.Second)
	if got := s.times(testV4); !equalDur(got, ms(0, 200, 400, 600, 800, 10800, 20800)) {
		t.Fatalf("refresh: %v", got)
	}
	if st := h.a.Stats(); st.Sent != 7 || st.Errors != 0 {
		t.Errorf("stats = %+v, want 7/0", st)
	}
	h.a.Stop(testV4)
	h.clock.Advance(time.Minute)
	if n := len(s.times(testV4)); n != 7 {
		t.Errorf("after Stop: %d sends, want 7", n)
	}
	if s.closed {
		t.Error("Stop closed the interface's sender; it should be kept for reuse")
	}
}

func TestAnnouncerNoRefreshCountOne(t *testing.T) {
	h := newHarness(t, Schedule{Count: 1, Interval: 200 * time.Millisecond})
	if err := h.a.Start(context.Background(), "eth0", testV6); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	if got := h.senders["eth0"].times(testV6); !equalDur(got, ms(0)) {
		t.Errorf("sends = %v, want just the first", got)
	}
	if len(h.clock.timers) != 0 {
		t.Errorf("%d timers left pending", len(h.clock.timers))
	}
}

func TestAnnouncerStopDuringBurst(t *testing.T) {
	h := newHarness(t, Schedule{Count: 5, Interval: 200 * time.Millisecond, Refresh: time.Second})
	h.a.Start(context.Background(), "eth0", testV4)
	h.clock.Advance(250 * time.Millisecond)
	h.a.Stop(testV4)
	h.clock.Advance(time.Hour)
	if got := h.senders["eth0"].times(testV4); !equalDur(got, ms(0, 200)) {
		t.Errorf("sends = %v, want [0 200ms]", got)
	}
	h.a.Stop(testV4) // idempotent
	h.a.Stop(netip.MustParseAddr("203.0.113.9"))
}

func TestAnnouncerContextCancel(t *testing.T) {
	h := newHarness(t, Schedule{Count: 3, Interval: 100 * time.Millisecond, Refresh: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	h.a.Start(ctx, "eth0", testV4)
	h.clock.Advance(100 * time.Millisecond)
	cancel()
	// context.AfterFunc runs its callback in a goroutine; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.a.mu.Lock()
		n := len(h.a.jobs)
		h.a.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job not removed after ctx cancel")
		}
		time.Sleep(time.Millisecond)
	}
	h.clock.Advance(time.Hour)
	if got := h.senders["eth0"].times(testV4); !equalDur(got, ms(0, 100)) {
		t.Errorf("sends = %v, want [0 100ms]", got)
	}
	if err := h.a.Start(ctx, "eth0", testV4); err == nil {
		t.Error("Start with done ctx: no error")
	}
}

func TestAnnouncerSenderReuseAndIsolation(t *testing.T) {
	h := newHarness(t, Schedule{Count: 2, Interval: 200 * time.Millisecond})
	ctx := context.Background()
	v4b := netip.MustParseAddr("198.51.100.11")
	v6b := netip.MustParseAddr("2001:db8::11")
	for _, st := range []struct {
		ifn string
		ip  netip.Addr
	}{{"eth0", testV4}, {"eth0", v4b}, {"eth0", testV6}, {"eth1", v6b}} {
		if err := h.a.Start(ctx, st.ifn, st.ip); err != nil {
			t.Fatal(err)
		}
	}
	if h.opens != 2 {
		t.Errorf("opens = %d, want 2 (one per interface)", h.opens)
	}
	h.a.Stop(v4b)
	h.clock.Advance(time.Second)
	for _, c := range []struct {
		ifn  string
		ip   netip.Addr
		want []time.Duration
	}{
		{"eth0", testV4, ms(0, 200)},
		{"eth0", v4b, ms(0)},
		{"eth0", testV6, ms(0, 200)},
		{"eth1", v6b, ms(0, 200)},
		{"eth1", testV4, nil},
	} {
		if got := h.senders[c.ifn].times(c.ip); !equalDur(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.ifn, c.ip, got, c.want)
		}
	}
	// Restarting an ip (e.g. regained ownership) restarts its burst once,
	// without leaving the old schedule running.
	h.a.Start(ctx, "eth0", testV4)
	h.clock.Advance(time.Second)
	if got := h.senders["eth0"].times(testV4); !equalDur(got, ms(0, 200, 1000, 1200)) {
		t.Errorf("restart: %v", got)
	}
	if h.opens != 2 {
		t.Errorf("opens = %d after restart, want 2", h.opens)
	}
	if err := h.a.Close(); err != nil {
		t.Fatal(err)
	}
	if !h.senders["eth0"].closed || !h.senders["eth1"].closed {
		t.Error("Close did not close the senders")
	}
	if err := h.a.Start(ctx, "eth0", testV4); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Start after Close: %v, want net.ErrClosed", err)
	}
}

func TestAnnouncerErrors(t *testing.T) {
	h := newHarness(t, Schedule{Count: 5, Interval: 200 * time.Millisecond})
	ctx := context.Background()
	for _, ip := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("ff02::1")} {
		if err := h.a.Start(ctx, "eth0", ip); err == nil {
			t.Errorf("Start(%v): no error", ip)
		}
	}
	if err := h.a.Start(ctx, "missing", testV4); err == nil {
		t.Error("unknown interface: no error")
	}
	if err := h.a.Start(ctx, "broken", testV4); err == nil {
		t.Error("open failure: no error")
	}
	if err := h.a.Start(ctx, "broken", testV4); err == nil || h.opens != 2 {
		t.Errorf("failed open must be retried: err=%v opens=%d", err, h.opens)
	}
	// A write failure is retried at once on a freshly opened Sender (a
	// packet socket reports a stale "network is down" after a link flap).
	if err := h.a.Start(ctx, "eth0", testV4); err != nil {
		t.Fatal(err)
	}
	s := h.senders["eth0"]
	s.fail = true
	h.clock.Advance(200 * time.Millisecond)
	if st := h.a.Stats(); st.Sent != 2 || st.Errors != 0 {
		t.Errorf("stats = %+v, want 2 sent (the retry succeeded), 0 errors", st)
	}
	if !s.closed || h.opens != 4 || h.senders["eth0"] == s || len(h.senders["eth0"].times(testV4)) != 1 {
		t.Errorf("failed sender closed=%v opens=%d; want it closed and the retry on a new sender", s.closed, h.opens)
	}
	// When the fresh Sender fails too (the link really is down), the
	// failure is counted and logged, the schedule goes on, and the next
	// announcement opens yet another Sender.
	h.failNew = true
	h.senders["eth0"].fail = true
	h.clock.Advance(200 * time.Millisecond)
	if st := h.a.Stats(); st.Sent != 2 || st.Errors != 1 || h.opens != 5 {
		t.Errorf("stats = %+v opens=%d, want 2 sent, 1 error, 5 opens", st, h.opens)
	}
	h.failNew = false
	h.clock.Advance(200 * time.Millisecond)
	if st := h.a.Stats(); st.Sent != 3 || st.Errors != 1 || h.opens != 6 {
		t.Errorf("stats = %+v opens=%d, want 3 sent, 1 error, 6 opens", st, h.opens)
	}
	// The same counts per interface and family (what /metrics shows).
	want := []InterfaceStats{{Interface: "eth0", Family: "ipv4", Stats: Stats{Sent: 3, Errors: 1}}}
	if got := h.a.StatsByInterface(); !reflect.DeepEqual(got, want) {
		t.Errorf("StatsByInterface = %+v, want %+v", got, want)
	}
}

// A VIP re-bound on an interface that was recreated (new ifindex) gets a
// new Sender; an unchanged interface keeps its Sender.
func TestAnnouncerInterfaceChanged(t *testing.T) {
	h := newHarness(t, Schedule{Count: 1, Interval: time.Second})
	ctx := context.Background()
	h.index["eth0"] = 4
	h.a.Start(ctx, "eth0", testV4)
	h.a.Start(ctx, "eth0", testV4)
	first := h.senders["eth0"]
	if h.opens != 1 {
		t.Fatalf("opens = %d, want 1", h.opens)
	}
	h.index["eth0"] = 9
	h.a.Start(ctx, "eth0", testV4)
	if h.opens != 2 || !first.closed || h.senders["eth0"] == first {
		t.Errorf("recreated interface: opens=%d old closed=%v", h.opens, first.closed)
	}
	if n := len(h.senders["eth0"].times(testV4)); n != 1 {
		t.Errorf("new sender sent %d, want 1", n)
	}
}

// With the real clock: the burst really happens, spaced as configured.
func TestAnnouncerRealClock(t *testing.T) {
	s := &fakeSender{clock: &fakeClock{}}
	a := NewAnnouncer(nil, Schedule{Count: 3, Interval: 20 * time.Millisecond}, func(*net.Interface) (Sender, error) { return s, nil })
	a.lookup = func(name string) (*net.Interface, error) { return &net.Interface{Name: name}, nil }
	defer a.Close()
	start := time.Now()
	a.Start(context.Background(), "eth0", testV4)
	for a.Stats().Sent < 3 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("only %d sends after 10s", a.Stats().Sent)
		}
		time.Sleep(time.Millisecond)
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Errorf("3 sends at 20ms spacing took %v, want >= 40ms", el)
	}
}
