package addr

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestScaleUpkeep(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		name                  string
		n                     int
		v6                    bool
		lifetime, refresh     time.Duration
		max                   time.Duration
		stride                int
		wantRefresh, wantLife time.Duration
	}{
		{"none", 0, true, 3 * s, s, 0, 1, s, 3 * s},
		{"10 IPv6", 10, true, 3 * s, s, 0, 1, s, 3 * s},
		// 50 × (15 µs + 14 µs) = 1.45 ms per second: within 2.5 ms.
		{"50 IPv6", 50, true, 3 * s, s, 0, 1, s, 3 * s},
		// 100 × 43 µs = 4.3 ms: every 2 s, 1 s longer.
		{"100 IPv6", 100, true, 3 * s, s, 0, 2, 2 * s, 4 * s},
		// 200 × 71 µs = 14.2 ms: every 6 s.
		{"200 IPv6", 200, true, 3 * s, s, 0, 6, 6 * s, 8 * s},
		// 1000 × 295 µs = 295 ms: every 118 s.
		{"1000 IPv6", 1000, true, 3 * s, s, 0, 118, 118 * s, 120 * s},
		{"1000 IPv6, refresh 2s", 1000, true, 5 * s, 2 * s, 0, 59, 118 * s, 121 * s},
		// Half-second refresh: 2 s + 235 × 0.5 s = 119.5 s, rounded up.
		{"1000 IPv6, refresh 500ms", 1000, true, 2 * s, 500 * time.Millisecond, 0, 236, 118 * s, 120 * s},
		{"1000 IPv6, capped at 10s", 1000, true, 3 * s, s, 10 * s, 8, 8 * s, 10 * s},
		// Lease defaults: leaseDuration 5s - 1s - retryPeriod 500ms.
		{"1000 IPv6, Lease cap 3.5s", 1000, true, 3 * s, s, 3500 * time.Millisecond, 1, s, 3 * s},
		{"cap below lifetime", 1000, true, 3 * s, s, 2 * s, 1, s, 3 * s},
		{"cap and rounding", 1000, true, 2 * s, 700 * time.Millisecond, 4 * s, 3, 2100 * time.Millisecond, 4 * s},
		{"10000 IPv6: 1h at most", 10000, true, 3 * s, s, 0, 3598, 3598 * s, time.Hour},
		{"250 IPv4", 250, false, 3 * s, s, 0, 1, s, 3 * s},
		{"1000 IPv4", 1000, false, 3 * s, s, 0, 4, 4 * s, 6 * s},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, r, l := ScaleUpkeep(c.n, c.v6, c.lifetime, c.refresh, c.max)
			if k != c.stride || r != c.wantRefresh || l != c.wantLife {
				t.Errorf("ScaleUpkeep(%d, v6 %v, %s, %s, max %s) = %d, %s, %s; want %d, %s, %s",
					c.n, c.v6, c.lifetime, c.refresh, c.max, k, r, l, c.stride, c.wantRefresh, c.wantLife)
			}
			if l-r < c.lifetime-c.refresh {
				t.Errorf("slack %s below the unscaled %s", l-r, c.lifetime-c.refresh)
			}
			if l%time.Second != 0 {
				t.Errorf("lifetime %s not whole seconds", l)
			}
		})
	}
}

func TestPlanUpkeep(t *testing.T) {
	vips := manyVIPs(1000)
	vips = append(vips, vips[:10]...) // a VIP in two groups counts once
	for i := range 20 {
		vips = append(vips, VIP{Interface: "eth1", Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})})
		vips = append(vips, VIP{Interface: "eth1", Addr: manyVIPs(20)[i].Addr})
	}
	vips = append(vips, VIP{Interface: "eth0", Addr: netip.MustParseAddr("203.0.113.1")})
	plan := PlanUpkeep(vips, 3*time.Second, time.Second, 0)
	want := []Upkeep{
		{Interface: "eth0", VIPs: 1, Stride: 1, Refresh: time.Second, Lifetime: 3 * time.Second},
		{Interface: "eth0", IPv6: true, VIPs: 1000, Stride: 118, Refresh: 118 * time.Second, Lifetime: 120 * time.Second},
		{Interface: "eth1", VIPs: 20, Stride: 1, Refresh: time.Second, Lifetime: 3 * time.Second},
		{Interface: "eth1", IPv6: true, VIPs: 20, Stride: 1, Refresh: time.Second, Lifetime: 3 * time.Second},
	}
	if len(plan) != len(want) {
		t.Fatalf("plan %+v, want %+v", plan, want)
	}
	for i := range want {
		if plan[i] != want[i] {
			t.Errorf("plan[%d] = %+v, want %+v", i, plan[i], want[i])
		}
	}
	j, err := json.Marshal(plan[1])
	if err != nil || string(j) != `{"interface":"eth0","family":"ipv6","vips":1000,"refresh":"1m58s","lifetime":"2m0s"}` {
		t.Errorf("JSON %s, %v", j, err)
	}
}

// failOnce is a recKernel whose renewal of one address fails once.
type failOnce struct {
	*recKernel
	bad    netip.Addr
	failed bool
}

func (k *failOnce) ReplaceAll(vips []VIP, lifetime time.Duration) []error {
	errs := k.recKernel.ReplaceAll(vips, lifetime)
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, v := range vips {
		if v.Addr == k.bad && !k.failed && len(k.at[v.Addr]) > 1 {
			k.failed = true
			errs[i] = errors.New("test: renewal failed")
		}
	}
	return errs
}

// A scaled class (many IPv6 VIPs on eth0) is renewed every Stride refresh
// intervals, spread over that period, with its own lifetime; an unscaled
// class beside it (IPv4 on eth0) keeps binding.refresh and
// binding.lifetime; a failed renewal of a scaled VIP is retried one
// refresh interval later, not a scaled interval later; nothing lapses.
func TestScaledUpkeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const refresh = time.Second
		rk := newRecKernel()
		v6 := manyVIPs(100)
		k := &failOnce{recKernel: rk, bad: v6[0].Addr}
		b := NewBinder(quietLog(), k, 3*time.Second, refresh)
		v4 := VIP{Interface: "eth0", Addr: netip.MustParseAddr("198.51.100.7")}
		plan := PlanUpkeep(append([]VIP{v4}, v6...), 3*time.Second, refresh, 0)
		if plan[1].Stride != 2 || plan[1].Lifetime != 4*time.Second {
			t.Fatalf("plan %+v, want IPv6 every 2 refreshes with 4s", plan)
		}
		b.SetUpkeep(plan)
		rec := &lapseRec{}
		b.OnLapse(rec.on)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		start := time.Now()
		for i, err := range b.BindAll(append([]VIP{v4}, v6...)) {
			if err != nil {
				t.Fatalf("%d: %v", i, err)
			}
		}
		time.Sleep(12*refresh + refresh/20)
		synctest.Wait()
		if calls, _ := rec.get(); len(calls) != 0 {
			t.Fatalf("lapses %v", calls)
		}
		rk.mu.Lock()
		defer rk.mu.Unlock()
		if rk.lifetime[v4.Addr] != 3*time.Second || rk.lifetime[v6[1].Addr] != 4*time.Second {
			t.Errorf("lifetimes %s (IPv4) and %s (IPv6), want 3s and 4s", rk.lifetime[v4.Addr], rk.lifetime[v6[1].Addr])
		}
		if n := len(rk.at[v4.Addr]); n != 13 {
			t.Errorf("IPv4 VIP bound and renewed %d times in 12s, want 13", n)
		}
		for _, v := range v6[1:] {
			at := rk.at[v.Addr]
			if len(at) != 7 || !at[0].Equal(start) {
				t.Fatalf("%s bound and renewed at %v, want 7 times from the start (every 2s)", v, at)
			}
			for i := 2; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap != 2*refresh {
					t.Fatalf("%s: %s between renewals, want 2s", v, gap)
				}
			}
		}
		// The failed renewal (the first after the bind) was tried again a
		// second later.
		at := rk.at[v6[0].Addr]
		if len(at) < 3 || at[2].Sub(at[1]) != refresh {
			t.Errorf("the failed VIP was renewed at %v, want a retry 1s after the failure", at)
		}
		// IPv6 VIPs are renewed 10 at a time every 200 ms (and the retry),
		// the IPv4 VIP every second in a batch of its own (another lifetime).
		for i, n := range rk.batches[2:] { // after the takeover's two (one per lifetime)
			if n > 11 {
				t.Errorf("batch %d renewed %d VIPs, want at most 11", i+2, n)
			}
		}
		st := b.Stats()
		if len(st.Scaled) != 1 || st.Scaled[0].Interface != "eth0" || !st.Scaled[0].IPv6 {
			t.Errorf("Stats().Scaled = %+v", st.Scaled)
		}
	})
}

// A VIP counts as lapsed by the lifetime it was last given: a scaled VIP
// survives a stop that an unscaled one would not.
func TestStaleUsesTheScaledLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
		v6 := manyVIPs(200)
		v4 := VIP{Interface: "eth1", Addr: netip.MustParseAddr("198.51.100.8")}
		b.SetUpkeep(PlanUpkeep(append([]VIP{v4}, v6...), 3*time.Second, time.Second, 0))
		for _, err := range b.BindAll(append([]VIP{v4}, v6...)) {
			if err != nil {
				t.Fatal(err)
			}
		}
		rec := &lapseRec{}
		b.OnLapse(rec.on)
		time.Sleep(4 * time.Second) // stopped: past 3s, within 8s
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		time.Sleep(150 * time.Millisecond) // one tick
		synctest.Wait()
		calls, _ := rec.get()
		if len(calls) != 1 || len(calls[0]) != 1 || calls[0][0] != v4 {
			t.Fatalf("lapsed %v, want the IPv4 VIP only", calls)
		}
		if !b.Held(v6[0].Addr) || b.Held(v4.Addr) {
			t.Error("the IPv6 VIPs must still be held, the IPv4 one not")
		}
	})
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestSetUpkeepLogsScaledClasses(t *testing.T) {
	var out strings.Builder
	b := NewBinder(slogTo(&out), newFakeKernel(), 3*time.Second, time.Second)
	b.SetUpkeep(PlanUpkeep(manyVIPs(1000), 3*time.Second, time.Second, 0))
	if s := out.String(); !strings.Contains(s, "vips=1000") || !strings.Contains(s, "lifetime=2m0s") || !strings.Contains(s, "refresh=1m58s") {
		t.Errorf("log %q", s)
	}
}
