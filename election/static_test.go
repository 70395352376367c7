package election

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

// transitions records reports; fail, if set, decides a report's error.
type transitions struct {
	mu   sync.Mutex
	got  []Transition
	fail func(Transition) error
}

func (r *transitions) report(t Transition) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, t)
	if r.fail != nil {
		return r.fail(t)
	}
	return nil
}

func (r *transitions) all() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Transition(nil), r.got...)
}

func TestStaticOwnsWhileEligibleAndReleasesOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStatic([]string{"a", "b"})
		s.SetInput("a", Input{Eligible: true, Priority: 100})
		s.SetInput("b", Input{Eligible: false, Priority: 100, Reason: "link eth1 down"})
		ctx, cancel := context.WithCancel(context.Background())
		r := &transitions{}
		done := make(chan error)
		go func() { done <- s.Run(ctx, r.report) }()

		synctest.Wait()
		got := r.all()
		if len(got) != 1 || got[0].Group != "a" || !got[0].Owner || got[0].Reason != "static" {
			t.Fatalf("transitions %+v, want only a owned (static)", got)
		}
		s.SetInput("b", Input{Eligible: true, Priority: 100})
		synctest.Wait()
		if got = r.all(); len(got) != 2 || got[1].Group != "b" || !got[1].Owner {
			t.Fatalf("transitions %+v, want b owned second", got)
		}
		s.SetInput("a", Input{Eligible: false, Priority: 100, Reason: "link eth0 down"})
		synctest.Wait()
		if got = r.all(); len(got) != 3 || got[2].Group != "a" || got[2].Owner || got[2].Reason != "ineligible: link eth0 down" {
			t.Fatalf("transitions %+v, want a released with the input's reason", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got = r.all(); len(got) != 4 || got[3].Group != "b" || got[3].Owner || got[3].Reason != "shutdown" {
			t.Fatalf("on shutdown: %+v, want only b released (a was not owned)", got[3:])
		}
	})
}

func TestStaticWaitsForTheFirstInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStatic([]string{"a"})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &transitions{}
		go func() { _ = s.Run(ctx, r.report) }()
		synctest.Wait()
		if got := r.all(); len(got) != 0 {
			t.Fatalf("owned before any input: %+v", got)
		}
	})
}

// A failed take is not ownership: no Owner=false on shutdown for it, and the
// next eligible input makes the elector try again.
func TestStaticFailedBindIsNotOwned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStatic([]string{"a"})
		s.SetInput("a", Input{Eligible: true, Priority: 100})
		failing := true
		r := &transitions{fail: func(tr Transition) error {
			if tr.Owner && failing {
				// As the daemon does: ineligible first, then the error.
				s.SetInput("a", Input{Eligible: false, Priority: 100, Reason: "bind failed"})
				return errors.New("bind failed")
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx, r.report) }()
		synctest.Wait()
		failing = false
		// The daemon's backoff ends: eligible again.
		s.SetInput("a", Input{Eligible: true, Priority: 100})
		synctest.Wait()
		cancel()
		<-done
		got := r.all()
		want := []bool{true, true, false} // failed take, successful take, shutdown
		if len(got) != len(want) {
			t.Fatalf("transitions %+v, want owner sequence %v", got, want)
		}
		for i, w := range want {
			if got[i].Owner != w {
				t.Fatalf("transition %d %+v, want owner=%v", i, got[i], w)
			}
		}
		if got[2].Reason != "shutdown" {
			t.Fatalf("last transition %+v, want shutdown", got[2])
		}
	})
}
