package main

// The benchmark's pictures (issue #15): one SVG timeline per implementation
// and scenario (-svg DIR), drawn by bench/timeline from the client probe's
// record of one representative round.

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/bench/timeline"
	"github.com/vipd/vipd/internal/lab"
)

// picture is one round's timeline, kept in its result; the subtitle is
// written when the round is picked (it says which round it is).
type picture = timeline.Recording

// Around a round's event the picture shows pictureBefore, and after the
// last thing measured (new owner, end of the overlap, old VIP gone)
// pictureAfter.
const (
	pictureBefore = 300 * time.Millisecond
	pictureAfter  = 300 * time.Millisecond
)

// roundPicture cuts the probe's record to the round around at: probes sent
// and replies (by seq), neighbour samples, announcements, as offsets from
// the event. nodes are the lab's node names (lanes), node 0 the old owner.
func roundPicture(rec lab.Record, at time.Time, r result, nodes []string, mode string, sc Scenario) picture {
	f := r.f
	end := max(r.takeover, f.FirstTo.Sub(at)+f.Overlap, r.left) + pictureAfter
	// Requests sent in the last moments before the snapshot may still
	// be unanswered: never reach them (they would look lost). The bench
	// snapshots ≥ 300 ms after the new owner answered and the VIP left.
	if limit := rec.End.Sub(at) - 3*rec.Interval; end > limit || r.left < 0 {
		end = limit // VIP never gone: show all there is
	}
	event := sc.Name + " on " + nodes[0]
	if strings.HasPrefix(sc.Key, "check-") {
		event = nodes[0] + "'s checked service turns 503"
	}
	p := picture{
		Title:    fmt.Sprintf("%s — %s", mode, sc.Name),
		Nodes:    nodes,
		From:     -pictureBefore,
		To:       max(end, 10*rec.Interval),
		Interval: rec.Interval,
		Axis:     "ms after the event",
		Events:   []timeline.Mark{{At: 0, Label: event}},
	}
	// A little before the window, so its left edge is covered; the picture
	// clips what sticks out.
	in := func(t time.Time) bool { d := t.Sub(at); return d >= p.From-200*time.Millisecond && d <= p.To }

	bySeq := map[int][]string{}
	for _, rp := range rec.Replies {
		if in(rp.SentAt) {
			bySeq[rp.Seq] = append(bySeq[rp.Seq], rp.Node)
		}
	}
	for seq, t := range rec.SentAt {
		if in(t) {
			p.Probes = append(p.Probes, timeline.Probe{Sent: t.Sub(at), Nodes: bySeq[seq]})
		}
	}
	var gaps []time.Duration
	for i, s := range rec.Neighbors {
		if in(s.At) {
			p.ARP = append(p.ARP, timeline.ARPSample{At: s.At.Sub(at), Nodes: rec.NeighborNodes(s)})
			if i > 0 {
				gaps = append(gaps, s.At.Sub(rec.Neighbors[i-1].At))
			}
		}
	}
	// The sampling interval is the probe's setting (not in the record): the
	// median spacing of the samples is it.
	p.ARPInterval = 50 * time.Millisecond
	if len(gaps) > 0 {
		slices.Sort(gaps)
		p.ARPInterval = gaps[len(gaps)/2].Round(time.Millisecond)
	}
	for _, a := range rec.Announcements {
		if in(a.At) {
			n := a.Node
			if n == "" {
				n = a.MAC.String()
			}
			p.Announcements = append(p.Announcements, timeline.Announcement{At: a.At.Sub(at), Node: n})
		}
	}
	p.Marks = append(p.Marks, timeline.Mark{At: r.takeover, Label: fmt.Sprintf("%s answers (+%s ms)", f.To, ms(r.takeover))})
	if r.left >= 0 {
		p.Marks = append(p.Marks, timeline.Mark{At: r.left, Label: fmt.Sprintf("%s's VIP gone (+%s ms)", nodes[0], ms(r.left))})
	} else {
		p.Marks = append(p.Marks, timeline.Mark{At: p.To, Label: nodes[0] + " still holds the VIP"})
	}
	return p
}

// representative picks the round a picture shows: the median by the
// client's interruption, ties broken by the new owner's answer time (after
// SIGKILL every VRRP round has a ~10 ms interruption), then by round. The
// median is the element len/2 of the sorted rounds, as in the table.
func representative(rs []result) int {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(rs[a].f.Interruption, rs[b].f.Interruption), cmp.Compare(rs[a].takeover, rs[b].takeover))
	})
	return idx[len(idx)/2]
}

// writePictures writes <mode>-<scenario key>.svg into dir for every mode and
// scenario that ran, from its representative round, and says which round.
func writePictures(out io.Writer, dir string, res *outcome) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-svg: %w", err)
	}
	for _, sc := range res.scenarios {
		for _, m := range res.modes {
			rs := res.results[m.Name()][sc.Name]
			if len(rs) == 0 || rs[0].pic.Nodes == nil {
				continue
			}
			k := representative(rs)
			r := rs[k]
			p := r.pic
			p.Subtitle = fmt.Sprintf("round %d of %d (median interruption): interruption %s ms · %s answers after %s ms · lost %d probes · overlap %s ms",
				k+1, len(rs), ms(r.f.Interruption), r.f.To, ms(r.takeover), r.f.Lost, ms(r.f.Overlap))
			b, err := timeline.Render(p)
			if err != nil {
				return fmt.Errorf("%s %s: %w", m.Name(), sc.Name, err)
			}
			path := filepath.Join(dir, m.Name()+"-"+sc.Key+".svg")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "timeline: %s (round %d of %d)\n", path, k+1, len(rs))
		}
	}
	return nil
}

// nodeNames are the lab's node names, the picture's lanes.
func nodeNames(l *lab.Lab) []string {
	var out []string
	for _, h := range l.Nodes {
		out = append(out, h.Name)
	}
	return out
}
