package addr

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lapseRec records OnLapse calls.
type lapseRec struct {
	mu    sync.Mutex
	calls [][]VIP
	gaps  []time.Duration
}

func (r *lapseRec) on(vips []VIP, gap time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, slices.Clone(vips))
	r.gaps = append(r.gaps, gap)
}

func (r *lapseRec) get() ([][]VIP, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.gaps)
}

// stallKernel is a BatchKernel whose renewals can be made to block, like a
// vipd stopped in the middle of a refresh.
type stallKernel struct {
	*recKernel
	stall chan struct{} // non-nil: the next ReplaceAll waits for it
}

func (k *stallKernel) ReplaceAll(vips []VIP, lifetime time.Duration) []error {
	k.mu.Lock()
	st := k.stall
	k.stall = nil
	k.mu.Unlock()
	if st != nil {
		<-st
	}
	return k.recKernel.ReplaceAll(vips, lifetime)
}

// startStopped binds vips, lets gap pass with the refresh loop not running
// (vipd stopped, starved or hung), applies what the kernel did meanwhile,
// then starts the loop, as SIGCONT would.
func startStopped(t *testing.T, k Kernel, refresh, gap time.Duration, meanwhile func(), vips ...VIP) (*Binder, *lapseRec, context.CancelFunc) {
	t.Helper()
	b := NewBinder(quietLog(), k, 3*time.Second, refresh)
	rec := &lapseRec{}
	b.OnLapse(rec.on)
	for i, err := range b.BindAll(vips) {
		if err != nil {
			t.Fatalf("%s: %v", vips[i], err)
		}
	}
	time.Sleep(gap)
	if meanwhile != nil {
		meanwhile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = b.Run(ctx) }()
	synctest.Wait()
	return b, rec, cancel
}

// The finding of docs/chaos.md (3): vipd stopped longer than the lifetime,
// the kernel removed the VIPs (the dead-man's switch); on resume the
// deletion must not be "restored": the VIPs lapse, the daemon is told once.
func TestStoppedPastLifetimeDeletionIsNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newFakeKernel()
		// Refresh 1h: only the deletion watch can act here.
		b, rec, cancel := startStopped(t, k, time.Hour, 4800*time.Millisecond, func() {
			k.userDelete("eth0", vip4.Addr) // the kernel's expiry
			k.userDelete("eth0", vip6.Addr)
		}, vip4, vip6)
		defer cancel()
		if k.has("eth0", vip4.Addr) || k.has("eth0", vip6.Addr) {
			t.Fatal("a VIP whose lifetime ran out was restored")
		}
		if b.Held(vip4.Addr) || b.Held(vip6.Addr) {
			t.Fatal("lapsed VIPs still held")
		}
		if calls, gaps := rec.get(); len(calls) != 1 || len(calls[0]) != 2 || gaps[0] != 4800*time.Millisecond {
			t.Fatalf("OnLapse calls %v gaps %v, want one with both VIPs and 4.8s", calls, gaps)
		}
		if st := b.Stats(); st.Restores != 0 || st.Lapses != 2 {
			t.Fatalf("stats %+v, want 0 restores, 2 lapses", st)
		}
		// A later bind (the election confirmed ownership) starts afresh.
		if err := b.Bind(vip4); err != nil || !k.has("eth0", vip4.Addr) {
			t.Fatalf("bind after the lapse: %v", err)
		}
	})
}

// Resumed just before the kernel's expiry: the VIP is still there, but the
// next refresh tick must not renew it (it would outlive an ownership that
// may have moved): removed, and the daemon told.
func TestStoppedNearLifetimeRefreshLapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		// The first tick comes 100ms after the start: 2.95s since the bind.
		b, rec, cancel := startStopped(t, k, time.Second, 2850*time.Millisecond, nil, vip4)
		defer cancel()
		if calls, _ := rec.get(); len(calls) != 0 {
			t.Fatalf("lapsed before any tick: %v", calls)
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if k.has("eth0", vip4.Addr) || b.Held(vip4.Addr) {
			t.Fatal("a VIP 2.95s (lifetime 3s) after its last renewal is still there")
		}
		if calls, _ := rec.get(); len(calls) != 1 || calls[0][0] != vip4 {
			t.Fatalf("OnLapse calls %v", calls)
		}
		k.mu.Lock()
		renewals := len(k.at[vip4.Addr])
		k.mu.Unlock()
		if renewals != 1 {
			t.Fatalf("%d adds/renewals, want only the bind", renewals)
		}
	})
}

// A slow vipd (a refresh late, but by less than the lifetime) works as
// before: a deletion is restored, the refresh renews, nobody is told.
func TestLateRefreshWithinLifetimeKeepsWorking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		b, rec, cancel := startStopped(t, k, time.Second, 2*time.Second, func() {
			k.userDelete("eth0", vip4.Addr) // an admin, while vipd was slow
		}, vip4, vip6)
		defer cancel()
		if !k.has("eth0", vip4.Addr) || b.Stats().Restores != 1 {
			t.Fatalf("a deletion 2s after the last renewal (lifetime 3s) was not restored: %+v", b.Stats())
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if calls, _ := rec.get(); len(calls) != 0 || !k.has("eth0", vip4.Addr) || !k.has("eth0", vip6.Addr) {
			t.Fatalf("lapses %v; present %v %v", calls, k.has("eth0", vip4.Addr), k.has("eth0", vip6.Addr))
		}
		k.mu.Lock()
		n := len(k.at[vip6.Addr])
		k.mu.Unlock()
		if n < 6 {
			t.Fatalf("%s renewed %d times in 5s, want a renewal a second again", vip6, n)
		}
	})
}

// Stopped in the middle of a renewal: the request reaches the kernel after
// the lifetime ran out (and re-adds the VIP), so the VIP is removed again at
// once and the daemon told.
func TestStoppedDuringRenewalLapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := &stallKernel{recKernel: newRecKernel()}
		b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
		rec := &lapseRec{}
		b.OnLapse(rec.on)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.Run(ctx) }()
		if err := b.Bind(vip4); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*time.Second + 50*time.Millisecond) // renewed at 1s and 2s
		synctest.Wait()
		stall := make(chan struct{})
		k.mu.Lock()
		k.stall = stall
		k.mu.Unlock()
		time.Sleep(time.Second) // the 3s renewal starts and hangs
		synctest.Wait()
		time.Sleep(2 * time.Second)
		// Expired meanwhile (its notification, read after the resume, is
		// about a VIP no longer held).
		_ = k.Delete("eth0", vip4.Addr)
		close(stall)
		synctest.Wait()
		k.userDelete("eth0", vip4.Addr)
		synctest.Wait()
		if k.has("eth0", vip4.Addr) || b.Held(vip4.Addr) {
			t.Fatal("a renewal that reached the kernel after the lifetime left the VIP bound")
		}
		if calls, _ := rec.get(); len(calls) != 1 {
			t.Fatalf("OnLapse calls %v, want 1", calls)
		}
		if b.Stats().Restores != 0 {
			t.Fatal("restored")
		}
	})
}

// A take of a held VIP that lapsed (the election re-reporting ownership
// before the refresh loop ran) fails with ErrLapsed and removes it.
func TestBindAllRefusesALapsedVIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newRecKernel()
		b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
		b.BindAll([]VIP{vip4})
		time.Sleep(3 * time.Second)
		errs := b.BindAll([]VIP{vip4, vip6})
		if !errors.Is(errs[0], ErrLapsed) || errs[1] != nil {
			t.Fatalf("errs %v, want ErrLapsed for the stale VIP only", errs)
		}
		if k.has("eth0", vip4.Addr) || b.Held(vip4.Addr) || !k.has("eth0", vip6.Addr) {
			t.Fatal("the stale VIP was renewed, or the new one not bound")
		}
	})
}

func TestExpiry(t *testing.T) {
	for _, c := range []struct{ lifetime, want time.Duration }{
		{2 * time.Second, 1900 * time.Millisecond},
		{3 * time.Second, 2900 * time.Millisecond},
		{3500 * time.Millisecond, 2900 * time.Millisecond}, // the kernel gets whole seconds
		{500 * time.Millisecond, 250 * time.Millisecond},
	} {
		if got := expiry(c.lifetime); got != c.want {
			t.Errorf("expiry(%s) = %s, want %s", c.lifetime, got, c.want)
		}
	}
}
