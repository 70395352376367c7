package node

import (
	"context"
	"fmt"
	"maps"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/election"
)

// LinksUnknown is a group's reason before the first link states arrive
// (a few milliseconds at start).
const LinksUnknown = "link state not known yet"

// LinkState is what eligibility needs to know about one interface.
type LinkState struct {
	Exists bool
	Up     bool // administratively up and with carrier
}

// Eligibility is the rule that turns link states (nil: not known yet) and a
// bind hold-down (empty: none) into a group's election input: a group is
// eligible only while every interface it binds on is up, since an owner
// behind a dead link holds the VIP for nobody, and not while a failed bind
// is being backed off. (Health checks and priority weights will feed the
// same function.)
func Eligibility(g Group, links map[string]LinkState, hold string) election.Input {
	if links == nil {
		return election.Input{Priority: g.Priority, Reason: LinksUnknown}
	}
	var why []string
	seen := map[string]bool{}
	for _, v := range g.VIPs {
		if seen[v.Interface] {
			continue
		}
		seen[v.Interface] = true
		switch st := links[v.Interface]; {
		case !st.Exists:
			why = append(why, "link "+v.Interface+" missing")
		case !st.Up:
			why = append(why, "link "+v.Interface+" down")
		}
	}
	sort.Strings(why)
	if hold != "" {
		why = append(why, hold)
	}
	return election.Input{Eligible: len(why) == 0, Priority: g.Priority, Reason: strings.Join(why, ", ")}
}

// Bind hold-down: after a failed take a group stays ineligible for a while,
// doubling per consecutive failure, so a VIP that cannot be bound here (an
// address conflict, a missing interface) moves to a node that can instead of
// bouncing back at once.
const (
	minBindHold = 2 * time.Second
	maxBindHold = time.Minute
)

type bindHold struct {
	until   time.Time
	backoff time.Duration
	reason  string // empty once expired
}

// eligibilityTracker owns every group's input: it combines link states and
// bind holds and pushes each change to apply (the elector and the status).
type eligibilityTracker struct {
	groups []Group
	apply  func(group string, in election.Input)
	now    func() time.Time
	wake   chan struct{}

	known     chan struct{} // closed with the first link states
	knownOnce sync.Once

	mu    sync.Mutex // also orders apply calls
	links map[string]LinkState
	holds map[string]*bindHold
	last  map[string]election.Input
}

func newEligibilityTracker(groups []Group, now func() time.Time, apply func(string, election.Input)) *eligibilityTracker {
	return &eligibilityTracker{groups: groups, apply: apply, now: now, wake: make(chan struct{}, 1),
		known: make(chan struct{}), holds: map[string]*bindHold{}, last: map[string]election.Input{}}
}

// evaluateLocked pushes every group's input that changed (all with force).
func (e *eligibilityTracker) evaluateLocked(force bool) {
	for _, g := range e.groups {
		hold := ""
		if h := e.holds[g.Name]; h != nil {
			hold = h.reason
		}
		in := Eligibility(g, e.links, hold)
		if prev, ok := e.last[g.Name]; ok && prev == in && !force {
			continue
		}
		e.last[g.Name] = in
		e.apply(g.Name, in)
	}
}

func (e *eligibilityTracker) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evaluateLocked(true)
}

func (e *eligibilityTracker) setLinks(links map[string]LinkState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.links = maps.Clone(links)
	e.evaluateLocked(false)
	e.knownOnce.Do(func() { close(e.known) })
}

// bindFailed holds group down; the group's new input is applied before it
// returns (the Reporter contract).
func (e *eligibilityTracker) bindFailed(group string, err error) {
	e.mu.Lock()
	h := e.holds[group]
	if h == nil {
		h = &bindHold{}
		e.holds[group] = h
	}
	h.backoff = min(max(minBindHold, 2*h.backoff), maxBindHold)
	h.until = e.now().Add(h.backoff)
	h.reason = fmt.Sprintf("bind failed (retry in %s): %v", h.backoff, err)
	e.evaluateLocked(false)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// bound forgets group's backoff after a successful take.
func (e *eligibilityTracker) bound(group string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.holds[group]; h != nil && h.reason == "" {
		delete(e.holds, group)
	}
}

// run ends bind holds when they expire, until ctx is done.
func (e *eligibilityTracker) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		e.mu.Lock()
		now := e.now()
		var next time.Time
		expired := false
		for _, h := range e.holds {
			if h.reason == "" {
				continue
			}
			if !now.Before(h.until) {
				h.reason = ""
				expired = true
			} else if next.IsZero() || h.until.Before(next) {
				next = h.until
			}
		}
		if expired {
			e.evaluateLocked(false)
		}
		e.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-t.C:
		}
	}
}

// LinkSource reports the state of network interfaces.
type LinkSource interface {
	// Watch calls update with the state of every named interface once it
	// is known, and again after every change, until ctx is done (nil) or
	// the watch breaks (the error; the daemon restarts it).
	Watch(ctx context.Context, names []string, update func(map[string]LinkState)) error
}

// NetlinkLinks is the LinkSource of the running kernel (the current network
// namespace).
type NetlinkLinks struct{}

// linkUp treats an interface as usable when it is up and has carrier;
// drivers that do not report an operational state (OperUnknown) count as up
// when RUNNING.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.RawFlags&unix.IFF_RUNNING != 0
	}
	return false
}

// Watch implements LinkSource.
func (NetlinkLinks) Watch(ctx context.Context, names []string, update func(map[string]LinkState)) error {
	updates := make(chan netlink.LinkUpdate, 32)
	done := make(chan struct{})
	defer close(done)
	// Subscribe before reading the current states, so no change is lost
	// between the two.
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return fmt.Errorf("subscribing to link updates: %w", err)
	}
	states := map[string]LinkState{}
	for _, name := range names {
		if l, err := netlink.LinkByName(name); err == nil {
			states[name] = LinkState{Exists: true, Up: linkUp(l)}
		} else {
			states[name] = LinkState{}
		}
	}
	update(maps.Clone(states))
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("link updates: subscription closed")
			}
			name := u.Attrs().Name
			if _, watched := states[name]; !watched {
				continue
			}
			st := LinkState{Exists: true, Up: linkUp(u.Link)}
			if u.Header.Type == unix.RTM_DELLINK {
				st = LinkState{}
			}
			if states[name] == st {
				continue
			}
			states[name] = st
			update(maps.Clone(states))
		}
	}
}
