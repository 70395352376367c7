// Package timeline draws what a failover looked like from the wire as an SVG
// picture: time across, a lane for the client's probes and a lane per node,
// coloured where that node answered the VIP (UDP probe replies, and ARP
// answers to the observer's neighbour samples), with lost probes, two nodes
// answering at once, and the events (SIGKILL, link down, …) marked.
//
// Render is a pure function of a Recording: no clock, no randomness, no map
// iteration, fixed number formatting, so its output is byte-for-byte
// reproducible and golden-tested. The SVG is written by hand with fmt: the
// picture is a few kinds of rectangles, lines and text, which needs no
// plotting or SVG library (and the project keeps its dependencies few).
package timeline

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Recording is one scenario as the client saw it. Times are offsets from an
// origin of the caller's choice (the bench uses the event: 0 = SIGKILL); the
// axis is labelled in milliseconds from it.
type Recording struct {
	// Title is the picture's heading; Subtitle a line of figures under it.
	Title, Subtitle string
	// Nodes are the lanes, top to bottom, and fix each node's colour. A node
	// that answers but is not listed gets a lane after them (sorted by name).
	Nodes []string
	// From and To are the window drawn (From < To). Data outside it is cut.
	From, To time.Duration
	// Probes are the client's requests (sorted by Sent or not). Each is drawn
	// from its Sent time to the next probe's, at most probeHold × Interval:
	// a loaded machine delays the client's ticker by a few intervals, which
	// should not show as white slits; a longer stall in probing does.
	Probes []Probe
	// Interval is the probe interval; ARPInterval the neighbour sampling
	// interval (how long one sample stands for).
	Interval, ARPInterval time.Duration
	// ARP are the observer's neighbour samples: who answered ARP (or NDP)
	// for the VIP, each drawn until the next (at most probeHold ×
	// ARPInterval).
	ARP []ARPSample
	// Announcements are gratuitous ARPs / unsolicited NAs for the VIP.
	Announcements []Announcement
	// Events are what was done (a red dashed line each); Marks are what was
	// measured (a grey dotted line each), e.g. "node2 answers".
	Events, Marks []Mark
	// Axis names the origin under the axis, e.g. "ms after SIGKILL"
	// (default "ms").
	Axis string
}

// Probe is one client request and the nodes that answered it (none: lost;
// two or more: two nodes answered the same request).
type Probe struct {
	Sent  time.Duration
	Nodes []string
}

// ARPSample is one "who has the VIP?" and the nodes whose MAC answered.
type ARPSample struct {
	At    time.Duration
	Nodes []string
}

// Announcement is a gratuitous ARP (or unsolicited NA) from Node.
type Announcement struct {
	At   time.Duration
	Node string
}

// Mark is a labelled instant.
type Mark struct {
	At    time.Duration
	Label string
}

// Layout, in SVG user units (px).
const (
	width      = 960
	left       = 132 // lane labels
	right      = 24
	plotW      = width - left - right
	labelRowH  = 14
	clientH    = 16
	barH       = 16 // a node's probe-reply bar
	arpH       = 7  // a node's ARP strip under it
	laneGap    = 9
	laneH      = barH + 2 + arpH + laneGap
	charW      = 6.4 // estimated width of one 11px character, to stack labels
	boldCharW  = 7.2
	probeHold  = 5 // how many intervals a probe or sample result stands for at most
	legendRowH = 18
)

// palette colours the nodes in Nodes order (colour-blind safe, Okabe–Ito);
// lost probes and overlaps have their own colours, not reused here.
var palette = []string{"#0072b2", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#000000", "#f0e442"}

const (
	lostColour    = "#d62728"
	overlapColour = "#ff9f1c"
	eventColour   = "#c0392b"
	markColour    = "#555555"
	gridColour    = "#e6e6e6"
)

// span is [a, b) in the recording's time.
type span struct{ a, b time.Duration }

// Render draws r as an SVG document.
func Render(r Recording) ([]byte, error) {
	if r.To <= r.From {
		return nil, fmt.Errorf("timeline %q: window From %s .. To %s: To must be after From", r.Title, r.From, r.To)
	}
	if r.Interval <= 0 {
		return nil, fmt.Errorf("timeline %q: probe Interval %s: must be positive", r.Title, r.Interval)
	}
	if len(r.ARP) > 0 && r.ARPInterval <= 0 {
		return nil, fmt.Errorf("timeline %q: ARPInterval %s with %d ARP samples: must be positive", r.Title, r.ARPInterval, len(r.ARP))
	}
	nodes := lanes(r)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("timeline %q: no nodes (neither Nodes nor any answer)", r.Title)
	}
	d := newDrawing(r, nodes)
	return d.render(), nil
}

// lanes is r.Nodes followed by any other node that appears, sorted.
func lanes(r Recording) []string {
	out := slices.Clone(r.Nodes)
	var extra []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) && !slices.Contains(extra, n) {
			extra = append(extra, n)
		}
	}
	for _, p := range r.Probes {
		for _, n := range p.Nodes {
			add(n)
		}
	}
	for _, s := range r.ARP {
		for _, n := range s.Nodes {
			add(n)
		}
	}
	for _, a := range r.Announcements {
		add(a.Node)
	}
	slices.Sort(extra)
	return append(out, extra...)
}

type drawing struct {
	r     Recording
	nodes []string
	// Per lane: where the node answered probes, and ARP.
	udp, arp [][]span
	// client is the probe lane: runs of one state ("" lost, a node, or
	// "+" for two or more nodes), in time order.
	client []clientRun
	lost   []span // runs of lost probes
	both   []span // two or more nodes answering (probes or ARP)
	// label rows: Events then Marks, each with its row.
	labels []placed
	rows   int
	b      bytes.Buffer
}

type clientRun struct {
	span
	state string
}

type placed struct {
	Mark
	event bool
	row   int
	x     float64
	end   bool // text-anchor end (label left of the line)
}

func newDrawing(r Recording, nodes []string) *drawing {
	d := &drawing{r: r, nodes: nodes, udp: make([][]span, len(nodes)), arp: make([][]span, len(nodes))}
	lane := func(n string) int { return slices.Index(nodes, n) }

	probes := slices.Clone(r.Probes)
	slices.SortStableFunc(probes, func(a, b Probe) int { return cmpDur(a.Sent, b.Sent) })
	// Two nodes answering is drawn only where one probe or one ARP sample
	// shows it: between samples nobody knows, and the lanes of two nodes
	// merely touching (one sample each side of a handover) is not evidence.
	var both []span
	for i, p := range probes {
		s := span{p.Sent, p.Sent + r.Interval}
		if i+1 < len(probes) {
			s.b = min(probes[i+1].Sent, p.Sent+probeHold*r.Interval)
		}
		ns := distinct(p.Nodes)
		state := ""
		switch len(ns) {
		case 0:
			d.lost = appendSpan(d.lost, s)
		case 1:
			state = ns[0]
		default:
			state = "+"
			both = append(both, s)
		}
		if n := len(d.client); n > 0 && d.client[n-1].state == state && d.client[n-1].b == s.a {
			d.client[n-1].b = s.b
		} else {
			d.client = append(d.client, clientRun{s, state})
		}
		for _, n := range ns {
			k := lane(n)
			d.udp[k] = appendSpan(d.udp[k], s)
		}
	}
	samples := slices.Clone(r.ARP)
	slices.SortStableFunc(samples, func(a, b ARPSample) int { return cmpDur(a.At, b.At) })
	for i, smp := range samples {
		s := span{smp.At, smp.At + r.ARPInterval}
		if i+1 < len(samples) {
			s.b = min(samples[i+1].At, smp.At+probeHold*r.ARPInterval)
		}
		ns := distinct(smp.Nodes)
		for _, n := range ns {
			k := lane(n)
			d.arp[k] = appendSpan(d.arp[k], s)
		}
		if len(ns) > 1 {
			both = append(both, s)
		}
	}
	slices.SortStableFunc(both, func(a, b span) int { return cmpDur(a.a, b.a) })
	for _, s := range both {
		d.both = appendSpan(d.both, s)
	}
	d.placeLabels()
	return d
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// distinct drops empty names and repeats, keeping the first order.
func distinct(ns []string) []string {
	var out []string
	for _, n := range ns {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// appendSpan adds s to time-ordered spans, merging it into the last one when
// they touch or overlap.
func appendSpan(ss []span, s span) []span {
	if n := len(ss); n > 0 && s.a <= ss[n-1].b {
		ss[n-1].b = max(ss[n-1].b, s.b)
		return ss
	}
	return append(ss, s)
}

// x maps a time to the plot's horizontal coordinate (clamped to the window).
func (d *drawing) x(t time.Duration) float64 {
	t = max(d.r.From, min(d.r.To, t))
	return left + float64(plotW)*float64(t-d.r.From)/float64(d.r.To-d.r.From)
}

func (d *drawing) inWindow(t time.Duration) bool { return t >= d.r.From && t <= d.r.To }

// placeLabels gives every event and mark label in the window the first row
// where it does not run into a label already placed (events first).
func (d *drawing) placeLabels() {
	var all []placed
	for _, m := range d.r.Events {
		all = append(all, placed{Mark: m, event: true})
	}
	for _, m := range d.r.Marks {
		all = append(all, placed{Mark: m})
	}
	type extent struct{ a, b float64 }
	var rows [][]extent
	for _, p := range all {
		if !d.inWindow(p.At) {
			continue
		}
		p.x = d.x(p.At)
		cw := charW
		if p.event {
			cw = boldCharW
		}
		w := cw*float64(len([]rune(p.Label))) + 10
		a, b := p.x-2, p.x+w
		if b > width-2 {
			p.end = true
			a, b = p.x-w, p.x+2
		}
		row := 0
		for ; row < len(rows); row++ {
			if !slices.ContainsFunc(rows[row], func(e extent) bool { return a < e.b && e.a < b }) {
				break
			}
		}
		if row == len(rows) {
			rows = append(rows, nil)
		}
		rows[row] = append(rows[row], extent{a, b})
		p.row = row
		d.labels = append(d.labels, p)
	}
	d.rows = len(rows)
}

func (d *drawing) printf(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder: never fails
	return b.String()
}

// f formats a coordinate: one decimal, no "-0.0".
func f(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0
	}
	return fmt.Sprintf("%.1f", v)
}

func (d *drawing) colour(k int) string { return palette[k%len(palette)] }

func (d *drawing) render() []byte {
	r := d.r
	titleH := 30
	if r.Subtitle != "" {
		titleH = 48
	}
	labelTop := titleH + 6
	plotTop := labelTop + d.rows*labelRowH + 4
	clientY := plotTop
	lanesTop := clientY + clientH + laneGap + 4
	plotBottom := lanesTop + len(d.nodes)*laneH - laneGap
	axisY := plotBottom + 6
	legendTop := axisY + 40
	legendRows := d.legendRows()
	height := legendTop + len(legendRows)*legendRowH + 8

	d.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="11">`+"\n", width, height, width, height)
	d.printf("<title>%s</title>\n", esc(r.Title))
	d.printf(`<defs><pattern id="tl-both" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="%s"/></pattern></defs>`+"\n", overlapColour)
	d.printf(`<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	d.printf(`<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", left-120, esc(r.Title))
	if r.Subtitle != "" {
		d.printf(`<text x="%d" y="38" fill="#444444">%s</text>`+"\n", left-120, esc(r.Subtitle))
	}

	// Grid and axis ticks.
	step := tickStep(r.To - r.From)
	d.printf(`<g stroke="%s">`+"\n", gridColour)
	ticks := d.ticks(step)
	for _, t := range ticks {
		d.printf(`<line x1="%s" y1="%d" x2="%s" y2="%d"/>`+"\n", f(d.x(t)), clientY, f(d.x(t)), plotBottom)
	}
	d.printf("</g>\n")

	// Bands behind the lanes: lost probes over everything, overlaps over
	// the node lanes.
	for _, s := range d.lost {
		d.band(s, clientY, plotBottom, fmt.Sprintf(`fill="%s" fill-opacity="0.16"`, lostColour))
	}
	for _, s := range d.both {
		d.band(s, lanesTop-3, plotBottom+3, `fill="url(#tl-both)" fill-opacity="0.55"`)
	}

	// Client lane.
	d.printf(`<text x="%d" y="%d" text-anchor="end" font-weight="bold">client</text>`+"\n", left-8, clientY+clientH-4)
	d.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#bbbbbb"/>`+"\n", left, clientY, plotW, clientH)
	for _, c := range d.client {
		fill := lostColour
		switch c.state {
		case "":
		case "+":
			fill = "url(#tl-both)"
		default:
			fill = d.colour(slices.Index(d.nodes, c.state))
		}
		d.band(c.span, clientY, clientY+clientH, `fill="`+fill+`"`)
	}

	// Node lanes.
	for k, n := range d.nodes {
		y := lanesTop + k*laneH
		d.printf(`<text x="%d" y="%d" text-anchor="end" font-weight="bold" fill="%s">%s</text>`+"\n", left-40, y+barH-4, d.colour(k), esc(n))
		d.printf(`<text x="%d" y="%d" text-anchor="end" font-size="9" fill="#777777">probes</text>`+"\n", left-6, y+barH-5)
		d.printf(`<text x="%d" y="%d" text-anchor="end" font-size="9" fill="#777777">ARP</text>`+"\n", left-6, y+barH+2+arpH-1)
		d.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#dddddd"/>`+"\n", left, y, plotW, barH)
		for _, s := range d.udp[k] {
			d.band(s, y, y+barH, `fill="`+d.colour(k)+`"`)
		}
		for _, s := range d.arp[k] {
			d.band(s, y+barH+2, y+barH+2+arpH, `fill="`+d.colour(k)+`" fill-opacity="0.5"`)
		}
		for _, a := range r.Announcements {
			if a.Node == n && d.inWindow(a.At) {
				x := d.x(a.At)
				d.printf(`<path d="M%s %dl-3.5 -5h7z" fill="#222222"/>`+"\n", f(x), y+barH+2)
			}
		}
	}

	// Events and marks over the lanes, labels in their rows above.
	for _, p := range d.labels {
		ly := labelTop + p.row*labelRowH + 10
		colour, dash, weight := markColour, "2 3", ""
		if p.event {
			colour, dash, weight = eventColour, "6 3", ` font-weight="bold"`
		}
		d.printf(`<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`+"\n",
			f(p.x), ly+2, f(p.x), plotBottom+3, colour, dash)
		anchor, tx := "start", p.x+3
		if p.end {
			anchor, tx = "end", p.x-3
		}
		d.printf(`<text x="%s" y="%d" text-anchor="%s" fill="%s"%s>%s</text>`+"\n", f(tx), ly, anchor, colour, weight, esc(p.Label))
	}

	// Axis.
	d.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333333"/>`+"\n", left, axisY, left+plotW, axisY)
	for _, t := range ticks {
		x := f(d.x(t))
		d.printf(`<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#333333"/>`+"\n", x, axisY, x, axisY+4)
		d.printf(`<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", x, axisY+16, msLabel(t))
	}
	axis := r.Axis
	if axis == "" {
		axis = "ms"
	}
	d.printf(`<text x="%d" y="%d" text-anchor="middle" fill="#444444">%s</text>`+"\n", left+plotW/2, axisY+31, esc(axis))

	// Legend.
	for i, row := range legendRows {
		x := float64(left - 120)
		y := legendTop + i*legendRowH
		for _, it := range row {
			d.printf(`<g transform="translate(%s %d)">%s<text x="%d" y="10">%s</text></g>`+"\n", f(x), y, it.swatch, it.w, esc(it.label))
			x += float64(it.w) + charW*float64(len([]rune(it.label))) + 18
		}
	}
	d.printf("</svg>\n")
	return d.b.Bytes()
}

// band fills s (clipped to the window) between y0 and y1.
func (d *drawing) band(s span, y0, y1 int, attrs string) {
	if s.b <= d.r.From || s.a >= d.r.To {
		return
	}
	x0, x1 := d.x(s.a), d.x(s.b)
	// A run shorter than half a pixel would vanish; keep it visible.
	if x1-x0 < 0.5 {
		x1 = x0 + 0.5
	}
	d.printf(`<rect x="%s" y="%d" width="%s" height="%d" %s/>`+"\n", f(x0), y0, f(x1-x0), y1-y0, attrs)
}

type legendItem struct {
	swatch string
	w      int // swatch width
	label  string
}

// legendRows: the nodes, then what the marks and colours mean.
func (d *drawing) legendRows() [][]legendItem {
	var nodes []legendItem
	for k, n := range d.nodes {
		nodes = append(nodes, legendItem{fmt.Sprintf(`<rect y="1" width="14" height="10" fill="%s"/>`, d.colour(k)), 18, n + " answered"})
	}
	keys := []legendItem{
		{`<rect y="1" width="14" height="10" fill="#888888"/>`, 18, "probe reply (UDP)"},
		{`<rect y="3" width="14" height="6" fill="#888888" fill-opacity="0.5"/>`, 18, arpLegend(d.r.ARPInterval)},
		{`<path d="M7 11l-3.5 -5h7z" fill="#222222"/>`, 14, "gratuitous ARP"},
		{fmt.Sprintf(`<rect y="1" width="14" height="10" fill="%s"/>`, lostColour), 18, "probe lost"},
		{`<rect y="1" width="14" height="10" fill="url(#tl-both)"/>`, 18, "two nodes answering"},
	}
	marks := []legendItem{
		{fmt.Sprintf(`<line x1="0" y1="6" x2="14" y2="6" stroke="%s" stroke-width="1.5" stroke-dasharray="6 3"/>`, eventColour), 18, "event"},
		{fmt.Sprintf(`<line x1="0" y1="6" x2="14" y2="6" stroke="%s" stroke-width="1.5" stroke-dasharray="2 3"/>`, markColour), 18, "measured"},
	}
	return [][]legendItem{nodes, keys, marks}
}

// tickStep is the 1-2-5 step that puts 5 to 10 ticks on span.
func tickStep(span time.Duration) time.Duration {
	step := time.Millisecond
	for {
		for _, m := range []time.Duration{1, 2, 5} {
			if span/(step*m) <= 10 {
				return step * m
			}
		}
		step *= 10
	}
}

// ticks are the multiples of step in the window.
func (d *drawing) ticks(step time.Duration) []time.Duration {
	first := d.r.From / step * step
	if first < d.r.From {
		first += step
	}
	var out []time.Duration
	for t := first; t <= d.r.To; t += step {
		out = append(out, t)
	}
	return out
}

// msLabel writes t in whole ms with a true minus sign.
func msLabel(t time.Duration) string {
	ms := t.Milliseconds()
	if ms < 0 {
		return fmt.Sprintf("−%d", -ms)
	}
	return fmt.Sprintf("%d", ms)
}

func arpLegend(every time.Duration) string {
	if every <= 0 {
		return "ARP answer (observer's sample)"
	}
	return fmt.Sprintf("ARP answer (observer asks every %s)", every)
}
