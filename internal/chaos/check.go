package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The invariants, as named in violations and the report.
const (
	// Within the bound after a fault or its repair, exactly one node holds
	// the VIP, says so on /status, and answers the client.
	InvSingleOwner = "single-owner-within-bound"
	// Two nodes held the VIP at once in the kernel's order of address
	// changes (lab.WatchAddrs), outside a partition and beyond the
	// dead-man's switch of a killed or hung node.
	InvKernelTwoOwners = "two-owners-kernel"
	// The client's ARP request for the VIP was answered by two MACs, with
	// the same exceptions.
	InvClientTwoAnswers = "two-answers-client"
	// Once settled, a node holds the VIP that its /status says it does
	// not own (or says it owns one it does not hold).
	InvOrphan = "vip-bound-without-ownership"
	// A vipd exited or changed PID without being told to, or a graceful
	// stop did not exit cleanly.
	InvSelfRestart = "no-self-restart"
)

// Excuse lets Node (every node when empty) hold or answer for the VIP
// beside another from From until Until without a violation: a deliberate
// partition (until it has healed and settled), or the dead-man's switch of
// a killed or hung vipd (until its lifetime must have run out).
type Excuse struct {
	Node        string
	From, Until time.Time
	Why         string
}

// covers reports whether e excuses node over [from, to].
func (e Excuse) covers(node string, from, to time.Time) bool {
	if e.Node != "" && e.Node != node {
		return false
	}
	return !from.Before(e.From) && !to.After(e.Until)
}

func excused(excuses []Excuse, node string, from, to time.Time) (Excuse, bool) {
	for _, e := range excuses {
		if e.covers(node, from, to) {
			return e, true
		}
	}
	return Excuse{}, false
}

// Violation is one broken invariant.
type Violation struct {
	Fault     int       `json:"fault"` // 1-based; 0: while starting up
	Kind      Kind      `json:"kind,omitempty"`
	Invariant string    `json:"invariant"`
	At        time.Time `json:"at"`
	Detail    string    `json:"detail"`
}

func (v Violation) String() string {
	where := "start-up"
	if v.Fault > 0 {
		where = fmt.Sprintf("fault %d (%s)", v.Fault, v.Kind)
	}
	return fmt.Sprintf("%s: %s: %s", where, v.Invariant, v.Detail)
}

// KernelOverlap is one stretch in which two nodes held the VIP at once.
type KernelOverlap struct {
	lab.Overlap
	// Start and End are the receive times bounding it (End: now if open).
	Start, End time.Time
	// Excuse says why it is allowed; empty: a violation.
	Excuse string
}

// KernelOverlaps finds every overlap of holdings (lab.Overlaps: decided by
// the kernel's order of events, not by times) and sorts it into excused
// (a partition, a dead-man's switch) and not. now closes open holdings.
func KernelOverlaps(hs []lab.Holding, excuses []Excuse, now time.Time) []KernelOverlap {
	var out []KernelOverlap
	for _, o := range lab.Overlaps(hs, now) {
		start := o.B.From.At
		end := now
		for _, h := range []lab.Holding{o.A, o.B} {
			if !h.To.IsZero() && h.To.At.Before(end) {
				end = h.To.At
			}
		}
		// A read lag can make the receive times of a real overlap out of
		// order; the interval is at least a point.
		end = later(end, start)
		ko := KernelOverlap{Overlap: o, Start: start, End: end}
		for _, n := range []string{o.A.Host, o.B.Host} {
			if e, ok := excused(excuses, n, start, end); ok {
				ko.Excuse = e.Why
				break
			}
		}
		out = append(out, ko)
	}
	return out
}

// DualSample is a neighbour sample (the observer's ARP request for the VIP)
// answered by more than one MAC.
type DualSample struct {
	At     time.Time
	Nodes  []string // the answering hosts (a MAC when unknown), sorted
	Excuse string   // empty: a violation
}

// DualAnswers returns the neighbour samples answered by several MACs. Such
// a sample is excused when every answering node but one is excused at its
// time (an unknown MAC never is).
func DualAnswers(samples []lab.NeighborSample, macs map[string]string, excuses []Excuse) []DualSample {
	var out []DualSample
	for _, s := range samples {
		known := map[string]bool{}
		for _, m := range s.MACs {
			n, ok := macs[m.String()]
			if !ok {
				n = m.String()
			}
			known[n] = ok
		}
		if len(known) < 2 {
			continue
		}
		d := DualSample{At: s.At}
		for n := range known {
			d.Nodes = append(d.Nodes, n)
		}
		sort.Strings(d.Nodes)
		var whys []string
		unexcused := 0
		for _, n := range d.Nodes {
			e, ok := excused(excuses, n, s.At, s.At)
			if !known[n] || !ok {
				unexcused++
				continue
			}
			if !slices.Contains(whys, e.Why) {
				whys = append(whys, e.Why)
			}
		}
		if unexcused <= 1 {
			d.Excuse = strings.Join(whys, "; ")
		}
		out = append(out, d)
	}
	return out
}

// NodeView is what one node's /status said about the VIP's group.
type NodeView struct {
	Reachable bool
	Owner     bool
	PID       int
}

// Snapshot is one look at the lab: the kernel holders of the VIP (from the
// address watch), each node's /status, the probe's latest replies.
type Snapshot struct {
	Now     time.Time
	Holders []string
	Status  map[string]NodeView
	Latest  []lab.Reply // the last few replies, oldest first
}

// answerWindow: the client's last replies must be this recent to count as
// "answering now" (the probe sends every 10ms).
const answerWindow = 150 * time.Millisecond

// latestAnswers is how many of the client's last replies must come from
// the owner.
const latestAnswers = 3

// Settled decides whether the lab has settled: exactly one node (among
// those not ignored: dead, hung or cut-off nodes, whose kernel and /status
// are left out until they are repaired) holds the VIP, its /status says it
// owns it, no other node's says so, and it answered the client's last
// probes. want, if set, is the node that must own it: the highest-priority
// node that can (every mode hands the VIP back to it). With expectNone (no
// API server in Lease mode) nobody may hold or claim it. why says what is
// not yet so; inv names the invariant that is broken if it stays so.
func Settled(s Snapshot, nodes []string, ignore map[string]bool, want string, expectNone bool) (owner string, ok bool, inv, why string) {
	var holders []string
	for _, h := range s.Holders {
		if !ignore[h] {
			holders = append(holders, h)
		}
	}
	var claim []string
	for _, n := range nodes {
		if ignore[n] {
			continue
		}
		v, seen := s.Status[n]
		if !seen || !v.Reachable {
			return "", false, InvSingleOwner, fmt.Sprintf("%s: /status unreachable", n)
		}
		if v.Owner {
			claim = append(claim, n)
		}
	}
	if expectNone {
		if len(holders) > 0 || len(claim) > 0 {
			return "", false, InvSingleOwner, fmt.Sprintf("no node may own the VIP, but %v hold it and %v claim it", holders, claim)
		}
		return "", true, "", ""
	}
	switch {
	case len(holders) == 0 && len(claim) == 0:
		return "", false, InvSingleOwner, "nobody holds the VIP"
	case len(holders) > 1:
		return "", false, InvSingleOwner, fmt.Sprintf("%v hold the VIP", holders)
	case len(claim) > 1:
		return "", false, InvSingleOwner, fmt.Sprintf("%v claim the VIP on /status", claim)
	case len(holders) == 1 && (len(claim) == 0 || claim[0] != holders[0]):
		return "", false, InvOrphan, fmt.Sprintf("%s holds the VIP but /status says the owner is %v", holders[0], claim)
	case len(holders) == 0:
		return "", false, InvOrphan, fmt.Sprintf("%s claims the VIP on /status but does not hold it", claim[0])
	}
	owner = holders[0]
	if want != "" && owner != want {
		return "", false, InvSingleOwner, fmt.Sprintf("%s owns the VIP, but %s (higher priority, eligible) has not taken it back", owner, want)
	}
	if len(s.Latest) < latestAnswers {
		return "", false, InvSingleOwner, fmt.Sprintf("%s holds the VIP; the client has had too few replies", owner)
	}
	last := s.Latest[len(s.Latest)-latestAnswers:]
	for _, r := range last {
		if r.Node != owner {
			return "", false, InvSingleOwner, fmt.Sprintf("%s holds the VIP but %s answered the client", owner, r.Node)
		}
	}
	if age := s.Now.Sub(last[len(last)-1].At); age > answerWindow {
		return "", false, InvSingleOwner, fmt.Sprintf("%s holds the VIP but the client's last reply is %s old", owner, age.Round(time.Millisecond))
	}
	return owner, true, "", ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Yield is a vipd giving the VIP up because it heard a better VRRP master:
// its transition line to backup with reason higher-priority-advert.
type Yield struct {
	Node string
	At   time.Time // the log line's time
}

// Yields finds node's yields in its vipd output (log/slog text lines).
func Yields(node, output string) []Yield {
	var out []Yield
	for _, line := range strings.Split(output, "\n") {
		// The reason may carry the failing check: reason="higher-priority-advert (check …)".
		higher := strings.Contains(line, " reason=higher-priority-advert") || strings.Contains(line, ` reason="higher-priority-advert`)
		if !higher || !strings.Contains(line, " msg=transition ") || !strings.HasSuffix(strings.TrimSpace(line), " to=backup") {
			continue
		}
		ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if !ok || !strings.HasPrefix(line, "time=") {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, Yield{Node: node, At: t})
		}
	}
	return out
}

// preemptSlack is what a VRRP preemption's overlap may last beyond one
// advert interval: the old master's reception of the advert, its netlink
// removal, and the watch reading both events.
const preemptSlack = 50 * time.Millisecond

// Preemption reports whether o is the moment of a VRRP preemption in the
// RFC's order (RFC 9568 §6.4; keepalived's too): the new master (B) sends
// its advert and binds, and the old one (A) removes the VIP when that
// advert arrives. So: A's removal ends the overlap, A logged a yield for a
// higher-priority advert then (within the bounds' slack, for the reading
// lag), and the overlap lasted at most one advert interval plus
// preemptSlack. Anything longer, or without the yield, stays a violation;
// so do two MACs answering the client (DualAnswers), whatever the kernel.
func Preemption(o KernelOverlap, yields []Yield, advert, slack time.Duration) bool {
	a, b := o.A, o.B
	if a.To.IsZero() || (!b.To.IsZero() && b.To.Seq < a.To.Seq) || o.End.Sub(o.Start) > advert+preemptSlack {
		return false
	}
	for _, y := range yields {
		if y.Node == a.Host && !y.At.Before(o.Start.Add(-slack)) && !y.At.After(o.End.Add(slack)) {
			return true
		}
	}
	return false
}
