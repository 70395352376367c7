package chaos

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

func TestPlanSameSeedSameSequence(t *testing.T) {
	o := PlanOptions{Seed: 42, Faults: 50, Nodes: 3, Kinds: Kinds(ModeLease), HoldMin: time.Second, HoldMax: 3 * time.Second}
	a, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Plan(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different sequences")
	}
	o.Seed = 43
	c, _ := Plan(o)
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same sequence")
	}
}

// The first steps of seed 1 are pinned: a change of the generator would
// silently make published replay commands mean something else.
func TestPlanPinned(t *testing.T) {
	steps, err := Plan(PlanOptions{Seed: 1, Faults: 4, Nodes: 3, Kinds: Kinds(ModeVRRP), HoldMin: time.Second, HoldMax: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.String())
	}
	want := []string{"sigterm node2", "health owner for 2.1s", "restart owner", "linkdown node3 for 2.8s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("seed 1: %q, want %q", got, want)
	}
}

func TestPlanCoversKindsEvenly(t *testing.T) {
	for _, mode := range Modes {
		ks := Kinds(mode)
		steps, err := Plan(PlanOptions{Seed: 7, Faults: 3 * len(ks), Nodes: 3, Kinds: ks, HoldMin: time.Second, HoldMax: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		count := map[Kind]int{}
		owner := 0
		for _, s := range steps {
			count[s.Kind]++
			if s.Node == TargetOwner {
				owner++
			}
			if s.Node < TargetOwner || s.Node >= 3 {
				t.Fatalf("%s: node %d out of range", mode, s.Node)
			}
			if s.Kind.hasHold() != (s.Hold > 0) || s.Hold > 2*time.Second || (s.Hold > 0 && s.Hold < time.Second) || s.Hold%(100*time.Millisecond) != 0 {
				t.Fatalf("%s: %v: hold %s", mode, s.Kind, s.Hold)
			}
			if s.Kind == KindAPIServer && s.Node != TargetOwner {
				t.Fatalf("api server fault aimed at node %d", s.Node)
			}
		}
		for _, k := range ks {
			if count[k] != 3 {
				t.Errorf("%s: %s dealt %d times in 3 decks, want 3", mode, k, count[k])
			}
		}
		if owner == 0 || owner == len(steps) {
			t.Errorf("%s: %d of %d aimed at the owner", mode, owner, len(steps))
		}
	}
	if Kinds(ModeVRRP)[len(Kinds(ModeVRRP))-1] == KindAPIServer || Kinds(ModeLease)[len(Kinds(ModeLease))-1] != KindAPIServer {
		t.Error("the API server fault is Lease mode's only")
	}
}

func TestPlanBadInput(t *testing.T) {
	for name, o := range map[string]PlanOptions{
		"one node":  {Faults: 1, Nodes: 1, Kinds: Kinds(ModeVRRP), HoldMin: 1, HoldMax: 1},
		"negative":  {Faults: -1, Nodes: 3, Kinds: Kinds(ModeVRRP), HoldMin: 1, HoldMax: 1},
		"no kinds":  {Faults: 1, Nodes: 3, HoldMin: 1, HoldMax: 1},
		"bad holds": {Faults: 1, Nodes: 3, Kinds: Kinds(ModeVRRP), HoldMin: 2, HoldMax: 1},
	} {
		if _, err := Plan(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseMode("raft"); err == nil || !strings.Contains(err.Error(), "vrrp, lease, gossip") {
		t.Errorf("ParseMode(raft): %v", err)
	}
}

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		mode                string
		takeover, fault     time.Duration
		repairKill, deadMan time.Duration
	}{
		// 3×100ms + (256-174)×100ms/256 = 332.03125ms.
		{ModeVRRP, 332031250, 1332031250, 3332031250, 4 * time.Second},
		// 4s + 2×500ms + (254-174)ms.
		{ModeLease, 5080 * time.Millisecond, 6080 * time.Millisecond, 8080 * time.Millisecond, 3 * time.Second},
		// 100ms + 50ms + 600ms; rejoin 1s on repairs.
		{ModeGossip, 750 * time.Millisecond, 1750 * time.Millisecond, 4750 * time.Millisecond, 4 * time.Second},
	} {
		tm := DefaultTiming(tc.mode, 3)
		if got := tm.Takeover(); got != tc.takeover {
			t.Errorf("%s takeover %s, want %s", tc.mode, got, tc.takeover)
		}
		if got := tm.FaultBound(KindSIGKILL); got != tc.fault {
			t.Errorf("%s fault bound %s, want %s", tc.mode, got, tc.fault)
		}
		if got := tm.RepairBound(KindSIGKILL); got != tc.repairKill {
			t.Errorf("%s repair bound after SIGKILL %s, want %s", tc.mode, got, tc.repairKill)
		}
		if got := tm.DeadMan(); got != tc.deadMan {
			t.Errorf("%s dead-man %s, want %s", tc.mode, got, tc.deadMan)
		}
		if tm.FaultBound(KindHealth) != tm.FaultBound(KindSIGKILL)+300*time.Millisecond {
			t.Errorf("%s: health bound %s does not add the check's 2×100ms+100ms", tc.mode, tm.FaultBound(KindHealth))
		}
		lo, hi := tm.HoldRange()
		if lo != time.Second || hi < 3*time.Second || (tc.mode == ModeLease && hi <= tm.FaultBound(KindSIGSTOP)) {
			t.Errorf("%s hold range %s..%s", tc.mode, lo, hi)
		}
	}
	if b := DefaultTiming(ModeLease, 3).FaultBound(KindAPIServer); b != 3500*time.Millisecond {
		t.Errorf("api server bound %s, want renewDeadline 2s + retry 500ms + slack 1s", b)
	}
}

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var d []time.Duration
		for _, n := range ns {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		in   []time.Duration
		want Stats
	}{
		{nil, Stats{}},
		{ms(5), Stats{1, Ms(5 * time.Millisecond), Ms(5 * time.Millisecond), Ms(5 * time.Millisecond), Ms(5 * time.Millisecond)}},
		{ms(40, 10, 30, 20), Stats{4, Ms(10 * time.Millisecond), Ms(20 * time.Millisecond), Ms(40 * time.Millisecond), Ms(40 * time.Millisecond)}},
		// 20 values 1..20: nearest-rank p95 is the 19th.
		{ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1),
			Stats{20, Ms(1 * time.Millisecond), Ms(10 * time.Millisecond), Ms(19 * time.Millisecond), Ms(20 * time.Millisecond)}},
	} {
		if got := Summarize(tc.in); got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	b, _ := json.Marshal(Stats{N: 1, Min: Ms(1500 * time.Microsecond)})
	if !strings.Contains(string(b), `"minMs":1.5`) {
		t.Errorf("JSON %s: want minMs 1.5", b)
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var vip = netip.MustParseAddr("198.51.100.101")

// events builds an address event stream in the kernel's order: "+node1@100"
// adds the VIP on node1 (read at 100ms), "-node1@120" removes it.
func events(spec ...string) []lab.AddrEvent {
	var out []lab.AddrEvent
	for i, s := range spec {
		host, ms, _ := strings.Cut(s[1:], "@")
		var n int
		for _, c := range ms {
			n = n*10 + int(c-'0')
		}
		out = append(out, lab.AddrEvent{Seq: uint64(i + 1), At: at(n), Host: host, Addr: netip.PrefixFrom(vip, 32), Added: s[0] == '+'})
	}
	return out
}

func TestKernelOverlaps(t *testing.T) {
	partition := Excuse{From: at(1000), Until: at(5000), Why: "partition of node1"}
	deadman := Excuse{Node: "node1", From: at(1000), Until: at(4000), Why: "dead-man's switch of SIGKILLed node1"}
	for _, tc := range []struct {
		name    string
		ev      []lab.AddrEvent
		excuses []Excuse
		want    []string // Excuse per overlap ("" a violation)
	}{
		{"clean handover", events("+node1@0", "-node1@1000", "+node2@1000"), nil, nil},
		// Same receive time, but the kernel's order says node2 added first.
		{"overlap by order alone", events("+node1@0", "+node2@1000", "-node1@1000"), nil, []string{""}},
		{"dead node within its lifetime", events("+node1@0", "+node2@1400", "-node1@3500"), []Excuse{deadman}, []string{"dead-man's switch of SIGKILLed node1"}},
		{"dead node past its lifetime", events("+node1@0", "+node2@1400", "-node1@4500"), []Excuse{deadman}, []string{""}},
		{"the excuse is node1's, not node3's", events("+node3@0", "+node2@1400", "-node3@2000"), []Excuse{deadman}, []string{""}},
		{"island within the partition", events("+node1@0", "+node2@1400", "-node2@4800"), []Excuse{partition}, []string{"partition of node1"}},
		{"still two at the end", events("+node1@0", "+node2@1400"), []Excuse{partition}, []string{""}},
		{"before the partition", events("+node1@0", "+node2@900", "-node1@1100"), []Excuse{partition}, []string{""}},
		{"a refresh is no new holding", events("+node1@0", "+node1@500", "-node1@1000", "+node2@1000"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os := KernelOverlaps(lab.HoldingsOf(tc.ev, vip), tc.excuses, at(10000))
			var got []string
			for _, o := range os {
				got = append(got, o.Excuse)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("excuses %q, want %q (%v)", got, tc.want, os)
			}
		})
	}
}

func TestDualAnswers(t *testing.T) {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	macs := map[string]string{mac(11).String(): "node1", mac(12).String(): "node2", mac(13).String(): "node3"}
	deadman := Excuse{Node: "node1", From: at(1000), Until: at(4000), Why: "dead node1"}
	partition := Excuse{From: at(1000), Until: at(5000), Why: "partition"}
	for _, tc := range []struct {
		name    string
		s       lab.NeighborSample
		excuses []Excuse
		want    []string // excuse per dual sample
	}{
		{"one MAC", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(11), mac(11)}}, nil, nil},
		{"two MACs", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(11), mac(12)}}, nil, []string{""}},
		{"two MACs, one dead", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(11), mac(12)}}, []Excuse{deadman}, []string{"dead node1"}},
		{"three MACs, one dead", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(11), mac(12), mac(13)}}, []Excuse{deadman}, []string{""}},
		{"dead too long", lab.NeighborSample{At: at(4100), MACs: []net.HardwareAddr{mac(11), mac(12)}}, []Excuse{deadman}, []string{""}},
		{"partition", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(12), mac(13)}}, []Excuse{partition}, []string{"partition"}},
		{"a stranger", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(99), mac(12)}}, []Excuse{partition}, []string{"partition"}},
		{"a stranger and a live node", lab.NeighborSample{At: at(2000), MACs: []net.HardwareAddr{mac(99), mac(12)}}, nil, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range DualAnswers([]lab.NeighborSample{tc.s}, macs, tc.excuses) {
				got = append(got, d.Excuse)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func replies(node string, fromMs, toMs int) []lab.Reply {
	var rs []lab.Reply
	for ms := fromMs; ms <= toMs; ms += 10 {
		rs = append(rs, lab.Reply{Seq: ms / 10, SentAt: at(ms), At: at(ms + 1), Node: node})
	}
	return rs
}

func TestSettled(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	up := func(owner string) map[string]NodeView {
		m := map[string]NodeView{}
		for _, n := range nodes {
			m[n] = NodeView{Reachable: true, Owner: n == owner}
		}
		return m
	}
	latest := replies("node2", 900, 1000)
	now := at(1010)
	for _, tc := range []struct {
		name       string
		s          Snapshot
		ignore     map[string]bool
		want       string
		expectNone bool
		ok         bool
		inv        string
	}{
		{"settled", Snapshot{now, []string{"node2"}, up("node2"), latest}, nil, "", false, true, ""},
		{"settled on the wanted node", Snapshot{now, []string{"node2"}, up("node2"), latest}, nil, "node2", false, true, ""},
		{"not yet back on node1", Snapshot{now, []string{"node2"}, up("node2"), latest}, nil, "node1", false, false, InvSingleOwner},
		{"two holders", Snapshot{now, []string{"node1", "node2"}, up("node2"), latest}, nil, "", false, false, InvSingleOwner},
		{"dead node1 ignored", Snapshot{now, []string{"node1", "node2"}, map[string]NodeView{"node2": {true, true, 0}, "node3": {Reachable: true}}, latest},
			map[string]bool{"node1": true}, "", false, true, ""},
		{"bound but not owner", Snapshot{now, []string{"node2"}, up(""), latest}, nil, "", false, false, InvOrphan},
		{"owner but not bound", Snapshot{now, nil, up("node2"), latest}, nil, "", false, false, InvOrphan},
		{"status unreachable", Snapshot{now, []string{"node2"}, map[string]NodeView{"node2": {true, true, 0}}, latest}, nil, "", false, false, InvSingleOwner},
		{"client still on node1", Snapshot{now, []string{"node2"}, up("node2"), replies("node1", 900, 1000)}, nil, "", false, false, InvSingleOwner},
		{"client silent", Snapshot{at(1500), []string{"node2"}, up("node2"), latest}, nil, "", false, false, InvSingleOwner},
		{"none, as expected", Snapshot{now, nil, up(""), nil}, nil, "", true, true, ""},
		{"none expected, one holds", Snapshot{now, []string{"node1"}, up("node1"), latest}, nil, "", true, false, InvSingleOwner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, inv, why := Settled(tc.s, nodes, tc.ignore, tc.want, tc.expectNone)
			if ok != tc.ok || inv != tc.inv {
				t.Fatalf("ok %v inv %q (%s), want %v %q", ok, inv, why, tc.ok, tc.inv)
			}
		})
	}
}

func TestInterruption(t *testing.T) {
	rec := lab.Record{}
	for ms := 0; ms < 3000; ms += 10 {
		rec.SentAt = append(rec.SentAt, at(ms))
	}
	rec.Replies = append(replies("node1", 0, 990), replies("node2", 1500, 2990)...)
	gap, lost := Interruption(rec, at(1000), at(2500))
	if gap != 510*time.Millisecond || lost != 50 {
		t.Fatalf("gap %s lost %d, want 510ms and 50 (requests at 1000..1490ms)", gap, lost)
	}
	gap, lost = Interruption(rec, at(2000), at(2500))
	if gap != 10*time.Millisecond || lost != 0 {
		t.Fatalf("steady: gap %s lost %d", gap, lost)
	}
}

func TestAnalyzeAndReport(t *testing.T) {
	rec := lab.Record{}
	for ms := 0; ms < 10000; ms += 10 {
		rec.SentAt = append(rec.SentAt, at(ms))
	}
	rec.Replies = append(replies("node1", 0, 1990), replies("node2", 2400, 9990)...)
	macs := map[string]string{"02:00:00:00:00:0b": "node1", "02:00:00:00:00:0c": "node2"}
	rec.Neighbors = []lab.NeighborSample{{At: at(3000), MACs: []net.HardwareAddr{{2, 0, 0, 0, 0, 0x0b}, {2, 0, 0, 0, 0, 0x0c}}}}
	in := Input{Mode: ModeVRRP, Nodes: 3, Seed: 9, Planned: 2, Timing: DefaultTiming(ModeVRRP, 3), VIP: vip,
		Start: t0, End: at(10000), MACs: macs, Probe: rec,
		// node1 killed at 2000 (excused until 6000); at 7000 node3 adds the
		// VIP beside node2: a violation in fault 2's window.
		Events:  events("+node1@0", "+node2@2400", "-node1@4000", "+node3@7000", "-node3@7005"),
		Excuses: []Excuse{{Node: "node1", From: at(2000), Until: at(6000), Why: "dead node1"}},
		Faults: []FaultRecord{
			{Index: 1, Kind: KindSIGKILL, Target: "node1", At: at(2000), EndAt: at(3000)},
			{Index: 2, Kind: KindHealth, Target: "node3", At: at(6500), EndAt: at(8000),
				Violations: []Violation{{Invariant: InvSingleOwner, At: at(7500), Detail: "late"}}},
		},
	}
	r := Analyze(in)
	if len(r.Violations) != 2 || r.Violations[0].Invariant != InvKernelTwoOwners || r.Violations[0].Fault != 2 || r.Violations[1].Detail != "late" {
		t.Fatalf("violations %v", r.Violations)
	}
	if r.OK() {
		t.Fatal("OK with violations")
	}
	if f := r.Faults[0]; f.Interruption != Ms(410*time.Millisecond) || f.Lost != 40 || f.DualARP != 1 || f.TwoOwners != Ms(1600*time.Millisecond) || len(f.Violations) != 0 {
		t.Fatalf("fault 1: %+v", f)
	}
	if len(r.Kinds) != 2 || r.Kinds[0].Kind != KindSIGKILL || r.Kinds[1].Violations != 2 || r.Total.Count != 2 || r.Total.Violations != 2 {
		t.Fatalf("kinds %+v total %+v", r.Kinds, r.Total)
	}
	if len(r.Excused) != 2 {
		t.Fatalf("excused %q", r.Excused)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mode vrrp, 3 nodes, 2 of 2 faults in 10s, seed 9",
		"replay: vipd chaos --mode vrrp --nodes 3 --faults 2 --seed 9",
		"sigkill  1      410ms / 410ms / 410ms / 410ms",
		"VIOLATIONS: 2",
		"fault 2 (health): two-owners-kernel: node3 added it (event #4) while node2 held it",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Kinds []struct {
			Kind         string `json:"kind"`
			Interruption struct {
				Max float64 `json:"maxMs"`
			} `json:"interruption"`
		} `json:"kinds"`
		Violations []Violation `json:"violations"`
		Faults     []struct {
			Violations []Violation `json:"violations"`
		} `json:"faults"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Kinds[0].Kind != "sigkill" || back.Kinds[0].Interruption.Max != 410 || len(back.Violations) != 2 || len(back.Faults[1].Violations) != 2 {
		t.Fatalf("JSON round trip: %+v\n%s", back, js.String())
	}

	clean := Analyze(Input{Mode: ModeGossip, Nodes: 3, Timing: DefaultTiming(ModeGossip, 3), VIP: vip, Start: t0, End: at(1000)})
	text.Reset()
	_ = clean.WriteText(&text)
	if !clean.OK() || !strings.Contains(text.String(), "violations: none") {
		t.Fatalf("clean report:\n%s", text.String())
	}
}
