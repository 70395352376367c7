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
	return &Static{
		groups: groups,
		inputs: NewInputs(groups, Input{Eligible: true, Priority: 100}),
		now:    time.Now,
	}
}

// SetInput implements Elector.
func (s *Static) SetInput(group string, in Input) { s.inputs.Set(group, in) }

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
			report(Transition{Group: g, Owner: want, Reason: reason, At: s.now()})
			owned[g] = want
		}
		select {
		case <-ctx.Done():
			for _, g := range s.groups {
				if owned[g] {
					report(Transition{Group: g, Owner: false, Reason: "shutdown", At: s.now()})
				}
			}
			return nil
		case <-s.inputs.Changed():
		}
	}
}
