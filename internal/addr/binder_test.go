package addr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeKernel keeps addresses per interface in memory; deletions made through
// userDelete are delivered to the watcher like netlink would.
type fakeKernel struct {
	mu       sync.Mutex
	addrs    map[string]map[netip.Addr]Found
	lifetime map[netip.Addr]time.Duration
	replaces int
	deleted  chan [2]any
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		addrs:    map[string]map[netip.Addr]Found{"eth0": {}, "eth1": {}},
		lifetime: map[netip.Addr]time.Duration{},
		deleted:  make(chan [2]any, 16),
	}
}

func (k *fakeKernel) Replace(ifname string, a netip.Addr, lifetime time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.addrs[ifname]
	if !ok {
		return errors.New("no such interface")
	}
	m[a] = Found{Prefix: netip.PrefixFrom(a, a.BitLen())}
	k.lifetime[a] = lifetime
	k.replaces++
	return nil
}

func (k *fakeKernel) Delete(ifname string, a netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.addrs[ifname], a)
	return nil
}

// userDelete is someone else removing the address (ip addr del).
func (k *fakeKernel) userDelete(ifname string, a netip.Addr) {
	_ = k.Delete(ifname, a)
	idx, _ := k.Index(ifname)
	k.deleted <- [2]any{idx, a}
}

func (k *fakeKernel) has(ifname string, a netip.Addr) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.addrs[ifname][a]
	return ok
}

func (k *fakeKernel) Find(ifname string, a netip.Addr) ([]Found, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.addrs[ifname][a]; ok {
		return []Found{f}, nil
	}
	return nil, nil
}

func (k *fakeKernel) WatchDeleted(ctx context.Context, fn func(int, netip.Addr)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-k.deleted:
			fn(d[0].(int), d[1].(netip.Addr))
		}
	}
}

func (k *fakeKernel) Index(ifname string) (int, error) {
	return map[string]int{"eth0": 2, "eth1": 3}[ifname], nil
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var (
	vip4 = VIP{Interface: "eth0", Addr: netip.MustParseAddr("198.51.100.100")}
	vip6 = VIP{Interface: "eth0", Addr: netip.MustParseAddr("2001:db8::100")}
)

func TestBindUnbindWithLifetime(t *testing.T) {
	k := newFakeKernel()
	b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
	for _, v := range []VIP{vip4, vip6} {
		if err := b.Bind(v); err != nil {
			t.Fatal(err)
		}
		if !k.has("eth0", v.Addr) || k.lifetime[v.Addr] != 3*time.Second {
			t.Fatalf("%s not bound with lifetime 3s", v)
		}
		if !b.Held(v.Addr) {
			t.Fatalf("%s not held", v)
		}
		if err := b.Unbind(v); err != nil {
			t.Fatal(err)
		}
		if k.has("eth0", v.Addr) || b.Held(v.Addr) {
			t.Fatalf("%s still bound after Unbind", v)
		}
	}
}

func TestDeletedVIPIsRestored(t *testing.T) {
	k := newFakeKernel()
	b := NewBinder(quietLog(), k, 3*time.Second, time.Hour) // no refresh: only the watch can restore
	restored := make(chan VIP, 1)
	b.restored = func(v VIP) { restored <- v }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	if err := b.Bind(vip4); err != nil {
		t.Fatal(err)
	}
	k.userDelete("eth0", vip4.Addr)
	select {
	case <-restored:
	case <-time.After(5 * time.Second):
		t.Fatal("deleted VIP was not restored")
	}
	if !k.has("eth0", vip4.Addr) || b.Stats().Restores != 1 {
		t.Fatalf("after restore: present=%v restores=%d", k.has("eth0", vip4.Addr), b.Stats().Restores)
	}
	// A VIP that is no longer held must stay deleted.
	if err := b.Unbind(vip4); err != nil {
		t.Fatal(err)
	}
	k.userDelete("eth0", vip4.Addr)
	time.Sleep(50 * time.Millisecond)
	if k.has("eth0", vip4.Addr) {
		t.Fatal("an unbound VIP was restored")
	}
	// The same address deleted on another interface is not ours.
	if err := b.Bind(vip4); err != nil {
		t.Fatal(err)
	}
	k.deleted <- [2]any{3, vip4.Addr}
	time.Sleep(50 * time.Millisecond)
	if got := b.Stats().Restores; got != 1 {
		t.Fatalf("restores = %d after a deletion on another interface, want 1", got)
	}
}

func TestRefreshRenewsLifetime(t *testing.T) {
	k := newFakeKernel()
	b := NewBinder(quietLog(), k, 2*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	if err := b.Bind(vip4); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		n := k.replaces
		k.mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d replaces in 5s with a 20ms refresh", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !b.Healthy() {
		t.Fatal("binder with a running refresh loop reports unhealthy")
	}
}

func TestRemoveStale(t *testing.T) {
	k := newFakeKernel()
	b := NewBinder(quietLog(), k, 3*time.Second, time.Second)
	// A leftover of a crashed vipd (host prefix, finite lifetime).
	_ = k.Replace("eth0", vip4.Addr, 3*time.Second)
	removed, err := b.RemoveStale([]VIP{vip4, vip6})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != vip4 || k.has("eth0", vip4.Addr) {
		t.Fatalf("removed = %v, still present = %v", removed, k.has("eth0", vip4.Addr))
	}
	// A permanent /24: someone's real address. Refuse, touch nothing.
	k.addrs["eth0"][vip4.Addr] = Found{Prefix: netip.MustParsePrefix("198.51.100.100/24"), Permanent: true}
	_, err = b.RemoveStale([]VIP{vip4})
	var stale *StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("err = %v, want *StaleError", err)
	}
	if !k.has("eth0", vip4.Addr) {
		t.Fatal("a permanent address was removed")
	}
}
