package lease

import (
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// A Lease has one holder and no ranking of candidates, and the holder cannot
// see the candidates. Health and weights (election.Input.Degraded and
// Priority) therefore travel in annotations of the Lease itself
// (docs/lease.md, "Health: degraded holders and handover"):
//
//   - the holder publishes its candidacy on every write (annPriority,
//     annDegraded), and re-publishes at once when its input changes;
//   - a healthy non-holder that is better than the published candidacy asks
//     for the group (annHandoverTo, annHandoverPriority) with a conditional
//     update that leaves holderIdentity alone;
//   - the holder, seeing a request it should honour, drops its VIPs first
//     and only then writes the requester's name into holderIdentity
//     (annHandedOverBy); the named node confirms with a conditional write of
//     its own (its renew deadline counts from that write) and only then
//     binds. So there is never a moment with two owners, and the fencing
//     arithmetic is unchanged.
const (
	annPriority         = "vipd.io/priority"
	annDegraded         = "vipd.io/degraded"
	annHandoverTo       = "vipd.io/handover-to"
	annHandoverPriority = "vipd.io/handover-priority"
	annHandedOverBy     = "vipd.io/handed-over-by"
)

// candidacyKeys are every annotation this protocol writes.
var candidacyKeys = [...]string{annPriority, annDegraded, annHandoverTo, annHandoverPriority, annHandedOverBy}

// published is the holder's candidacy as its last write published it.
type published struct {
	known    bool // false: no vipd candidacy (another client, older vipd)
	degraded bool
	priority int
}

func publishedOf(l *coordinationv1.Lease) published {
	if l == nil {
		return published{}
	}
	p, err := strconv.Atoi(l.Annotations[annPriority])
	if err != nil {
		return published{}
	}
	return published{known: true, priority: p, degraded: l.Annotations[annDegraded] == "true"}
}

// requestOf is the pending handover request, if any.
func requestOf(l *coordinationv1.Lease) (to string, priority int, ok bool) {
	if l == nil || l.Annotations[annHandoverTo] == "" {
		return "", 0, false
	}
	p, err := strconv.Atoi(l.Annotations[annHandoverPriority])
	if err != nil {
		return "", 0, false
	}
	return l.Annotations[annHandoverTo], p, true
}

func clampPriority(p int) int { return min(max(p, 1), maxPriority) }

// publishedMatches reports whether l already publishes in (so no extra
// renewal is needed to tell the candidates).
func publishedMatches(l *coordinationv1.Lease, in eligibility) bool {
	p := publishedOf(l)
	return p.known && p.priority == clampPriority(in.Priority) && p.degraded == in.Degraded
}

// setCandidacy makes l publish in as its holder's candidacy, clearing any
// request (the holder has decided on it) and any handover mark.
func setCandidacy(l *coordinationv1.Lease, in eligibility) {
	clearCandidacy(l)
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[annPriority] = strconv.Itoa(clampPriority(in.Priority))
	if in.Degraded {
		l.Annotations[annDegraded] = "true"
	}
}

func clearCandidacy(l *coordinationv1.Lease) {
	for _, k := range candidacyKeys {
		delete(l.Annotations, k)
	}
}

// shouldRequest decides whether a non-holder asks the holder for the group:
// only a healthy node, only from a holder that publishes a candidacy, and
// only if it is better: the holder is degraded, or (preference by priority,
// VRRP's default preemption) this node's priority is strictly higher. A
// degraded node never asks (it never takes a group from a live owner), not
// even from a degraded holder of lower priority.
func shouldRequest(holder published, in eligibility) bool {
	if !in.Eligible || in.Degraded || !holder.known {
		return false
	}
	return holder.degraded || clampPriority(in.Priority) > holder.priority
}

// shouldYield decides whether the holder honours a request: a degraded
// holder yields to any requester (only healthy nodes ask), a healthy one
// only to a strictly higher priority. The mirror of shouldRequest, so a
// request that is ignored is not asked again while inputs stay the same.
func shouldYield(self string, in eligibility, to string, priority int) bool {
	if to == "" || to == self {
		return false
	}
	return in.Degraded || priority > clampPriority(in.Priority)
}

// wantsRequestWrite decides whether a non-holder that wants the group (want)
// must write the Lease: to ask, to update its asked priority, or to
// withdraw its own request once it no longer wants the group (so the holder
// never names a node that has become ineligible or degraded). A pending
// request by another node of equal or higher priority is left alone.
func wantsRequestWrite(l *coordinationv1.Lease, self string, want bool, in eligibility) (write, ask bool) {
	to, p, pending := requestOf(l)
	prio := clampPriority(in.Priority)
	switch {
	case want && !pending:
		return true, true
	case want && to == self:
		return p != prio, true
	case want:
		return p < prio, true
	case pending && to == self:
		return true, false
	}
	return false, false
}

// degradedDelay is how much longer than a healthy candidate a degraded one
// waits before it tries to take a free or expired Lease, so that any
// healthy candidate wins the race: more than the longest healthy tie-break
// (priority 1: 253ms), plus one RetryPeriod, after which a healthy
// candidate whose first attempt hit a transient API error tries again.
func degradedDelay(t Timing) time.Duration {
	return t.RetryPeriod + maxPriority*PriorityStep
}

// sameRenewal reports whether b carries the same holder write as a: b is a
// later version written by a candidate (a handover request), not by the
// holder. A follower keeps its wait running across such versions:
// otherwise a candidate asking a dead holder every RetryPeriod would keep
// the Lease from ever expiring. Every write of a holder changes renewTime.
func sameRenewal(a, b *coordinationv1.Lease) bool {
	return holderOf(a) == holderOf(b) && durationOf(a) == durationOf(b) &&
		a.Spec.RenewTime.Equal(b.Spec.RenewTime) && a.Spec.AcquireTime.Equal(b.Spec.AcquireTime) &&
		int32Equal(a.Spec.LeaseTransitions, b.Spec.LeaseTransitions)
}

func int32Equal(a, b *int32) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
