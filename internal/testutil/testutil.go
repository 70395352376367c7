// Package testutil holds the helpers that tests, the lab tooling and the
// benchmark share, so each exists once. It does not import package testing:
// tooling linked into vipd's binary (the demo) may use it.
package testutil

import (
	"context"
	"fmt"
	"time"
)

// TB is the part of testing.TB the helpers use; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Interval is how often WaitFor checks its condition.
const Interval = 5 * time.Millisecond

// Poll calls cond (first at once, then interval after each call returns)
// until it returns true, and returns how long that took. It gives up with an
// error when timeout passes or ctx ends first.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() bool) (time.Duration, error) {
	start := time.Now()
	pause := time.NewTimer(interval)
	defer pause.Stop()
	for !cond() {
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("timed out after %s", timeout)
		}
		pause.Reset(interval)
		select {
		case <-ctx.Done():
			return time.Since(start), context.Cause(ctx)
		case <-pause.C:
		}
	}
	return time.Since(start), nil
}

// Until is Poll that names what it waited for in its error.
func Until(ctx context.Context, what string, timeout, interval time.Duration, cond func() bool) (time.Duration, error) {
	took, err := Poll(ctx, timeout, interval, cond)
	if err != nil {
		return took, fmt.Errorf("waiting for %s: %w", what, err)
	}
	return took, nil
}

// WaitFor checks cond every Interval until it holds and returns how long
// that took; after timeout it fails t, naming what it waited for.
func WaitFor(t TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return WaitForEvery(t, what, timeout, Interval, cond)
}

// WaitForEvery is WaitFor checking every interval: for conditions that cost
// something to check, such as an HTTP request to every node.
func WaitForEvery(t TB, what string, timeout, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	took, err := Poll(context.Background(), timeout, interval, cond)
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return took
}
