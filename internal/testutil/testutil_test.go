package testutil

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type fakeTB struct{ fatal string }

func (*fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, "the third call", time.Minute, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}

	var f fakeTB
	WaitForEvery(&f, "never", 20*time.Millisecond, time.Millisecond, func() bool { return false })
	if f.fatal != "timed out after 20ms waiting for never" {
		t.Fatalf("Fatalf(%q)", f.fatal)
	}
}

func TestUntilStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Until(ctx, "never", time.Minute, time.Millisecond, func() bool { return false })
	if !errors.Is(err, context.Canceled) || err.Error() != "waiting for never: context canceled" {
		t.Fatalf("err = %v", err)
	}
	_, err = Until(context.Background(), "never", 10*time.Millisecond, time.Millisecond, func() bool { return false })
	if err == nil || err.Error() != "waiting for never: timed out after 10ms" {
		t.Fatalf("err = %v", err)
	}
}
