// Package election defines the one seam between "who should own a VIP group"
// and "what the node does about it". Every election mode (static, VRRP, Lease,
// gossip) implements Elector; the node manager binds and releases addresses.
package election

import (
	"context"
	"sync"
	"time"
)

// Input is what this node contributes to an election for one group. It may
// change at any time: health checks gate Eligible, weights move Priority.
type Input struct {
	// Eligible false means the node must not own the group (failed health
	// check, draining). An owner that becomes ineligible gives the group up.
	Eligible bool
	// Degraded (only with Eligible) makes the node a last resort for the
	// group: a gate check fails but the group's policy is "keep", or the
	// node is within its start-up delay. Every elector
	// implements the same rule: a degraded node keeps a group it owns until a
	// healthy (Eligible, not Degraded) node wants it, never takes a group
	// from a live owner, and takes a group nobody owns only if no healthy
	// node does. Priority still orders degraded nodes among themselves
	// where the mode can carry it (gossip, Lease; VRRP advertises every
	// degraded router at priority 1, so there the higher address wins).
	// (VRRP: it advertises priority 1, so every healthy preempting router
	// wins; Lease: it hands over to a healthy candidate that asks; gossip: its
	// bid ranks below every healthy bid.)
	Degraded bool
	// Priority is the effective priority, 1..254 (VRRP semantics: higher
	// wins): the group's base priority plus its check weights, clamped.
	Priority int
	// Reason says why the input is what it is (e.g. "link eth0 down"); an
	// elector puts it into the Transition it reports because of this input.
	Reason string
}

// Transition is one change of ownership of a group, as decided by an elector.
type Transition struct {
	Group string
	// Owner true: this node must hold the group's VIPs from now on.
	// Owner false: it must not (it lost, stepped down, or is shutting down).
	Owner bool
	// Reason is a short, stable, machine-friendly word or phrase, e.g.
	// "static", "master-down-timer", "higher-priority-advert", "lease-acquired",
	// "renew-deadline", "shutdown". It is shown in /status, logs and metrics.
	Reason string
	// Peer is the node (name or address) believed to own the group now, when
	// known; empty otherwise.
	Peer string
	At   time.Time
}

// Reporter receives transitions. It is called synchronously and returns only
// once the node has acted on the transition (VIPs bound and first
// announcement sent, or VIPs removed). Electors rely on this for ordering:
// e.g. a Lease holder reports Owner=false and only then releases the Lease,
// and a VRRP master reports Owner=false before its priority-0 advert.
//
// A non-nil error on an Owner=true transition means the node could not take
// the group (a VIP could not be bound): it has already removed whatever it
// bound and made the group ineligible with SetInput (with the reason) before
// returning. The elector must then treat the group as not owned and step
// down exactly as for an ineligible input (VRRP: priority-0 advert; Lease:
// release; gossip: withdraw the claim), so a node that could not bind never
// claims the VIP. Owner=false transitions always return nil.
//
// Reporting Owner=true again for a group the node already owns is how an
// elector asks for the VIPs to be announced anew (e.g. a VRRP master that
// hears a lower-priority master after a partition heals): the node re-binds
// them (harmless), restarts the announcement burst, and records no
// transition.
type Reporter func(Transition) error

// Elector takes part in the election for the configured groups.
type Elector interface {
	// Run campaigns until ctx is done. Before it returns it must have reported
	// Owner=false (reason "shutdown") for every group it had reported as owned,
	// and only then announce its departure to peers (priority-0 advert, Lease
	// release, memberlist leave), so a peer never binds a VIP this node still has.
	Run(ctx context.Context, report Reporter) error
	// SetInput updates this node's eligibility and priority for a group. It is
	// safe to call concurrently with Run, before or after it starts. Until
	// the first SetInput a group is ineligible: the daemon is the only source
	// of inputs, and it sets every group's before Run.
	SetInput(group string, in Input)
	// Ready reports whether the mode lets this node own VIPs, and if not,
	// why (e.g. "Kubernetes API unreachable for 12s", "refused by gossip
	// peers", "cannot send adverts on eth0"). It feeds /readyz.
	Ready() (bool, string)
	// Status is the mode's own state for /status (counters, peers, API
	// reachability); it must not block on I/O.
	Status() any
}

// Inputs is a small concurrency-safe store of per-group inputs with change
// notification, for electors to embed instead of each writing its own.
type Inputs struct {
	mu      sync.Mutex
	byGroup map[string]Input
	changed chan struct{}
}

// AwaitingInput is the reason of a group's input before the daemon set it.
const AwaitingInput = "awaiting the daemon's first input"

// NewInputs returns a store where every listed group starts ineligible
// (AwaitingInput) until Set: an elector never guesses a priority.
func NewInputs(groups []string) *Inputs {
	s := &Inputs{byGroup: make(map[string]Input, len(groups)), changed: make(chan struct{}, 1)}
	for _, g := range groups {
		s.byGroup[g] = Input{Reason: AwaitingInput}
	}
	return s
}

// Set stores in for group and wakes one waiter on Changed.
func (s *Inputs) Set(group string, in Input) {
	s.mu.Lock()
	s.byGroup[group] = in
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Get returns the input for group (the zero Input, i.e. ineligible, if unknown).
func (s *Inputs) Get(group string) Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byGroup[group]
}

// Changed is signalled (coalesced) after every Set.
func (s *Inputs) Changed() <-chan struct{} { return s.changed }
