// Package addr holds VIPs on interfaces. Every VIP is bound with a finite
// kernel lifetime that the owner keeps refreshing: if vipd is killed, OOM-killed
// or hangs, the kernel removes the address by itself once the lifetime runs out
// (the dead-man's switch), so a dead process never keeps answering for a VIP.
package addr

import (
	"context"
	"errors"
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
//
// The renewals are spread over the refresh interval: every held VIP is in
// one of a few slots (the least filled when it is bound), and the refresh
// loop renews one slot per tick of refresh/slots, so each VIP is renewed
// once per refresh interval, and 1,000 VIPs bound in one takeover cost a
// hundred renewals every 100 ms instead of a burst of 1,000 every second.
// Each slot goes to the kernel as one batch when the Kernel is a
// BatchKernel.
type Binder struct {
	log      *slog.Logger
	kernel   Kernel
	batch    BatchKernel // kernel, if it batches; else nil
	lifetime time.Duration
	refresh  time.Duration
	tick     time.Duration // refresh / len(slots)

	// mu guards held and slots and serialises every kernel change, so a
	// refresh or a restore can never re-add a VIP that Unbind is removing.
	mu    sync.Mutex
	held  map[netip.Addr]held
	slots []map[netip.Addr]VIP
	next  int // the slot the next tick renews

	lastRefresh atomic.Int64 // unix nanos of the last completed refresh tick
	restores    atomic.Uint64
	refreshErrs atomic.Uint64
	renewals    atomic.Uint64
	restored    func(VIP) // test hook: called after a deleted VIP was re-added
}

type held struct {
	vip  VIP
	slot int
}

// slotCount is how many parts the refresh interval is cut into: ticks of at
// least 50 ms, at most 10 per interval.
func slotCount(refresh time.Duration) int {
	return min(10, max(1, int(refresh/(50*time.Millisecond))))
}

// NewBinder returns a binder that gives addresses the kernel lifetime
// lifetime and renews them every refresh.
func NewBinder(log *slog.Logger, kernel Kernel, lifetime, refresh time.Duration) *Binder {
	n := slotCount(refresh)
	b := &Binder{log: log, kernel: kernel, lifetime: lifetime, refresh: refresh, tick: refresh / time.Duration(n),
		held: map[netip.Addr]held{}, slots: make([]map[netip.Addr]VIP, n)}
	for i := range b.slots {
		b.slots[i] = map[netip.Addr]VIP{}
	}
	b.batch, _ = kernel.(BatchKernel)
	b.lastRefresh.Store(time.Now().UnixNano())
	return b
}

// holdLocked records v in the least filled slot (or keeps its slot).
func (b *Binder) holdLocked(v VIP) {
	if h, ok := b.held[v.Addr]; ok {
		delete(b.slots[h.slot], v.Addr)
		b.slots[h.slot][v.Addr] = v
		b.held[v.Addr] = held{vip: v, slot: h.slot}
		return
	}
	best := 0
	for i := range b.slots {
		if len(b.slots[i]) < len(b.slots[best]) {
			best = i
		}
	}
	b.slots[best][v.Addr] = v
	b.held[v.Addr] = held{vip: v, slot: best}
}

func (b *Binder) dropLocked(a netip.Addr) {
	if h, ok := b.held[a]; ok {
		delete(b.slots[h.slot], a)
		delete(b.held, a)
	}
}

// replaceLocked adds or renews vips; errs[i] is vips[i]'s error.
func (b *Binder) replaceLocked(vips []VIP) []error {
	b.renewals.Add(uint64(len(vips)))
	if b.batch != nil {
		return b.batch.ReplaceAll(vips, b.lifetime)
	}
	errs := make([]error, len(vips))
	for i, v := range vips {
		errs[i] = b.kernel.Replace(v.Interface, v.Addr, b.lifetime)
	}
	return errs
}

func (b *Binder) deleteLocked(vips []VIP) []error {
	if b.batch != nil {
		return b.batch.DeleteAll(vips)
	}
	errs := make([]error, len(vips))
	for i, v := range vips {
		errs[i] = b.kernel.Delete(v.Interface, v.Addr)
	}
	return errs
}

// Bind adds v (or refreshes it) and keeps it until Unbind.
func (b *Binder) Bind(v VIP) error {
	return b.BindAll([]VIP{v})[0]
}

// BindAll is Bind for every VIP in one batch (a takeover); errs[i] is
// vips[i]'s error. Every VIP is held, even one that failed: the caller
// unbinds what it gives up.
func (b *Binder) BindAll(vips []VIP) (errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range vips {
		b.holdLocked(v)
	}
	return b.replaceLocked(vips)
}

// Unbind stops holding v and removes it from its interface.
func (b *Binder) Unbind(v VIP) error {
	return b.UnbindAll([]VIP{v})[0]
}

// UnbindAll is Unbind for every VIP in one batch; errs[i] is vips[i]'s error.
func (b *Binder) UnbindAll(vips []VIP) (errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range vips {
		b.dropLocked(v.Addr)
	}
	return b.deleteLocked(vips)
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
	for _, h := range b.held {
		vips = append(vips, h.vip)
	}
	b.mu.Unlock()
	for i, err := range b.UnbindAll(vips) {
		if err != nil {
			b.log.Error("releasing VIP", "vip", vips[i], "err", err)
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

// Run renews held VIPs (each once per refresh interval, spread over it) and
// re-adds a held VIP at once when anyone deletes it, until ctx is done.
func (b *Binder) Run(ctx context.Context) error {
	watchErr := make(chan error, 1)
	watch := func() {
		go func() { watchErr <- b.kernel.WatchDeleted(ctx, b.onDeleted) }()
	}
	watch()
	t := time.NewTicker(b.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrEventsLost) {
				// Deletions may have been missed: renew (and so re-add)
				// every held VIP now, and watch again.
				b.log.Warn("address notifications lost; checking every VIP", "err", err)
				b.refreshAll()
				watch()
				continue
			}
			// Without the watch the periodic refresh still restores a deleted
			// VIP within one refresh interval; keep going but say so.
			b.log.Error("address watch stopped; deleted VIPs are restored by the periodic refresh only", "err", err)
		case <-t.C:
			b.refreshSlot()
		}
	}
}

// refreshSlot renews the VIPs of the next slot.
func (b *Binder) refreshSlot() {
	b.mu.Lock()
	defer b.mu.Unlock()
	slot := b.slots[b.next]
	b.next = (b.next + 1) % len(b.slots)
	vips := make([]VIP, 0, len(slot))
	for _, v := range slot {
		vips = append(vips, v)
	}
	b.renewLocked(vips)
	b.lastRefresh.Store(time.Now().UnixNano())
}

// refreshAll renews every held VIP.
func (b *Binder) refreshAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	vips := make([]VIP, 0, len(b.held))
	for _, h := range b.held {
		vips = append(vips, h.vip)
	}
	b.renewLocked(vips)
}

func (b *Binder) renewLocked(vips []VIP) {
	if len(vips) == 0 {
		return
	}
	for i, err := range b.replaceLocked(vips) {
		if err != nil {
			b.refreshErrs.Add(1)
			b.log.Warn("refreshing VIP lifetime", "vip", vips[i], "err", err)
		}
	}
}

func (b *Binder) onDeleted(ifindex int, a netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.held[a]
	if !ok {
		return
	}
	v := h.vip
	if idx, err := b.kernel.Index(v.Interface); err != nil || idx != ifindex {
		return // the same address went away elsewhere; not ours
	}
	if err := b.replaceLocked([]VIP{v})[0]; err != nil {
		b.log.Error("restoring deleted VIP", "vip", v, "err", err)
		return
	}
	b.restores.Add(1)
	b.log.Warn("VIP was deleted while owned; restored", "vip", v)
	if b.restored != nil {
		b.restored(v)
	}
}
