package election

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Static is the election of one: this node owns every group it is eligible
// for. It is the base case (a single load balancer, tests, the lab) and the
// reference for how an elector reports.
type Static struct {
	inputs *Inputs
	now    func() time.Time

	mu      sync.Mutex
	groups  []string
	running chan struct{} // non-nil while Run runs; closed when it ends
	// reconf carries Reconfigure's requests into Run, which alone reports.
	reconf chan reconfigure
}

type reconfigure struct {
	groups []string
	done   chan struct{}
}

// NewStatic returns an elector that owns every listed group while eligible.
func NewStatic(groups []string) *Static {
	return &Static{groups: slices.Clone(groups), inputs: NewInputs(groups), now: time.Now, reconf: make(chan reconfigure)}
}

// SetInput implements Elector.
func (s *Static) SetInput(group string, in Input) { s.inputs.Set(group, in) }

// Ready implements Elector: static adds no condition of its own.
func (s *Static) Ready() (bool, string) { return true, "" }

// Status implements Elector: static has no state beyond the daemon's.
func (s *Static) Status() any { return nil }

// Reconfigure replaces the group list (a reload). Groups no longer listed
// are reported Owner=false (reason "removed") before it returns; groups
// kept keep their ownership; added groups are decided from their inputs.
// Before Run starts (or after it ended) it only replaces the list.
func (s *Static) Reconfigure(groups []string) {
	req := reconfigure{groups: slices.Clone(groups), done: make(chan struct{})}
	s.mu.Lock()
	running := s.running
	if running == nil {
		s.groups = req.groups
	}
	s.mu.Unlock()
	if running == nil {
		return
	}
	select {
	case s.reconf <- req:
		<-req.done
	case <-running:
		s.mu.Lock()
		s.groups = req.groups
		s.mu.Unlock()
	}
}

// Run implements Elector.
func (s *Static) Run(ctx context.Context, report Reporter) error {
	owned := map[string]bool{}
	running := make(chan struct{})
	s.mu.Lock()
	s.running = running
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = nil
		s.mu.Unlock()
		close(running)
	}()
	for {
		s.mu.Lock()
		groups := s.groups
		s.mu.Unlock()
		for _, g := range groups {
			in := s.inputs.Get(g)
			// A degraded node is the only candidate there is: static
			// keeps and takes with it (policy release made it ineligible).
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
			for _, g := range groups {
				if owned[g] {
					_ = report(Transition{Group: g, Owner: false, Reason: "shutdown", At: s.now()})
				}
			}
			return nil
		case <-s.inputs.Changed():
		case req := <-s.reconf:
			for _, g := range groups {
				if owned[g] && !slices.Contains(req.groups, g) {
					_ = report(Transition{Group: g, Owner: false, Reason: "removed", At: s.now()})
					delete(owned, g)
				}
			}
			s.mu.Lock()
			s.groups = req.groups
			s.mu.Unlock()
			close(req.done)
		}
	}
}
