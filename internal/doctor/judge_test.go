package doctor

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLineFormatAndExitCode(t *testing.T) {
	l := Line{Warn, "sysctl eth0 arp_ignore", "2", "set it to 1"}
	if got, want := l.String(), "WARN  sysctl eth0 arp_ignore: 2 — set it to 1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Line{OK, "http", "not running", ""}).String(), "OK    http: not running"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Line{Fail, "x", "y", "z"}).String(), "FAIL  x: y — z"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		vs   []Verdict
		want int
	}{{nil, 0}, {[]Verdict{OK, OK}, 0}, {[]Verdict{OK, Warn}, 1}, {[]Verdict{Fail, Warn, OK}, 2}} {
		var ls []Line
		for _, v := range tc.vs {
			ls = append(ls, Line{Verdict: v})
		}
		if got := ExitCode(ls); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.vs, got, tc.want)
		}
	}
}

func TestJudgeArpIgnore(t *testing.T) {
	out := []netip.Addr{netip.MustParseAddr("203.0.113.10")}
	for _, tc := range []struct {
		all, ifc int
		outside  []netip.Addr
		want     Verdict
		says     string
	}{
		{0, 0, nil, OK, "every local address"},
		{0, 0, out, OK, "every local address"},
		{1, 0, nil, OK, "receiving interface"},
		{0, 1, out, OK, "receiving interface"}, // 1 does not care about subnets
		{0, 2, nil, Warn, "another subnet"},
		{2, 0, nil, Warn, "another subnet"}, // all counts as much as the interface
		{2, 1, out, Fail, "203.0.113.10"},   // max(2,1) = 2, VIP outside
		{0, 3, nil, OK, "scope global"},
		{0, 5, nil, Warn, "reserved"},
		{8, 0, nil, Fail, "no ARP request"},
		{1, 8, nil, Fail, "no ARP request"},
		{0, 9, nil, Warn, "reserved"},
	} {
		l := judgeArpIgnore(sysctlValues{Key: "arp_ignore", Iface: "eth0", All: tc.all, IfcV: tc.ifc}, tc.outside)
		if l.Verdict != tc.want || !strings.Contains(l.Finding, tc.says) {
			t.Errorf("all=%d eth0=%d outside=%v: %s; want %s saying %q", tc.all, tc.ifc, tc.outside, l, tc.want, tc.says)
		}
		if l.Verdict != OK && !strings.Contains(l.Action, "net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1") {
			t.Errorf("all=%d eth0=%d: action %q does not name both keys", tc.all, tc.ifc, l.Action)
		}
	}
}

func TestJudgeArpAnnounceNotifyAlwaysOK(t *testing.T) {
	for v := range 3 {
		s := sysctlValues{Key: "k", Iface: "eth0", All: v, IfcV: 2 - v}
		if l := judgeArpAnnounce(s); l.Verdict != OK {
			t.Errorf("arp_announce %d: %s", v, l)
		}
		if l := judgeArpNotify(s); l.Verdict != OK {
			t.Errorf("arp_notify %d: %s", v, l)
		}
	}
}

func TestJudgeRPFilter(t *testing.T) {
	asym := []string{"default route via eth1"}
	for _, tc := range []struct {
		all, ifc int
		asym     []string
		want     Verdict
	}{
		{0, 0, asym, OK},
		{0, 2, asym, OK},
		{1, 0, nil, OK},
		{1, 0, asym, Warn},
		{0, 1, asym, Warn},
		{1, 2, asym, OK}, // max: loose wins over strict
		{0, 3, nil, Warn},
	} {
		l := judgeRPFilter(sysctlValues{Key: "rp_filter", Iface: "eth0", All: tc.all, IfcV: tc.ifc}, tc.asym)
		if l.Verdict != tc.want {
			t.Errorf("all=%d eth0=%d asym=%v: %s; want %s", tc.all, tc.ifc, tc.asym, l, tc.want)
		}
	}
}

func TestJudgeIPv6(t *testing.T) {
	if l := judgeDisableIPv6("eth0", 1); l.Verdict != Fail {
		t.Errorf("disable_ipv6=1: %s", l)
	}
	if l := judgeDisableIPv6("eth0", 0); l.Verdict != OK {
		t.Errorf("disable_ipv6=0: %s", l)
	}
	for _, tc := range []struct {
		all, ifc int
		want     Verdict
	}{{0, 0, OK}, {0, 1, OK}, {1, 1, OK}, {2, 1, Warn}, {0, 2, Warn}} {
		if l := judgeAcceptDAD("eth0", tc.all, tc.ifc); l.Verdict != tc.want {
			t.Errorf("accept_dad all=%d eth0=%d: %s; want %s", tc.all, tc.ifc, l, tc.want)
		}
	}
}

func TestCapabilities(t *testing.T) {
	status := func(eff, prm string) []byte {
		return []byte("Name:\tvipd\nCapInh:\t0000000000000000\nCapPrm:\t" + prm + "\nCapEff:\t" + eff + "\nCapBnd:\t000001ffffffffff\n")
	}
	for _, tc := range []struct {
		name, eff, prm string
		want           Verdict
		says           string
	}{
		{"root", "000001ffffffffff", "000001ffffffffff", OK, "effective"},
		{"exactly the two", "0000000000003000", "0000000000003000", OK, "effective"},
		{"no NET_RAW", "0000000000001000", "0000000000001000", Fail, "CAP_NET_RAW missing"},
		{"unprivileged", "0000000000000000", "0000000000000000", Fail, "CAP_NET_ADMIN and CAP_NET_RAW missing"},
		{"permitted only", "0000000000000000", "0000000000003000", Fail, "permitted but not effective"},
	} {
		eff, prm, err := capSets(status(tc.eff, tc.prm))
		if err != nil {
			t.Fatal(err)
		}
		l := judgeCapabilities(eff, prm)
		if l.Verdict != tc.want || !strings.Contains(l.Finding, tc.says) {
			t.Errorf("%s: %s; want %s saying %q", tc.name, l, tc.want, tc.says)
		}
		if l.Verdict == Fail && (!strings.Contains(l.Action, "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW") || !strings.Contains(l.Action, "securityContext")) {
			t.Errorf("%s: action %q names neither systemd nor a pod", tc.name, l.Action)
		}
	}
	if _, _, err := capSets([]byte("CapEff:\tzz\nCapPrm:\t0\n")); err == nil {
		t.Error("a bad hex set was accepted")
	}
	if _, _, err := capSets([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without capability lines was accepted")
	}
}

func TestSkew(t *testing.T) {
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	// resp is one answer: the request left at local time sent (offset from
	// base), took rtt, and the server's clock, off by skew, was read at the
	// middle and truncated to the second.
	resp := func(sent, rtt, skew time.Duration) KubeResponse {
		s := base.Add(sent)
		server := s.Add(rtt / 2).Add(skew)
		return KubeResponse{Date: server.Truncate(time.Second), Sent: s, Received: s.Add(rtt)}
	}
	lease := 5 * time.Second
	for _, tc := range []struct {
		name string
		rs   []KubeResponse
		want Verdict
	}{
		{"in sync", []KubeResponse{resp(100*time.Millisecond, 10*time.Millisecond, 0), resp(400*time.Millisecond, 10*time.Millisecond, 0), resp(900*time.Millisecond, 10*time.Millisecond, 0)}, OK},
		// 1.5 s is not provably above 1 s from one sample at 1 s
		// resolution, but three samples spread over the second narrow it.
		{"1.5s behind", []KubeResponse{resp(0, 5*time.Millisecond, 1500*time.Millisecond), resp(300*time.Millisecond, 5*time.Millisecond, 1500*time.Millisecond), resp(600*time.Millisecond, 5*time.Millisecond, 1500*time.Millisecond)}, Warn},
		{"2.5s ahead", []KubeResponse{resp(0, 5*time.Millisecond, -2500*time.Millisecond)}, Warn},
		{"3s off, half of 5s exceeded", []KubeResponse{resp(200*time.Millisecond, 5*time.Millisecond, 3*time.Second), resp(700*time.Millisecond, 5*time.Millisecond, 3*time.Second)}, Fail},
		{"3s ahead", []KubeResponse{resp(0, 5*time.Millisecond, -3500*time.Millisecond)}, Fail},
		// A slow answer widens the bounds: never a false alarm.
		{"slow answer", []KubeResponse{resp(0, 1500*time.Millisecond, 0)}, OK},
	} {
		lo, hi, ok := skewBounds(tc.rs)
		if !ok {
			t.Fatalf("%s: no bounds from %+v", tc.name, tc.rs)
		}
		l := judgeSkew(lo, hi, lease)
		if l.Verdict != tc.want {
			t.Errorf("%s: bounds [%s, %s]: %s; want %s", tc.name, lo, hi, l, tc.want)
		}
	}
	if _, _, ok := skewBounds([]KubeResponse{{Sent: base, Received: base}}); ok {
		t.Error("bounds without a Date header")
	}
	// Contradicting answers (the clock stepped between them).
	if _, _, ok := skewBounds([]KubeResponse{resp(0, time.Millisecond, 0), resp(500*time.Millisecond, time.Millisecond, 10*time.Second)}); ok {
		t.Error("contradicting answers gave bounds")
	}
	// The direction is said in words.
	lo, hi, _ := skewBounds([]KubeResponse{resp(0, 5*time.Millisecond, 2*time.Second)})
	if l := judgeSkew(lo, hi, lease); !strings.Contains(l.Finding, "behind") {
		t.Errorf("server ahead of us: %s", l)
	}
}

func TestJudgeAdvert(t *testing.T) {
	ours := []netip.Addr{netip.MustParseAddr("198.51.100.100")}
	other := []netip.Addr{netip.MustParseAddr("198.51.100.200")}
	peer := netip.MustParseAddr("198.51.100.12")
	stranger := netip.MustParseAddr("198.51.100.50")
	multicast := router{Group: "web", Iface: "eth0", Family: 4, VRID: 51, VIPs: ours}
	unicast := multicast
	unicast.Peers = []netip.Addr{peer}
	for _, tc := range []struct {
		name string
		rt   router
		h    Heard
		want Verdict
	}{
		{"multicast, our VIPs: another node", multicast, Heard{Src: stranger, VRID: 51, Priority: 100, VIPs: ours}, OK},
		{"multicast, other VIPs: collision", multicast, Heard{Src: stranger, VRID: 51, Priority: 100, VIPs: other}, Fail},
		{"multicast, our VIPs and more: collision", multicast, Heard{Src: stranger, VRID: 51, VIPs: append(append([]netip.Addr{}, ours...), other...)}, Fail},
		{"unicast peer, our VIPs", unicast, Heard{Src: peer, VRID: 51, VIPs: ours}, OK},
		{"unicast peer, other VIPs: config drift", unicast, Heard{Src: peer, VRID: 51, VIPs: other}, Warn},
		{"unicast stranger, our VIPs: missing peer", unicast, Heard{Src: stranger, VRID: 51, VIPs: ours}, Warn},
		{"unicast stranger, other VIPs: collision", unicast, Heard{Src: stranger, VRID: 51, VIPs: other}, Fail},
	} {
		l := judgeAdvert(tc.rt, tc.h)
		if l.Verdict != tc.want {
			t.Errorf("%s: %s; want %s", tc.name, l, tc.want)
		}
		if !strings.Contains(l.Finding, tc.h.Src.String()) {
			t.Errorf("%s: the advertiser is not named: %s", tc.name, l)
		}
	}
	// Order does not matter.
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	if !sameSet([]netip.Addr{a, b}, []netip.Addr{b, a}) || sameSet([]netip.Addr{a}, []netip.Addr{a, b}) {
		t.Error("sameSet")
	}
}

func TestMergeHeard(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.12")
	v := []netip.Addr{netip.MustParseAddr("198.51.100.100")}
	w := []netip.Addr{netip.MustParseAddr("198.51.100.101")}
	got := mergeHeard([]Heard{
		{Src: a, VRID: 1, Priority: 100, VIPs: v, Count: 1},
		{Src: a, VRID: 1, Priority: 0, VIPs: v, Count: 1},
		{Src: a, VRID: 2, Priority: 100, VIPs: v, Count: 1},
		{Src: a, VRID: 1, Priority: 100, VIPs: w, Count: 1},
	})
	if len(got) != 3 || got[0].Count != 2 || got[0].Priority != 0 {
		t.Errorf("mergeHeard = %+v", got)
	}
}

func TestHealthzURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9610": "http://127.0.0.1:9610/healthz",
		"0.0.0.0:9610":   "http://127.0.0.1:9610/healthz",
		":9610":          "http://127.0.0.1:9610/healthz",
		"[::]:9610":      "http://[::1]:9610/healthz",
		"[::1]:9610":     "http://[::1]:9610/healthz",
	} {
		if got, err := healthzURL(in); err != nil || got != want {
			t.Errorf("healthzURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := healthzURL("nonsense"); err == nil {
		t.Error("healthzURL accepted a listen without port")
	}
}
