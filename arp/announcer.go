package arp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Schedule says how often a VIP is announced: Count announcements (the first
// at once) spaced by Interval, then one every Refresh (0 = never) for as long
// as the VIP is owned.
type Schedule struct {
	Count    int
	Interval time.Duration
	Refresh  time.Duration
}

// DefaultSchedule matches the internal/config defaults (announce.count,
// announce.interval, announce.refresh).
var DefaultSchedule = Schedule{Count: 5, Interval: 200 * time.Millisecond, Refresh: 10 * time.Second}

// Stats are cumulative counters; Sent counts successful announcements (one
// announcement = all forms for one address), Errors failed ones.
type Stats struct {
	Sent   uint64
	Errors uint64
}

// Clock is the time source of an Announcer; tests inject a fake.
type Clock interface {
	// AfterFunc calls f in its own goroutine after d, like time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the handle AfterFunc returns.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Announcer schedules announcements for several VIPs on several interfaces.
// It keeps one Sender per interface name, opened on first use and reused
// until Close.
type Announcer struct {
	log    *slog.Logger
	sched  Schedule
	open   func(ifi *net.Interface) (Sender, error)
	clock  Clock
	lookup func(name string) (*net.Interface, error)

	sent, errs atomic.Uint64

	mu      sync.Mutex
	senders map[string]*ifSender
	jobs    map[netip.Addr]*job
	closed  bool
	byIf    map[ifFamily]*Stats // counters per interface and family, for metrics
}

// ifFamily keys the per-interface counters.
type ifFamily struct {
	ifname string
	v6     bool
}

// InterfaceStats are the counters of one interface and address family.
type InterfaceStats struct {
	Interface string
	// Family is "ipv4" (gratuitous ARP) or "ipv6" (unsolicited NA).
	Family string
	Stats
}

// ifSender is a cached Sender and the identity of the interface it was
// opened on: a Sender is bound to an ifindex and a MAC, so a recreated
// interface or a changed MAC (bond failover) needs a new one.
type ifSender struct {
	s     Sender
	index int
	mac   string
}

type job struct {
	ip     netip.Addr
	ifname string
	sent   int   // announcements attempted so far
	timer  Timer // pending next announcement; nil when none
	stop   func() bool
	done   bool
}

// NewAnnouncer returns an Announcer. open is usually Open; a Count below 1 is
// treated as 1 and a non-positive Interval as DefaultSchedule.Interval
// (internal/config validates the real values).
func NewAnnouncer(log *slog.Logger, sched Schedule, open func(ifi *net.Interface) (Sender, error)) *Announcer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sched.Count < 1 {
		sched.Count = 1
	}
	if sched.Interval <= 0 {
		sched.Interval = DefaultSchedule.Interval
	}
	if sched.Refresh < 0 {
		sched.Refresh = 0
	}
	return &Announcer{
		log:     log,
		sched:   sched,
		open:    open,
		clock:   realClock{},
		lookup:  net.InterfaceByName,
		senders: map[string]*ifSender{},
		jobs:    map[netip.Addr]*job{},
		byIf:    map[ifFamily]*Stats{},
	}
}

// Start announces ip on interface ifname now (synchronously, before it
// returns), then follows the Schedule until Stop(ip), Close or ctx is done.
// Starting an ip that is already running restarts its burst (e.g. after it
// moved to another interface).
//
// Start fails only when nothing can be scheduled: a bad address, an unknown
// interface or a Sender that cannot be opened. A failed send (including the
// first) is logged and counted and the schedule carries on.
func (a *Announcer) Start(ctx context.Context, ifname string, ip netip.Addr) error {
	if err := checkIP(ip); err != nil {
		return fmt.Errorf("arp: announce %s on %s: %w", ip, ifname, err)
	}
	ip = ip.Unmap()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("arp: announce %s on %s: %w", ip, ifname, err)
	}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return fmt.Errorf("arp: announce %s on %s: %w", ip, ifname, net.ErrClosed)
	}
	if _, err := a.senderLocked(ifname, true); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("arp: announce %s on %s: %w", ip, ifname, err)
	}
	if old := a.jobs[ip]; old != nil {
		a.cancelLocked(old)
	}
	j := &job{ip: ip, ifname: ifname}
	a.jobs[ip] = j
	j.stop = context.AfterFunc(ctx, func() { a.finish(j) })
	a.mu.Unlock()

	a.fire(j)
	return nil
}

// StartAll is Start for several addresses of one interface (a takeover of
// many VIPs): the interface is looked up and checked once, and the first
// announcement of each address is written before StartAll returns, in
// order. errs[i] is ips[i]'s error.
func (a *Announcer) StartAll(ctx context.Context, ifname string, ips []netip.Addr) (errs []error) {
	errs = make([]error, len(ips))
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("arp: announce %s on %s: %w", ips[i], ifname, err)
			}
		}
		return errs
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return fail(net.ErrClosed)
	}
	if _, err := a.senderLocked(ifname, true); err != nil {
		a.mu.Unlock()
		return fail(err)
	}
	jobs := make([]*job, 0, len(ips))
	for i, ip := range ips {
		if err := checkIP(ip); err != nil {
			errs[i] = fmt.Errorf("arp: announce %s on %s: %w", ip, ifname, err)
			continue
		}
		ip = ip.Unmap()
		if old := a.jobs[ip]; old != nil {
			a.cancelLocked(old)
		}
		j := &job{ip: ip, ifname: ifname}
		a.jobs[ip] = j
		j.stop = context.AfterFunc(ctx, func() { a.finish(j) })
		jobs = append(jobs, j)
	}
	a.mu.Unlock()
	for _, j := range jobs {
		a.fire(j)
	}
	return errs
}

// senderLocked returns the Sender of ifname, opening it on first use. With
// check set (on Start, where a changed interface is likely: the caller just
// bound the VIP, perhaps after the link was recreated) it also reopens the
// Sender when the interface's index or MAC changed.
func (a *Announcer) senderLocked(ifname string, check bool) (Sender, error) {
	c := a.senders[ifname]
	if c != nil && !check {
		return c.s, nil
	}
	ifi, err := a.lookup(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	if c != nil {
		if c.index == ifi.Index && c.mac == ifi.HardwareAddr.String() {
			return c.s, nil
		}
		a.log.Info("interface changed; reopening announcement sockets", "interface", ifname,
			"old_index", c.index, "index", ifi.Index, "old_mac", c.mac, "mac", ifi.HardwareAddr.String())
		a.evictLocked(ifname, c.s)
	}
	s, err := a.open(ifi)
	if err != nil {
		return nil, err
	}
	a.senders[ifname] = &ifSender{s: s, index: ifi.Index, mac: ifi.HardwareAddr.String()}
	return s, nil
}

// evictLocked closes and forgets ifname's Sender if it is still s.
func (a *Announcer) evictLocked(ifname string, s Sender) {
	if c := a.senders[ifname]; c != nil && c.s == s {
		delete(a.senders, ifname)
		if err := s.Close(); err != nil {
			a.log.Debug("closing announcement sockets", "interface", ifname, "err", err)
		}
	}
}

// fire sends one announcement for j, then schedules the next one.
func (a *Announcer) fire(j *job) {
	a.mu.Lock()
	if j.done {
		a.mu.Unlock()
		return
	}
	j.sent++
	n := j.sent
	s, err := a.senderLocked(j.ifname, false)
	a.mu.Unlock()

	// Sent outside the lock: a slow write must not block other VIPs.
	if err == nil {
		err = s.Announce(j.ip)
	}
	if errors.Is(err, ErrWrite) {
		// A packet socket reports a link that went down while it was open
		// on its next write, even when the link is up again by now (a
		// node whose link came back and takes the VIP over), and a socket
		// bound to a recreated interface is dead. Reopen and retry once at
		// once: the first announcement after a takeover is the one clients
		// are waiting for, the next is a whole interval away.
		a.mu.Lock()
		a.evictLocked(j.ifname, s)
		var rerr error
		if s, rerr = a.senderLocked(j.ifname, false); rerr != nil {
			err = rerr
		}
		a.mu.Unlock()
		if rerr == nil {
			if err = s.Announce(j.ip); err == nil {
				a.log.Debug("announcement sent on a reopened socket", "ip", j.ip, "interface", j.ifname)
			}
		}
	}
	if err != nil {
		a.errs.Add(1)
		a.log.Warn("announcement failed", "ip", j.ip, "interface", j.ifname, "n", n, "err", err)
		if errors.Is(err, ErrWrite) {
			// The fresh socket failed too: reopen again next time.
			a.mu.Lock()
			a.evictLocked(j.ifname, s)
			a.mu.Unlock()
		}
	} else {
		a.sent.Add(1)
		a.log.Debug("announced", "ip", j.ip, "interface", j.ifname, "n", n)
	}

	next := a.sched.Interval
	if n >= a.sched.Count {
		next = a.sched.Refresh
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := ifFamily{j.ifname, j.ip.Is6()}
	st := a.byIf[k]
	if st == nil {
		st = &Stats{}
		a.byIf[k] = st
	}
	if err != nil {
		st.Errors++
	} else {
		st.Sent++
	}
	if j.done || next <= 0 {
		return
	}
	j.timer = a.clock.AfterFunc(next, func() { a.fire(j) })
}

// Stop stops announcing ip. The interface's Sender stays open for reuse.
func (a *Announcer) Stop(ip netip.Addr) {
	ip = ip.Unmap()
	a.mu.Lock()
	defer a.mu.Unlock()
	if j := a.jobs[ip]; j != nil {
		a.cancelLocked(j)
	}
}

// finish is Stop for one particular job (ctx done); a newer job for the same
// ip is left alone.
func (a *Announcer) finish(j *job) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cancelLocked(j)
}

func (a *Announcer) cancelLocked(j *job) {
	j.done = true
	if j.timer != nil {
		j.timer.Stop()
	}
	if j.stop != nil {
		j.stop()
	}
	if a.jobs[j.ip] == j {
		delete(a.jobs, j.ip)
	}
}

// Close stops every schedule and closes all Senders.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	for _, j := range a.jobs {
		a.cancelLocked(j)
	}
	var err error
	for name, c := range a.senders {
		if cerr := c.s.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("arp: closing sender on %s: %w", name, cerr))
		}
		delete(a.senders, name)
	}
	return err
}

// Stats returns the cumulative counters.
func (a *Announcer) Stats() Stats {
	return Stats{Sent: a.sent.Load(), Errors: a.errs.Load()}
}

// StatsByInterface returns the cumulative counters per interface and
// address family, sorted (the metrics read them at scrape time).
func (a *Announcer) StatsByInterface() []InterfaceStats {
	a.mu.Lock()
	out := make([]InterfaceStats, 0, len(a.byIf))
	for k, st := range a.byIf {
		fam := "ipv4"
		if k.v6 {
			fam = "ipv6"
		}
		out = append(out, InterfaceStats{Interface: k.ifname, Family: fam, Stats: *st})
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y InterfaceStats) int {
		return cmp.Or(cmp.Compare(x.Interface, y.Interface), cmp.Compare(x.Family, y.Family))
	})
	return out
}
