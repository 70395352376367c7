package lease

import (
	"time"
)

// Timing is the election's clockwork. The fencing rule (checked by
// config validation, explained in docs/lease.md) is
//
//	LeaseDuration >= RenewDeadline + RetryPeriod + 1s truncation + drop margin
//
// and it holds because of how the two sides measure time, both only on their
// own monotonic clock (wall-clock skew between nodes never enters):
//
//   - the owner starts its renew deadline when it SENDS a renewal (sentAt),
//     not when the answer arrives, and drops its VIPs at sentAt+RenewDeadline;
//   - a follower starts its wait when it first SEES a resourceVersion
//     (observedAt), which is after the API server applied that write, which
//     is after the owner sent it. It may acquire at observedAt+LeaseDuration.
//
// So the owner is gone at least LeaseDuration-RenewDeadline before anyone can
// acquire. An acquisition is an update conditional on the resourceVersion the
// follower saw, so a follower that missed a renewal gets 409 Conflict and
// restarts its wait.
type Timing struct {
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// PriorityStep is the tie-break delay per priority point below the maximum
// (254): when a Lease becomes free, a candidate of priority p waits
// (254-p)*PriorityStep before trying, so the highest-priority candidate
// usually wins the race without any coordination. A held Lease changes
// hands only by handover (handover.go): the holder names its successor.
const PriorityStep = time.Millisecond

// maxPriority is VRRP's highest configurable priority.
const maxPriority = 254

// priorityDelay is how long a candidate of priority p waits after a Lease
// becomes free before it tries to take it.
func priorityDelay(p int) time.Duration {
	if p > maxPriority {
		p = maxPriority
	}
	if p < 1 {
		p = 1
	}
	return time.Duration(maxPriority-p) * PriorityStep
}

// view is what a node knows about a Lease: its holder and duration as last
// read, and when (local monotonic time) this resourceVersion was first seen.
type view struct {
	exists bool
	// unknown: not read yet (start-up, API unreachable). Creating the Lease
	// is still safe then: a create fails if it exists.
	unknown bool
	// deleted: we saw it deleted. Its holder may be alive and unaware, so
	// this counts as a holder we cannot see: wait a full LeaseDuration.
	deleted         bool
	resourceVersion string
	holder          string
	// duration is the holder's leaseDurationSeconds; 0 when unset.
	duration   time.Duration
	observedAt time.Time
}

// acquireAt decides when a candidate may try to take the Lease. It returns
// ok=false when it must not try at all (not eligible); otherwise the earliest
// time to try (which may be in the past: try now).
//
// The holder's own declared duration counts (followers with a shorter
// configured duration must not cut a holder short), but never less than
// ours, so a released Lease (leaseDurationSeconds=1, holder "") or a Lease
// written by a careless client cannot shorten the wait for a live holder.
func acquireAt(v view, self string, in eligibility, t Timing) (at time.Time, ok bool) {
	if !in.Eligible {
		return time.Time{}, false
	}
	delay := priorityDelay(in.Priority)
	if in.Degraded {
		// A last resort: any healthy candidate goes first.
		delay += degradedDelay(t)
	}
	switch {
	case v.deleted:
		return v.observedAt.Add(t.LeaseDuration + delay), true
	case !v.exists:
		// Nobody ever held it; creating it is itself conditional (AlreadyExists).
		return v.observedAt.Add(delay), true
	case v.holder == "":
		// Released: the previous holder dropped its VIPs before releasing.
		return v.observedAt.Add(delay), true
	case v.holder == self:
		// Ours from an earlier run of this process (which can hold no VIPs:
		// they died with it or expire by binding.lifetime). Take it back now.
		return v.observedAt, true
	}
	d := max(v.duration, t.LeaseDuration)
	return v.observedAt.Add(d + delay), true
}

// eligibility is election.Input, restated so timing stays a leaf.
type eligibility struct {
	Eligible bool
	Degraded bool
	Priority int
}

// ownerDeadline is when an owner whose last successful renewal was sent at
// sentAt must have dropped its VIPs (start of fencing).
func ownerDeadline(sentAt time.Time, t Timing) time.Time {
	return sentAt.Add(t.RenewDeadline)
}

// nextRenewal is when an owner tries to renew next: every RetryPeriod after
// the last successful renewal was sent, and after a failure RetryPeriod after
// that attempt started, but never later than its deadline.
func nextRenewal(lastAttempt time.Time, deadline time.Time, t Timing) time.Time {
	n := lastAttempt.Add(t.RetryPeriod)
	if n.After(deadline) {
		return deadline
	}
	return n
}

// attemptDeadline bounds one request to the API server: long enough for a
// slow server, never past the fencing deadline (for an owner) so a hung
// request can never delay dropping the VIPs.
func attemptDeadline(now time.Time, fence time.Time, t Timing) time.Time {
	d := now.Add(max(t.RetryPeriod*2, time.Second))
	if !fence.IsZero() && fence.Before(d) {
		return fence
	}
	return d
}
