package addr

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recKernel is a fakeKernel that records when each address was renewed and
// can batch (BatchKernel), counting the batches.
type recKernel struct {
	*fakeKernel
	mu      sync.Mutex
	at      map[netip.Addr][]time.Time
	batches []int // size of each ReplaceAll
	lost    chan struct{}
}

func newRecKernel() *recKernel {
	return &recKernel{fakeKernel: newFakeKernel(), at: map[netip.Addr][]time.Time{}, lost: make(chan struct{}, 1)}
}

func (k *recKernel) ReplaceAll(vips []VIP, lifetime time.Duration) []error {
	k.mu.Lock()
	k.batches = append(k.batches, len(vips))
	for _, v := range vips {
		k.at[v.Addr] = append(k.at[v.Addr], time.Now())
	}
	k.mu.Unlock()
	errs := make([]error, len(vips))
	for i, v := range vips {
		errs[i] = k.Replace(v.Interface, v.Addr, lifetime)
	}
	return errs
}

func (k *recKernel) DeleteAll(vips []VIP) []error {
	errs := make([]error, len(vips))
	for i, v := range vips {
		errs[i] = k.Delete(v.Interface, v.Addr)
	}
	return errs
}

// WatchDeleted ends with ErrEventsLost when lost is signalled.
func (k *recKernel) WatchDeleted(ctx context.Context, fn func(int, netip.Addr)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.lost:
			return fmt.Errorf("test: %w", ErrEventsLost)
		case d := <-k.deleted:
			fn(d[0].(int), d[1].(netip.Addr))
		}
	}
}

func manyVIPs(n int) []VIP {
	out := make([]VIP, n)
	for i := range out {
		b := netip.MustParseAddr("2001:db8:5ca1::").As16()
		b[14], b[15] = byte((i+1)>>8), byte(i+1)
		out[i] = VIP{Interface: "eth0", Addr: netip.AddrFrom16(b)}
	}
	return out
}

// allSlots is every class's slots.
func allSlots(b *Binder) []map[netip.Addr]VIP {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[netip.Addr]VIP
	for _, c := range b.classes {
		out = append(out, c.slots...)
	}
	return out
}

func TestSlotCount(t *testing.T) {
	for _, c := range []struct {
		refresh time.Duration
		want    int
	}{
		{100 * time.Millisecond, 2}, {time.Second, 10}, {10 * time.Second, 10}, {40 * time.Millisecond, 1},
	} {
		if got := slotCount(c.refresh); got != c.want {
			t.Errorf("slotCount(%s) = %d, want %d", c.refresh, got, c.want)
		}
	}
}

// 1,000 VIPs bound in one takeover are renewed a tenth at a time, every
// 100 ms, in one batch each, and every VIP exactly once per refresh
// interval: never later than one interval after its previous renewal.
func TestRefreshIsSpreadAndBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		const refresh = time.Second
		b := NewBinder(quietLog(), k, 3*time.Second, refresh)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		vips := manyVIPs(1000)
		start := time.Now()
		for i, err := range b.BindAll(vips) {
			if err != nil {
				t.Fatalf("%s: %v", vips[i], err)
			}
		}
		time.Sleep(3*refresh + refresh/20)
		synctest.Wait()
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.batches[0] != 1000 {
			t.Fatalf("the takeover was %d batches starting with %d, want one of 1000", len(k.batches), k.batches[0])
		}
		ticks := k.batches[1:]
		if len(ticks) != 30 {
			t.Fatalf("%d refresh batches in 3 intervals, want 30 (one per 100ms tick)", len(ticks))
		}
		for i, n := range ticks {
			if n != 100 {
				t.Errorf("tick %d renewed %d VIPs, want 100", i+1, n)
			}
		}
		for _, v := range vips {
			at := k.at[v.Addr]
			if len(at) != 4 || !at[0].Equal(start) {
				t.Fatalf("%s renewed at %v, want bound at the start and 3 renewals", v, at)
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i].Sub(at[i-1]); gap > refresh {
					t.Fatalf("%s: %s between renewals, more than the refresh interval", v, gap)
				}
			}
		}
		if !b.Healthy() {
			t.Error("binder unhealthy with a running refresh loop")
		}
	})
}

// VIPs bound one at a time fill the slots evenly, and an unbound VIP leaves
// its slot (it is no longer renewed).
func TestSlotsStayBalanced(t *testing.T) {
	k := newRecKernel()
	b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
	vips := manyVIPs(25)
	for _, v := range vips {
		if err := b.Bind(v); err != nil {
			t.Fatal(err)
		}
	}
	// Binding again keeps the slot.
	if err := b.Bind(vips[0]); err != nil {
		t.Fatal(err)
	}
	sizes := func() (lo, hi int) {
		lo = 1 << 30
		for _, s := range allSlots(b) {
			lo, hi = min(lo, len(s)), max(hi, len(s))
		}
		return lo, hi
	}
	if lo, hi := sizes(); lo != 2 || hi != 3 {
		t.Fatalf("slot sizes %d..%d for 25 VIPs in 10 slots, want 2..3", lo, hi)
	}
	for _, err := range b.UnbindAll(vips[:20]) {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, s := range allSlots(b) {
		total += len(s)
	}
	if total != 5 || len(b.held) != 5 {
		t.Fatalf("%d VIPs in slots, %d held after unbinding 20 of 25", total, len(b.held))
	}
	for _, v := range vips[:20] {
		if k.has("eth0", v.Addr) {
			t.Fatalf("%s still bound", v)
		}
	}
}

// Lost address notifications (a receive-buffer overrun) may hide a
// deletion: every held VIP is renewed at once, which re-adds a deleted one,
// and the watch is started again.
func TestLostEventsRenewEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		b := NewBinder(quietLog(), k, 3*time.Second, time.Hour) // no periodic refresh to speak of
		restored := make(chan VIP, 1)
		b.restored = func(v VIP) { restored <- v }
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		vips := manyVIPs(3)
		b.BindAll(vips)
		_ = k.Delete("eth0", vips[1].Addr) // deleted, and the notification lost
		k.lost <- struct{}{}
		synctest.Wait()
		if !k.has("eth0", vips[1].Addr) {
			t.Fatal("a VIP deleted while notifications were lost was not re-added")
		}
		// The watch runs again: a later deletion is restored at once.
		k.userDelete("eth0", vips[2].Addr)
		synctest.Wait()
		select {
		case v := <-restored:
			if v != vips[2] {
				t.Fatalf("restored %s, want %s", v, vips[2])
			}
		default:
			t.Fatal("the watch did not restart after lost events")
		}
	})
}

// The loop wakes only for slots that hold a VIP: with none it still runs
// once per refresh interval (Healthy), and a VIP bound later into an empty
// slot is renewed once per interval, never later.
func TestRefreshOnlyHeldSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		const refresh = time.Second
		b := NewBinder(quietLog(), k, 3*time.Second, refresh)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		time.Sleep(5*refresh + refresh/3)
		synctest.Wait()
		if !b.Healthy() {
			t.Fatal("a binder holding nothing is not healthy")
		}
		if err := b.Bind(vip4); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * refresh)
		synctest.Wait()
		k.mu.Lock()
		at := k.at[vip4.Addr]
		k.mu.Unlock()
		if len(at) != 6 {
			t.Fatalf("bound and renewed %d times in 5 intervals, want 1+5", len(at))
		}
		for i := 1; i < len(at); i++ {
			if d := at[i].Sub(at[i-1]); d > refresh {
				t.Errorf("renewal %d came %s after the previous one, more than %s", i, d, refresh)
			}
		}
	})
}
