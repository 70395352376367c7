package chaos

import (
	"fmt"
	"time"
)

// Timing is one mode's configured timings, from which every bound the
// checks use is derived (docs/chaos.md lists them per mode).
type Timing struct {
	Mode string
	// VRRP.
	Advert time.Duration
	// Lease.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Gossip (memberlist profile "fast"): a member is pinged every
	// ProbeInterval, an ack is due within ProbeTimeout, and a suspected
	// member is declared dead after Suspicion (the profile's longest,
	// SuspicionMult × ProbeInterval × SuspicionMaxTimeoutMult).
	ProbeInterval, ProbeTimeout, Suspicion time.Duration
	// RejoinInterval: how often a gossip member retries its configured
	// peers that are not members (after a partition heals).
	RejoinInterval time.Duration

	// Binding: the VIPs' kernel lifetime (the dead-man's switch) and its
	// refresh.
	Lifetime, Refresh time.Duration
	// Check: the health check's interval and timeout, fall and rise.
	CheckInterval, CheckTimeout time.Duration
	Fall, Rise                  int
	// Priorities of the nodes, node1 first (highest).
	Priorities []int

	// Slack is added to every bound: scheduling on a loaded machine (the
	// lab shares its cores with everything else), the client's next
	// probe, reading /status. Explicit, so a bound is never silently
	// widened.
	Slack time.Duration
	// StartAllowance is what a started vipd may take before it takes part
	// in the election (exec, config, netlink, first link states).
	StartAllowance time.Duration
}

// DefaultTiming returns the timings `vipd chaos` runs mode with: the fast
// settings the lab tests and the benchmark use.
func DefaultTiming(mode string, nodes int) Timing {
	t := Timing{Mode: mode, Lifetime: 3 * time.Second, Refresh: time.Second,
		CheckInterval: 100 * time.Millisecond, CheckTimeout: 100 * time.Millisecond, Fall: 2, Rise: 2,
		Slack: time.Second, StartAllowance: 2 * time.Second}
	// 254, 214, 174, ...: distinct, node1 highest; Lease's tie-break
	// delays follow from them (254 - priority ms).
	for i := range nodes {
		t.Priorities = append(t.Priorities, 254-40*i)
	}
	switch mode {
	case ModeVRRP:
		t.Advert = 100 * time.Millisecond
	case ModeLease:
		t.LeaseDuration, t.RenewDeadline, t.RetryPeriod = 4*time.Second, 2*time.Second, 500*time.Millisecond
		// binding.lifetime must stay below the renew deadline's margin
		// (docs/lease.md: 4s/2s/500ms needs 2s).
		t.Lifetime = 2 * time.Second
	case ModeGossip:
		t.ProbeInterval, t.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
		t.Suspicion = 3 * 100 * time.Millisecond * 2
		t.RejoinInterval = time.Second
	}
	return t
}

// MinPriority is the lowest node priority.
func (t Timing) MinPriority() int {
	m := 255
	for _, p := range t.Priorities {
		m = min(m, p)
	}
	return m
}

// Takeover is how long the mode needs, at worst, to move the VIP off an
// owner that went silent (crash, hang, lost link, partition) — before
// Slack:
//
//   - VRRP: Master_Down_Interval of the lowest-priority backup,
//     3 × advert + (256 - priority) × advert / 256 (RFC 9568).
//   - Lease: the follower sees the last renewal up to one retry period
//     late, waits leaseDuration from seeing it, then its tie-break delay
//     (254 - priority ms), and tries at the next retry: leaseDuration +
//     2 × retryPeriod + tie-break.
//   - gossip: one probe round to notice (probe interval + timeout), then
//     the longest suspicion.
func (t Timing) Takeover() time.Duration {
	switch t.Mode {
	case ModeVRRP:
		return 3*t.Advert + time.Duration(256-t.MinPriority())*t.Advert/256
	case ModeLease:
		return t.LeaseDuration + 2*t.RetryPeriod + time.Duration(254-t.MinPriority())*time.Millisecond
	case ModeGossip:
		return t.ProbeInterval + t.ProbeTimeout + t.Suspicion
	}
	return 0
}

// Rejoin is how long a node that comes back (restarted, link up, partition
// healed, resumed) needs to be part of the election again — before its
// takeover (if it has the highest priority) and Slack: VRRP and Lease hear
// or read their peers at once (0); gossip retries its peers every
// rejoinInterval.
func (t Timing) Rejoin() time.Duration {
	if t.Mode == ModeGossip {
		return t.RejoinInterval
	}
	return 0
}

// CheckFail is how long a failing service takes to make its check fail:
// fall attempts, each up to an interval apart plus its timeout.
func (t Timing) CheckFail() time.Duration {
	return time.Duration(t.Fall)*t.CheckInterval + t.CheckTimeout
}

// CheckPass is CheckFail for a recovering service (rise attempts).
func (t Timing) CheckPass() time.Duration {
	return time.Duration(t.Rise)*t.CheckInterval + t.CheckTimeout
}

// DeadMan bounds how long a VIP stays bound on a node whose vipd is dead
// or hung, counted from the kill: the kernel removes it when the lifetime
// (renewed at most Refresh before the kill) runs out. Within it, the
// node's kernel answering beside the new owner is the dead-man's switch
// at work, counted but not a violation; beyond it, a violation.
func (t Timing) DeadMan() time.Duration { return t.Lifetime + t.Slack }

// FaultBound is how long after applying a fault of kind k the VIP must have
// settled on exactly one (other, if the owner was hit) node — or, with the
// API server gone in Lease mode, on none: the owner cannot renew and must
// drop the VIP by its renew deadline (renewed up to a retry period before
// the kill).
func (t Timing) FaultBound(k Kind) time.Duration {
	switch k {
	case KindHealth:
		return t.CheckFail() + t.Takeover() + t.Slack
	case KindAPIServer:
		return t.RenewDeadline + t.RetryPeriod + t.Slack
	}
	return t.Takeover() + t.Slack
}

// RepairBound is how long after repairing a fault of kind k (restart,
// link up, heal, SIGCONT, check passing, API server ready) the VIP must
// have settled on exactly one node, with every node's /status agreeing
// with its kernel.
func (t Timing) RepairBound(k Kind) time.Duration {
	b := t.Rejoin() + t.Takeover() + t.Slack
	switch k {
	case KindSIGKILL, KindSIGTERM, KindRestart:
		b += t.StartAllowance
	case KindHealth:
		b += t.CheckPass()
	}
	return b
}

// HoldRange is the range hold times are drawn from: long enough that a
// partition or a lost link outlasts a takeover, and for SIGSTOP straddling
// the takeover time so both a hang the peers ride out and one they take
// over from occur.
func (t Timing) HoldRange() (lo, hi time.Duration) {
	lo = time.Second
	hi = max(3*time.Second, (t.Takeover() * 3 / 2).Round(100*time.Millisecond))
	return lo, hi
}

// String is a one-line summary of the timings, for the report.
func (t Timing) String() string {
	var s string
	switch t.Mode {
	case ModeVRRP:
		s = fmt.Sprintf("VRRPv3 advert %s", t.Advert)
	case ModeLease:
		s = fmt.Sprintf("leaseDuration %s, renewDeadline %s, retryPeriod %s", t.LeaseDuration, t.RenewDeadline, t.RetryPeriod)
	case ModeGossip:
		s = fmt.Sprintf("gossip profile fast (probe %s/%s, suspicion ≤ %s), rejoin %s", t.ProbeInterval, t.ProbeTimeout, t.Suspicion, t.RejoinInterval)
	}
	return fmt.Sprintf("%s; binding.lifetime %s (refresh %s); http check every %s (timeout %s), fall %d, rise %d; priorities %v",
		s, t.Lifetime, t.Refresh, t.CheckInterval, t.CheckTimeout, t.Fall, t.Rise, t.Priorities)
}
