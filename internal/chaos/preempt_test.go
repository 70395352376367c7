package chaos

import (
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

func TestYields(t *testing.T) {
	out := strings.Join([]string{
		`time=2026-01-01T00:00:01.001Z level=INFO msg="vrrp state" node=node1 election=vrrp group=web family=4 vrid=51 state=backup reason=higher-priority-advert`,
		`time=2026-01-01T00:00:01.002Z level=INFO msg=transition node=node1 group=web reason=higher-priority-advert peer=198.51.100.12 vips=[198.51.100.101] from=owner to=backup`,
		`time=2026-01-01T00:00:02.003Z level=INFO msg=transition node=node1 group=web reason="higher-priority-advert (check service: HTTP 503)" peer=198.51.100.12 vips=[198.51.100.101] from=owner to=backup`,
		`time=2026-01-01T00:00:03.000Z level=INFO msg=transition node=node1 group=web reason=preempt vips=[198.51.100.101] from=backup to=owner takeover=1ms`,
		`time=2026-01-01T00:00:04.000Z level=INFO msg=transition node=node1 group=web reason="ineligible: check service failing" vips=[198.51.100.101] from=owner to=backup`,
		`time=2026-01-01T00:00:05.000Z level=INFO msg=transition node=node1 group=web reason=shutdown vips=[198.51.100.101] from=owner to=backup`,
		`garbage reason=higher-priority-advert msg=transition to=backup`,
		``,
	}, "\n")
	got := Yields("node1", out)
	want := []Yield{{"node1", at(1002)}, {"node1", at(2003)}}
	if len(got) != len(want) {
		t.Fatalf("yields %v, want %v", got, want)
	}
	for i := range got {
		if got[i].Node != want[i].Node || !got[i].At.Equal(want[i].At) {
			t.Fatalf("yields %v, want %v", got, want)
		}
	}
}

// TestPreemption: a kernel overlap is a VRRP preemption only when the old
// holder ended it, logged a yield for a higher-priority advert then, and it
// lasted at most one advert interval + preemptSlack.
func TestPreemption(t *testing.T) {
	advert, slack := 100*time.Millisecond, time.Second
	yield1 := []Yield{{"node1", at(1001)}}
	for _, tc := range []struct {
		name   string
		ev     []lab.AddrEvent
		yields []Yield
		want   bool
	}{
		{"preemption", events("+node1@0", "+node2@1000", "-node1@1001"), yield1, true},
		{"same receive time", events("+node1@0", "+node2@1000", "-node1@1000"), yield1, true},
		{"log read late", events("+node1@0", "+node2@1000", "-node1@1001"), []Yield{{"node1", at(1900)}}, true},
		{"one interval + slack", events("+node1@0", "+node2@1000", "-node1@1150"), yield1, true},
		{"longer", events("+node1@0", "+node2@1000", "-node1@1151"), yield1, false},
		{"no yield", events("+node1@0", "+node2@1000", "-node1@1001"), nil, false},
		{"the yield of another node", events("+node1@0", "+node2@1000", "-node1@1001"), []Yield{{"node2", at(1001)}}, false},
		{"a yield long before", events("+node1@0", "+node2@5000", "-node1@5001"), yield1, false},
		{"the new holder gave it up", events("+node1@0", "+node2@1000", "-node2@1001"), yield1, false},
		{"both still hold it", events("+node1@0", "+node2@1000"), yield1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os := KernelOverlaps(lab.HoldingsOf(tc.ev, vip), nil, at(10000))
			if len(os) != 1 {
				t.Fatalf("overlaps %v", os)
			}
			if got := Preemption(os[0], tc.yields, advert, slack); got != tc.want {
				t.Fatalf("Preemption = %v, want %v (%v)", got, tc.want, os[0])
			}
		})
	}
}

// TestAnalyzePreemption: in VRRP mode the preemption's overlap is excused
// (listed, counted in two owners); two MACs answering the client at that
// moment stay a violation; in another mode the same overlap is one too.
func TestAnalyzePreemption(t *testing.T) {
	macs := map[string]string{"02:00:00:00:00:0b": "node1", "02:00:00:00:00:0c": "node2"}
	in := Input{Mode: ModeVRRP, Nodes: 2, Timing: DefaultTiming(ModeVRRP, 2), VIP: vip, Start: t0, End: at(5000), MACs: macs,
		Events: events("+node1@0", "+node2@1000", "-node1@1001"),
		Yields: []Yield{{"node1", at(1002)}},
		Faults: []FaultRecord{{Index: 1, Kind: KindHealth, Target: "node1", At: at(900), EndAt: at(2000)}},
	}
	r := Analyze(in)
	if !r.OK() || len(r.Excused) != 1 || !strings.Contains(r.Excused[0], "VRRP preemption: node1 removed it") || r.Faults[0].TwoOwners != Ms(time.Millisecond) {
		t.Fatalf("violations %v excused %q two owners %v", r.Violations, r.Excused, r.Faults[0].TwoOwners)
	}

	in.Probe.Neighbors = []lab.NeighborSample{{At: at(1001), MACs: []net.HardwareAddr{{2, 0, 0, 0, 0, 0x0b}, {2, 0, 0, 0, 0, 0x0c}}}}
	r = Analyze(in)
	var invs []string
	for _, v := range r.Violations {
		invs = append(invs, v.Invariant)
	}
	if !reflect.DeepEqual(invs, []string{InvClientTwoAnswers}) {
		t.Fatalf("violations %v, want the client's two answers only", r.Violations)
	}

	in.Probe.Neighbors = nil
	in.Mode, in.Timing = ModeGossip, DefaultTiming(ModeGossip, 2)
	if r := Analyze(in); len(r.Violations) != 1 || r.Violations[0].Invariant != InvKernelTwoOwners {
		t.Fatalf("gossip: violations %v", r.Violations)
	}
}
