package vrrp

import (
	"testing"
	"time"
)

// The timerfd waker fires once per Reset, also for a due deadline, and
// keeps firing across many expiries (its reader parks between them).
func TestTimerfdWaker(t *testing.T) {
	w, err := newTimerfdWaker()
	if err != nil {
		t.Skipf("no timerfd: %v", err)
	}
	defer w.Stop()
	wait := func(what string) {
		t.Helper()
		select {
		case <-w.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	w.Reset(0)
	wait("due deadline")
	for i := range 50 {
		start := time.Now()
		w.Reset(time.Millisecond)
		wait("expiry")
		if d := time.Since(start); d < time.Millisecond {
			t.Fatalf("expiry %d: woke after %s, before its deadline", i, d)
		}
	}
}
