// Package node is the vipd daemon: it runs an election (election.Elector in)
// and carries out its results (binding, announcements, status out). Run owns
// start-up, stale-VIP removal, the watchers, the elector, the endpoints and
// the ordered shutdown, and waits for every goroutine it starts.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/metrics"
)

// Binder holds addresses (internal/addr.Binder).
type Binder interface {
	Bind(addr.VIP) error
	Unbind(addr.VIP) error
}

// Announcer sends gratuitous ARP / unsolicited NA: the first at once in
// Start, then a burst and periodic refreshes until Stop (arp.Announcer).
type Announcer interface {
	Start(ctx context.Context, ifname string, ip netip.Addr) error
	Stop(ip netip.Addr)
}

// DefaultConflictHold is how long a conflict waits before this node answers
// it with a re-announcement. A new master (keepalived's, or ours after
// preemption) sends its advert and its gratuitous ARPs within a millisecond;
// the hold lets the election process that advert first, so a node that is
// about to step down never re-announces over the legitimate new owner.
const DefaultConflictHold = 250 * time.Millisecond

// conflictReactionGap bounds how often a conflict on one VIP is logged and
// answered, so two nodes that both believe they own a VIP (a split brain the
// election has yet to resolve) cannot start an announcement storm.
const conflictReactionGap = time.Second

// Manager implements election.Reporter (Report) and keeps the groups' status.
// Transitions of one group are serialised by that group's lock, and netlink
// and socket I/O happen only under it, never under mu, so reading the status
// never waits for the kernel.
type Manager struct {
	log          *slog.Logger
	ctx          context.Context // bounds announcements and conflict reactions
	binder       Binder
	announcer    Announcer
	now          func() time.Time
	conflictHold time.Duration
	// metrics counts transitions and takeover durations (nil: none).
	metrics *metrics.Metrics
	// onBindFailure makes the group ineligible (SetInput) before Report
	// returns its error, as the Reporter contract requires.
	onBindFailure func(group string, err error)
	// onBound tells eligibility that a take succeeded (resets its backoff).
	onBound func(group string)
	// onLapse makes a group whose VIPs lapsed ineligible until onLapseEnd:
	// the election's next report for the group (see Lapsed).
	onLapse    func(group string, gap time.Duration)
	onLapseEnd func(group string)
	// onChange is called after every transition and eligibility change of
	// a group, outside mu (hooks follow the group's state with it).
	onChange func(group string)
	// onOwner is called after every transition with the group's ownership
	// (eligibility treats an owner differently), outside every lock.
	onOwner func(group string, owner bool)

	wg sync.WaitGroup // pending conflict reactions

	mu     sync.Mutex // guards groups, order, every groupState.status and epoch
	groups map[string]*groupState
	order  []string
}

type groupState struct {
	cfg Group
	tmu sync.Mutex // serialises this group's transitions
	// lapsed (under tmu): the group was given up because its VIPs lapsed,
	// and the elector, which still believes it owns the group, has not
	// reported since.
	lapsed bool
	status GroupStatus
	epoch  uint64 // bumped on every ownership change; cancels stale reactions
}

// NewManager returns a manager for groups. ctx bounds the announcements and
// conflict reactions it starts; Wait waits for the latter.
func NewManager(ctx context.Context, log *slog.Logger, groups []Group, b Binder, a Announcer) *Manager {
	m := &Manager{log: log, ctx: ctx, binder: b, announcer: a, now: time.Now, conflictHold: DefaultConflictHold,
		onBindFailure: func(string, error) {}, onBound: func(string) {}, onLapse: func(string, time.Duration) {}, onLapseEnd: func(string) {}, onChange: func(string) {}, onOwner: func(string, bool) {}, groups: map[string]*groupState{}}
	for _, g := range groups {
		m.addLocked(g)
	}
	return m
}

func (m *Manager) addLocked(g Group) {
	st := &groupState{cfg: g, status: GroupStatus{
		Name: g.Name, Since: m.now(), Reason: "starting", Priority: g.Priority, Why: election.AwaitingInput,
	}}
	for _, v := range g.VIPs {
		st.status.VIPs = append(st.status.VIPs, VIPStatus{Address: v.Addr.String(), Interface: v.Interface})
	}
	m.groups[g.Name] = st
	m.order = append(m.order, g.Name)
}

func (m *Manager) group(name string) (*groupState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.groups[name]
	return st, ok
}

// Owner reports whether this node owns group.
func (m *Manager) Owner(group string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.groups[group]
	return ok && st.status.Owner
}

// Add starts tracking a group a reload added (not owned, awaiting input).
func (m *Manager) Add(g Group) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.groups[g.Name]; !ok {
		m.addLocked(g)
	}
}

// Remove forgets a group a reload removed; the elector has reported it
// Owner=false already, and whatever is still bound is removed here.
func (m *Manager) Remove(name string) {
	st, ok := m.group(name)
	if !ok {
		return
	}
	st.tmu.Lock()
	defer st.tmu.Unlock()
	if m.Owner(name) {
		m.release(st, election.Transition{Group: name, Reason: "removed", At: m.now()}, m.log.With("group", name))
	}
	m.metrics.ForgetGroup(name)
	m.mu.Lock()
	delete(m.groups, name)
	for i, n := range m.order {
		if n == name {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
}

// Update applies a reload's change to a kept group: its VIPs, tracks,
// priority and hooks. An owned group binds and announces its added VIPs and
// removes its dropped ones; VIPs in both lists are not touched.
func (m *Manager) Update(g Group) {
	st, ok := m.group(g.Name)
	if !ok {
		return
	}
	st.tmu.Lock()
	defer st.tmu.Unlock()
	log := m.log.With("group", g.Name, "reason", "reload")
	old := st.cfg
	m.mu.Lock()
	owner := st.status.Owner
	prev := map[addr.VIP]VIPStatus{}
	for i, v := range old.VIPs {
		prev[v] = st.status.VIPs[i]
	}
	st.cfg = g
	st.status.VIPs = nil
	for _, v := range g.VIPs {
		vs, kept := prev[v]
		if !kept {
			vs = VIPStatus{Address: v.Addr.String(), Interface: v.Interface}
		}
		st.status.VIPs = append(st.status.VIPs, vs)
	}
	m.mu.Unlock()
	if !owner {
		return
	}
	keep := map[addr.VIP]bool{}
	for _, v := range g.VIPs {
		keep[v] = true
	}
	for _, v := range old.VIPs {
		if !keep[v] {
			m.announcer.Stop(v.Addr)
			if err := m.binder.Unbind(v); err != nil {
				log.Error("removing a VIP the reload dropped", "vip", v, "err", err)
			} else {
				log.Info("removed a VIP the reload dropped", "vip", v)
			}
		}
	}
	for i, v := range g.VIPs {
		if _, kept := prev[v]; kept {
			continue
		}
		err := m.binder.Bind(v)
		m.mu.Lock()
		if i < len(st.status.VIPs) {
			st.status.VIPs[i].Bound = err == nil
			if err != nil {
				st.status.VIPs[i].Error = err.Error()
			}
		}
		m.mu.Unlock()
		if err != nil {
			// The group keeps its other VIPs: one unbindable new address
			// must not move the ones that work. Shown in /status.
			log.Error("binding a VIP the reload added", "vip", v, "err", err)
			continue
		}
		if err := m.announcer.Start(m.ctx, v.Interface, v.Addr); err != nil {
			log.Warn("announcing VIP", "vip", v, "err", err)
		}
		log.Info("bound a VIP the reload added", "vip", v)
	}
}

// ErrBind wraps the error of a take that failed because a VIP could not be bound.
var ErrBind = errors.New("binding VIPs")

// Report implements election.Reporter: it returns once the VIPs are bound
// and their first announcement is sent, or once they are removed. If a VIP
// cannot be bound, the ones bound are removed again, the group is made
// ineligible, and the error is returned: the elector steps down.
func (m *Manager) Report(t election.Transition) error {
	st, ok := m.group(t.Group)
	if !ok {
		m.log.Error("transition for an unknown group", "group", t.Group)
		return nil
	}
	defer func() {
		m.onOwner(t.Group, m.Owner(t.Group))
		m.onChange(t.Group)
	}()
	st.tmu.Lock()
	defer st.tmu.Unlock()
	// A move that health caused names the check: this node's own input
	// says why it is a worse candidate (the elector's reason says how the
	// election saw it, e.g. higher-priority-advert).
	m.mu.Lock()
	if !t.Owner && strings.Contains(st.status.Why, "check ") && !strings.Contains(t.Reason, st.status.Why) &&
		t.Reason != "shutdown" && t.Reason != "removed" {
		t.Reason += " (" + st.status.Why + ")"
	}
	m.mu.Unlock()
	log := m.log.With("group", t.Group, "reason", t.Reason)
	if t.Peer != "" {
		log = log.With("peer", t.Peer)
	}
	if st.lapsed {
		// The elector's first word since the lapse: an Owner=false is
		// the step-down the lapse waited for; an Owner=true is the
		// elector confirming an ownership it never gave up, which it
		// must not after a lapse: refused below, like a failed bind.
		st.lapsed = false
		if t.Owner {
			err := fmt.Errorf("%w: the group's VIPs lapsed (%w) and the election has not stepped down since", ErrBind, addr.ErrLapsed)
			log.Warn("refusing a take: the election confirmed an ownership that lapsed; stepping down", "err", err)
			m.onBindFailure(t.Group, err)
			m.onLapseEnd(t.Group)
			return err
		}
		defer m.onLapseEnd(t.Group)
	}
	if t.Owner {
		return m.take(st, t, log)
	}
	m.release(st, t, log)
	return nil
}

// ReasonLifetimeExpired is the reason of the transition that gives a group
// up because its VIPs lapsed.
const ReasonLifetimeExpired = "lifetime-expired"

// Lapsed handles VIPs the binder gave up because their kernel lifetime may
// have run out since their last refresh (addr.Binder.OnLapse): vipd was
// stopped, starved or hung for that long, so this node's ownership may be
// stale: another node may hold the VIPs by now. Every owned group with a
// lapsed VIP is released (reason lifetime-expired, all its VIPs removed) and
// made ineligible until the elector, which still believes it owns the
// group, reports on it: its step-down (Owner=false) ends the hold, and the
// election then decides the owner afresh; nothing is bound again before.
func (m *Manager) Lapsed(vips []addr.VIP, gap time.Duration) {
	gone := make(map[addr.VIP]bool, len(vips))
	for _, v := range vips {
		gone[v] = true
	}
	var names []string
	m.mu.Lock()
	for _, name := range m.order {
		for _, v := range m.groups[name].cfg.VIPs {
			if gone[v] {
				names = append(names, name)
				break
			}
		}
	}
	m.mu.Unlock()
	for _, name := range names {
		m.lapse(name, gap)
	}
}

func (m *Manager) lapse(name string, gap time.Duration) {
	st, ok := m.group(name)
	if !ok {
		return
	}
	defer func() {
		m.onOwner(name, m.Owner(name))
		m.onChange(name)
	}()
	st.tmu.Lock()
	defer st.tmu.Unlock()
	if !m.Owner(name) {
		return // the elector stepped down already (and its release removed the VIPs)
	}
	st.lapsed = true
	log := m.log.With("group", name, "reason", ReasonLifetimeExpired)
	log.Warn("VIPs not refreshed for longer than their lifetime (vipd was stopped, starved or hung): giving the group up until the election confirms its owner",
		"sinceLastRefresh", gap.Round(time.Millisecond))
	m.release(st, election.Transition{Group: name, Owner: false, Reason: ReasonLifetimeExpired, At: m.now()}, log)
	m.onLapse(name, gap)
}

// batchBinder is a Binder that binds and removes many VIPs with one
// kernel batch (addr.Binder): a takeover of 1,000 VIPs is then a few system
// calls, not 2,000 round trips.
type batchBinder interface {
	BindAll([]addr.VIP) []error
	UnbindAll([]addr.VIP) []error
}

// batchAnnouncer sends the first announcement of many VIPs of one interface
// with one interface check (arp.Announcer).
type batchAnnouncer interface {
	StartAll(ctx context.Context, ifname string, ips []netip.Addr) []error
}

// bindGroup binds vs. It returns each VIP's error and the error of the
// take (nil: all bound); undo removes what the failed take left.
func (m *Manager) bindGroup(vs []addr.VIP) (errs []string, undo func() []error, bindErr error) {
	errs = make([]string, len(vs))
	if bb, ok := m.binder.(batchBinder); ok {
		for i, err := range bb.BindAll(vs) {
			if err != nil {
				errs[i] = err.Error()
				if bindErr == nil {
					bindErr = fmt.Errorf("%w: %s: %v", ErrBind, vs[i], err)
				}
			}
		}
		// Every VIP, the failed ones too: the binder holds them all.
		return errs, func() []error { return bb.UnbindAll(vs) }, bindErr
	}
	var bound []addr.VIP
	for i, v := range vs {
		if err := m.binder.Bind(v); err != nil {
			errs[i] = err.Error()
			bindErr = fmt.Errorf("%w: %s: %v", ErrBind, v, err)
			break
		}
		bound = append(bound, v)
	}
	return errs, func() []error {
		out := make([]error, len(bound))
		for i, v := range bound {
			out[i] = m.binder.Unbind(v)
		}
		return out
	}, bindErr
}

// announceGroup sends the first announcement of every VIP of vs (Start
// writes it before it returns) and returns when the first one went out.
func (m *Manager) announceGroup(vs []addr.VIP, log *slog.Logger) (first time.Time) {
	note := func(v addr.VIP, err error) {
		if err != nil {
			log.Warn("announcing VIP", "vip", v, "err", err)
		} else if first.IsZero() {
			first = m.now()
		}
	}
	ba, ok := m.announcer.(batchAnnouncer)
	if !ok || len(vs) < 2 {
		for _, v := range vs {
			note(v, m.announcer.Start(m.ctx, v.Interface, v.Addr))
		}
		return first
	}
	// The first alone, so the takeover's time is that of the first packet,
	// then one batch per interface, in config order of first appearance.
	note(vs[0], m.announcer.Start(m.ctx, vs[0].Interface, vs[0].Addr))
	var order []string
	byIf := map[string][]addr.VIP{}
	for _, v := range vs[1:] {
		if _, seen := byIf[v.Interface]; !seen {
			order = append(order, v.Interface)
		}
		byIf[v.Interface] = append(byIf[v.Interface], v)
	}
	for _, ifname := range order {
		group := byIf[ifname]
		ips := make([]netip.Addr, len(group))
		for i, v := range group {
			ips[i] = v.Addr
		}
		for i, err := range ba.StartAll(m.ctx, ifname, ips) {
			note(group[i], err)
		}
	}
	return first
}

func (m *Manager) take(st *groupState, t election.Transition, log *slog.Logger) error {
	errs, undo, bindErr := m.bindGroup(st.cfg.VIPs)
	if bindErr != nil {
		for _, err := range undo() {
			if err != nil {
				log.Error("removing VIP after a failed take", "err", err)
			}
		}
		m.mu.Lock()
		for i := range st.status.VIPs {
			st.status.VIPs[i].Bound, st.status.VIPs[i].Error = false, errs[i]
		}
		st.status.BindFailures++
		m.mu.Unlock()
		log.Error("could not take the group: a VIP cannot be bound; stepping down", "err", bindErr)
		m.onBindFailure(t.Group, bindErr)
		return bindErr
	}
	bound := m.now()
	m.mu.Lock()
	for i := range st.status.VIPs {
		st.status.VIPs[i].Bound, st.status.VIPs[i].Error = true, ""
	}
	changed := m.setOwnerLocked(st, t)
	m.mu.Unlock()
	m.onBound(t.Group)
	// The takeover ends with the first announcement on the wire.
	announced := m.announceGroup(st.cfg.VIPs, log)
	allAnnounced := m.now()
	if !changed {
		log.Debug("ownership confirmed: owning VIPs")
		return nil
	}
	attrs := []any{"vips", vipList(st.cfg.VIPs), "from", metrics.StateBackup, "to", metrics.StateOwner}
	if !announced.IsZero() && !t.At.IsZero() {
		took := max(announced.Sub(t.At), 0)
		m.metrics.Takeover(t.Group, took)
		attrs = append(attrs, "takeover", took)
		if len(st.cfg.VIPs) > 1 {
			// With many VIPs: when the last was bound and when the last
			// first announcement went out, from the same decision.
			attrs = append(attrs, "bound", max(bound.Sub(t.At), 0), "announced", max(allAnnounced.Sub(t.At), 0))
		}
	}
	m.metrics.Transition(t.Group, true, t.Reason)
	log.Info("transition", attrs...)
	return nil
}

// vipList is the group's addresses for the transition log line.
func vipList(vs []addr.VIP) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Addr.String()
	}
	return out
}

func (m *Manager) release(st *groupState, t election.Transition, log *slog.Logger) {
	// Ownership ends first: a conflict reaction scheduled while owning sees
	// the new epoch and never announces for a node that gave the VIP up.
	m.mu.Lock()
	changed := m.setOwnerLocked(st, t)
	m.mu.Unlock()
	errs := make([]string, len(st.cfg.VIPs))
	unbind := func(i int, err error) {
		if err != nil {
			errs[i] = err.Error()
			log.Error("removing VIP", "vip", st.cfg.VIPs[i], "err", err)
		}
	}
	// Each VIP is silenced before it is removed.
	if bb, ok := m.binder.(batchBinder); ok {
		for _, v := range st.cfg.VIPs {
			m.announcer.Stop(v.Addr)
		}
		for i, err := range bb.UnbindAll(st.cfg.VIPs) {
			unbind(i, err)
		}
	} else {
		for i, v := range st.cfg.VIPs {
			m.announcer.Stop(v.Addr)
			unbind(i, m.binder.Unbind(v))
		}
	}
	m.mu.Lock()
	for i := range st.status.VIPs {
		st.status.VIPs[i].Error = errs[i]
		if errs[i] == "" {
			st.status.VIPs[i].Bound = false
		}
	}
	m.mu.Unlock()
	if !changed {
		log.Debug("ownership confirmed: not owning VIPs")
		return
	}
	m.metrics.Transition(t.Group, false, t.Reason)
	log.Info("transition", "vips", vipList(st.cfg.VIPs), "from", metrics.StateOwner, "to", metrics.StateBackup)
}

// setOwnerLocked records t and reports whether the ownership changed.
func (m *Manager) setOwnerLocked(st *groupState, t election.Transition) bool {
	changed := st.status.Owner != t.Owner
	if changed {
		st.status.Since = t.At
		st.epoch++
	}
	st.status.Owner, st.status.Reason, st.status.Peer = t.Owner, t.Reason, t.Peer
	return changed
}

// Conflict handles another host claiming a VIP this node holds (seen by the
// conflict watch). The election stays the authority on who owns: the
// conflict is counted and logged, and answered with a re-announcement only
// if this node still owns the group, with the same ownership, after the
// conflict hold: a legitimate new master makes this node step down within
// that time, and then nothing is sent.
func (m *Manager) Conflict(ip netip.Addr, mac string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range m.order {
		st := m.groups[name]
		for i, v := range st.cfg.VIPs {
			if v.Addr != ip {
				continue
			}
			vs := &st.status.VIPs[i]
			vs.Conflicts++
			vs.LastConflict = mac
			now := m.now()
			if !st.status.Owner || now.Sub(vs.conflictAt) < conflictReactionGap {
				return
			}
			vs.conflictAt = now
			epoch := st.epoch
			m.log.Warn("another host claims a VIP this node owns", "group", name, "vip", v, "mac", mac, "conflicts", vs.Conflicts)
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.reannounce(st, v, epoch)
			}()
			return
		}
	}
}

func (m *Manager) reannounce(st *groupState, v addr.VIP, epoch uint64) {
	t := time.NewTimer(m.conflictHold)
	defer t.Stop()
	select {
	case <-m.ctx.Done():
		return
	case <-t.C:
	}
	// Under the group's transition lock: a release cannot interleave.
	st.tmu.Lock()
	defer st.tmu.Unlock()
	m.mu.Lock()
	still := st.status.Owner && st.epoch == epoch
	m.mu.Unlock()
	if !still {
		m.log.Info("conflict resolved by the election: not re-announcing", "group", st.cfg.Name, "vip", v)
		return
	}
	m.log.Warn("still the owner after the conflict hold; re-announcing", "group", st.cfg.Name, "vip", v)
	if err := m.announcer.Start(m.ctx, v.Interface, v.Addr); err != nil {
		m.log.Warn("re-announcing VIP", "vip", v, "err", err)
	}
}

// Wait waits for pending conflict reactions (they end with the manager's ctx).
func (m *Manager) Wait() { m.wg.Wait() }

// SetEligibility records a group's input and its breakdown for status.
func (m *Manager) SetEligibility(group string, in election.Input, b Breakdown) {
	m.mu.Lock()
	st, ok := m.groups[group]
	if ok {
		st.status.Eligible, st.status.Degraded, st.status.Priority, st.status.Why = in.Eligible, in.Degraded, in.Priority, in.Reason
		st.status.Candidacy = b
	}
	m.mu.Unlock()
	if ok {
		m.onChange(group)
	}
}

// names lists the groups in config order.
func (m *Manager) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.order...)
}

// status returns one group's status.
func (m *Manager) status(group string) (GroupStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.groups[group]
	if !ok {
		return GroupStatus{}, false
	}
	out := st.status
	out.VIPs = append([]VIPStatus(nil), out.VIPs...)
	return out, true
}

// Groups returns the status of every group in config order.
func (m *Manager) Groups() []GroupStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]GroupStatus, 0, len(m.order))
	for _, name := range m.order {
		st := m.groups[name].status
		st.VIPs = append([]VIPStatus(nil), st.VIPs...)
		out = append(out, st)
	}
	return out
}

// Ready reports whether the node is eligible to own every group, and if not, why.
func (m *Manager) Ready() (bool, string) {
	var why []string
	for _, g := range m.Groups() {
		switch {
		case !g.Eligible:
			why = append(why, g.Name+": "+g.Why)
		case g.Degraded:
			why = append(why, g.Name+": degraded: "+g.Why)
		}
	}
	if len(why) == 0 {
		return true, ""
	}
	sort.Strings(why)
	return false, "not eligible: " + strings.Join(why, "; ")
}
