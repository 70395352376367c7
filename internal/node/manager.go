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
	// onBindFailure makes the group ineligible (SetInput) before Report
	// returns its error, as the Reporter contract requires.
	onBindFailure func(group string, err error)
	// onBound tells eligibility that a take succeeded (resets its backoff).
	onBound func(group string)

	groups map[string]*groupState // fixed after NewManager
	order  []string
	wg     sync.WaitGroup // pending conflict reactions

	mu sync.Mutex // guards every groupState.status and epoch
}

type groupState struct {
	cfg    Group
	tmu    sync.Mutex // serialises this group's transitions
	status GroupStatus
	epoch  uint64 // bumped on every ownership change; cancels stale reactions
}

// NewManager returns a manager for groups. ctx bounds the announcements and
// conflict reactions it starts; Wait waits for the latter.
func NewManager(ctx context.Context, log *slog.Logger, groups []Group, b Binder, a Announcer) *Manager {
	m := &Manager{log: log, ctx: ctx, binder: b, announcer: a, now: time.Now, conflictHold: DefaultConflictHold,
		onBindFailure: func(string, error) {}, onBound: func(string) {}, groups: map[string]*groupState{}}
	start := m.now()
	for _, g := range groups {
		st := &groupState{cfg: g, status: GroupStatus{
			Name: g.Name, Since: start, Reason: "starting", Priority: g.Priority, Why: election.AwaitingInput,
		}}
		for _, v := range g.VIPs {
			st.status.VIPs = append(st.status.VIPs, VIPStatus{Address: v.Addr.String(), Interface: v.Interface})
		}
		m.groups[g.Name] = st
		m.order = append(m.order, g.Name)
	}
	return m
}

// ErrBind wraps the error of a take that failed because a VIP could not be bound.
var ErrBind = errors.New("binding VIPs")

// Report implements election.Reporter: it returns once the VIPs are bound
// and their first announcement is sent, or once they are removed. If a VIP
// cannot be bound, the ones bound are removed again, the group is made
// ineligible, and the error is returned: the elector steps down.
func (m *Manager) Report(t election.Transition) error {
	st, ok := m.groups[t.Group]
	if !ok {
		m.log.Error("transition for an unknown group", "group", t.Group)
		return nil
	}
	st.tmu.Lock()
	defer st.tmu.Unlock()
	log := m.log.With("group", t.Group, "reason", t.Reason)
	if t.Peer != "" {
		log = log.With("peer", t.Peer)
	}
	if t.Owner {
		return m.take(st, t, log)
	}
	m.release(st, t, log)
	return nil
}

func (m *Manager) take(st *groupState, t election.Transition, log *slog.Logger) error {
	var bound []int
	var bindErr error
	errs := make([]string, len(st.cfg.VIPs))
	for i, v := range st.cfg.VIPs {
		if err := m.binder.Bind(v); err != nil {
			errs[i] = err.Error()
			bindErr = fmt.Errorf("%w: %s: %v", ErrBind, v, err)
			break
		}
		bound = append(bound, i)
	}
	if bindErr != nil {
		for _, i := range bound {
			if err := m.binder.Unbind(st.cfg.VIPs[i]); err != nil {
				log.Error("removing VIP after a failed take", "vip", st.cfg.VIPs[i], "err", err)
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
	m.mu.Lock()
	for i := range st.status.VIPs {
		st.status.VIPs[i].Bound, st.status.VIPs[i].Error = true, ""
	}
	m.setOwnerLocked(st, t)
	m.mu.Unlock()
	m.onBound(t.Group)
	for _, v := range st.cfg.VIPs {
		if err := m.announcer.Start(m.ctx, v.Interface, v.Addr); err != nil {
			log.Warn("announcing VIP", "vip", v, "err", err)
		}
	}
	log.Info("owning VIPs")
	return nil
}

func (m *Manager) release(st *groupState, t election.Transition, log *slog.Logger) {
	// Ownership ends first: a conflict reaction scheduled while owning sees
	// the new epoch and never announces for a node that gave the VIP up.
	m.mu.Lock()
	m.setOwnerLocked(st, t)
	m.mu.Unlock()
	errs := make([]string, len(st.cfg.VIPs))
	for i, v := range st.cfg.VIPs {
		m.announcer.Stop(v.Addr)
		if err := m.binder.Unbind(v); err != nil {
			errs[i] = err.Error()
			log.Error("removing VIP", "vip", v, "err", err)
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
	log.Info("not owning VIPs")
}

func (m *Manager) setOwnerLocked(st *groupState, t election.Transition) {
	if st.status.Owner != t.Owner {
		st.status.Since = t.At
		st.epoch++
	}
	st.status.Owner, st.status.Reason, st.status.Peer = t.Owner, t.Reason, t.Peer
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

// SetEligibility records a group's input for status.
func (m *Manager) SetEligibility(group string, in election.Input) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.groups[group]; ok {
		st.status.Eligible, st.status.Priority, st.status.Why = in.Eligible, in.Priority, in.Reason
	}
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
		if !g.Eligible {
			why = append(why, g.Name+": "+g.Why)
		}
	}
	if len(why) == 0 {
		return true, ""
	}
	sort.Strings(why)
	return false, "not eligible: " + strings.Join(why, "; ")
}
