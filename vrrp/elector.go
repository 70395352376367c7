package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/election"
)

// GroupSpec is one vipd group as VRRP sees it: one virtual router per
// address family of its VIPs, all with the same VRID, kept in sync.
type GroupSpec struct {
	Name         string
	VRID         uint8
	Interface    string
	Interval     time.Duration
	Preempt      bool
	PreemptDelay time.Duration
	VIPs         []netip.Addr // both families; each VR advertises its own
	Peers        []netip.Addr // unicast peers; empty = multicast
	// MinPeerInterval and MaxPeerInterval bound the Max Advertise Interval
	// accepted in other routers' adverts, which a backup adopts as
	// Master_Adver_Interval: adverts outside are dropped (interval-range),
	// so one spoofed advert cannot stretch Master_Down_Interval. Zero means
	// Interval (only adverts announcing our own interval are accepted).
	MinPeerInterval time.Duration
	MaxPeerInterval time.Duration
	// Sources are the unicast source addresses, at most one per family
	// (keepalived unicast_src_ip); a family without one sends from the
	// Conn's Source.
	Sources []netip.Addr
}

// peerIntervals returns the accepted range of other routers' intervals.
func (g GroupSpec) peerIntervals() (lo, hi time.Duration) {
	lo, hi = g.MinPeerInterval, g.MaxPeerInterval
	if lo == 0 {
		lo = g.Interval
	}
	if hi == 0 {
		hi = g.Interval
	}
	return lo, hi
}

// Options tune an Elector; the zero value means real sockets and clock.
type Options struct {
	Open OpenFunc         // default Open (raw sockets)
	Now  func() time.Time // monotonic clock; default time.Now
}

// Elector is the VRRP election.Elector: one RFC 5798 state machine per
// group and family, one socket per interface and family.
type Elector struct {
	log    *slog.Logger
	groups []GroupSpec
	inputs *election.Inputs
	open   OpenFunc
	now    func() time.Time
	// realTime: real sockets and clock (Options zero), so the runner may
	// sleep on a timerfd rather than a runtime timer.
	realTime bool

	// reconf carries Reconfigure's requests into Run, which alone touches
	// the routers; running is non-nil while Run runs, closed when it ends.
	reconf chan reconfigure

	mu       sync.Mutex
	running  chan struct{}
	drops    map[DropReason]uint64
	rx, tx   uint64
	txErrs   uint64
	status   []VRStatus
	notReady string // why a socket cannot send, empty when all can
	kdrops   []KernelDrops
}

// VRStatus is one virtual router in /status.
type VRStatus struct {
	Group     string `json:"group"`
	Family    int    `json:"family"`
	VRID      uint8  `json:"vrid"`
	Interface string `json:"interface"`
	Source    string `json:"source,omitempty"`
	State     string `json:"state"`
	// Priority is the daemon's effective priority (base plus weights);
	// Advertised is what goes on the wire and is compared: 0 while
	// ineligible, 1 while degraded, Priority otherwise.
	Priority   uint8 `json:"priority"`
	Advertised uint8 `json:"advertised"`
	// Degraded: a last resort (a gate check fails, the group's policy is
	// keep); Input is the daemon's reason for the current input.
	Degraded       bool   `json:"degraded,omitempty"`
	Input          string `json:"input,omitempty"`
	Master         string `json:"master,omitempty"`
	MasterPriority uint8  `json:"masterPriority,omitempty"`
	MasterInterval string `json:"masterInterval"`
	// AcceptedIntervals is the range of Max Advertise Intervals accepted
	// from other routers ("100ms" or "50ms..1s").
	AcceptedIntervals string `json:"acceptedIntervals"`
	// Collision: adverts for our VRID with another address list were seen
	// (another virtual router, a foreign cluster, uses the VRID); dropped.
	Collision *Collision `json:"collision,omitempty"`
	// RejectedInterval: adverts announcing an interval outside
	// AcceptedIntervals were seen; dropped.
	RejectedInterval *RejectedInterval `json:"rejectedInterval,omitempty"`
}

// Collision describes the last advert of another virtual router with our
// VRID (its address list differs from ours) and how many were dropped.
type Collision struct {
	Source    string    `json:"source"`
	Addresses []string  `json:"addresses"`
	Count     uint64    `json:"count"`
	LastSeen  time.Time `json:"lastSeen"`
}

// RejectedInterval describes the last advert dropped for its interval and
// how many were.
type RejectedInterval struct {
	Source   string    `json:"source"`
	Priority uint8     `json:"priority"`
	Interval string    `json:"interval"`
	Count    uint64    `json:"count"`
	LastSeen time.Time `json:"lastSeen"`
}

// Status is the VRRP part of /status.
type Status struct {
	Routers []VRStatus `json:"routers"`
	// Received counts valid adverts, Sent adverts sent, SendErrors failed sends.
	Received   uint64 `json:"received"`
	Sent       uint64 `json:"sent"`
	SendErrors uint64 `json:"sendErrors"`
	// Dropped counts discarded packets by reason.
	Dropped map[string]uint64 `json:"dropped"`
}

// New returns an elector for groups.
func New(groups []GroupSpec, log *slog.Logger, o Options) *Elector {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	in := election.NewInputs(names)
	// Real sockets and clock: the runner sleeps on a timerfd (waker.go).
	realTime := o.Open == nil && o.Now == nil
	if o.Open == nil {
		o.Open = Open
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Elector{log: log.With("election", "vrrp"), groups: slices.Clone(groups), inputs: in, open: o.Open, now: o.Now, realTime: realTime,
		drops: map[DropReason]uint64{}, reconf: make(chan reconfigure)}
}

type reconfigure struct {
	specs []GroupSpec
	done  chan error
}

// Reconfigure applies a new list of groups while Run runs (a reload, the
// contract of modes.Mode.Reload), matching groups by name:
//   - an added group gets its routers, which start in Backup as at start
//     (the daemon has set its input first); sockets for a new interface or
//     family are opened as at start;
//   - a removed group that was owned is reported Owner=false (reason
//     "removed") and its routers send their priority-0 advert, before
//     Reconfigure returns;
//   - a kept group is changed in place: its VIP list (the next adverts
//     carry it), advert interval, preempt, preempt delay, unicast peers and
//     sources, accepted peer intervals. A change of VRID, interface or the
//     set of address families makes other routers (the wire identity
//     changes), so the group is removed (reason "reconfigured") and added.
//
// A router whose settings did not change neither changes state nor sends
// anything. On error (invalid specs, a socket that cannot be opened)
// nothing is changed. Before Run starts (or after it ended) it only
// replaces the list.
func (e *Elector) Reconfigure(specs []GroupSpec) error {
	if err := checkSpecs(specs); err != nil {
		return err
	}
	req := reconfigure{specs: slices.Clone(specs), done: make(chan error, 1)}
	e.mu.Lock()
	running := e.running
	if running == nil {
		e.groups = req.specs
	}
	e.mu.Unlock()
	if running == nil {
		return nil
	}
	select {
	case e.reconf <- req:
		return <-req.done
	case <-running:
		e.mu.Lock()
		e.groups = req.specs
		e.mu.Unlock()
		return nil
	}
}

// checkSpecs refuses what would make two routers one: two groups with one
// name, or one VRID twice on an interface and family.
func checkSpecs(specs []GroupSpec) error {
	names := map[string]bool{}
	type id struct {
		k    connKey
		vrid uint8
	}
	ids := map[id]string{}
	for _, g := range specs {
		if names[g.Name] {
			return fmt.Errorf("group %q is listed twice", g.Name)
		}
		names[g.Name] = true
		for _, fam := range g.families() {
			k := id{connKey{g.Interface, fam}, g.VRID}
			if o, ok := ids[k]; ok {
				return fmt.Errorf("groups %q and %q both use VRID %d on %s (IPv%d)", o, g.Name, g.VRID, g.Interface, fam)
			}
			ids[k] = g.Name
		}
	}
	return nil
}

// families lists the address families of the group's VIPs (4, 6): one
// virtual router each.
func (g GroupSpec) families() []int {
	var f []int
	for _, fam := range []int{4, 6} {
		if len(g.addrs(fam)) > 0 {
			f = append(f, fam)
		}
	}
	return f
}

// addrs is the family's VIPs, the address list of its router's adverts.
func (g GroupSpec) addrs(fam int) []netip.Addr {
	var out []netip.Addr
	for _, a := range g.VIPs {
		if a.Is4() == (fam == 4) {
			out = append(out, a)
		}
	}
	return out
}

// SetInput implements election.Elector.
func (e *Elector) SetInput(group string, in election.Input) { e.inputs.Set(group, in) }

// Status returns counters and the state of every virtual router.
func (e *Elector) Status() any {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Routers: slices.Clone(e.status), Received: e.rx, Sent: e.tx, SendErrors: e.txErrs, Dropped: map[string]uint64{}}
	for r, n := range e.drops {
		s.Dropped[string(r)] = n
	}
	if len(e.kdrops) > 0 {
		var n uint64
		for _, k := range e.kdrops {
			n += k.KernelDrops()
		}
		s.Dropped[string(DropRecvBuffer)] = n
	}
	return s
}

// Ready implements election.Elector: false while a socket cannot send
// adverts (no usable source address yet, interface gone), since a router
// that cannot advertise must not own.
func (e *Elector) Ready() (bool, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notReady != "" {
		return false, e.notReady
	}
	return true, ""
}

func (e *Elector) drop(r DropReason) {
	e.mu.Lock()
	e.drops[r]++
	e.mu.Unlock()
}

// vr is one virtual router at run time.
type vr struct {
	g      *group
	family int
	conn   Conn
	m      *Machine
	addrs  []netip.Addr // this family's VIPs, the advert's address list
	sorted []netip.Addr // addrs, sorted (compared with received lists)
	dsts   []netip.Addr // multicast group or unicast peers
	peers  map[netip.Addr]bool
	src    netip.Addr // configured unicast source; invalid: the Conn's
	lastIn election.Input

	minIv, maxIv time.Duration // accepted intervals of other routers' adverts
	accepted     string        // the same, for /status and logs
	// collision and badInterval are shown in /status (publish copies them);
	// the raw values beside them spare a repeated advert any formatting.
	collision      *Collision
	collisionFrom  netip.Addr
	collisionAddrs []netip.Addr
	badInterval    *RejectedInterval
	badFrom        netip.Addr
	badAdvert      Advert

	// The best router heard lately (noteMaster), for takeover logs.
	known     netip.Addr
	knownPrio uint8
	knownAt   time.Time

	// A backup's Master_Down_Timer that ran out while adverts waited to be
	// read waits for them (holdTick): until holdUntil, once per deadline
	// (heldFor).
	heldFor, holdUntil time.Time
}

// source is the address this router's adverts come from.
func (v *vr) source() netip.Addr {
	if v.src.IsValid() {
		return v.src
	}
	return v.conn.Source()
}

type group struct {
	spec  GroupSpec
	vrs   []*vr
	owned bool
	// The Owner=true report's reason and peer, repeated by a re-announce;
	// reannounced: when the last one was asked for.
	ownReason, ownPeer string
	reannounced        time.Time
	// A preemption binds break-before-make (handoff): the new master has
	// advertised and waits, up to handoffUntil, for the master it displaces
	// (handoffFrom) to give the VIPs up; that one's last advert (sent after
	// its VIPs are gone) ends the wait. Zero handoffUntil: none pending.
	handoffFrom   netip.Addr
	handoffUntil  time.Time
	handoffReason string
}

// preemptHandoff bounds a preemption's wait for the displaced master's last
// advert. RFC 9568's order (advertise, then own) leaves both routers owning
// the VIPs until the displaced master has received the advert and removed
// them, ~1 ms on a LAN, during which both answer ARP (chaos finding 8). A
// preemption moves a VIP that is being served, so waiting costs no
// availability; a displaced master that sends no last advert (keepalived
// without higher_prio_send_advert) costs at most this gap.
const preemptHandoff = 5 * time.Millisecond

type connKey struct {
	ifname string
	family int
}

// received is what one socket read: one packet, or with a BatchReceiver
// all the packets one read returned, their payloads in buf.
type received struct {
	key  connKey
	pkts []Packet
	buf  []byte
	free chan *received // the reader's: done hands the batch back
}

// done gives the batch back to its reader for the next read; its packets
// must not be used after.
func (b *received) done() {
	select {
	case b.free <- b:
	default:
	}
}

type runner struct {
	ctx    context.Context
	e      *Elector
	report election.Reporter
	groups []*group
	conns  map[connKey]Conn
	byVRID map[connKey]map[uint8]*vr
	// notReady holds the sockets that cannot send (why), re-checked every
	// readyRecheck until they can.
	notReady map[connKey]error
	sendFail bool // a send failed since the last readiness check
	rlog     *rateLog
	// Scratch of receive: the address list of the advert being received,
	// and a sorted copy of it.
	addrs, sortBuf []netip.Addr
	// changed: a router changed state since the last publish, at published.
	changed   bool
	published time.Time
	// pub is what the routers showed at the last publish (valid once
	// pubValid); pubNotReady: a socket was not ready then.
	pub         []shown
	pubValid    bool
	pubNotReady bool

	// The receivers' channels: one goroutine per socket reads into pkts;
	// a socket's error arrives on recvErr (ignored once the socket was
	// closed on purpose, by a reload); done stops them.
	pkts    chan *received
	recvErr chan recvError
	done    chan struct{}
}

type recvError struct {
	key  connKey
	conn Conn
	err  error
}

// publishEvery bounds how stale /status may be after adverts that changed
// no router's state (a backup's view of the master's priority).
const publishEvery = 50 * time.Millisecond

const readyRecheck = 100 * time.Millisecond

// Run implements election.Elector.
func (e *Elector) Run(ctx context.Context, report election.Reporter) error {
	r := &runner{ctx: ctx, e: e, report: report, conns: map[connKey]Conn{}, byVRID: map[connKey]map[uint8]*vr{}, notReady: map[connKey]error{},
		rlog: newRateLog(e.log, logEvery), pkts: make(chan *received, 64), recvErr: make(chan recvError), done: make(chan struct{})}
	defer func() {
		for _, c := range r.conns {
			c.Close()
		}
	}()
	running := make(chan struct{})
	e.mu.Lock()
	e.running = running
	specs := e.groups
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = nil
		e.mu.Unlock()
		close(running)
	}()
	if err := checkSpecs(specs); err != nil {
		return err
	}
	opened, err := r.openConns(specs)
	if err != nil {
		return err
	}
	for _, spec := range specs {
		r.addGroup(spec)
	}
	if err := r.setFilters(); err != nil {
		return err
	}
	r.setSyncHolds()
	defer close(r.done)
	for _, k := range opened {
		r.startRecv(k, r.conns[k])
	}

	r.checkReady(true)
	now := e.now()
	r.applyInputs(now)
	for _, g := range r.groups {
		for _, v := range g.vrs {
			r.handle(v, v.m.Start(now), now)
		}
	}
	r.publish()
	var timer waker = newGoWaker()
	if e.realTime {
		if w, err := newTimerfdWaker(); err == nil {
			timer.Stop()
			timer = w
		}
	}
	defer timer.Stop()
	// flushTimer ends the windows of rate-limited log lines (rateLog).
	flushTimer := time.NewTimer(time.Hour)
	defer flushTimer.Stop()
	var flushAt time.Time
	// recheck runs while a socket is not ready or a send failed; it is armed
	// once, not pushed back by every event.
	var recheck <-chan time.Time
	for {
		if d, ok := r.nextDeadline(); ok {
			timer.Reset(max(d.Sub(e.now()), 0))
		} else {
			timer.Reset(time.Hour)
		}
		if recheck == nil && (r.sendFail || len(r.notReady) > 0) {
			recheck = time.After(readyRecheck)
		}
		if d, ok := r.rlog.next(); ok && (flushAt.IsZero() || d.Before(flushAt)) {
			flushAt = d
			flushTimer.Reset(max(d.Sub(e.now()), 0))
		}
		select {
		case <-flushTimer.C:
			flushAt = time.Time{}
			r.rlog.flush(e.now())
		case <-recheck:
			recheck = nil
			r.checkReady(r.sendFail)
			r.sendFail = false
		case <-ctx.Done():
			r.shutdown()
			return nil
		case re := <-r.recvErr:
			if r.conns[re.key] != re.conn {
				continue // closed by a reload
			}
			if ctx.Err() == nil {
				r.shutdown()
				return re.err
			}
		case req := <-e.reconf:
			req.done <- r.reconfigure(req.specs)
		case rp := <-r.pkts:
			for _, p := range rp.pkts {
				r.receive(rp.key, p)
			}
			rp.done()
			r.endHolds()
			// Under a flood, publish /status at most every publishEvery
			// unless a router changed state: publishing formats every
			// router's status.
			if !r.changed && e.now().Sub(r.published) < publishEvery {
				continue
			}
		case <-e.inputs.Changed():
			// An input change is often a link coming back: check the
			// sockets too (the IPv6 link-local address may be tentative).
			r.checkReady(true)
			r.applyInputs(e.now())
		case <-timer.C():
			now := e.now()
			for _, g := range r.groups {
				for _, v := range g.vrs {
					if d := v.m.Deadline(); !d.IsZero() && !now.Before(d) && !r.holdTick(v, d, now) {
						r.handle(v, v.m.Tick(now), now)
					}
				}
				if !g.handoffUntil.IsZero() && !now.Before(g.handoffUntil) {
					r.endHandoff(g)
				}
			}
		}
		r.publish()
	}
}

// openConns opens the sockets specs need that are not open yet, and returns
// their keys. On error it closes those it opened: nothing changed.
func (r *runner) openConns(specs []GroupSpec) ([]connKey, error) {
	var opened []connKey
	for _, spec := range specs {
		for _, fam := range spec.families() {
			k := connKey{spec.Interface, fam}
			if _, ok := r.conns[k]; ok {
				continue
			}
			c, err := r.e.open(r.ctx, spec.Interface, fam)
			if err != nil {
				for _, o := range opened {
					r.conns[o].Close()
					delete(r.conns, o)
					delete(r.byVRID, o)
				}
				return nil, fmt.Errorf("group %q: %w", spec.Name, err)
			}
			r.conns[k] = c
			r.byVRID[k] = map[uint8]*vr{}
			opened = append(opened, k)
		}
	}
	return opened, nil
}

// startRecv reads c until it fails or Run ends: a socket that breaks
// (interface gone) ends Run, since a deaf router must not stay in the
// election, or it would become a second master.
func (r *runner) startRecv(k connKey, c Conn) {
	go func() {
		br, _ := c.(BatchReceiver)
		// Batches come back once handled (batch.done), so an advert costs
		// no allocation; one still out when the next read starts is
		// replaced by a new one (a few under a flood).
		free := make(chan *received, 2)
		for {
			var b *received
			select {
			case b = <-free:
			default:
				b = &received{key: k, free: free}
				if br != nil {
					b.pkts = make([]Packet, recvBatch)
				}
			}
			var err error
			if br != nil {
				var n int
				n, b.buf, err = br.RecvBatch(b.pkts[:recvBatch], b.buf[:0])
				b.pkts = b.pkts[:n]
			} else {
				var p Packet
				p, err = c.Recv()
				b.pkts = append(b.pkts[:0], p)
			}
			if err != nil {
				select {
				case r.recvErr <- recvError{k, c, fmt.Errorf("receiving on %s (IPv%d): %w", k.ifname, k.family, err)}:
				case <-r.done:
				}
				return
			}
			select {
			case r.pkts <- b:
			case <-r.done:
				return
			}
		}
	}()
}

// addGroup builds the group's routers, in Initialize, on open sockets.
func (r *runner) addGroup(spec GroupSpec) *group {
	g := &group{spec: spec}
	r.groups = append(r.groups, g)
	for _, fam := range spec.families() {
		k := connKey{spec.Interface, fam}
		v := &vr{g: g, family: fam, conn: r.conns[k]}
		v.configure(spec)
		// Priority and eligibility come from the daemon's input (applyInputs).
		v.m = NewMachine(v.params(spec), 0, false)
		g.vrs = append(g.vrs, v)
		r.byVRID[k][spec.VRID] = v
	}
	return g
}

// configure sets what the spec decides beside the machine: the advert's
// address list, destinations, unicast source, accepted intervals.
func (v *vr) configure(spec GroupSpec) {
	fam := v.family
	v.addrs = spec.addrs(fam)
	v.sorted = slices.SortedFunc(slices.Values(v.addrs), netip.Addr.Compare)
	v.dsts, v.peers, v.src = nil, map[netip.Addr]bool{}, netip.Addr{}
	v.minIv, v.maxIv = spec.peerIntervals()
	v.accepted = intervalRange(v.minIv, v.maxIv)
	for _, p := range spec.Peers {
		if p.Is4() == (fam == 4) {
			v.dsts = append(v.dsts, p)
			v.peers[p] = true
		}
	}
	if len(v.dsts) == 0 {
		v.dsts = []netip.Addr{GroupV4}
		if fam == 6 {
			v.dsts = []netip.Addr{GroupV6}
		}
		return
	}
	for _, a := range spec.Sources {
		if a.Is4() == (fam == 4) {
			v.src = a
		}
	}
}

func (v *vr) params(spec GroupSpec) Params {
	return Params{Interval: spec.Interval, Preempt: spec.Preempt, PreemptDelay: spec.PreemptDelay, Self: v.source()}
}

// sameRouters: old and new describe the same virtual routers on the wire
// (VRID, interface, families), so a change between them applies in place.
func sameRouters(old, new GroupSpec) bool {
	return old.VRID == new.VRID && old.Interface == new.Interface && slices.Equal(old.families(), new.families())
}

// reconfigure is Reconfigure inside Run.
func (r *runner) reconfigure(specs []GroupSpec) error {
	opened, err := r.openConns(specs)
	if err != nil {
		return err
	}
	now := r.e.now()
	byName := map[string]*group{}
	for _, g := range r.groups {
		byName[g.spec.Name] = g
	}
	// Removals first, so a VRID a removed group frees can be reused.
	kept := map[string]*group{}
	for _, spec := range specs {
		if g := byName[spec.Name]; g != nil && sameRouters(g.spec, spec) {
			kept[spec.Name] = g
		}
	}
	for _, g := range r.groups {
		if kept[g.spec.Name] == nil {
			reason := "removed"
			if slices.ContainsFunc(specs, func(s GroupSpec) bool { return s.Name == g.spec.Name }) {
				// A new VRID, interface or family set is another
				// virtual router on the wire: remove and add.
				reason = "reconfigured"
			}
			r.removeGroup(g, reason, now)
		}
	}
	var groups, added []*group
	r.groups = nil
	for _, spec := range specs {
		if g := kept[spec.Name]; g != nil {
			r.updateGroup(g, spec, now)
			groups = append(groups, g)
			continue
		}
		g := r.addGroup(spec)
		added = append(added, g)
		groups = append(groups, g)
	}
	r.groups = groups
	// Sockets no router uses any more.
	for k, c := range r.conns {
		if len(r.byVRID[k]) == 0 {
			c.Close()
			delete(r.conns, k)
			delete(r.byVRID, k)
			delete(r.notReady, k)
		}
	}
	err = r.setFilters()
	r.setSyncHolds()
	for _, k := range opened {
		if c, ok := r.conns[k]; ok {
			r.startRecv(k, c)
		}
	}
	r.e.mu.Lock()
	r.e.groups = slices.Clone(specs)
	r.e.mu.Unlock()
	r.checkReady(true)
	r.applyInputs(now)
	for _, g := range added {
		for _, v := range g.vrs {
			r.handle(v, v.m.Start(now), now)
		}
	}
	r.changed, r.pubValid = true, false
	if err != nil {
		// The routers are in place; only a kernel filter is missing,
		// which costs CPU under a flood, not correctness.
		r.e.log.Warn("reload: VRRP socket filter", "err", err)
	}
	return nil
}

// removeGroup takes the group out of the election: Owner=false first (the
// VIPs are gone), then the priority-0 adverts of its masters.
func (r *runner) removeGroup(g *group, reason string, now time.Time) {
	if g.owned {
		g.owned = false
		_ = r.report(election.Transition{Group: g.spec.Name, Owner: false, Reason: reason, At: time.Now()})
	}
	for _, v := range g.vrs {
		out := v.m.Shutdown(now)
		if out.Send {
			r.send(v, out.Priority)
		}
		k := connKey{g.spec.Interface, v.family}
		if r.byVRID[k][g.spec.VRID] == v {
			delete(r.byVRID[k], g.spec.VRID)
		}
	}
	r.e.log.Info("vrrp group removed", "group", g.spec.Name, "vrid", g.spec.VRID, "reason", reason)
}

// updateGroup applies a changed spec to the group's routers in place;
// nothing is sent or changes state.
func (r *runner) updateGroup(g *group, spec GroupSpec, now time.Time) {
	g.spec = spec
	for _, v := range g.vrs {
		v.configure(spec)
		v.m.SetParams(now, v.params(spec))
	}
}

// setSyncHolds makes the routers of a group a keepalived sync group
// (vrrp_sync.c): a router whose Master_Down_Timer fires becomes master only
// if every sibling wants master too, i.e. hears no acceptable master; the
// last one to want it takes the group over and forces the others to master
// (handle). Beside keepalived instances that are not synced (a better IPv4
// master, a worse IPv6 one) the group stays backup instead of flapping.
func (r *runner) setSyncHolds() {
	for _, g := range r.groups {
		if len(g.vrs) < 2 {
			continue
		}
		for _, v := range g.vrs {
			v.m.SetSyncHold(func() bool {
				for _, o := range g.vrs {
					if o != v && !o.m.WantsMaster() {
						return true
					}
				}
				return false
			})
		}
	}
}

// setFilters attaches the kernel filter of every socket that has one: its
// VRIDs and, when all of them are in unicast mode, their peers (issue #11,
// 5: a flood must not reach vipd, nor push the master's adverts out of the
// receive buffer). It also lets Status read the kernel's overflow count.
func (r *runner) setFilters() error {
	var kd []KernelDrops
	for k, c := range r.conns {
		if d, ok := c.(KernelDrops); ok {
			kd = append(kd, d)
		}
		f, ok := c.(Filter)
		if !ok {
			continue
		}
		var vrids []uint8
		var peers []netip.Addr
		multicast := false
		for id, v := range r.byVRID[k] {
			vrids = append(vrids, id)
			if len(v.peers) == 0 {
				multicast = true
			}
			for p := range v.peers {
				peers = append(peers, p)
			}
		}
		slices.Sort(vrids)
		slices.SortFunc(peers, netip.Addr.Compare)
		if multicast {
			peers = nil
		}
		if err := f.SetFilter(vrids, peers); err != nil {
			return fmt.Errorf("VRRP socket filter on %s (IPv%d): %w", k.ifname, k.family, err)
		}
	}
	r.e.mu.Lock()
	r.e.kdrops = kd
	r.e.mu.Unlock()
	return nil
}

func (r *runner) nextDeadline() (time.Time, bool) {
	var next time.Time
	for _, g := range r.groups {
		for _, v := range g.vrs {
			d := v.m.Deadline()
			if !v.holdUntil.IsZero() && d.Equal(v.heldFor) {
				d = v.holdUntil
			}
			if !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if d := g.handoffUntil; !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next, !next.IsZero()
}

// holdTick reports whether backup v's due deadline d waits for adverts not
// read yet. When a node is not scheduled for a while (a busy machine), its
// timer and the master's adverts become ready together, and the loop may
// see the timer first: it would take over although the adverts arrived in
// time (at 10ms adverts, most false takeovers of an idle backup on a busy
// machine, issue #15). So a backup whose Master_Down_Timer ran out while a
// batch waits in pkts or a datagram in its socket lets the reader deliver
// first: until the next batch is handled (endHolds), at most one advert
// interval, once per deadline, so a flood delays a real failover by one
// interval at most.
func (r *runner) holdTick(v *vr, d, now time.Time) bool {
	if !v.holdUntil.IsZero() && d.Equal(v.heldFor) {
		if now.Before(v.holdUntil) {
			return true
		}
		v.holdUntil = time.Time{}
		return false
	}
	if v.m.State() != Backup || d.Equal(v.heldFor) {
		return false
	}
	if len(r.pkts) == 0 {
		q, ok := v.conn.(queuer)
		if !ok || !q.Queued() {
			return false
		}
	}
	v.heldFor, v.holdUntil = d, now.Add(v.g.spec.Interval)
	return true
}

// endHolds ends the holds of holdTick: the reader delivered a batch.
func (r *runner) endHolds() {
	for _, g := range r.groups {
		for _, v := range g.vrs {
			v.holdUntil = time.Time{}
		}
	}
}

// queuer is a Conn that tells whether a datagram waits in its socket.
type queuer interface{ Queued() bool }

func (r *runner) applyInputs(now time.Time) {
	for _, g := range r.groups {
		in := r.e.inputs.Get(g.spec.Name)
		prio := min(max(in.Priority, 1), 254)
		// A router that cannot advertise must not be (or become) master:
		// the group is ineligible while any of its sockets has no usable
		// source address.
		if in.Eligible {
			for _, v := range g.vrs {
				k := connKey{g.spec.Interface, v.family}
				if err := r.notReady[k]; err != nil {
					in.Eligible = false
					in.Reason = err.Error()
				}
			}
		}
		for _, v := range g.vrs {
			if v.lastIn == in {
				continue
			}
			v.lastIn = in
			r.handle(v, v.m.SetInput(now, uint8(prio), in.Eligible, in.Degraded), now)
		}
	}
}

// checkReady re-evaluates the sockets marked not ready (and, with all, every
// socket); it reapplies inputs when anything changed.
func (r *runner) checkReady(all bool) {
	changed := false
	for k, c := range r.conns {
		if !all && r.notReady[k] == nil {
			continue
		}
		err := c.Ready()
		if err == nil {
			err = r.sourcesReady(k, c)
		}
		if (err == nil) != (r.notReady[k] == nil) {
			changed = true
		}
		if err != nil {
			r.notReady[k] = err
		} else {
			delete(r.notReady, k)
		}
	}
	if changed {
		r.applyInputs(r.e.now())
	}
}

// SourceChecker is implemented by the real Conns: CheckSource fails while
// addr, a configured unicast source, cannot be sent from (not on the
// interface, or IPv6 duplicate address detection not done).
type SourceChecker interface {
	CheckSource(addr netip.Addr) error
}

// sourcesReady checks the configured unicast sources of the routers on k.
func (r *runner) sourcesReady(k connKey, c Conn) error {
	sc, ok := c.(SourceChecker)
	if !ok {
		return nil
	}
	for _, v := range r.byVRID[k] {
		if v.src.IsValid() {
			if err := sc.CheckSource(v.src); err != nil {
				return err
			}
		}
	}
	return nil
}

// receive validates a datagram (RFC 5798 §7.1) and hands it to its router.
func (r *runner) receive(k connKey, p Packet) {
	now := r.e.now()
	c, ok := r.conns[k]
	if !ok {
		return // read before a reload closed the socket
	}
	if p.Src == c.Source() || r.ownSource(k, p.Src) {
		r.dropped(now, DropOwn, nil, func() []any { return []any{"from", p.Src} })
		return
	}
	a, err := decodeInto(p.Payload, p.Src, p.Dst, r.addrs[:0])
	r.addrs = a.Addrs[:0] // grown for the next one; a.Addrs is reused then
	if err != nil {
		r.dropped(now, ReasonOf(err), nil, func() []any { return []any{"interface", k.ifname, "from", p.Src, "to", p.Dst, "err", err} })
		return
	}
	v := r.byVRID[k][a.VRID]
	if v == nil {
		r.dropped(now, DropVRID, nil, func() []any { return []any{"interface", k.ifname, "family", k.family, "vrid", a.VRID, "from", p.Src} })
		return
	}
	if why := checkRoute(v, p); why != "" {
		r.dropped(now, why, v, func() []any { return []any{"from", p.Src, "to", p.Dst, "ttl", p.TTL, "priority", a.Priority} })
		return
	}
	if !r.sameAddrs(a.Addrs, v) {
		// Another virtual router uses our VRID (a foreign cluster, a typo):
		// acting on its adverts would hand our VIPs to nobody. Discarded,
		// as keepalived does; kept in /status so an operator sees it.
		r.noteCollision(v, p.Src, a.Addrs)
		r.dropped(now, DropAddrs, v, func() []any {
			return []any{"from", p.Src, "priority", a.Priority, "theirs", slices.Clone(a.Addrs), "ours", v.addrs}
		})
		return
	}
	if a.Interval < v.minIv || a.Interval > v.maxIv {
		// Adopting it would let one advert (spoofed, or from a router set
		// up differently) stretch our Master_Down_Interval to 3 × 40.95s.
		r.noteBadInterval(v, p.Src, a)
		r.dropped(now, DropIntervalRange, v, func() []any {
			return []any{"from", p.Src, "priority", a.Priority, "interval", a.Interval, "accepted", v.accepted}
		})
		return
	}
	r.e.mu.Lock()
	r.e.rx++
	r.e.mu.Unlock()
	out := v.m.Receive(now, p.Src, a)
	r.noteMaster(v, now, p.Src, a, out)
	r.handle(v, out, now)
	if g := v.g; !g.handoffUntil.IsZero() && p.Src == g.handoffFrom {
		// The displaced master's advert after ours: its last one, sent
		// once its VIPs were gone (or one that crossed ours: no worse
		// than owning at once).
		r.endHandoff(g)
	}
}

// endHandoff ends a preemption's wait (handoff) and reports the ownership.
func (r *runner) endHandoff(g *group) {
	g.handoffUntil = time.Time{}
	r.reconcile(g, g.handoffReason, "")
}

// noteCollision keeps the last advert of another virtual router with our
// VRID for /status.
func (r *runner) noteCollision(v *vr, src netip.Addr, addrs []netip.Addr) {
	if v.collision == nil {
		v.collision = &Collision{}
	}
	c := v.collision
	c.Count++
	c.LastSeen = time.Now()
	if src != v.collisionFrom || !slices.Equal(addrs, v.collisionAddrs) {
		v.collisionFrom, v.collisionAddrs = src, slices.Clone(addrs)
		// A new slice: the copies publish made keep the old one.
		theirs := make([]string, len(addrs))
		for i, x := range addrs {
			theirs[i] = x.String()
		}
		c.Source, c.Addresses = src.String(), theirs
	}
}

// noteBadInterval keeps the last advert dropped for its interval for /status.
func (r *runner) noteBadInterval(v *vr, src netip.Addr, a Advert) {
	if v.badInterval == nil {
		v.badInterval = &RejectedInterval{}
	}
	b := v.badInterval
	b.Count++
	b.LastSeen = time.Now()
	if src != v.badFrom || a.Priority != v.badAdvert.Priority || a.Interval != v.badAdvert.Interval {
		v.badFrom, v.badAdvert = src, Advert{Priority: a.Priority, Interval: a.Interval}
		b.Source, b.Priority, b.Interval = src.String(), a.Priority, a.Interval.String()
	}
}

// noteMaster logs a takeover caused by another router's advert, on the
// master it displaces and on every backup that sees it. A backup tracks the
// best router it has heard within Master_Down_Interval: an advert that does
// not beat it comes from a router that has not heard the master yet (the
// master answers it at once) and is not a takeover.
func (r *runner) noteMaster(v *vr, now time.Time, src netip.Addr, a Advert, out Output) {
	// who is "from" (the master stepping down) or "master" (a backup).
	attrs := func(who string, more ...any) []any {
		return append([]any{"group", v.g.spec.Name, "family", v.family, "vrid", v.g.spec.VRID, who, src, "priority", a.Priority, "interval", a.Interval}, more...)
	}
	if out.Changed && out.Reason == ReasonHigherAdv {
		v.known, v.knownPrio, v.knownAt = src, a.Priority, now
		r.e.log.Warn("another router took over: stepping down", attrs("from")...)
		return
	}
	if v.m.State() != Backup {
		return
	}
	if a.Priority == PriorityStop {
		if src == v.known {
			v.known = netip.Addr{}
		}
		return
	}
	if src == v.known {
		v.knownPrio, v.knownAt = a.Priority, now
		return
	}
	stale := !v.known.IsValid() || now.Sub(v.knownAt) > v.m.MasterDownInterval()
	beats := a.Priority > v.knownPrio || (a.Priority == v.knownPrio && src.Compare(v.known) > 0)
	if !stale && !beats {
		return
	}
	prev, prevPrio := v.known, v.knownPrio
	v.known, v.knownPrio, v.knownAt = src, a.Priority, now
	if stale {
		r.rlog.event(now, rateKey{"master-seen", v}, slog.LevelInfo, "master seen", func() []any { return attrs("master") })
		return
	}
	r.rlog.event(now, rateKey{"master-change", v}, slog.LevelWarn, "another router took over as master",
		func() []any { return attrs("master", "previous", prev, "previousPriority", prevPrio) })
}

// checkRoute checks how an advert for v arrived (RFC 5798 §7.1 and the
// unicast extension): the destination fits the router's mode, and the TTL
// (multicast) or the source (unicast) proves where it came from.
func checkRoute(v *vr, p Packet) DropReason {
	if len(v.peers) == 0 {
		// Multicast: adverts go to the group only. One sent to a node's
		// own address is not part of the protocol (anyone anywhere could
		// route it here with TTL 255 left).
		if p.Dst != v.dsts[0] {
			return DropDst
		}
		// TTL / hop limit 255 proves the sender is on the link.
		if p.TTL != TTL {
			return DropTTL
		}
		return ""
	}
	// Unicast (an extension of RFC 5798, as in keepalived): our peers send
	// to our address; a multicast (or broadcast) advert comes from a router
	// that is not one of them.
	if p.Dst.IsMulticast() || p.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return DropDst
	}
	// Peers may be routed and keepalived sends IPv6 unicast with the
	// default hop limit, so the source, not the TTL, is checked: it must be
	// a configured peer, listed by the address it sends from (its
	// unicastSource / unicast_src_ip, by default its primary IPv4 or
	// link-local IPv6 address). The kernel filter already dropped other
	// sources unless a multicast router shares the socket.
	if !v.peers[p.Src] {
		return DropPeer
	}
	return ""
}

// dropped counts a discarded packet and logs it, rate-limited per reason
// and router. Adverts for other VRIDs are normal on a shared segment (Info);
// everything else means a misconfiguration or an attack (Warn).
func (r *runner) dropped(now time.Time, why DropReason, v *vr, attrs func() []any) {
	r.e.drop(why)
	level := slog.LevelWarn
	if why == DropVRID || why == DropOwn {
		level = slog.LevelInfo
	}
	msg := "dropped a VRRP packet"
	switch why {
	case DropAddrs:
		msg = "dropped an advert for our VRID with other addresses: another virtual router uses this VRID"
	case DropIntervalRange:
		msg = "dropped an advert whose interval is outside the accepted range"
	case DropDst:
		msg = "dropped an advert sent to the wrong destination for this router's mode"
	}
	r.rlog.event(now, rateKey{string(why), v}, level, msg, func() []any {
		a := []any{"reason", string(why)}
		if v != nil {
			a = append(a, "group", v.g.spec.Name, "family", v.family, "vrid", v.g.spec.VRID)
		}
		return append(a, attrs()...)
	})
}

func intervalRange(lo, hi time.Duration) string {
	if lo == hi {
		return lo.String()
	}
	return lo.String() + ".." + hi.String()
}

// ownSource: a is the configured unicast source of a router on k.
func (r *runner) ownSource(k connKey, a netip.Addr) bool {
	for _, v := range r.byVRID[k] {
		if v.src == a {
			return true
		}
	}
	return false
}

// handle carries out a machine's output, keeps the group's routers in sync
// and reports ownership changes. Order matters: a new master advertises
// before binding (backups stop their timers); a leaving master reports
// Owner=false (VIPs removed) before its priority-0 advert lets a peer bind.
func (r *runner) handle(v *vr, out Output, now time.Time) {
	if !out.Changed {
		if out.Send {
			r.send(v, out.Priority)
		}
		if out.Reannounce {
			r.reannounce(v, out.Peer, now)
		}
		return
	}
	g := v.g
	r.changed = true
	r.e.log.Info("vrrp state", "group", g.spec.Name, "family", v.family, "vrid", g.spec.VRID, "state", out.State.String(), "reason", out.Reason)
	if out.State == Master {
		if out.Send {
			r.send(v, out.Priority)
		}
		for _, o := range g.vrs {
			if o != v {
				oo := o.m.Force(now, Master, ReasonSyncMaster)
				if oo.Send {
					r.send(o, oo.Priority)
				}
				r.logForced(o, oo)
			}
		}
	} else if out.State == Backup {
		for _, o := range g.vrs {
			if o != v {
				r.logForced(o, o.m.Force(now, Backup, ReasonSyncBackup))
			}
		}
	}
	peer := ""
	if out.Peer.IsValid() && out.State != Master {
		peer = out.Peer.String()
	}
	reason := out.Reason
	if reason == ReasonIneligible {
		if why := v.lastIn.Reason; why != "" {
			reason += ": " + why
		}
	}
	if out.State == Master && out.Reason == ReasonPreempt && !g.owned && v.known.IsValid() && g.handoffUntil.IsZero() {
		g.handoffFrom, g.handoffUntil, g.handoffReason = v.known, now.Add(preemptHandoff), reason
	} else {
		g.handoffUntil = time.Time{}
		r.reconcile(g, reason, peer)
	}
	if out.State != Master && out.Send {
		r.send(v, out.Priority)
	}
}

func (r *runner) logForced(v *vr, out Output) {
	if out.Changed {
		r.e.log.Info("vrrp state", "group", v.g.spec.Name, "family", v.family, "vrid", v.g.spec.VRID, "state", out.State.String(), "reason", out.Reason)
	}
}

// reconcile reports the group's ownership if it changed: owned while any of
// its routers is master (sync keeps them together).
func (r *runner) reconcile(g *group, reason, peer string) {
	owner := false
	for _, v := range g.vrs {
		if v.m.State() == Master {
			owner = true
		}
	}
	if owner == g.owned {
		return
	}
	g.owned = owner
	if owner {
		g.ownReason, g.ownPeer = reason, peer
	}
	err := r.report(election.Transition{Group: g.spec.Name, Owner: owner, Reason: reason, Peer: peer, At: time.Now()})
	if err != nil && owner {
		// The node could not bind: it removed what it had and made the
		// group ineligible, so applying the inputs steps every router of
		// the group down with a priority-0 advert. Never a master without
		// its VIPs.
		g.owned = false
		r.e.log.Warn("could not take the group's VIPs; stepping down", "group", g.spec.Name, "err", err)
		r.applyInputs(r.e.now())
	}
}

// reannounceGap: a group re-announces its VIPs for lower-priority masters
// at most this often, so one that keeps advertising (it cannot hear us)
// cannot make this node flood the LAN.
const reannounceGap = time.Second

// reannounce asks the node to announce an owned group's VIPs again: from,
// a lower-priority master, held them too. The seam is the Reporter: the
// same Owner=true report again re-binds the VIPs (a no-op) and restarts
// their announcements; with the same reason and peer nothing else changes
// (no transition, /status and hooks as they were).
func (r *runner) reannounce(v *vr, from netip.Addr, now time.Time) {
	g := v.g
	if !g.owned || (!g.reannounced.IsZero() && now.Sub(g.reannounced) < reannounceGap) {
		return
	}
	g.reannounced = now
	r.rlog.event(now, rateKey{"reannounce", v}, slog.LevelInfo, "a lower-priority router believes it is master: announcing the VIPs again", func() []any {
		return []any{"group", g.spec.Name, "family", v.family, "vrid", g.spec.VRID, "from", from}
	})
	err := r.report(election.Transition{Group: g.spec.Name, Owner: true, Reason: g.ownReason, Peer: g.ownPeer, At: time.Now()})
	if err != nil {
		// As in reconcile: the node removed the VIPs and made the group
		// ineligible; step down.
		g.owned = false
		r.e.log.Warn("could not take the group's VIPs; stepping down", "group", g.spec.Name, "err", err)
		r.applyInputs(r.e.now())
	}
}

func (r *runner) send(v *vr, prio uint8) {
	a := Advert{VRID: v.g.spec.VRID, Priority: prio, Interval: v.g.spec.Interval, Addrs: v.addrs}
	src := v.source()
	for _, dst := range v.dsts {
		b, err := Encode(a, src, dst)
		if err == nil {
			if fs, ok := v.conn.(FromSender); ok && v.src.IsValid() {
				err = fs.SendFrom(b, src, dst)
			} else {
				err = v.conn.Send(b, dst)
			}
		}
		if err != nil {
			r.sendFail = true
		}
		r.e.mu.Lock()
		if err != nil {
			r.e.txErrs++
		} else {
			r.e.tx++
		}
		r.e.mu.Unlock()
		if err != nil {
			r.e.log.Debug("sending advert", "group", v.g.spec.Name, "to", dst, "err", err)
		}
	}
}

// shutdown reports Owner=false for every owned group, and only then sends
// the priority-0 adverts so the best backup takes over after Skew_Time.
func (r *runner) shutdown() {
	for _, g := range r.groups {
		if g.owned {
			g.owned = false
			_ = r.report(election.Transition{Group: g.spec.Name, Owner: false, Reason: ReasonShutdown, At: time.Now()})
		}
	}
	now := r.e.now()
	for _, g := range r.groups {
		for _, v := range g.vrs {
			if out := v.m.Shutdown(now); out.Send {
				r.send(v, out.Priority)
			}
		}
	}
	r.publish()
}

// shown is what /status shows of a router, in raw values: publish rebuilds
// the status only when one of them changed, so an advert sent or received
// that changes nothing (nearly all of them) costs no formatting.
type shown struct {
	v                *vr
	state            State
	prio, advertised uint8
	degraded         bool
	input            string
	source, master   netip.Addr
	masterPrio       uint8
	masterInterval   time.Duration
	accepted         string
	collisions, bad  uint64
}

func (v *vr) shown() shown {
	m, mp := v.m.Master()
	s := shown{v: v, state: v.m.State(), prio: v.m.prio, advertised: v.m.Advertised(), degraded: v.m.Degraded(),
		input: v.lastIn.Reason, source: v.source(), master: m, masterPrio: mp, masterInterval: v.m.MasterInterval(),
		accepted: v.accepted}
	if v.collision != nil {
		s.collisions = v.collision.Count
	}
	if v.badInterval != nil {
		s.bad = v.badInterval.Count
	}
	return s
}

// unchanged reports whether the routers show what was last published (and
// remembers what they show now).
func (r *runner) unchanged() bool {
	same, n := r.pubValid, 0
	for _, g := range r.groups {
		for _, v := range g.vrs {
			s := v.shown()
			if n < len(r.pub) {
				if r.pub[n] != s {
					same, r.pub[n] = false, s
				}
			} else {
				same, r.pub = false, append(r.pub, s)
			}
			n++
		}
	}
	if n != len(r.pub) {
		same, r.pub = false, r.pub[:n]
	}
	return same && len(r.notReady) == 0 && !r.pubNotReady
}

func (r *runner) publish() {
	r.changed, r.published = false, r.e.now()
	if r.unchanged() {
		return
	}
	r.pubValid, r.pubNotReady = true, len(r.notReady) > 0
	var st []VRStatus
	for _, g := range r.groups {
		for _, v := range g.vrs {
			m, mp := v.m.Master()
			s := VRStatus{
				Group: g.spec.Name, Family: v.family, VRID: g.spec.VRID, Interface: g.spec.Interface,
				Source: v.source().String(), State: v.m.State().String(), Priority: v.m.prio,
				Advertised: v.m.Advertised(), Degraded: v.m.Degraded(), Input: v.lastIn.Reason,
				MasterPriority: mp, MasterInterval: v.m.MasterInterval().String(),
				AcceptedIntervals: v.accepted,
			}
			if v.collision != nil {
				c := *v.collision // a copy: the runner updates v.collision in place
				s.Collision = &c
			}
			if v.badInterval != nil {
				b := *v.badInterval
				s.RejectedInterval = &b
			}
			if m.IsValid() {
				s.Master = m.String()
			}
			st = append(st, s)
		}
	}
	var notReady []string
	for k, err := range r.notReady {
		notReady = append(notReady, fmt.Sprintf("cannot send VRRP adverts on %s (IPv%d): %v", k.ifname, k.family, err))
	}
	sort.Strings(notReady)
	r.e.mu.Lock()
	r.e.status = st
	r.e.notReady = strings.Join(notReady, "; ")
	r.e.mu.Unlock()
}

// sameAddrs: a and v.addrs hold the same addresses, in any order. It
// allocates nothing: a is sorted in a scratch copy, v.addrs was sorted once
// (configure).
func (r *runner) sameAddrs(a []netip.Addr, v *vr) bool {
	if len(a) != len(v.sorted) {
		return false
	}
	r.sortBuf = append(r.sortBuf[:0], a...)
	slices.SortFunc(r.sortBuf, netip.Addr.Compare)
	return slices.Equal(r.sortBuf, v.sorted)
}

// Counters returns the packet counters of Status without the routers'
// state: adverts received, sent and not sent, and packets dropped by
// reason (read at every metrics scrape).
func (e *Elector) Counters() (received, sent, sendErrors uint64, dropped map[string]uint64) {
	s := e.Status().(Status)
	return s.Received, s.Sent, s.SendErrors, s.Dropped
}
