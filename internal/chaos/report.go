package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// Ms is a duration written to JSON as milliseconds (a number).
type Ms time.Duration

// MarshalJSON writes d in milliseconds, to the microsecond.
func (d Ms) MarshalJSON() ([]byte, error) {
	return json.Marshal(math.Round(float64(d)/float64(time.Microsecond)) / 1000)
}

// UnmarshalJSON reads milliseconds.
func (d *Ms) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*d = Ms(f * float64(time.Millisecond))
	return nil
}

// Stats summarises durations.
type Stats struct {
	N      int `json:"n"`
	Min    Ms  `json:"minMs"`
	Median Ms  `json:"medianMs"`
	P95    Ms  `json:"p95Ms"`
	Max    Ms  `json:"maxMs"`
}

// Summarize returns min, median, 95th percentile (nearest rank) and max.
func Summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{N: len(s), Min: Ms(s[0]), Median: Ms(rank(0.5)), P95: Ms(rank(0.95)), Max: Ms(s[len(s)-1])}
}

func (s Stats) String() string {
	if s.N == 0 {
		return "-"
	}
	r := func(d Ms) string { return time.Duration(d).Round(time.Millisecond).String() }
	return fmt.Sprintf("%s / %s / %s / %s", r(s.Min), r(s.Median), r(s.P95), r(s.Max))
}

// FaultRecord is what the runner recorded about one fault as it applied it.
type FaultRecord struct {
	Index       int       `json:"index"` // 1-based
	Kind        Kind      `json:"kind"`
	Step        string    `json:"step"`             // the planned step
	Target      string    `json:"target,omitempty"` // the node hit
	OwnerBefore string    `json:"ownerBefore,omitempty"`
	Hold        Ms        `json:"holdMs,omitempty"`
	At          time.Time `json:"at"` // the fault applied
	// SettledAt: settled after the fault (zero: not required, e.g. a hang
	// shorter than the takeover bound, or never).
	SettledAt time.Time `json:"settledAt,omitzero"`
	RepairAt  time.Time `json:"repairAt,omitzero"`
	// EndAt: settled after the repair (or when the runner gave up).
	EndAt      time.Time `json:"endAt"`
	OwnerAfter string    `json:"ownerAfter,omitempty"`
	// Violations found while running (bounds, /status, processes).
	Violations []Violation `json:"-"`
}

// FaultResult is one fault in the report.
type FaultResult struct {
	FaultRecord
	// Interruption is the longest time the client went without a reply
	// from the fault until settled after the repair (10ms: none).
	Interruption Ms `json:"interruptionMs"`
	// Lost counts the client's requests in that time left unanswered.
	Lost int `json:"lost"`
	// TwoOwners is how long two nodes held the VIP at once (kernel), all
	// causes (the excused ones included); DualARP counts the client-side
	// samples answered by two MACs.
	TwoOwners  Ms          `json:"twoOwnersMs"`
	DualARP    int         `json:"dualArp"`
	Violations []Violation `json:"violations"`
}

// KindStats aggregates the faults of one kind.
type KindStats struct {
	Kind         Kind  `json:"kind"`
	Count        int   `json:"count"`
	Interruption Stats `json:"interruption"`
	Lost         int   `json:"lost"`
	TwoOwners    Ms    `json:"twoOwnersMs"`
	DualARP      int   `json:"dualArp"`
	Violations   int   `json:"violations"`
}

// Bounds are the bounds a run checked, for the report.
type Bounds struct {
	Takeover Ms `json:"takeoverMs"` // before slack
	Fault    Ms `json:"faultMs"`    // FaultBound of a plain kind
	Repair   Ms `json:"repairMs"`   // RepairBound of a plain kind
	DeadMan  Ms `json:"deadManMs"`
	Slack    Ms `json:"slackMs"`
}

// Report is the outcome of a run.
type Report struct {
	Mode     string        `json:"mode"`
	Nodes    int           `json:"nodes"`
	Seed     uint64        `json:"seed"`
	Planned  int           `json:"planned"`
	Settings string        `json:"settings"`
	Bounds   Bounds        `json:"bounds"`
	Start    time.Time     `json:"start"`
	Duration Ms            `json:"durationMs"`
	Kinds    []KindStats   `json:"kinds"`
	Total    KindStats     `json:"total"`
	Faults   []FaultResult `json:"faults"`
	// Violations: every one, in order (start-up ones have fault 0).
	Violations []Violation `json:"violations"`
	// Excused overlaps and dual answers (partitions, dead-man's switch),
	// for the record.
	Excused []string `json:"excused,omitempty"`
	// Aborted: the run could not go on (a lab failure), with why.
	Aborted string `json:"aborted,omitempty"`
}

// OK reports whether the run completed without a violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 && r.Aborted == "" }

// Input is everything a run recorded; Analyze turns it into the Report.
type Input struct {
	Mode    string
	Nodes   int
	Seed    uint64
	Planned int
	Timing  Timing
	VIP     netip.Addr

	Start, End time.Time
	Faults     []FaultRecord
	// StartViolations: found before the first fault.
	StartViolations []Violation
	Events          []lab.AddrEvent
	Probe           lab.Record
	MACs            map[string]string // MAC -> node name
	Excuses         []Excuse
	// Yields: the nodes' step-downs for a higher-priority VRRP advert
	// (from their logs), for Preemption.
	Yields  []Yield
	Aborted string
}

// Analyze builds the report: per-fault figures over each fault's window
// (from the fault until the next one), the kernel and client two-owner
// checks over the whole run, and the per-kind statistics.
func Analyze(in Input) *Report {
	t := in.Timing
	r := &Report{Mode: in.Mode, Nodes: in.Nodes, Seed: in.Seed, Planned: in.Planned, Settings: t.String(),
		Bounds: Bounds{Takeover: Ms(t.Takeover()), Fault: Ms(t.FaultBound(KindSIGKILL)), Repair: Ms(t.RepairBound(KindLinkDown)),
			DeadMan: Ms(t.DeadMan()), Slack: Ms(t.Slack)},
		Start: in.Start, Duration: Ms(in.End.Sub(in.Start)), Aborted: in.Aborted, Violations: []Violation{}}
	// window returns the fault whose window holds at (0: start-up).
	window := func(at time.Time) int {
		w := 0
		for i, f := range in.Faults {
			if !at.Before(f.At) {
				w = i + 1
			}
		}
		return w
	}
	extra := make([][]Violation, len(in.Faults)+1)
	twoOwners := make([]time.Duration, len(in.Faults)+1)
	dual := make([]int, len(in.Faults)+1)
	for _, o := range KernelOverlaps(lab.HoldingsOf(in.Events, in.VIP), in.Excuses, in.End) {
		w := window(o.Start)
		twoOwners[w] += o.End.Sub(o.Start)
		if o.Excuse == "" && in.Mode == ModeVRRP && Preemption(o, in.Yields, t.Advert, t.Slack) {
			o.Excuse = fmt.Sprintf("VRRP preemption: %s removed it on the new master's advert, within one advert interval (%s) + %s", o.A.Host, t.Advert, preemptSlack)
		}
		if o.Excuse != "" {
			r.Excused = append(r.Excused, fmt.Sprintf("kernel: %s for %s: %s", o.Overlap, o.End.Sub(o.Start).Round(time.Millisecond), o.Excuse))
			continue
		}
		extra[w] = append(extra[w], Violation{Invariant: InvKernelTwoOwners, At: o.Start,
			Detail: fmt.Sprintf("%s: both held %s for %s", o.Overlap, in.VIP, o.End.Sub(o.Start).Round(time.Millisecond))})
	}
	for _, d := range DualAnswers(in.Probe.Neighbors, in.MACs, in.Excuses) {
		w := window(d.At)
		dual[w]++
		if d.Excuse != "" {
			r.Excused = append(r.Excused, fmt.Sprintf("client: %v answered ARP for %s at %s: %s", d.Nodes, in.VIP, d.At.Format("15:04:05.000"), d.Excuse))
			continue
		}
		extra[w] = append(extra[w], Violation{Invariant: InvClientTwoAnswers, At: d.At,
			Detail: fmt.Sprintf("%v answered the client's ARP request for %s", d.Nodes, in.VIP)})
	}

	r.Violations = append(r.Violations, in.StartViolations...)
	r.Violations = append(r.Violations, extra[0]...)
	byKind := map[Kind]*KindStats{}
	interr := map[Kind][]time.Duration{}
	var all []time.Duration
	for i, f := range in.Faults {
		end := f.EndAt
		if end.IsZero() {
			end = in.End
		}
		fr := FaultResult{FaultRecord: f, TwoOwners: Ms(twoOwners[i+1]), DualARP: dual[i+1]}
		gap, lost := Interruption(in.Probe, f.At, end)
		fr.Interruption, fr.Lost = Ms(gap), lost
		fr.Violations = append(slices.Clone(f.Violations), extra[i+1]...)
		for j := range fr.Violations {
			fr.Violations[j].Fault, fr.Violations[j].Kind = f.Index, f.Kind
		}
		slices.SortStableFunc(fr.Violations, func(a, b Violation) int { return a.At.Compare(b.At) })
		r.Violations = append(r.Violations, fr.Violations...)
		r.Faults = append(r.Faults, fr)

		ks := byKind[f.Kind]
		if ks == nil {
			ks = &KindStats{Kind: f.Kind}
			byKind[f.Kind] = ks
		}
		for _, s := range []*KindStats{ks, &r.Total} {
			s.Count++
			s.Lost += lost
			s.TwoOwners += Ms(twoOwners[i+1])
			s.DualARP += dual[i+1]
			s.Violations += len(fr.Violations)
		}
		interr[f.Kind] = append(interr[f.Kind], gap)
		all = append(all, gap)
	}
	for _, k := range Kinds(in.Mode) {
		if ks := byKind[k]; ks != nil {
			ks.Interruption = Summarize(interr[k])
			r.Kinds = append(r.Kinds, *ks)
		}
	}
	r.Total.Kind = "total"
	r.Total.Interruption = Summarize(all)
	r.Total.Violations = len(r.Violations)
	return r
}

// Interruption returns the longest stretch in [from, to] during which the
// client got no reply (from the last reply before from, if any), and how
// many requests sent in [from, to) were never answered.
func Interruption(rec lab.Record, from, to time.Time) (gap time.Duration, lost int) {
	prev := time.Time{}
	for _, rp := range rec.Replies {
		if rp.At.Before(from) {
			prev = rp.At
			continue
		}
		if rp.At.After(to) {
			break
		}
		if prev.IsZero() {
			prev = from
		}
		gap = max(gap, rp.At.Sub(prev))
		prev = rp.At
	}
	if prev.IsZero() || prev.Before(from) {
		prev = from
	}
	gap = max(gap, to.Sub(prev))
	answered := map[int]bool{}
	for _, rp := range rec.Replies {
		answered[rp.Seq] = true
	}
	for seq, at := range rec.SentAt {
		if !at.Before(from) && at.Before(to) && !answered[seq] {
			lost++
		}
	}
	return gap, lost
}

// ReplayCommand is the command that repeats the run.
func (r *Report) ReplayCommand() string {
	return fmt.Sprintf("vipd chaos --mode %s --nodes %d --faults %d --seed %d", r.Mode, r.Nodes, r.Planned, r.Seed)
}

// WriteText prints the human report: settings and bounds, a table per
// fault kind, and every violation.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	d := func(m Ms) string { return time.Duration(m).Round(time.Millisecond).String() }
	fmt.Fprintf(&b, "\nvipd chaos: mode %s, %d nodes, %d of %d faults in %s, seed %d\n", r.Mode, r.Nodes, len(r.Faults), r.Planned, d(r.Duration), r.Seed)
	fmt.Fprintf(&b, "  replay: %s\n", r.ReplayCommand())
	fmt.Fprintf(&b, "  timings: %s\n", r.Settings)
	fmt.Fprintf(&b, "  bounds: one owner within %s of a fault (takeover %s + slack %s; + check detection for health), within %s of its repair (+ start allowance for a restarted vipd); a dead or hung vipd's VIP gone within %s\n\n",
		d(r.Bounds.Fault), d(r.Bounds.Takeover), d(r.Bounds.Slack), d(r.Bounds.Repair), d(r.Bounds.DeadMan))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  kind\tcount\tinterruption min / median / p95 / max\tlost probes\ttwo owners\tdual ARP\tviolations")
	for _, k := range append(slices.Clone(r.Kinds), r.Total) {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%d\t%d\n", k.Kind, k.Count, k.Interruption, k.Lost, d(k.TwoOwners), k.DualARP, k.Violations)
	}
	tw.Flush()
	b.WriteString("\n  (interruption: the longest time the client went without a reply, from the fault until settled after its\n" +
		"   repair; 10ms is none. two owners: time two kernels held the VIP at once, excused ones included: a\n" +
		"   partition, or a killed or hung vipd's VIP until its lifetime runs out.)\n")
	if r.Aborted != "" {
		fmt.Fprintf(&b, "\nABORTED: %s\n", r.Aborted)
	}
	if len(r.Violations) == 0 {
		b.WriteString("\nviolations: none\n")
	} else {
		fmt.Fprintf(&b, "\nVIOLATIONS: %d\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  %s %s\n", v.At.Format("15:04:05.000"), v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
