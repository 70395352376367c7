package lab

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Record is what a probe saw. All analysis on it is pure (no I/O), so it is
// table-tested without root.
type Record struct {
	VIP        netip.Addr
	Port       int
	Interval   time.Duration
	Start, End time.Time

	Sent       int         // requests sent; seq runs 0..Sent-1
	SentAt     []time.Time // SentAt[seq]
	SendErrors int         // sendto failures (the request was not sent)
	Bad        int         // undecodable replies
	Replies    []Reply     // in arrival order
	Neighbors  []NeighborSample
	// Announcements are gratuitous ARPs / unsolicited NAs for the VIP seen by
	// the observer (collected with neighbour sampling).
	Announcements []Announcement

	macs map[string]string // MAC -> host name, from the lab
}

// Reply is one answer to the request with sequence number Seq.
type Reply struct {
	Seq    int
	SentAt time.Time // when request Seq was sent
	At     time.Time // when the reply arrived
	Node   string    // who answered (from the payload)
}

// NeighborSample lists who answered one ARP request / neighbour solicitation
// for the VIP (sent at At, answers collected for up to 40 ms).
type NeighborSample struct {
	At   time.Time
	MACs []net.HardwareAddr
}

// Span is a maximal run of consecutive replies (arrival order) from one node.
type Span struct {
	Node              string
	First, Last       time.Time
	FirstSeq, LastSeq int
	Count             int
}

func (s Span) String() string {
	return fmt.Sprintf("%s×%d[seq %d..%d, %s]", s.Node, s.Count, s.FirstSeq, s.LastSeq, s.Last.Sub(s.First).Round(time.Millisecond))
}

// Owners returns the runs of replies from one node, in order.
func (r Record) Owners() []Span {
	var out []Span
	for _, rp := range r.Replies {
		if n := len(out); n > 0 && out[n-1].Node == rp.Node {
			s := &out[n-1]
			s.Last, s.LastSeq = rp.At, rp.Seq
			s.Count++
			continue
		}
		out = append(out, Span{Node: rp.Node, First: rp.At, Last: rp.At, FirstSeq: rp.Seq, LastSeq: rp.Seq, Count: 1})
	}
	return out
}

// Failover describes one change of the answering node.
type Failover struct {
	From, To string // From is "" if nobody answered before the event (first takeover)
	// LastFrom is the last reply (any node) before FirstTo; FirstTo is the
	// first reply from To.
	LastFrom, FirstTo time.Time
	// Interruption is FirstTo - LastFrom: how long the service was silent
	// (from the event time when nobody answered before it).
	Interruption time.Duration
	// Lost counts requests sent between LastFrom's and FirstTo's that got no
	// reply from anyone.
	Lost int
	// Overlap is how long From kept answering after To had started (UDP
	// replies), or how long neighbour samples showed two or more MACs for the
	// VIP at once, whichever is longer. 0 for a clean handover.
	Overlap time.Duration
	// DualSamples is the number of neighbour samples after the event in which
	// more than one MAC answered for the VIP.
	DualSamples int
	// FirstAnnounce is the first gratuitous ARP / unsolicited NA from To's
	// MAC at or after the event (zero if none was seen).
	FirstAnnounce time.Time
}

func (f Failover) String() string {
	from := f.From
	if from == "" {
		from = "(none)"
	}
	s := fmt.Sprintf("%s -> %s: interruption %s, lost %d, overlap %s, dual neighbour samples %d",
		from, f.To, f.Interruption.Round(time.Millisecond), f.Lost, f.Overlap.Round(time.Millisecond), f.DualSamples)
	if !f.FirstAnnounce.IsZero() {
		s += fmt.Sprintf(", announced %s before its first reply", f.FirstTo.Sub(f.FirstAnnounce).Round(time.Millisecond))
	}
	return s
}

// overlapSettle bounds the search for late replies from the old node: once
// only the new node has answered for this long, later replies from the old
// node belong to another event (e.g. a failback), not to this overlap.
const overlapSettle = time.Second

// FailoverAfter analyses the first change of answering node at or after at:
// From is the node of the last reply before at; To the first other node
// answering at or after at. ok is false when no other node answered. Call it
// once per event with at = the moment the event was caused.
func (r Record) FailoverAfter(at time.Time) (Failover, bool) {
	var f Failover
	last := -1 // index of last reply before at
	for i, rp := range r.Replies {
		if rp.At.Before(at) {
			last = i
		}
	}
	if last >= 0 {
		f.From = r.Replies[last].Node
	}
	first := -1
	for i := last + 1; i < len(r.Replies); i++ {
		if rp := r.Replies[i]; !rp.At.Before(at) && rp.Node != f.From {
			first = i
			break
		}
	}
	if first < 0 {
		return f, false
	}
	to := r.Replies[first]
	f.To, f.FirstTo = to.Node, to.At

	var prevSeq int
	if last >= 0 {
		// Replies between at and FirstTo are all From's, so the one just
		// before FirstTo is the last answer before the gap.
		p := r.Replies[first-1]
		f.LastFrom, prevSeq = p.At, p.Seq
		f.Interruption = to.At.Sub(p.At)
	} else {
		f.Interruption = to.At.Sub(at)
		prevSeq = r.seqSentBefore(at)
	}
	answered := map[int]bool{}
	for _, rp := range r.Replies {
		answered[rp.Seq] = true
	}
	for s := prevSeq + 1; s < to.Seq; s++ {
		if !answered[s] {
			f.Lost++
		}
	}

	// Overlap from UDP replies: late replies from From after To started.
	end := r.End
	lastFrom := time.Time{}
	settle := to.At
	for i := first + 1; i < len(r.Replies); i++ {
		rp := r.Replies[i]
		if rp.Node != f.From && rp.Node != f.To {
			end = rp.At
			break
		}
		if rp.Node == f.From && f.From != "" {
			lastFrom, settle = rp.At, rp.At
			continue
		}
		if rp.At.Sub(settle) >= overlapSettle {
			end = rp.At
			break
		}
	}
	if !lastFrom.IsZero() {
		f.Overlap = lastFrom.Sub(to.At)
	}

	// Overlap from neighbour samples: several MACs answering at once.
	var firstDual, lastDual time.Time
	for _, s := range r.Neighbors {
		if s.At.Before(at) || (!end.IsZero() && s.At.After(end)) {
			continue
		}
		if distinctMACs(s.MACs) > 1 {
			f.DualSamples++
			if firstDual.IsZero() {
				firstDual = s.At
			}
			lastDual = s.At
		}
	}
	if d := lastDual.Sub(firstDual); d > f.Overlap {
		f.Overlap = d
	}
	for _, a := range r.Announcements {
		if !a.At.Before(at) && a.Node == f.To {
			f.FirstAnnounce = a.At
			break
		}
	}
	return f, true
}

// seqSentBefore returns the highest seq whose request was sent before at
// (-1 if none).
func (r Record) seqSentBefore(at time.Time) int {
	best := -1
	if len(r.SentAt) > 0 {
		for i, t := range r.SentAt {
			if t.Before(at) {
				best = i
			}
		}
		return best
	}
	for _, rp := range r.Replies {
		if rp.SentAt.Before(at) && rp.Seq > best {
			best = rp.Seq
		}
	}
	return best
}

func distinctMACs(macs []net.HardwareAddr) int {
	seen := map[string]bool{}
	for _, m := range macs {
		seen[m.String()] = true
	}
	return len(seen)
}

// NodeFor maps a MAC seen in a neighbour sample to the lab host name ("" if
// unknown).
func (r Record) NodeFor(mac net.HardwareAddr) string { return r.macs[mac.String()] }

// NeighborNodes returns the sorted host names that answered in s.
func (r Record) NeighborNodes(s NeighborSample) []string {
	var out []string
	for _, m := range s.MACs {
		n := r.NodeFor(m)
		if n == "" {
			n = m.String()
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Summary is a one-line human summary for logs and benchmark output.
func (r Record) Summary() string {
	per := map[string]int{}
	for _, rp := range r.Replies {
		per[rp.Node]++
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "probe %s:%d every %s for %s: sent %d, replies %d",
		r.VIP, r.Port, r.Interval, r.End.Sub(r.Start).Round(time.Millisecond), r.Sent, len(r.Replies))
	for _, n := range names {
		b.WriteString(" " + n + "=" + strconv.Itoa(per[n]))
	}
	var spans []string
	for _, s := range r.Owners() {
		spans = append(spans, s.String())
	}
	fmt.Fprintf(&b, "; spans %s; neighbour samples %d; announcements %d", strings.Join(spans, " "), len(r.Neighbors), len(r.Announcements))
	return b.String()
}

// RTT returns the q-quantile (0..1) of reply round-trip times (At - SentAt),
// the resolution below which interruptions are not meaningful; 0 without replies.
func (r Record) RTT(q float64) time.Duration {
	if len(r.Replies) == 0 {
		return 0
	}
	d := make([]time.Duration, len(r.Replies))
	for i, rp := range r.Replies {
		d[i] = rp.At.Sub(rp.SentAt)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(q * float64(len(d)-1))
	return d[max(0, min(i, len(d)-1))]
}
