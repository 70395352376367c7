package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestHoldingsAndOverlaps(t *testing.T) {
	vip := netip.MustParsePrefix("198.51.100.101/32")
	other := netip.MustParsePrefix("198.51.100.102/32")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// ev builds events in the kernel's order; at is the receive time in µs.
	ev := func(steps ...string) []AddrEvent {
		var out []AddrEvent
		for i, s := range steps {
			var host, op string
			var at int
			var p = vip
			if strings.HasSuffix(s, "'") {
				p, s = other, strings.TrimSuffix(s, "'")
			}
			if _, err := fmt.Sscanf(s, "%s %s %d", &host, &op, &at); err != nil {
				t.Fatalf("step %q: %v", s, err)
			}
			out = append(out, AddrEvent{Seq: uint64(i + 1), At: t0.Add(time.Duration(at) * time.Microsecond),
				Host: host, Addr: p, Added: op == "add"})
		}
		return out
	}
	now := t0.Add(time.Second)
	for _, tc := range []struct {
		name     string
		events   []AddrEvent
		holdings string // host[from..to] by Seq, to 0: open
		overlaps []string
		forUS    []int // Overlap.For in µs
	}{
		{name: "none", holdings: ""},
		{
			name:     "handover read with inverted stamps is no overlap (the CI failure)",
			events:   ev("node2 add 0", "node2 del 10930018", "node1 add 10930000"),
			holdings: "node2[1..2] node1[3..0]",
		},
		{
			name:     "refresh is not a new holding; other addresses ignored",
			events:   ev("node1 add 0", "node1 add 10", "node2 add 20'", "node1 del 30", "node2 add 40"),
			holdings: "node1[1..4] node2[5..0]",
		},
		{
			name:     "delete of an unheld address ignored",
			events:   ev("node1 del 0", "node1 add 10"),
			holdings: "node1[2..0]",
		},
		{
			name:     "add before the other's delete is an overlap, even with stamps saying otherwise",
			events:   ev("node1 add 0", "node2 add 100", "node1 del 50"),
			holdings: "node1[1..3] node2[2..0]",
			overlaps: []string{"node2 added it (event #2) before node1 removed it (#3)"},
			forUS:    []int{0},
		},
		{
			name:     "two open holdings overlap until now",
			events:   ev("node1 add 0", "node2 add 100"),
			holdings: "node1[1..0] node2[2..0]",
			overlaps: []string{"node2 added it (event #2) while node1 held it (since #1)"},
			forUS:    []int{999900},
		},
		{
			name:     "overlap figure from the stamps",
			events:   ev("node1 add 0", "node2 add 100", "node3 add 200", "node2 del 250", "node1 del 400"),
			holdings: "node1[1..5] node2[2..4] node3[3..0]",
			overlaps: []string{
				"node2 added it (event #2) before node1 removed it (#5)",
				"node3 added it (event #3) before node1 removed it (#5)",
				"node3 added it (event #3) before node2 removed it (#4)",
			},
			forUS: []int{150, 200, 50},
		},
		{
			name: "a tentative address is not held yet",
			events: append(ev("node1 add 0"), AddrEvent{Seq: 2, Host: "node2", Addr: vip, Added: true, Tentative: true},
				AddrEvent{Seq: 3, Host: "node1", Addr: vip}, AddrEvent{Seq: 4, Host: "node2", Addr: vip, Added: true}),
			holdings: "node1[1..3] node2[4..0]",
		},
		{
			name:     "same host twice is no overlap",
			events:   ev("node1 add 0", "node1 del 10", "node1 add 20"),
			holdings: "node1[1..2] node1[3..0]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := HoldingsOf(tc.events, vip.Addr())
			var got []string
			for _, h := range hs {
				got = append(got, fmt.Sprintf("%s[%d..%d]", h.Host, h.From.Seq, h.To.Seq))
			}
			if g := strings.Join(got, " "); g != tc.holdings {
				t.Errorf("holdings %q, want %q", g, tc.holdings)
			}
			ov := Overlaps(hs, now)
			if len(ov) != len(tc.overlaps) {
				t.Fatalf("overlaps %v, want %v", ov, tc.overlaps)
			}
			for i, o := range ov {
				if o.String() != tc.overlaps[i] || o.For != time.Duration(tc.forUS[i])*time.Microsecond {
					t.Errorf("overlap %d: %q for %s, want %q for %dµs", i, o, o.For, tc.overlaps[i], tc.forUS[i])
				}
			}
		})
	}
}

// TestAddrWatchOrder: moves of an address between two namespaces, made
// back to back from one goroutine, are reported in the order they were made
// (no overlap, whatever the load); adding on the second host before deleting
// on the first is reported as an overlap every time. Hosts not watched are
// not reported.
func TestAddrWatchOrder(t *testing.T) {
	l := New(t, Options{Nodes: 2})
	a, b := l.Nodes[0], l.Nodes[1]
	w := WatchAddrs(t, a, b)
	const rounds = 200
	type step struct {
		h   *Host
		add bool
	}
	run := func(t *testing.T, steps []step, vips ...netip.Prefix) {
		t.Helper()
		links := map[*Host]netlink.Link{}
		for _, h := range []*Host{a, b, l.Client} {
			eth, err := h.eth()
			if err != nil {
				t.Fatal(err)
			}
			links[h] = eth
		}
		before := len(w.Events())
		last := uint64(before) // the last event expected so far
		var done []string      // what was done to the watched hosts, in order
		for range rounds {
			for _, p := range vips {
				for _, s := range steps {
					if s.h != l.Client {
						done = append(done, fmt.Sprintf("%s add=%v %s", s.h.Name, s.add, p))
					}
					na := &netlink.Addr{IPNet: prefixToIPNet(p)}
					if p.Addr().Is6() {
						na.Flags = nodadFlag
					}
					var err error
					if s.add {
						err = s.h.nl.AddrAdd(links[s.h], na)
					} else {
						err = s.h.nl.AddrDel(links[s.h], na)
					}
					if err != nil {
						t.Fatalf("%s add=%v %s: %v", s.h.Name, s.add, p, err)
					}
					// An IPv6 address is added (and announced) by the
					// kernel's addrconf work just after AddrAdd returns:
					// wait for it, as for the address to answer.
					if s.add && p.Addr().Is6() && s.h != l.Client {
						ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
						_, err := w.Next(ctx, last, func(e AddrEvent) bool { return e.Host == s.h.Name && e.Addr == p && e.Added })
						cancel()
						if err != nil {
							t.Fatalf("%s: no RTM_NEWADDR for %s: %v", s.h.Name, p, err)
						}
					}
					if s.h != l.Client {
						last++
					}
				}
			}
		}
		want := before + len(done) // the client's changes must not show
		deadline := time.Now().Add(20 * time.Second)
		for len(w.Events()) < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(w.Events()); n != want {
			t.Fatalf("%d events, want %d", n, want)
		}
		if err := w.Err(); err != nil {
			t.Fatal(err)
		}
		for i, e := range w.Events()[before:] {
			if got := fmt.Sprintf("%s add=%v %s", e.Host, e.Added, e.Addr); got != done[i] || e.Seq != uint64(before+i+1) {
				t.Fatalf("event #%d: %q, want %q (the order as done)", e.Seq, got, done[i])
			}
		}
	}
	count := func(vip netip.Prefix) (holdings, overlaps int, worst time.Duration) {
		hs := w.Holdings(vip.Addr())
		ov := Overlaps(hs, time.Now())
		for _, o := range ov {
			worst = max(worst, o.For)
		}
		return len(hs), len(ov), worst
	}
	vip4, vip6 := netip.PrefixFrom(l.VIPv4(1), 32), netip.PrefixFrom(l.VIPv6(1), 128)

	t.Run("handover", func(t *testing.T) {
		run(t, []step{{a, true}, {a, false}, {b, true}, {b, false}, {l.Client, true}, {l.Client, false}}, vip4, vip6)
		for _, v := range []netip.Prefix{vip4, vip6} {
			n, o, _ := count(v)
			if n != 2*rounds || o != 0 {
				t.Errorf("%s: %d holdings (want %d), %d overlaps (want 0): %v", v, n, 2*rounds, o, Overlaps(w.Holdings(v.Addr()), time.Now())[:min(o, 3)])
			}
		}
	})

	vip4, vip6 = netip.PrefixFrom(l.VIPv4(2), 32), netip.PrefixFrom(l.VIPv6(2), 128)
	t.Run("add before delete", func(t *testing.T) {
		run(t, []step{{a, true}, {b, true}, {a, false}, {b, false}}, vip4, vip6)
		for _, v := range []netip.Prefix{vip4, vip6} {
			n, o, worst := count(v)
			if n != 2*rounds || o != rounds {
				t.Errorf("%s: %d holdings (want %d), %d overlaps (want %d)", v, n, 2*rounds, o, rounds)
			}
			t.Logf("%s: %d overlaps, longest by the receive stamps %s", v, o, worst)
		}
	})
}
