package election

import (
	"context"
	"sync"
	"testing"
	"time"
)

type transitions struct {
	mu  sync.Mutex
	got []Transition
}

func (r *transitions) report(t Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, t)
}

func (r *transitions) wait(t *testing.T, n int) []Transition {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]Transition(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d transitions, want %d: %+v", len(got), n, got)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStaticOwnsWhileEligibleAndReleasesOnShutdown(t *testing.T) {
	s := NewStatic([]string{"a", "b"})
	s.SetInput("b", Input{Eligible: false, Priority: 100, Reason: "link eth1 down"})
	ctx, cancel := context.WithCancel(context.Background())
	r := &transitions{}
	done := make(chan error)
	go func() { done <- s.Run(ctx, r.report) }()

	got := r.wait(t, 1)
	if got[0].Group != "a" || !got[0].Owner || got[0].Reason != "static" {
		t.Fatalf("first transition %+v, want a owned (static)", got[0])
	}
	s.SetInput("b", Input{Eligible: true, Priority: 100})
	got = r.wait(t, 2)
	if got[1].Group != "b" || !got[1].Owner {
		t.Fatalf("second transition %+v, want b owned", got[1])
	}
	s.SetInput("a", Input{Eligible: false, Priority: 100, Reason: "link eth0 down"})
	got = r.wait(t, 3)
	if got[2].Group != "a" || got[2].Owner || got[2].Reason != "ineligible: link eth0 down" {
		t.Fatalf("third transition %+v, want a released with the input's reason", got[2])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got = r.wait(t, 4)
	if len(got) != 4 || got[3].Group != "b" || got[3].Owner || got[3].Reason != "shutdown" {
		t.Fatalf("on shutdown: %+v, want only b released (a was not owned)", got[3:])
	}
}
