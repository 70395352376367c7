package timeline

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.svg from the current output")

const ms = time.Millisecond

// owners builds a probe every 10ms in [from, to) answered by who(t).
func owners(from, to time.Duration, who func(t time.Duration) []string) []Probe {
	var out []Probe
	for t := from; t < to; t += 10 * ms {
		out = append(out, Probe{Sent: t, Nodes: who(t)})
	}
	return out
}

// arp builds a neighbour sample every 50ms in [from, to).
func arp(from, to time.Duration, who func(t time.Duration) []string) []ARPSample {
	var out []ARPSample
	for t := from; t < to; t += 50 * ms {
		out = append(out, ARPSample{At: t, Nodes: who(t)})
	}
	return out
}

func one(n string) []string { return []string{n} }

var three = []string{"node1", "node2", "node3"}

func recordings() map[string]Recording {
	return map[string]Recording{
		// SIGTERM-like: node1 stops answering, node2 takes over 70ms later
		// after a gratuitous ARP; no overlap.
		"clean": {
			Title: "vipd-vrrp — SIGTERM", Subtitle: "round 2 of 3 (median interruption): interruption 70 ms",
			Nodes: three, From: -200 * ms, To: 400 * ms, Interval: 10 * ms, ARPInterval: 50 * ms,
			Axis: "ms after SIGTERM",
			Probes: owners(-200*ms, 400*ms, func(t time.Duration) []string {
				switch {
				case t < 0:
					return one("node1")
				case t < 60*ms:
					return nil
				}
				return one("node2")
			}),
			ARP: arp(-200*ms, 400*ms, func(t time.Duration) []string {
				switch {
				case t < 0:
					return one("node1")
				case t < 60*ms:
					return nil
				}
				return one("node2")
			}),
			Announcements: []Announcement{{At: 58 * ms, Node: "node2"}, {At: 160 * ms, Node: "node2"}},
			Events:        []Mark{{At: 0, Label: "SIGTERM node1"}},
			Marks:         []Mark{{At: 60 * ms, Label: "node2 answers (+60 ms)"}, {At: 27 * ms, Label: "node1's VIP gone"}},
		},
		// Link down for long: a gap of lost probes, nobody answering ARP.
		"gap": {
			Title: "vipd-lease — link down", Nodes: three, From: -500 * ms, To: 4500 * ms,
			Interval: 10 * ms, ARPInterval: 50 * ms, Axis: "ms after link down",
			Probes: owners(-500*ms, 4500*ms, func(t time.Duration) []string {
				switch {
				case t < 0:
					return one("node1")
				case t < 3920*ms:
					return nil
				}
				return one("node2")
			}),
			ARP: arp(-500*ms, 4500*ms, func(t time.Duration) []string {
				if t < 0 {
					return one("node1")
				} else if t > 3900*ms {
					return one("node2")
				}
				return nil
			}),
			Events: []Mark{{At: 0, Label: "link down node1"}},
			Marks:  []Mark{{At: 3920 * ms, Label: "node2 answers (+3920 ms)"}},
		},
		// SIGKILL in VRRP: node1's service still answers the client until
		// node2's announcement; node1's stale VIP answers ARP until it
		// expires; one probe answered by both.
		"overlap": {
			Title: "vipd-vrrp — SIGKILL", Subtitle: "interruption 10 ms · node2 answers after 308 ms · overlap 950 ms",
			Nodes: three, From: -300 * ms, To: 2800 * ms, Interval: 10 * ms, ARPInterval: 50 * ms,
			Probes: owners(-300*ms, 2800*ms, func(t time.Duration) []string {
				switch {
				case t < 300*ms:
					return one("node1")
				case t == 300*ms:
					return []string{"node1", "node2"}
				}
				return one("node2")
			}),
			ARP: arp(-300*ms, 2800*ms, func(t time.Duration) []string {
				switch {
				case t < 300*ms:
					return one("node1")
				case t < 2550*ms:
					return []string{"node2", "node1"}
				}
				return one("node2")
			}),
			Announcements: []Announcement{{At: 298 * ms, Node: "node2"}},
			Events:        []Mark{{At: 0, Label: "SIGKILL node1"}},
			Marks: []Mark{
				{At: 308 * ms, Label: "node2 answers"},
				{At: 2546 * ms, Label: "node1's VIP gone (+2546 ms)"},
				// Near the right edge: its label goes left of its line.
				{At: 2790 * ms, Label: "end of round"},
			},
		},
		// Several rounds in one picture: kill, failback, kill again; node3
		// once answers during the second failover.
		"rounds": {
			Title: "chaos — three faults", Nodes: three, From: 0, To: 9 * time.Second,
			Interval: 10 * ms, ARPInterval: 50 * ms, Axis: "ms since the start",
			Probes: owners(0, 9*time.Second, func(t time.Duration) []string {
				switch {
				case t < 1000*ms:
					return one("node1")
				case t < 1300*ms:
					return nil
				case t < 3000*ms:
					return one("node2")
				case t < 5000*ms:
					return one("node1")
				case t < 5400*ms:
					return nil
				case t < 5500*ms:
					return one("node3")
				case t < 7000*ms:
					return one("node2")
				}
				return one("node1")
			}),
			ARP: arp(0, 9*time.Second, func(t time.Duration) []string {
				switch {
				case t < 1000*ms:
					return one("node1")
				case t < 1300*ms:
					return nil
				case t < 3000*ms:
					return one("node2")
				case t < 3100*ms:
					return three[:2]
				case t < 5000*ms:
					return one("node1")
				case t < 5400*ms:
					return nil
				case t < 5500*ms:
					return []string{"node3", "node2"}
				case t < 7000*ms:
					return one("node2")
				}
				return one("node1")
			}),
			Events: []Mark{
				{At: 1000 * ms, Label: "link down node1"}, {At: 2900 * ms, Label: "link up node1"},
				{At: 5000 * ms, Label: "SIGKILL node1"}, {At: 6800 * ms, Label: "restart node1"},
			},
			Marks: []Mark{{At: 1300 * ms, Label: "node2 answers"}, {At: 5400 * ms, Label: "node3 answers"}, {At: 5500 * ms, Label: "node2 answers"}},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	for name, r := range recordings() {
		t.Run(name, func(t *testing.T) {
			got, err := Render(r)
			if err != nil {
				t.Fatal(err)
			}
			wellFormed(t, got)
			again, _ := Render(r)
			if !bytes.Equal(got, again) {
				t.Fatal("two renderings of the same recording differ")
			}
			path := filepath.Join("testdata", name+".svg")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./bench/timeline -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the output (%d against %d bytes); look at both, then go test ./bench/timeline -update", path, len(want), len(got))
			}
		})
	}
}

// wellFormed parses the document as XML.
func wellFormed(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

// TestRenderContent checks the drawing's meaning, independent of layout:
// which colours appear where, and the bands.
func TestRenderContent(t *testing.T) {
	recs := recordings()
	tests := []struct {
		name      string
		want, not []string
	}{
		{"clean", []string{"SIGTERM node1", "node2 answers (+60 ms)", "node1&#39;s VIP gone", `fill="` + lostColour + `" fill-opacity="0.16"`, "−200", "ms after SIGTERM"},
			[]string{`fill="url(#tl-both)" fill-opacity="0.55"`}},
		{"gap", []string{"link down node1", `fill="` + lostColour + `" fill-opacity="0.16"`, ">4000<"}, []string{`fill="url(#tl-both)" fill-opacity="0.55"`}},
		{"overlap", []string{`fill="url(#tl-both)" fill-opacity="0.55"`, `text-anchor="end" fill="` + markColour + `">end of round`}, nil},
		{"rounds", []string{"restart node1", "node3 answers"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(recs[tt.name])
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !bytes.Contains(got, []byte(w)) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tt.not {
				if bytes.Contains(got, []byte(w)) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}

// TestBoth: two nodes answering is drawn only where a probe or an ARP
// sample shows both.
func TestBoth(t *testing.T) {
	base := Recording{Title: "t", Nodes: three, From: 0, To: time.Second, Interval: 10 * ms, ARPInterval: 50 * ms}
	tests := []struct {
		name   string
		probes []Probe
		arp    []ARPSample
		want   []span
	}{
		{"handover, lanes touching", []Probe{{0, one("node1")}, {10 * ms, one("node2")}},
			[]ARPSample{{0, one("node1")}, {50 * ms, one("node2")}}, nil},
		{"one probe, two answers", []Probe{{0, one("node1")}, {10 * ms, three[:2]}, {20 * ms, one("node2")}}, nil,
			[]span{{10 * ms, 20 * ms}}},
		{"same node twice is one", []Probe{{0, []string{"node1", "node1"}}, {10 * ms, one("node1")}}, nil, nil},
		{"ARP samples, joined", nil,
			[]ARPSample{{0, one("node1")}, {50 * ms, three[:2]}, {100 * ms, three[1:]}, {150 * ms, one("node2")}},
			[]span{{50 * ms, 150 * ms}}},
		{"probe and sample, joined and sorted", []Probe{{120 * ms, three[:2]}, {130 * ms, one("node2")}},
			[]ARPSample{{50 * ms, three[:2]}, {100 * ms, one("node2")}}, []span{{50 * ms, 100 * ms}, {120 * ms, 130 * ms}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.Probes, r.ARP = tt.probes, tt.arp
			got := newDrawing(r, lanes(r)).both
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestTickStep(t *testing.T) {
	for _, tt := range []struct{ span, want time.Duration }{
		{5 * ms, 1 * ms}, {10 * ms, 1 * ms}, {11 * ms, 2 * ms}, {600 * ms, 100 * ms},
		{3100 * ms, 500 * ms}, {5000 * ms, 500 * ms}, {9 * time.Second, time.Second}, {60 * time.Second, 10 * time.Second},
	} {
		if got := tickStep(tt.span); got != tt.want {
			t.Errorf("tickStep(%s) = %s, want %s", tt.span, got, tt.want)
		}
	}
}

func TestRenderBadInput(t *testing.T) {
	ok := Recording{Title: "t", Nodes: three, From: 0, To: time.Second, Interval: 10 * ms}
	tests := []struct {
		name string
		edit func(*Recording)
		want string
	}{
		{"empty window", func(r *Recording) { r.To = r.From }, "To must be after From"},
		{"no interval", func(r *Recording) { r.Interval = 0 }, "probe Interval"},
		{"ARP without interval", func(r *Recording) { r.ARP = []ARPSample{{At: 0}} }, "ARPInterval"},
		{"no nodes", func(r *Recording) { r.Nodes = nil }, "no nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			_, err := Render(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := Render(ok); err != nil {
		t.Fatalf("valid recording: %v", err)
	}
}

// TestRenderExtraLane: a node that answers but is not listed gets a lane.
func TestRenderExtraLane(t *testing.T) {
	r := Recording{Title: "t", Nodes: []string{"node1"}, From: 0, To: 100 * ms, Interval: 10 * ms,
		Probes: []Probe{{Sent: 0, Nodes: one("node1")}, {Sent: 10 * ms, Nodes: one("stranger")}}}
	got, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(">stranger<")) {
		t.Fatal("no lane for the unlisted node")
	}
}
