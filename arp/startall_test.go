package arp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// StartAll writes the first announcement of every address before it
// returns, in order, looks the interface up once, and then follows each
// address's schedule like Start; a bad address fails alone.
func TestStartAll(t *testing.T) {
	h := newHarness(t, Schedule{Count: 2, Interval: 200 * time.Millisecond, Refresh: 10 * time.Second})
	lookups := 0
	lookup := h.a.lookup
	h.a.lookup = func(name string) (*net.Interface, error) { lookups++; return lookup(name) }
	ips := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.Addr{}, netip.MustParseAddr("198.51.100.101")}
	errs := h.a.StartAll(context.Background(), "eth0", ips)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("errs = %v, want only the invalid address to fail", errs)
	}
	if lookups != 1 {
		t.Fatalf("%d interface lookups for one StartAll, want 1", lookups)
	}
	s := h.senders["eth0"]
	if len(s.sends) != 2 || s.sends[0].ip != ips[0] || s.sends[1].ip != ips[2] {
		t.Fatalf("sent before StartAll returned: %v", s.sends)
	}
	h.clock.Advance(time.Second)
	for _, ip := range []netip.Addr{ips[0], ips[2]} {
		if got := s.times(ip); !equalDur(got, ms(0, 200)) {
			t.Fatalf("%s: %v, want the burst of 2", ip, got)
		}
	}
	h.a.Stop(ips[0])
	h.clock.Advance(20 * time.Second)
	if got := s.times(ips[0]); len(got) != 2 {
		t.Fatalf("%s announced after Stop: %v", ips[0], got)
	}
	if got := s.times(ips[2]); len(got) != 4 {
		t.Fatalf("%s: %v, want 2 refreshes in 20s", ips[2], got)
	}
	// A cancelled context or a missing interface fails every address.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, errs := range [][]error{h.a.StartAll(ctx, "eth0", ips[:1]), h.a.StartAll(context.Background(), "missing", ips[:1])} {
		if errs[0] == nil {
			t.Fatal("StartAll succeeded with a cancelled context or a missing interface")
		}
	}
}

func TestCachedFor(t *testing.T) {
	now := time.Unix(0, 0)
	calls := 0
	v := false
	f := cachedFor(time.Second, func() time.Time { return now }, func() bool { calls++; return v })
	for _, step := range []struct {
		advance time.Duration
		set     bool
		want    bool
		calls   int
	}{
		{0, false, false, 1},
		{500 * time.Millisecond, true, false, 1}, // cached
		{500 * time.Millisecond, true, true, 2},  // ttl passed: read again
		{100 * time.Millisecond, false, true, 2},
	} {
		now = now.Add(step.advance)
		v = step.set
		if got := f(); got != step.want || calls != step.calls {
			t.Fatalf("at %s: got %v after %d calls, want %v after %d", now.Sub(time.Unix(0, 0)), got, calls, step.want, step.calls)
		}
	}
}
