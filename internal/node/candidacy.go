package node

import (
	"fmt"
	"strings"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/health"
)

// Facts is everything one group's candidacy depends on, gathered by the
// eligibility tracker.
type Facts struct {
	// Links (nil: not known yet) and Hold (a bind hold-down, "" for none)
	// are the hard conditions: Eligibility.
	Links map[string]LinkState
	Hold  string
	// Checks are the current check results by name (missing: unknown).
	Checks map[string]health.Result
	// Owner: this node owns the group now.
	Owner bool
	// StartingUntil is the end of the startup delay, zero once it is over.
	StartingUntil time.Time
}

// Breakdown is how a group's input came about, for /status and `vipd status`.
type Breakdown struct {
	Base      int          `json:"base"`
	Weights   []WeightTerm `json:"weights,omitempty"`
	Gates     []GateTerm   `json:"gates,omitempty"`
	Effective int          `json:"effective"`
	// Degraded: the node is a last resort for the group (election.Input).
	Degraded bool `json:"degraded,omitempty"`
	// Held says why an improvement is not applied yet (anti-flap).
	Held string `json:"held,omitempty"`
}

// WeightTerm is one weighted check: Applied is what it adds now.
type WeightTerm struct {
	Check   string       `json:"check"`
	Weight  int          `json:"weight"`
	State   health.State `json:"state"`
	Applied int          `json:"applied"`
}

// GateTerm is one gating check.
type GateTerm struct {
	Check string       `json:"check"`
	State health.State `json:"state"`
	Error string       `json:"error,omitempty"`
}

// Candidacy is the one rule that turns a group's facts into its election
// input (docs/health.md):
//   - Hard conditions first (Eligibility): a missing or down link, or a bind
//     hold-down, make the node ineligible whatever its checks say.
//   - Weights (keepalived's): N > 0 is added while the check passes, N < 0
//     subtracted while it fails; an unknown check adds nothing. The sum is
//     clamped to 1..254.
//   - A failing gate makes the node ineligible, or only degraded (a last
//     resort) when the group's policy is keep.
//   - An unknown gate: the node takes nothing (ineligible), but an owner
//     stays a full candidate — a reload that adds or changes a check never
//     moves a VIP by itself; the check's first verdict does.
//   - During the startup delay a node that does not own the group is
//     degraded: it takes no group from a healthy owner, only one nobody holds.
func Candidacy(g Group, f Facts) (election.Input, Breakdown) {
	b := Breakdown{Base: g.Priority}
	prio := g.Priority
	var why []string
	for _, t := range g.Track {
		r, ok := f.Checks[t.Check]
		st := health.Unknown
		if ok {
			st = r.State
		}
		if t.Weight == 0 {
			b.Gates = append(b.Gates, GateTerm{Check: t.Check, State: st, Error: r.LastError})
			continue
		}
		w := WeightTerm{Check: t.Check, Weight: t.Weight, State: st}
		switch {
		case t.Weight > 0 && st == health.Passing:
			w.Applied = t.Weight
		case t.Weight < 0 && st == health.Failing:
			w.Applied = t.Weight
			why = append(why, fmt.Sprintf("check %s failing (weight %d)", t.Check, t.Weight))
		case t.Weight > 0:
			why = append(why, fmt.Sprintf("check %s %s (weight +%d not added)", t.Check, st, t.Weight))
		}
		prio += w.Applied
		b.Weights = append(b.Weights, w)
	}
	b.Effective = min(max(prio, 1), 254)

	hard := Eligibility(g, f.Links, f.Hold)
	in := election.Input{Eligible: hard.Eligible, Priority: b.Effective}
	if !hard.Eligible {
		in.Reason = hard.Reason
		return in, b
	}
	var failing, unknown []string
	for _, gt := range b.Gates {
		switch gt.State {
		case health.Failing:
			s := "check " + gt.Check + " failing"
			if gt.Error != "" {
				s += ": " + gt.Error
			}
			failing = append(failing, s)
		case health.Unknown:
			unknown = append(unknown, "check "+gt.Check+" not known yet")
		}
	}
	switch {
	case len(failing) > 0 && !g.KeepWhenNoneHealthy:
		in.Eligible = false
		why = append(failing, unknown...)
	case len(failing) > 0:
		in.Degraded = true
		why = append(append(failing, unknown...), why...)
	case len(unknown) > 0 && !f.Owner:
		in.Eligible = false
		why = unknown
	case len(unknown) > 0:
		why = append(unknown, why...)
	case !f.StartingUntil.IsZero() && !f.Owner:
		in.Degraded = true
		why = append([]string{"startup delay until " + f.StartingUntil.Format(time.TimeOnly)}, why...)
	}
	b.Degraded = in.Degraded
	in.Reason = strings.Join(why, ", ")
	return in, b
}

// rank orders inputs by how strongly they make this node a candidate:
// ineligible < degraded < eligible, then by priority.
func rank(in election.Input) int {
	switch {
	case !in.Eligible:
		return 0
	case in.Degraded:
		return 1000 + in.Priority
	}
	return 2000 + in.Priority
}
