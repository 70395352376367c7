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
	"github.com/vipd/vipd/internal/health"
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

// eligibilityTracker owns every group's input: it combines link states,
// bind holds, check results, ownership and the start-up delay (Candidacy),
// damps improvements (anti-flap), and pushes each change to apply (the
// elector and the status).
type eligibilityTracker struct {
	apply   func(group string, in election.Input, b Breakdown)
	now     func() time.Time
	minMove time.Duration
	wake    chan struct{}

	known     chan struct{} // closed with the first link states
	knownOnce sync.Once

	mu            sync.Mutex // also orders apply calls
	groups        []Group
	links         map[string]LinkState
	holds         map[string]*bindHold
	lapses        map[string]string // group -> hold reason, until the elector stepped down
	checks        map[string]health.Result
	owners        map[string]bool
	startingUntil time.Time
	last          map[string]applied
}

// applied is what a group's input was last set to, and its damping state.
type applied struct {
	in         election.Input
	b          Breakdown
	healthRank int       // rank of the health part alone
	healthDrop time.Time // when health last made this node a worse candidate
	heldUntil  time.Time // an improvement is held until then
}

func newEligibilityTracker(groups []Group, now func() time.Time, startupDelay, minMove time.Duration, apply func(string, election.Input, Breakdown)) *eligibilityTracker {
	e := &eligibilityTracker{groups: groups, apply: apply, now: now, minMove: minMove, wake: make(chan struct{}, 1),
		known: make(chan struct{}), holds: map[string]*bindHold{}, lapses: map[string]string{}, checks: map[string]health.Result{},
		owners: map[string]bool{}, last: map[string]applied{}}
	if startupDelay > 0 {
		e.startingUntil = now().Add(startupDelay)
	}
	return e
}

func (e *eligibilityTracker) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// allUp is links with every interface of g up: the health part of a
// candidacy alone, for damping.
func allUp(g Group) map[string]LinkState {
	m := map[string]LinkState{}
	for _, v := range g.VIPs {
		m[v.Interface] = LinkState{Exists: true, Up: true}
	}
	return m
}

// evaluateLocked pushes every group's input that changed (all with force).
func (e *eligibilityTracker) evaluateLocked(force bool) {
	now := e.now()
	if !e.startingUntil.IsZero() && !now.Before(e.startingUntil) {
		e.startingUntil = time.Time{}
	}
	for _, g := range e.groups {
		hold := ""
		if h := e.holds[g.Name]; h != nil {
			hold = h.reason
		}
		if l := e.lapses[g.Name]; l != "" {
			if hold != "" {
				hold += ", "
			}
			hold += l
		}
		f := Facts{Links: e.links, Hold: hold, Checks: e.checks, Owner: e.owners[g.Name], StartingUntil: e.startingUntil}
		in, b := Candidacy(g, f)
		// The health part alone: links, holds and the start-up delay are
		// not health, and their changes never start a hold.
		f.Links, f.Hold, f.StartingUntil = allUp(g), "", time.Time{}
		healthIn, _ := Candidacy(g, f)
		hr := rank(healthIn)

		prev, seen := e.last[g.Name]
		next := applied{in: in, b: b, healthRank: hr, healthDrop: prev.healthDrop}
		if seen && hr < prev.healthRank {
			next.healthDrop = now
		}
		// Anti-flap: after health made this node a worse candidate, it
		// becomes a better one again only minMove later. Worse is applied
		// at once: a broken owner must never be kept by a damper.
		if seen && e.minMove > 0 && rank(in) > rank(prev.in) && !next.healthDrop.IsZero() {
			if until := next.healthDrop.Add(e.minMove); now.Before(until) {
				next.in = prev.in
				next.heldUntil = until
				next.b.Held = fmt.Sprintf("held until %s (health.minMoveInterval %s after the last health-caused drop)",
					until.Format(time.TimeOnly), e.minMove)
			}
		}
		if seen && !force && prev.in == next.in && prev.b.Held == next.b.Held && breakdownEqual(prev.b, next.b) {
			e.last[g.Name] = next
			continue
		}
		e.last[g.Name] = next
		e.apply(g.Name, next.in, next.b)
	}
}

func breakdownEqual(a, b Breakdown) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
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
	e.signal() // a link may complete a held improvement: run must time it
}

// setCheck records a check's new result.
func (e *eligibilityTracker) setCheck(r health.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checks[r.Name] = r
	e.evaluateLocked(false)
	e.signal()
}

// setChecks replaces every check result (after a reload).
func (e *eligibilityTracker) setChecks(rs []health.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checks = map[string]health.Result{}
	for _, r := range rs {
		e.checks[r.Name] = r
	}
	e.evaluateLocked(false)
	e.signal()
}

// setOwner records whether this node owns group (unknown checks and the
// start-up delay treat an owner differently).
func (e *eligibilityTracker) setOwner(group string, owner bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.owners[group] == owner {
		return
	}
	e.owners[group] = owner
	e.evaluateLocked(false)
	e.signal() // ownership may start or end a hold, like any other fact
}

// setGroups replaces the group list (a reload); inputs of new groups are
// applied before it returns.
func (e *eligibilityTracker) setGroups(groups []Group) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groups = groups
	keep := map[string]bool{}
	for _, g := range groups {
		keep[g.Name] = true
	}
	for name := range e.last {
		if !keep[name] {
			delete(e.last, name)
			delete(e.holds, name)
			delete(e.lapses, name)
			delete(e.owners, name)
		}
	}
	e.evaluateLocked(false)
	e.signal()
}

// input returns a group's applied input.
func (e *eligibilityTracker) input(group string) (election.Input, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.last[group]
	return a.in, ok
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
	e.signal()
}

// lapsed holds group down after its VIPs lapsed (Manager.Lapsed) until
// lapseEnded: no timer, since the hold must last until the elector has
// stepped down, and an elector that saw the input only after it was
// eligible again would keep an ownership the node gave up.
func (e *eligibilityTracker) lapsed(group string, gap time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lapses[group] = fmt.Sprintf("VIPs lapsed (not refreshed for %s): awaiting the election's step-down", gap.Round(time.Millisecond))
	e.evaluateLocked(false)
}

// lapseEnded ends group's lapse hold (the elector reported on the group).
func (e *eligibilityTracker) lapseEnded(group string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.lapses[group]; !ok {
		return
	}
	delete(e.lapses, group)
	e.evaluateLocked(false)
	e.signal() // the end may complete a held improvement: run must time it
}

// bound forgets group's backoff after a successful take.
func (e *eligibilityTracker) bound(group string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.holds[group]; h != nil && h.reason == "" {
		delete(e.holds, group)
	}
}

// run re-evaluates when a bind hold, the start-up delay or an anti-flap
// hold ends, until ctx is done.
func (e *eligibilityTracker) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		e.mu.Lock()
		now := e.now()
		var next time.Time
		due := false
		consider := func(at time.Time) {
			switch {
			case at.IsZero():
			case !now.Before(at):
				due = true
			case next.IsZero() || at.Before(next):
				next = at
			}
		}
		for _, h := range e.holds {
			if h.reason == "" {
				continue
			}
			if !now.Before(h.until) {
				h.reason = ""
				due = true
			} else {
				consider(h.until)
			}
		}
		consider(e.startingUntil)
		for _, a := range e.last {
			consider(a.heldUntil)
		}
		if due {
			e.evaluateLocked(false)
			e.mu.Unlock()
			continue
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
