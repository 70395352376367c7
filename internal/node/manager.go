// Package node acts on election results: it binds and releases a group's
// VIPs, starts and stops their announcements, derives each group's
// eligibility from the node's links, and keeps the status shown on /status.
package node

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/config"
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

// Group is one configured group as the manager needs it.
type Group struct {
	Name     string
	Priority int
	VIPs     []addr.VIP
}

// GroupsFromConfig converts validated config groups.
func GroupsFromConfig(c *config.Config) []Group {
	out := make([]Group, len(c.Groups))
	for i, g := range c.Groups {
		out[i] = Group{Name: g.Name, Priority: g.Priority}
		for _, v := range g.VIPs {
			out[i].VIPs = append(out[i].VIPs, addr.VIP{Interface: v.Interface, Addr: v.Addr})
		}
	}
	return out
}

// AllVIPs lists every VIP of groups.
func AllVIPs(groups []Group) []addr.VIP {
	var out []addr.VIP
	for _, g := range groups {
		out = append(out, g.VIPs...)
	}
	return out
}

// Manager implements election.Reporter (Report) and keeps status.
type Manager struct {
	log       *slog.Logger
	ctx       context.Context // bounds announcement goroutines
	binder    Binder
	announcer Announcer
	now       func() time.Time

	mu     sync.Mutex
	groups map[string]*groupState
	order  []string
}

type groupState struct {
	cfg    Group
	status GroupStatus
}

// GroupStatus is one group as shown on /status.
type GroupStatus struct {
	Name     string      `json:"name"`
	Owner    bool        `json:"owner"`
	Since    time.Time   `json:"since"`
	Reason   string      `json:"reason"`
	Peer     string      `json:"peer,omitempty"`
	Eligible bool        `json:"eligible"`
	Priority int         `json:"priority"`
	Why      string      `json:"why,omitempty"` // why the node is not eligible
	VIPs     []VIPStatus `json:"vips"`
}

// VIPStatus is one VIP as shown on /status.
type VIPStatus struct {
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Bound     bool   `json:"bound"`
	Error     string `json:"error,omitempty"`
	// Conflicts counts frames in which another MAC claimed this VIP while
	// this node held it; LastConflict names that MAC.
	Conflicts    uint64    `json:"conflicts,omitempty"`
	LastConflict string    `json:"lastConflict,omitempty"`
	conflictAt   time.Time // last reaction, for rate limiting
}

// NewManager returns a manager for groups. ctx bounds the announcement
// goroutines it starts.
func NewManager(ctx context.Context, log *slog.Logger, groups []Group, b Binder, a Announcer) *Manager {
	m := &Manager{log: log, ctx: ctx, binder: b, announcer: a, now: time.Now, groups: map[string]*groupState{}}
	start := m.now()
	for _, g := range groups {
		st := &groupState{cfg: g, status: GroupStatus{
			Name: g.Name, Since: start, Reason: "starting", Eligible: true, Priority: g.Priority,
		}}
		for _, v := range g.VIPs {
			st.status.VIPs = append(st.status.VIPs, VIPStatus{Address: v.Addr.String(), Interface: v.Interface})
		}
		m.groups[g.Name] = st
		m.order = append(m.order, g.Name)
	}
	return m
}

// Report implements election.Reporter: it returns once the VIPs are bound
// and their first announcement is sent, or once they are removed.
func (m *Manager) Report(t election.Transition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.groups[t.Group]
	if !ok {
		m.log.Error("transition for an unknown group", "group", t.Group)
		return nil
	}
	log := m.log.With("group", t.Group, "reason", t.Reason)
	if t.Peer != "" {
		log = log.With("peer", t.Peer)
	}
	for i, v := range st.cfg.VIPs {
		vs := &st.status.VIPs[i]
		vs.Error = ""
		if t.Owner {
			if err := m.binder.Bind(v); err != nil {
				vs.Error = err.Error()
				log.Error("binding VIP", "vip", v, "err", err)
				continue
			}
			vs.Bound = true
			if err := m.announcer.Start(m.ctx, v.Interface, v.Addr); err != nil {
				log.Warn("announcing VIP", "vip", v, "err", err)
			}
		} else {
			m.announcer.Stop(v.Addr)
			if err := m.binder.Unbind(v); err != nil {
				vs.Error = err.Error()
				log.Error("removing VIP", "vip", v, "err", err)
				continue
			}
			vs.Bound = false
		}
	}
	if st.status.Owner != t.Owner {
		st.status.Since = t.At
	}
	st.status.Owner, st.status.Reason, st.status.Peer = t.Owner, t.Reason, t.Peer
	if t.Owner {
		log.Info("owning VIPs")
	} else {
		log.Info("not owning VIPs")
	}
	return nil
}

// conflictReactionGap bounds how often a conflict on one VIP is logged and
// answered with a fresh announcement, so two nodes that both believe they
// own a VIP (a split brain the election has yet to resolve) cannot start an
// announcement storm.
const conflictReactionGap = time.Second

// Conflict handles another host claiming a VIP this node holds (seen by
// arp.WatchConflicts). The election stays the authority on who owns: this
// node counts and logs the conflict and re-announces at once, so clients
// and switches that just learned the other MAC come back to the owner the
// election chose. Duplicate owners are then visible in /status and logs.
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
			m.log.Warn("another host claims a VIP this node owns; re-announcing", "group", name, "vip", v, "mac", mac, "conflicts", vs.Conflicts)
			if err := m.announcer.Start(m.ctx, v.Interface, v.Addr); err != nil {
				m.log.Warn("re-announcing VIP", "vip", v, "err", err)
			}
			return
		}
	}
}

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
