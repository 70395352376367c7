package lease

import (
	"context"
	"time"
)

// Clock is the elector's only source of time: every reading (renew
// deadlines, a follower's wait, renewTime, status), every timer it waits on
// and every request deadline comes from it. The default is the real clock.
//
// Tests run the elector inside a testing/synctest bubble, where the real
// clock is a fake one that advances only when every goroutine of the test is
// blocked, and pass a Clock of their own only to model what the bubble
// cannot: a process pause, where the clock jumps while nothing runs.
type Clock interface {
	Now() time.Time
	// NewTimer is time.NewTimer on this clock.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the elector uses.
type Timer interface {
	C() <-chan time.Time
	// Reset and Stop behave as time.Timer's (Go 1.23+ semantics: after
	// either, no stale value is received from C).
	Reset(d time.Duration)
	Stop()
}

// RealClock is the clock of the time package.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer implements Clock.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }

// withDeadline bounds a request by a deadline read on clk. The context gets
// the remaining duration (a deadline is a reading of clk, which need not be
// the time package's), so a request never outlives the deadline clk means.
func withDeadline(ctx context.Context, clk Clock, at time.Time) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, at.Sub(clk.Now()))
}

// sleep waits d on clk, or until ctx is done.
func sleep(ctx context.Context, clk Clock, d time.Duration) {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}
