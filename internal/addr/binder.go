// Package addr holds VIPs on interfaces. Every VIP is bound with a finite
// kernel lifetime that the owner keeps refreshing: if vipd is killed, OOM-killed
// or hangs, the kernel removes the address by itself once the lifetime runs out
// (the dead-man's switch), so a dead process never keeps answering for a VIP.
//
// The switch also fences a process that comes back: once a VIP's lifetime may
// have run out since its last renewal (vipd was stopped, starved or hung for
// that long), the binder never renews or restores it again, since by then
// the election may well have moved it to another node. It removes it and
// tells the daemon (OnLapse), which gives the group up until the election
// has confirmed or changed its owner.
package addr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
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
//
// The VIPs of one interface and address family are a class with its own
// slots. A class whose upkeep is scaled (SetUpkeep, PlanUpkeep: many IPv6
// VIPs on one interface) has its slots visited every Stride ticks only, and
// its VIPs get the scaled lifetime.
type Binder struct {
	log      *slog.Logger
	kernel   Kernel
	batch    BatchKernel // kernel, if it batches; else nil
	lifetime time.Duration
	refresh  time.Duration
	tick     time.Duration // refresh / slotCount(refresh)

	// mu guards held, the classes and retry and serialises every kernel
	// change, so a refresh or a restore can never re-add a VIP that
	// Unbind is removing.
	mu      sync.Mutex
	held    map[netip.Addr]held
	classes map[classKey]*class
	plan    []Upkeep // SetUpkeep's, for Stats
	// ticks is the next refresh tick to consider; tick T is due at
	// base + (T+1)*tick. The loop sleeps over ticks with nothing to renew
	// (planLocked): an idle runtime timer costs several thread wake-ups,
	// and a node holding one VIP or none would otherwise wake ten times a
	// second for nothing (issue #15).
	ticks uint64
	base  time.Time
	// poke tells Run that a VIP went into a slot (holdLocked): its next
	// wake-up may have to come sooner.
	poke chan struct{}
	// retry holds VIPs of scaled classes whose renewal failed, with the
	// tick at which to try again: one refresh interval later, as an
	// unscaled VIP would be, not a scaled interval later.
	retry map[netip.Addr]uint64

	onLapse func(vips []VIP, gap time.Duration) // set before Run; nil: nobody told

	lastRefresh atomic.Int64 // unix nanos of the last completed refresh tick
	restores    atomic.Uint64
	lapses      atomic.Uint64
	refreshErrs atomic.Uint64
	renewals    atomic.Uint64
	restored    func(VIP) // test hook: called after a deleted VIP was re-added
}

type held struct {
	vip  VIP
	cls  *class
	slot int
	// lifetime is the kernel lifetime sent with the renewal at renewed.
	lifetime time.Duration
	// renewed is when the last successful renewal (or add) of the VIP was
	// sent, with the monotonic clock: the kernel's lifetime counts from a
	// moment no earlier than this, so now-renewed never underestimates the
	// age the kernel sees.
	renewed time.Time
}

// ErrLapsed says a VIP was not renewed: its kernel lifetime may have run out
// since its last renewal, so the kernel has removed it (or is about to) and
// this node's ownership is stale until the election confirms it again.
var ErrLapsed = errors.New("VIP lifetime ran out since its last refresh (vipd was stopped, starved or hung)")

// lapseMargin is how much earlier than its lifetime a VIP counts as lapsed:
// the kernel may remove an IPv4 address 20 ms early (ADDRCONF_TIMER_FUZZ_MINUS)
// and stamps it in jiffies (up to 10 ms behind); 100 ms covers both.
const lapseMargin = 100 * time.Millisecond

// expiry is the age (since its last renewal) from which a VIP may be gone:
// the kernel counts whole seconds of the lifetime, less lapseMargin.
func expiry(lifetime time.Duration) time.Duration {
	l := lifetime.Truncate(time.Second)
	if l-lapseMargin <= 0 {
		return max(lifetime/2, time.Millisecond) // sub-second lifetimes exist only in tests
	}
	return l - lapseMargin
}

// classKey names a class: an interface and an address family.
type classKey struct {
	ifname string
	v6     bool
}

func classOf(v VIP) classKey { return classKey{v.Interface, v.Addr.Is6() && !v.Addr.Is4In6()} }

// class is the VIPs of one classKey and how they are kept.
type class struct {
	stride   int           // slots are visited every stride ticks
	lifetime time.Duration // the kernel lifetime its VIPs get
	// slots: tick T renews slots[(T/stride)%len(slots)] when T%stride is
	// 0, a pure function of the tick, so ticks with nothing due can be
	// slept over without bookkeeping.
	slots []map[netip.Addr]VIP
}

// dueSlot returns the slot tick t renews, if any.
func (c *class) dueSlot(t uint64) (map[netip.Addr]VIP, bool) {
	s := uint64(c.stride)
	if t%s != 0 {
		return nil, false
	}
	return c.slots[(t/s)%uint64(len(c.slots))], true
}

func (b *Binder) newClass(stride int, lifetime time.Duration) *class {
	c := &class{stride: max(stride, 1), lifetime: lifetime, slots: make([]map[netip.Addr]VIP, slotCount(b.refresh))}
	for i := range c.slots {
		c.slots[i] = map[netip.Addr]VIP{}
	}
	return c
}

// classLocked returns v's class, unscaled if SetUpkeep did not plan it.
func (b *Binder) classLocked(v VIP) *class {
	k := classOf(v)
	c, ok := b.classes[k]
	if !ok {
		c = b.newClass(1, b.lifetime)
		b.classes[k] = c
	}
	return c
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
		held: map[netip.Addr]held{}, classes: map[classKey]*class{}, retry: map[netip.Addr]uint64{}, poke: make(chan struct{}, 1)}
	b.batch, _ = kernel.(BatchKernel)
	b.lastRefresh.Store(time.Now().UnixNano())
	return b
}

// SetUpkeep sets how the VIPs of each interface and family are kept
// (PlanUpkeep); a class it does not name is renewed every refresh with the
// binder's lifetime. It must be called before anything is bound. Each
// scaled class is logged: its lifetime is how long its VIPs may outlive a
// crashed vipd.
func (b *Binder) SetUpkeep(plan []Upkeep) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plan = slices.Clone(plan)
	for _, u := range plan {
		b.classes[classKey{u.Interface, u.IPv6}] = b.newClass(u.Stride, u.Lifetime)
		if u.Stride > 1 {
			b.log.Info("many VIPs on one interface: renewing them less often to bound the kernel's cost (their lifetime is how long they may outlive a crashed vipd)",
				"interface", u.Interface, "family", u.Family(), "vips", u.VIPs, "refresh", u.Refresh, "lifetime", u.Lifetime,
				"binding.refresh", b.refresh, "binding.lifetime", b.lifetime)
		}
	}
}

// OnLapse sets fn to be called with the VIPs the binder stopped holding
// because their lifetime may have run out since their last renewal, and the
// longest such gap. The VIPs are removed and no longer held when fn runs; fn
// is called from Run's goroutines, never with the binder's lock held (it may
// Unbind), and must be set before Run.
func (b *Binder) OnLapse(fn func(vips []VIP, gap time.Duration)) { b.onLapse = fn }

// stale reports whether h's lifetime may have run out at now.
func (b *Binder) stale(h held, now time.Time) bool {
	l := h.lifetime
	if l == 0 {
		l = b.lifetime
	}
	return now.Sub(h.renewed) >= expiry(l)
}

// lapseLocked stops holding vips and removes them (a VIP that is still
// there, because vipd came back just before the kernel's expiry, must not
// answer for an ownership that may have moved).
func (b *Binder) lapseLocked(vips []VIP) {
	if len(vips) == 0 {
		return
	}
	for _, v := range vips {
		b.dropLocked(v.Addr)
	}
	b.lapses.Add(uint64(len(vips)))
	for i, err := range b.deleteLocked(vips) {
		if err != nil {
			b.log.Error("removing a lapsed VIP", "vip", vips[i], "err", err)
		}
	}
}

// lapseStaleLocked lapses every held VIP whose lifetime may have run out at
// now and returns them with the longest gap since a renewal.
func (b *Binder) lapseStaleLocked(now time.Time) (lapsed []VIP, gap time.Duration) {
	for _, h := range b.held {
		if b.stale(h, now) {
			lapsed = append(lapsed, h.vip)
			gap = max(gap, now.Sub(h.renewed))
		}
	}
	b.lapseLocked(lapsed)
	return lapsed, gap
}

// tellLapsed reports lapsed VIPs (outside the lock).
func (b *Binder) tellLapsed(vips []VIP, gap time.Duration) {
	if len(vips) == 0 {
		return
	}
	b.log.Warn("VIP lifetime ran out since its last refresh (vipd was stopped, starved or hung): not renewing or restoring it; the election must confirm ownership first",
		"vips", len(vips), "first", vips[0], "sinceLastRefresh", gap.Round(time.Millisecond), "lifetime", b.lifetime)
	if b.onLapse != nil {
		b.onLapse(vips, gap)
	}
}

// holdLocked records v in the least filled slot of its class (or keeps its
// slot).
func (b *Binder) holdLocked(v VIP) {
	c := b.classLocked(v)
	if h, ok := b.held[v.Addr]; ok && h.cls == c {
		h.vip = v
		c.slots[h.slot][v.Addr] = v
		b.held[v.Addr] = h
		return
	} else if ok {
		// Same address, another interface: it moves class.
		delete(h.cls.slots[h.slot], v.Addr)
		delete(b.retry, v.Addr)
	}
	// Least filled in the class; among those, the least filled over all
	// classes, so a few VIPs of several classes are not renewed together.
	total := func(i int) (n int) {
		for _, o := range b.classes {
			n += len(o.slots[i])
		}
		return n
	}
	best := 0
	for i := range c.slots {
		if d := len(c.slots[i]) - len(c.slots[best]); d < 0 || d == 0 && total(i) < total(best) {
			best = i
		}
	}
	c.slots[best][v.Addr] = v
	select {
	case b.poke <- struct{}{}:
	default:
	}
	h := b.held[v.Addr]
	h.vip, h.cls, h.slot = v, c, best
	b.held[v.Addr] = h
}

func (b *Binder) dropLocked(a netip.Addr) {
	if h, ok := b.held[a]; ok {
		delete(h.cls.slots[h.slot], a)
		delete(b.held, a)
		delete(b.retry, a)
	}
}

// lifetimeLocked is the lifetime v gets when it is renewed now.
func (b *Binder) lifetimeLocked(v VIP) time.Duration {
	if h, ok := b.held[v.Addr]; ok {
		return h.cls.lifetime
	}
	return b.lifetime
}

// replaceLocked adds or renews vips, each with its class's lifetime (one
// batch per lifetime); errs[i] is vips[i]'s error and lifetimes[i] the
// lifetime sent.
func (b *Binder) replaceLocked(vips []VIP) (errs []error, lifetimes []time.Duration) {
	b.renewals.Add(uint64(len(vips)))
	errs = make([]error, len(vips))
	lifetimes = make([]time.Duration, len(vips))
	byLifetime := map[time.Duration][]int{}
	for i, v := range vips {
		lifetimes[i] = b.lifetimeLocked(v)
		byLifetime[lifetimes[i]] = append(byLifetime[lifetimes[i]], i)
	}
	for _, l := range slices.Sorted(maps.Keys(byLifetime)) {
		idx := byLifetime[l]
		if b.batch != nil {
			part := make([]VIP, len(idx))
			for j, i := range idx {
				part[j] = vips[i]
			}
			for j, err := range b.batch.ReplaceAll(part, l) {
				errs[idx[j]] = err
			}
			continue
		}
		for _, i := range idx {
			errs[i] = b.kernel.Replace(vips[i].Interface, vips[i].Addr, l)
		}
	}
	return errs, lifetimes
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
// unbinds what it gives up. A VIP already held whose lifetime may have run
// out since its last renewal is not renewed but removed, with ErrLapsed.
func (b *Binder) BindAll(vips []VIP) (errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	errs = make([]error, len(vips))
	var lapsed, todo []VIP
	var idx []int
	for i, v := range vips {
		if h, ok := b.held[v.Addr]; ok && b.stale(h, now) {
			errs[i] = fmt.Errorf("%s: %w (%s ago)", v, ErrLapsed, now.Sub(h.renewed).Round(time.Millisecond))
			lapsed = append(lapsed, v)
			continue
		}
		b.holdLocked(v)
		todo = append(todo, v)
		idx = append(idx, i)
	}
	b.lapseLocked(lapsed)
	// A VIP that lapses while being renewed here fails with ErrLapsed;
	// the caller (a take) gives the group up.
	renewed, _, _ := b.renewLocked(todo)
	for j, err := range renewed {
		errs[idx[j]] = err
	}
	return errs
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
	// Lapses counts VIPs given up because their lifetime ran out since
	// their last refresh (vipd was stopped, starved or hung).
	Lapses uint64 `json:"lapses"`
	// Scaled lists the interfaces whose VIPs are renewed less often than
	// binding.refresh, with a longer lifetime, to bound the kernel's cost
	// (PlanUpkeep); their lifetime is how long they may outlive a crashed
	// vipd.
	Scaled []Upkeep `json:"scaled,omitempty"`
}

// Stats returns the binder's counters and its scaled upkeep.
func (b *Binder) Stats() Stats {
	b.mu.Lock()
	var scaled []Upkeep
	for _, u := range b.plan {
		if u.Stride > 1 {
			scaled = append(scaled, u)
		}
	}
	b.mu.Unlock()
	return Stats{Restores: b.restores.Load(), RefreshErrors: b.refreshErrs.Load(), Lapses: b.lapses.Load(), Scaled: scaled}
}

// Run renews held VIPs (each once per refresh interval, spread over it) and
// re-adds a held VIP at once when anyone deletes it, until ctx is done.
func (b *Binder) Run(ctx context.Context) error {
	watchErr := make(chan error, 1)
	watch := func() {
		go func() { watchErr <- b.kernel.WatchDeleted(ctx, b.onDeleted) }()
	}
	watch()
	b.mu.Lock()
	b.base = time.Now()
	next := b.planLocked(b.ticks)
	wait := b.untilLocked(next)
	b.mu.Unlock()
	t := time.NewTimer(wait)
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
		case <-b.poke:
			// A VIP went into a slot: the ticks already past stay
			// skipped (the bind gave it a fresh lifetime), the next may
			// now be due sooner.
			b.mu.Lock()
			passed := uint64(max(time.Since(b.base)/b.tick, 0)) // ticks 0..passed-1 are due by now
			next = b.planLocked(min(next, max(b.ticks, passed)))
			wait = b.untilLocked(next)
			b.mu.Unlock()
			t.Reset(wait)
		case <-t.C:
			b.refreshSlot(next)
			b.mu.Lock()
			if late := time.Since(b.base.Add(time.Duration(next+1) * b.tick)); late > b.refresh {
				// Stopped or starved: keep the cadence from now instead
				// of catching up on every tick missed.
				b.base = b.base.Add(late)
			}
			next = b.planLocked(b.ticks)
			wait = b.untilLocked(next)
			b.mu.Unlock()
			t.Reset(wait)
		}
	}
}

// planLocked returns the first tick from from on that renews something
// (a held VIP's slot, or a failed renewal due again); with none in a
// refresh interval, the last tick of that interval, so the loop still
// runs once per interval (lapses, Healthy).
func (b *Binder) planLocked(from uint64) uint64 {
	n := uint64(slotCount(b.refresh))
	for t := from; t < from+n; t++ {
		for _, c := range b.classes {
			if slot, ok := c.dueSlot(t); ok && len(slot) > 0 {
				return t
			}
		}
		for _, at := range b.retry {
			if at <= t {
				return t
			}
		}
	}
	return from + n - 1
}

// untilLocked returns how long until tick t is due.
func (b *Binder) untilLocked(t uint64) time.Duration {
	return max(time.Until(b.base.Add(time.Duration(t+1)*b.tick)), 0)
}

// refreshSlot lapses every VIP that was not renewed in time and renews the
// VIPs of tick's slot of every class whose turn it is, and the failed
// renewals due again.
func (b *Binder) refreshSlot(tick uint64) {
	b.mu.Lock()
	now := time.Now()
	lapsed, gap := b.lapseStaleLocked(now)
	b.ticks = tick + 1
	var vips []VIP
	for _, c := range b.classes {
		slot, _ := c.dueSlot(tick)
		for _, v := range slot {
			vips = append(vips, v)
		}
	}
	for a, at := range b.retry {
		if at > tick {
			continue
		}
		delete(b.retry, a)
		if h, ok := b.held[a]; ok && !slices.Contains(vips, h.vip) {
			vips = append(vips, h.vip)
		}
	}
	late, lateGap := b.renewHeldLocked(vips)
	if len(late) > 0 {
		// Stopped during the renewal: the other VIPs are as old.
		more, g := b.lapseStaleLocked(time.Now())
		late, lateGap = append(late, more...), max(lateGap, g)
	}
	b.lastRefresh.Store(time.Now().UnixNano())
	b.mu.Unlock()
	b.tellLapsed(append(lapsed, late...), max(gap, lateGap))
}

// refreshAll lapses every VIP that was not renewed in time and renews every
// other held VIP.
func (b *Binder) refreshAll() {
	b.mu.Lock()
	now := time.Now()
	lapsed, gap := b.lapseStaleLocked(now)
	vips := make([]VIP, 0, len(b.held))
	for _, h := range b.held {
		vips = append(vips, h.vip)
	}
	late, lateGap := b.renewHeldLocked(vips)
	if len(late) > 0 {
		// Stopped during the renewal: the other VIPs are as old.
		more, g := b.lapseStaleLocked(time.Now())
		late, lateGap = append(late, more...), max(lateGap, g)
	}
	b.mu.Unlock()
	b.tellLapsed(append(lapsed, late...), max(gap, lateGap))
}

// renewHeldLocked is the refresh loop's renewLocked: errors other than a
// lapse are counted and logged, and a VIP of a scaled class is tried again
// one refresh interval later.
func (b *Binder) renewHeldLocked(vips []VIP) (late []VIP, gap time.Duration) {
	errs, late, gap := b.renewLocked(vips)
	for i, err := range errs {
		if err != nil && !errors.Is(err, ErrLapsed) {
			b.refreshErrs.Add(1)
			b.log.Warn("refreshing VIP lifetime", "vip", vips[i], "err", err)
			if h, ok := b.held[vips[i].Addr]; ok && h.cls.stride > 1 {
				b.retry[vips[i].Addr] = b.ticks + uint64(slotCount(b.refresh)) - 1
			}
		}
	}
	return late, gap
}

// renewLocked adds or renews held vips (none of them stale when the
// caller checked) and records each success. A VIP whose lifetime may have
// run out by the time the request returned (vipd was stopped between the
// check and the system call) may have been re-added by it: it is lapsed at
// once and returned in late (its error is ErrLapsed), with the longest gap.
func (b *Binder) renewLocked(vips []VIP) (errs []error, late []VIP, gap time.Duration) {
	if len(vips) == 0 {
		return nil, nil, 0
	}
	sent := time.Now()
	errs, lifetimes := b.replaceLocked(vips)
	done := time.Now()
	for i, v := range vips {
		h, ok := b.held[v.Addr]
		if !ok {
			continue
		}
		if !h.renewed.IsZero() && b.stale(h, done) {
			errs[i] = fmt.Errorf("%s: %w (%s ago, while renewing)", v, ErrLapsed, done.Sub(h.renewed).Round(time.Millisecond))
			late = append(late, v)
			gap = max(gap, done.Sub(h.renewed))
			continue
		}
		if errs[i] == nil || h.renewed.IsZero() {
			// A new VIP counts from its first attempt even if that
			// failed: the caller unbinds a failed take.
			h.renewed, h.lifetime = sent, lifetimes[i]
			b.held[v.Addr] = h
		}
	}
	b.lapseLocked(late)
	return errs, late, gap
}

func (b *Binder) onDeleted(ifindex int, a netip.Addr) {
	b.mu.Lock()
	h, ok := b.held[a]
	if !ok {
		b.mu.Unlock()
		return
	}
	v := h.vip
	if idx, err := b.kernel.Index(v.Interface); err != nil || idx != ifindex {
		b.mu.Unlock()
		return // the same address went away elsewhere; not ours
	}
	now := time.Now()
	if b.stale(h, now) {
		// Most likely the kernel's own expiry (the dead-man's switch)
		// while vipd did not run: restoring it now could put it beside a
		// new owner's. Its group's other VIPs are as old: all go now.
		lapsed, gap := b.lapseStaleLocked(now)
		b.mu.Unlock()
		b.tellLapsed(lapsed, gap)
		return
	}
	errs, late, gap := b.renewLocked([]VIP{v})
	b.mu.Unlock()
	if len(late) > 0 {
		b.tellLapsed(late, gap)
		return
	}
	if err := errs[0]; err != nil {
		b.log.Error("restoring deleted VIP", "vip", v, "err", err)
		return
	}
	b.restores.Add(1)
	b.log.Warn("VIP was deleted while owned; restored", "vip", v)
	if b.restored != nil {
		b.restored(v)
	}
}
