package lab

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// rec builds a record from "node@ms" replies, seq = ms/10, sent 1 ms before.
func rec(replies ...any) Record {
	t0 := time.Unix(1000, 0)
	var r Record
	r.Interval = 10 * time.Millisecond
	r.Start = t0
	for i := 0; i < len(replies); i += 2 {
		node, ms := replies[i].(string), replies[i+1].(int)
		at := t0.Add(time.Duration(ms) * time.Millisecond)
		r.Replies = append(r.Replies, Reply{Seq: ms / 10, SentAt: at.Add(-time.Millisecond), At: at, Node: node})
		r.End = at
	}
	for s := 0; s <= r.Replies[len(r.Replies)-1].Seq; s++ {
		r.SentAt = append(r.SentAt, t0.Add(time.Duration(s*10-1)*time.Millisecond))
	}
	r.Sent = len(r.SentAt)
	return r
}

func ms(n int) time.Time { return time.Unix(1000, 0).Add(time.Duration(n) * time.Millisecond) }

func TestFailoverAfter(t *testing.T) {
	tests := []struct {
		name string
		r    Record
		at   time.Time
		want Failover
		ok   bool
	}{
		{
			name: "clean handover with gap",
			r:    rec("a", 0, "a", 10, "a", 20, "b", 60, "b", 70),
			at:   ms(25),
			want: Failover{From: "a", To: "b", LastFrom: ms(20), FirstTo: ms(60), Interruption: 40 * time.Millisecond, Lost: 3},
			ok:   true,
		},
		{
			name: "old keeps answering after the event",
			r:    rec("a", 0, "a", 10, "a", 20, "a", 30, "b", 50),
			at:   ms(15),
			want: Failover{From: "a", To: "b", LastFrom: ms(30), FirstTo: ms(50), Interruption: 20 * time.Millisecond, Lost: 1},
			ok:   true,
		},
		{
			name: "overlap: both answer for a while",
			r:    rec("a", 0, "a", 10, "b", 20, "a", 30, "b", 40, "a", 50, "b", 60, "b", 70),
			at:   ms(15),
			want: Failover{From: "a", To: "b", LastFrom: ms(10), FirstTo: ms(20), Interruption: 10 * time.Millisecond, Overlap: 30 * time.Millisecond},
			ok:   true,
		},
		{
			name: "failback long after is not overlap",
			r:    rec("a", 0, "b", 20, "b", 1500, "a", 1510),
			at:   ms(5),
			want: Failover{From: "a", To: "b", LastFrom: ms(0), FirstTo: ms(20), Interruption: 20 * time.Millisecond, Lost: 1},
			ok:   true,
		},
		{
			name: "first takeover: nobody before",
			r:    rec("b", 40, "b", 50),
			at:   ms(5),
			want: Failover{To: "b", FirstTo: ms(40), Interruption: 35 * time.Millisecond, Lost: 3},
			ok:   true,
		},
		{
			name: "no change",
			r:    rec("a", 0, "a", 10, "a", 20),
			at:   ms(5),
			want: Failover{From: "a"},
			ok:   false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.r.FailoverAfter(tc.at)
			if ok != tc.ok || got != tc.want {
				t.Errorf("FailoverAfter = %+v, %v\nwant          %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFailoverDualNeighbourSamples(t *testing.T) {
	r := rec("a", 0, "a", 10, "b", 40, "b", 50, "b", 300)
	ma, mb := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	r.Neighbors = []NeighborSample{
		{At: ms(0), MACs: []net.HardwareAddr{ma, mb}}, // before the event: ignored
		{At: ms(50), MACs: []net.HardwareAddr{ma}},
		{At: ms(100), MACs: []net.HardwareAddr{ma, mb}},
		{At: ms(150), MACs: []net.HardwareAddr{mb, ma}},
		{At: ms(200), MACs: []net.HardwareAddr{mb}},
	}
	f, ok := r.FailoverAfter(ms(20))
	if !ok || f.DualSamples != 2 || f.Overlap != 50*time.Millisecond {
		t.Fatalf("got %+v %v, want 2 dual samples and 50ms overlap", f, ok)
	}
}

func TestOwners(t *testing.T) {
	r := rec("a", 0, "a", 10, "b", 20, "a", 30, "a", 40)
	got := r.Owners()
	want := []Span{
		{Node: "a", First: ms(0), Last: ms(10), FirstSeq: 0, LastSeq: 1, Count: 2},
		{Node: "b", First: ms(20), Last: ms(20), FirstSeq: 2, LastSeq: 2, Count: 1},
		{Node: "a", First: ms(30), Last: ms(40), FirstSeq: 3, LastSeq: 4, Count: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("Owners = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if (Record{}).Owners() != nil {
		t.Error("empty record has owners")
	}
}

func TestPayloads(t *testing.T) {
	seq, ok := parseRequest(requestPayload(42))
	if !ok || seq != 42 {
		t.Fatalf("request round trip: %d %v", seq, ok)
	}
	node, seq, ok := parseReply(replyPayload("node7", requestPayload(9)))
	if !ok || node != "node7" || seq != 9 {
		t.Fatalf("reply round trip: %q %d %v", node, seq, ok)
	}
	for _, bad := range []string{"", "x", "vipd-lab-probe -1", "vipd-lab-probe 1x"} {
		if _, ok := parseRequest([]byte(bad)); ok {
			t.Errorf("parseRequest(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "node1", " 3", "node1 ?", "node1 -2"} {
		if _, _, ok := parseReply([]byte(bad)); ok {
			t.Errorf("parseReply(%q) accepted", bad)
		}
	}
}

func TestAddressConventions(t *testing.T) {
	l := &Lab{}
	if got := l.VIPv4(1).String(); got != "198.51.100.101" {
		t.Errorf("VIPv4(1) = %s", got)
	}
	if got := l.VIPv6(1).String(); got != "2001:db8::101" {
		t.Errorf("VIPv6(1) = %s", got)
	}
	h := newHost(l, "node3", "x", [3]byte{0xaa, 0xbb, 0xcc}, 13)
	if h.IPv4.String() != "198.51.100.13/24" || h.IPv6.String() != "2001:db8::13/64" || h.MAC.String() != "02:aa:bb:cc:00:0d" {
		t.Errorf("host conventions: %s %s %s", h.IPv4, h.IPv6, h.MAC)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Nodes: -1}, "Options.Nodes=-1: must be 1..89"},
		{Options{Nodes: 90}, "Options.Nodes=90: must be 1..89"},
		{Options{Extra: []string{"Api"}}, `Options.Extra "Api": must match`},
		{Options{Extra: []string{"averyveryverylongname"}}, "must match"},
		{Options{Extra: []string{"node1"}}, `"node1": duplicate or reserved`},
		{Options{Extra: []string{"sw"}}, `"sw": duplicate or reserved`},
		{Options{Extra: []string{"observer"}}, "duplicate or reserved"},
		{Options{Extra: []string{"br0"}}, "must match"},
	} {
		_, err := NewStandalone(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want it to contain %q", tc.opts, err, tc.want)
		}
	}
}
