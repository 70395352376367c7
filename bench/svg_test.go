package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/bench/timeline"
	"github.com/vipd/vipd/internal/lab"
)

func TestRepresentative(t *testing.T) {
	rd := func(in, tk time.Duration) result {
		return result{f: lab.Failover{Interruption: in}, takeover: tk}
	}
	ms := time.Millisecond
	tests := []struct {
		name string
		rs   []result
		want int
	}{
		{"one", []result{rd(10*ms, 300*ms)}, 0},
		{"median interruption", []result{rd(70*ms, 0), rd(90*ms, 0), rd(60*ms, 0)}, 0},
		{"ties: by takeover", []result{rd(10*ms, 350*ms), rd(10*ms, 290*ms), rd(10*ms, 310*ms)}, 2},
		{"even: the upper median, as the table", []result{rd(1*ms, 0), rd(4*ms, 0), rd(2*ms, 0), rd(3*ms, 0)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := representative(tt.rs); got != tt.want {
				t.Fatalf("representative = round %d, want %d", got, tt.want)
			}
		})
	}
}

// TestRoundPicture: a synthetic record (node1 answers until the event,
// 5 probes lost, node2 after) becomes a picture around the event.
func TestRoundPicture(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := t0.Add(10 * time.Second)
	rec := lab.Record{Interval: 10 * time.Millisecond, Start: t0, End: at.Add(2 * time.Second)}
	mac1 := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for seq := range 1200 {
		sent := t0.Add(time.Duration(seq) * 10 * time.Millisecond)
		rec.SentAt = append(rec.SentAt, sent)
		d := sent.Sub(at)
		switch {
		case d < 0:
			rec.Replies = append(rec.Replies, lab.Reply{Seq: seq, SentAt: sent, At: sent.Add(time.Millisecond), Node: "node1"})
		case d >= 50*time.Millisecond:
			rec.Replies = append(rec.Replies, lab.Reply{Seq: seq, SentAt: sent, At: sent.Add(time.Millisecond), Node: "node2"})
		}
	}
	rec.Sent = len(rec.SentAt)
	for i := range 240 {
		s := lab.NeighborSample{At: t0.Add(time.Duration(i) * 50 * time.Millisecond)}
		if s.At.Before(at) {
			s.MACs = []net.HardwareAddr{mac1}
		}
		rec.Neighbors = append(rec.Neighbors, s)
	}
	rec.Announcements = []lab.Announcement{{At: at.Add(45 * time.Millisecond), Node: "node2"}, {At: t0, Node: "node1"}}
	f, ok := rec.FailoverAfter(at)
	if !ok {
		t.Fatal("no failover in the synthetic record")
	}
	r := result{f: f, takeover: f.FirstTo.Sub(at), left: 20 * time.Millisecond}
	p := roundPicture(rec, at, r, []string{"node1", "node2", "node3"}, "vipd-vrrp", Scenario{Key: "sigterm", Name: "SIGTERM"})

	if p.From != -pictureBefore || p.To != r.takeover+pictureAfter {
		t.Errorf("window %s..%s, want %s..%s", p.From, p.To, -pictureBefore, r.takeover+pictureAfter)
	}
	if p.ARPInterval != 50*time.Millisecond {
		t.Errorf("ARPInterval %s, want the samples' 50ms", p.ARPInterval)
	}
	lost := 0
	for _, pr := range p.Probes {
		if pr.Sent < p.From-200*time.Millisecond || pr.Sent > p.To {
			t.Errorf("probe at %s outside the window", pr.Sent)
		}
		if len(pr.Nodes) == 0 {
			lost++
		}
	}
	if lost != 5 {
		t.Errorf("%d lost probes in the picture, want 5", lost)
	}
	if len(p.Announcements) != 1 || p.Announcements[0] != (timeline.Announcement{At: 45 * time.Millisecond, Node: "node2"}) {
		t.Errorf("announcements %v, want node2's at +45ms only", p.Announcements)
	}
	if len(p.Marks) != 2 || !strings.Contains(p.Marks[0].Label, "node2 answers (+51 ms)") || !strings.Contains(p.Marks[1].Label, "node1's VIP gone") {
		t.Errorf("marks %v", p.Marks)
	}

	// The whole path: an outcome with that round writes one SVG.
	dir := t.TempDir()
	res := &outcome{
		modes:     []Mode{&keepalivedMode{}},
		scenarios: []Scenario{{Key: "sigterm", Name: "SIGTERM"}},
		results:   map[string]map[string][]result{"keepalived": {"SIGTERM": {{f: f, takeover: r.takeover, pic: p}}}},
	}
	var out bytes.Buffer
	if err := writePictures(&out, dir, res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "keepalived-sigterm.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("round 1 of 1 (median interruption)")) || !strings.Contains(out.String(), "keepalived-sigterm.svg (round 1 of 1)") {
		t.Errorf("picture or output does not say which round: %s", out.String())
	}
}
