// Package addr holds VIPs on interfaces. Every VIP is bound with a finite
// kernel lifetime that the owner keeps refreshing: if vipd is killed, OOM-killed
// or hangs, the kernel removes the address by itself once the lifetime runs out
// (the dead-man's switch), so a dead process never keeps answering for a VIP.
package addr

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// VIP is an address on an interface.
type VIP struct {
	Interface string
	Addr      netip.Addr
}

func (v VIP) String() string { return v.Addr.String() + "%" + v.Interface }

// Binder binds, refreshes and releases VIPs.
type Binder struct {
	log      *slog.Logger
	kernel   Kernel
	lifetime time.Duration
	refresh  time.Duration

	// mu guards held and serialises every kernel change, so a refresh or a
	// restore can never re-add a VIP that Unbind is removing.
	mu   sync.Mutex
	held map[netip.Addr]VIP

	lastRefresh atomic.Int64 // unix nanos of the last completed refresh pass
	restores    atomic.Uint64
	refreshErrs atomic.Uint64
	restored    func(VIP) // test hook: called after a deleted VIP was re-added
}

// NewBinder returns a binder that gives addresses the kernel lifetime
// lifetime and renews them every refresh.
func NewBinder(log *slog.Logger, kernel Kernel, lifetime, refresh time.Duration) *Binder {
	b := &Binder{log: log, kernel: kernel, lifetime: lifetime, refresh: refresh, held: map[netip.Addr]VIP{}}
	b.lastRefresh.Store(time.Now().UnixNano())
	return b
}

// Bind adds v (or refreshes it) and keeps it until Unbind.
func (b *Binder) Bind(v VIP) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held[v.Addr] = v
	return b.kernel.Replace(v.Interface, v.Addr, b.lifetime)
}

// Unbind stops holding v and removes it from its interface.
func (b *Binder) Unbind(v VIP) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.held, v.Addr)
	return b.kernel.Delete(v.Interface, v.Addr)
}

// Held reports whether v is currently held.
func (b *Binder) Held(a netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.held[a]
	return ok
}

// ReleaseAll unbinds every held VIP; used on the way out.
func (b *Binder) ReleaseAll() {
	b.mu.Lock()
	vips := make([]VIP, 0, len(b.held))
	for _, v := range b.held {
		vips = append(vips, v)
	}
	b.mu.Unlock()
	for _, v := range vips {
		if err := b.Unbind(v); err != nil {
			b.log.Error("releasing VIP", "vip", v, "err", err)
		}
	}
}

// StaleError says a configured VIP is present as a permanent address: it was
// added by hand or another tool, and may even be the node's own address, so
// vipd refuses to take it over rather than delete something it does not own.
type StaleError struct {
	VIP   VIP
	Found netip.Prefix
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("VIP %s is configured on %s as permanent address %s (not added by vipd): remove it by hand or fix the config",
		e.VIP.Addr, e.VIP.Interface, e.Found)
}

// RemoveStale removes configured VIPs left on their interfaces by a previous
// run (vipd's own, with a finite lifetime, or host-prefix leftovers of another
// VIP manager). It is called at start-up, before any election, when this node
// owns nothing. A configured VIP present as a permanent non-host address is a
// *StaleError and nothing is removed for it.
func (b *Binder) RemoveStale(vips []VIP) (removed []VIP, err error) {
	for _, v := range vips {
		found, err := b.kernel.Find(v.Interface, v.Addr)
		if err != nil {
			return removed, err
		}
		if len(found) == 0 {
			continue
		}
		for _, f := range found {
			if f.Permanent && !f.Prefix.IsSingleIP() {
				return removed, &StaleError{VIP: v, Found: f.Prefix}
			}
		}
		if err := b.kernel.Delete(v.Interface, v.Addr); err != nil {
			return removed, err
		}
		removed = append(removed, v)
	}
	return removed, nil
}

// Healthy reports whether the refresh loop has run recently: a binder whose
// loop is stuck will soon lose its VIPs to the kernel, so the process is not
// working.
func (b *Binder) Healthy() bool {
	last := time.Unix(0, b.lastRefresh.Load())
	return time.Since(last) < 3*b.refresh
}

// Stats are counters for status and metrics.
type Stats struct {
	Restores      uint64 `json:"restores"`
	RefreshErrors uint64 `json:"refreshErrors"`
}

// Stats returns the binder's counters.
func (b *Binder) Stats() Stats {
	return Stats{Restores: b.restores.Load(), RefreshErrors: b.refreshErrs.Load()}
}

// Run refreshes held VIPs every refresh interval and re-adds a held VIP at
// once when anyone deletes it, until ctx is done.
func (b *Binder) Run(ctx context.Context) error {
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- b.kernel.WatchDeleted(ctx, b.onDeleted)
	}()
	t := time.NewTicker(b.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			// Without the watch the periodic refresh still restores a deleted
			// VIP within one refresh interval; keep going but say so.
			b.log.Error("address watch stopped; deleted VIPs are restored by the periodic refresh only", "err", err)
			watchErr = nil
		case <-t.C:
			b.refreshAll()
		}
	}
}

func (b *Binder) refreshAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range b.held {
		if err := b.kernel.Replace(v.Interface, v.Addr, b.lifetime); err != nil {
			b.refreshErrs.Add(1)
			b.log.Warn("refreshing VIP lifetime", "vip", v, "err", err)
		}
	}
	b.lastRefresh.Store(time.Now().UnixNano())
}

func (b *Binder) onDeleted(ifindex int, a netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.held[a]
	if !ok {
		return
	}
	if idx, err := b.kernel.Index(v.Interface); err != nil || idx != ifindex {
		return // the same address went away elsewhere; not ours
	}
	if err := b.kernel.Replace(v.Interface, v.Addr, b.lifetime); err != nil {
		b.log.Error("restoring deleted VIP", "vip", v, "err", err)
		return
	}
	b.restores.Add(1)
	b.log.Warn("VIP was deleted while owned; restored", "vip", v)
	if b.restored != nil {
		b.restored(v)
	}
}
