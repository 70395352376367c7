package election

import (
	"context"
	"time"
)

// Static is the election of one: this node owns every group it is eligible
// for. It is the base case (a single load balancer, tests, the lab) and the
// reference for how an elector reports.
type Static struct {
	groups []string
	inputs *Inputs
	now    func() time.Time
}

// NewStatic returns an elector that owns every listed group while eligible.
func NewStatic(groups []string) *Static {
	return &Static{groups: groups, inputs: NewInputs(groups), now: time.Now}
}

// SetInput implements Elector.
func (s *Static) SetInput(group string, in Input) { s.inputs.Set(group, in) }

// Ready implements Elector: static adds no condition of its own.
func (s *Static) Ready() (bool, string) { return true, "" }

// Status implements Elector: static has no state beyond the daemon's.
func (s *Static) Status() any { return nil }

// Run implements Elector.
func (s *Static) Run(ctx context.Context, report Reporter) error {
	owned := make(map[string]bool, len(s.groups))
	for {
		for _, g := range s.groups {
			in := s.inputs.Get(g)
			want := in.Eligible
			if want == owned[g] {
				continue
			}
			reason := "static"
			if !want {
				reason = "ineligible"
				if in.Reason != "" {
					reason += ": " + in.Reason
				}
			}
			// A failed take leaves the group unowned; the daemon has made
			// it ineligible, and its next input wakes this loop again.
			err := report(Transition{Group: g, Owner: want, Reason: reason, At: s.now()})
			owned[g] = want && err == nil
		}
		select {
		case <-ctx.Done():
			for _, g := range s.groups {
				if owned[g] {
					_ = report(Transition{Group: g, Owner: false, Reason: "shutdown", At: s.now()})
				}
			}
			return nil
		case <-s.inputs.Changed():
		}
	}
}
