package lease

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var defaultTiming = Timing{LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}

func TestAcquireAt(t *testing.T) {
	elig := eligibility{Eligible: true, Priority: 254}
	for _, tc := range []struct {
		name   string
		v      view
		in     eligibility
		wantOK bool
		want   time.Duration // after t0
	}{
		{"ineligible never tries", view{exists: true, holder: "", observedAt: t0}, eligibility{Eligible: false, Priority: 254}, false, 0},
		{"never existed: create at once", view{observedAt: t0}, elig, true, 0},
		{"not read yet: create (conditional) at once", view{unknown: true, observedAt: t0}, elig, true, 0},
		{"released: at once", view{exists: true, holder: "", duration: time.Second, observedAt: t0}, elig, true, 0},
		{"released, priority 100 waits 154ms", view{exists: true, observedAt: t0}, eligibility{Eligible: true, Priority: 100}, true, ms(154)},
		{"released, priority 1 waits 253ms", view{exists: true, observedAt: t0}, eligibility{Eligible: true, Priority: 1}, true, ms(253)},
		{"held by us (earlier process): at once", view{exists: true, holder: "me", duration: 4 * time.Second, observedAt: t0}, elig, true, 0},
		{"held by other: our duration after seeing it", view{exists: true, holder: "n2", duration: 4 * time.Second, observedAt: t0}, elig, true, 4 * time.Second},
		{"held by other with longer duration: theirs", view{exists: true, holder: "n2", duration: 10 * time.Second, observedAt: t0}, elig, true, 10 * time.Second},
		{"held by other claiming 1s: never less than ours", view{exists: true, holder: "n2", duration: time.Second, observedAt: t0}, elig, true, 4 * time.Second},
		{"held by other, priority delay adds", view{exists: true, holder: "n2", duration: 4 * time.Second, observedAt: t0}, eligibility{Eligible: true, Priority: 200}, true, 4*time.Second + ms(54)},
		{"deleted under a holder: full duration", view{deleted: true, observedAt: t0}, elig, true, 4 * time.Second},
		{"degraded, released: tie-break + retryPeriod + 254ms", view{exists: true, observedAt: t0}, eligibility{Eligible: true, Degraded: true, Priority: 254}, true, ms(500 + 254)},
		{"degraded priority 1, released: after every healthy candidate", view{exists: true, observedAt: t0}, eligibility{Eligible: true, Degraded: true, Priority: 1}, true, ms(253 + 500 + 254)},
		{"degraded, expired: after every healthy candidate", view{exists: true, holder: "n2", duration: 4 * time.Second, observedAt: t0}, eligibility{Eligible: true, Degraded: true, Priority: 100}, true, 4*time.Second + ms(154+500+254)},
		{"degraded, named holder: at once", view{exists: true, holder: "me", duration: 4 * time.Second, observedAt: t0}, eligibility{Eligible: true, Degraded: true, Priority: 100}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := acquireAt(tc.v, "me", tc.in, defaultTiming)
			if ok != tc.wantOK {
				t.Fatalf("ok=%v, want %v", ok, tc.wantOK)
			}
			if ok && at.Sub(t0) != tc.want {
				t.Fatalf("at t0+%s, want t0+%s", at.Sub(t0), tc.want)
			}
		})
	}
}

// TestFencingArithmetic walks the worst case of the fencing rule with the
// default timing: the owner's last good renewal is sent at t0 and applied by
// the API server at once; a follower sees it at once and counts from there.
// The owner must be done dropping well before the follower may write.
func TestFencingArithmetic(t *testing.T) {
	for _, tm := range []Timing{
		defaultTiming,
		{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second},
		{LeaseDuration: 2 * time.Second, RenewDeadline: 200 * time.Millisecond, RetryPeriod: 100 * time.Millisecond},
	} {
		drop := ownerDeadline(t0, tm)
		follower, _ := acquireAt(view{exists: true, holder: "owner", duration: tm.LeaseDuration, observedAt: t0}, "f", eligibility{Eligible: true, Priority: 254}, tm)
		// Even a follower that read the renewTime at 1s resolution (up to
		// 1s early) and the drop taking 500ms leave the owner first.
		if gap := follower.Add(-time.Second).Sub(drop.Add(500 * time.Millisecond)); gap < 0 {
			t.Errorf("%+v: owner drops at t0+%s, follower may acquire at t0+%s: overlap", tm, drop.Sub(t0), follower.Sub(t0))
		}
	}
}

func TestOwnerSchedule(t *testing.T) {
	tm := defaultTiming
	deadline := ownerDeadline(t0, tm)
	if deadline != t0.Add(2*time.Second) {
		t.Fatalf("deadline %s", deadline.Sub(t0))
	}
	for _, tc := range []struct {
		name        string
		lastAttempt time.Duration
		want        time.Duration
	}{
		{"after a good renewal", 0, ms(500)},
		{"after a failed attempt", ms(1200), ms(1700)},
		{"last try clamps to the deadline", ms(1800), 2 * time.Second},
	} {
		if got := nextRenewal(t0.Add(tc.lastAttempt), deadline, tm).Sub(t0); got != tc.want {
			t.Errorf("%s: next renewal at t0+%s, want t0+%s", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		now   time.Duration
		fence time.Time
		want  time.Duration
	}{
		{"follower: 1s floor", 0, time.Time{}, time.Second},
		{"owner far from deadline", 0, deadline, time.Second},
		{"owner near deadline: request ends at it", ms(1500), deadline, 2 * time.Second},
	} {
		if got := attemptDeadline(t0.Add(tc.now), tc.fence, tm).Sub(t0); got != tc.want {
			t.Errorf("%s: attempt deadline t0+%s, want t0+%s", tc.name, got, tc.want)
		}
	}
}

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"10", "9", true}, {"9", "10", false}, {"5", "5", false}, {"x", "y", true}, {"10", "", true},
	} {
		if got := newer(tc.a, tc.b); got != tc.want {
			t.Errorf("newer(%q,%q)=%v", tc.a, tc.b, got)
		}
	}
}
