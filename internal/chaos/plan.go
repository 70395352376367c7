// Package chaos runs vipd through a seeded random sequence of faults in a
// throw-away network-namespace lab (`vipd chaos`) and checks, after each
// fault and its repair, that the VIP keeps exactly one owner: one node
// answers within the mode's bound, no two nodes hold or answer for it at
// once outside a deliberate partition, no VIP stays bound on a node that
// does not own it, and no vipd restarts itself (docs/chaos.md).
//
// The pieces that decide things are pure and table-tested: the fault plan
// from a seed (plan.go), the bounds (timing.go), the invariant checkers over
// recorded event streams (check.go), the statistics and the report
// (report.go). run.go drives the lab (root only).
package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Mode names, as in the config's `mode`.
const (
	ModeVRRP   = "vrrp"
	ModeLease  = "lease"
	ModeGossip = "gossip"
)

// Modes lists the modes chaos runs, in the order docs and tests use.
var Modes = []string{ModeVRRP, ModeLease, ModeGossip}

// Kind is one kind of fault.
type Kind string

// The fault kinds. Each names what is done and how it is repaired.
const (
	// SIGKILL the node's vipd (a crash: no goodbye, VIPs left to the
	// kernel lifetime), then start it again.
	KindSIGKILL Kind = "sigkill"
	// SIGTERM (graceful stop: VIPs removed, peers told), then start again.
	KindSIGTERM Kind = "sigterm"
	// Link down on the node's eth0 for the hold time, then up.
	KindLinkDown Kind = "linkdown"
	// The node's switch port stops forwarding (a silent partition from the
	// other nodes, the client and, in Lease mode, the API server) for the
	// hold time, then forwards again.
	KindPartition Kind = "partition"
	// SIGTERM and start again at once (systemctl restart).
	KindRestart Kind = "restart"
	// The node's health check (an HTTP gate) fails for the hold time,
	// then passes again.
	KindHealth Kind = "health"
	// SIGSTOP for the hold time, then SIGCONT: a hung vipd.
	KindSIGSTOP Kind = "sigstop"
	// Lease mode: kube-apiserver SIGKILLed, started again after the hold
	// time.
	KindAPIServer Kind = "apiserver"
)

// Kinds returns the fault kinds that apply to mode, in a fixed order.
func Kinds(mode string) []Kind {
	ks := []Kind{KindSIGKILL, KindSIGTERM, KindLinkDown, KindPartition, KindRestart, KindHealth, KindSIGSTOP}
	if mode == ModeLease {
		ks = append(ks, KindAPIServer)
	}
	return ks
}

// ParseMode checks a mode name.
func ParseMode(s string) (string, error) {
	for _, m := range Modes {
		if s == m {
			return m, nil
		}
	}
	return "", fmt.Errorf("mode %q: must be one of %s", s, strings.Join(Modes, ", "))
}

// TargetOwner in Step.Node: the fault hits whichever node owns the VIP
// when it is applied (known only then).
const TargetOwner = -1

// Step is one planned fault.
type Step struct {
	Kind Kind
	// Node is the index of the node hit (0-based), or TargetOwner. Unused
	// for KindAPIServer.
	Node int
	// Hold is how long the fault lasts before its repair, for the kinds
	// that have one (link down, partition, health, SIGSTOP, API server).
	Hold time.Duration
}

func (s Step) String() string {
	t := "owner"
	if s.Node >= 0 {
		t = fmt.Sprintf("node%d", s.Node+1)
	}
	if s.Kind == KindAPIServer {
		t = "api server"
	}
	if s.Kind.hasHold() {
		return fmt.Sprintf("%s %s for %s", s.Kind, t, s.Hold)
	}
	return fmt.Sprintf("%s %s", s.Kind, t)
}

func (k Kind) hasHold() bool {
	switch k {
	case KindLinkDown, KindPartition, KindHealth, KindSIGSTOP, KindAPIServer:
		return true
	}
	return false
}

// PlanOptions are Plan's inputs.
type PlanOptions struct {
	Seed   uint64
	Faults int
	Nodes  int
	Kinds  []Kind
	// OwnerShare is the share of faults aimed at the current owner (the
	// interesting case); the rest hit a node drawn at random (which may
	// be the owner too). Default 2/3.
	OwnerShare float64
	// HoldMin and HoldMax bound the hold times, drawn uniformly (rounded
	// to 100ms).
	HoldMin, HoldMax time.Duration
}

// Plan returns the fault sequence for o: the same options give the same
// sequence. Kinds are dealt like cards, a shuffled deck of every kind at a
// time, so a short run still covers each kind evenly.
func Plan(o PlanOptions) ([]Step, error) {
	if o.Faults < 0 {
		return nil, fmt.Errorf("faults %d: must not be negative", o.Faults)
	}
	if o.Nodes < 2 {
		return nil, fmt.Errorf("nodes %d: at least 2 are needed for a failover", o.Nodes)
	}
	if len(o.Kinds) == 0 {
		return nil, fmt.Errorf("no fault kinds")
	}
	if o.HoldMin <= 0 || o.HoldMax < o.HoldMin {
		return nil, fmt.Errorf("hold %s..%s: need 0 < min <= max", o.HoldMin, o.HoldMax)
	}
	share := o.OwnerShare
	if share == 0 {
		share = 2.0 / 3
	}
	// PCG with the seed in both halves: documented, stable across Go
	// releases (math/rand/v2 promises PCG's output), unlike the runtime's
	// random source.
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var deck []Kind
	steps := make([]Step, 0, o.Faults)
	const step = 100 * time.Millisecond
	for range o.Faults {
		if len(deck) == 0 {
			deck = append(deck, o.Kinds...)
			r.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		k := deck[0]
		deck = deck[1:]
		s := Step{Kind: k, Node: TargetOwner}
		if r.Float64() >= share {
			s.Node = r.IntN(o.Nodes)
		}
		span := int64((o.HoldMax - o.HoldMin) / step)
		s.Hold = o.HoldMin + time.Duration(r.Int64N(span+1))*step
		if k == KindAPIServer {
			s.Node = TargetOwner
		}
		if !k.hasHold() {
			s.Hold = 0
		}
		steps = append(steps, s)
	}
	return steps, nil
}
