package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/vrrplab"
)

func TestFalseTakeovers(t *testing.T) {
	m, b := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	adv := func(ms int, src netip.Addr, prio uint8) vrrplab.Advert {
		return vrrplab.Advert{At: at(ms), Src: src, Priority: prio}
	}
	const iv = 10 * time.Millisecond
	tests := []struct {
		name  string
		seen  []vrrplab.Advert
		n     int
		early int
		gap   time.Duration
	}{
		{"none", []vrrplab.Advert{adv(0, m, 150), adv(10, m, 150), adv(20, m, 150)}, 0, 0, 80 * time.Millisecond},
		{"one episode of two adverts, after the master's silence", []vrrplab.Advert{adv(0, m, 150), adv(50, b, 100), adv(55, b, 100), adv(60, m, 150), adv(70, m, 150)}, 1, 0, 60 * time.Millisecond},
		{"one early episode", []vrrplab.Advert{adv(0, m, 150), adv(10, m, 150), adv(30, b, 100), adv(40, m, 150)}, 1, 1, 60 * time.Millisecond},
		{"two episodes", []vrrplab.Advert{adv(10, b, 100), adv(50, b, 100), adv(95, m, 150)}, 2, 1, 95 * time.Millisecond},
		{"priority 0 is a goodbye", []vrrplab.Advert{adv(10, b, 0), adv(20, m, 150), adv(95, m, 150)}, 0, 0, 75 * time.Millisecond},
		{"outside the window", []vrrplab.Advert{adv(-5, b, 100), adv(150, b, 100), adv(50, m, 150)}, 0, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, early, gap := falseTakeovers(tt.seen, m, b, iv, masterDown(iv, 100), at(0), at(100))
			if n != tt.n || early != tt.early || gap != tt.gap {
				t.Errorf("got %d (%d early), %s; want %d (%d), %s", n, early, gap, tt.n, tt.early, tt.gap)
			}
		})
	}
}

func TestRouterImpls(t *testing.T) {
	tests := []struct {
		modes []string
		want  []string
	}{
		{[]string{"vipd", "keepalived"}, []string{"vipd-vrrp", "keepalived"}},
		{[]string{"keepalived", "vipd-gossip", "vipd-vrrp", "vipd"}, []string{"keepalived", "vipd-vrrp"}},
		{[]string{"vipd-lease", "vipd-gossip"}, nil},
	}
	for _, tt := range tests {
		if got := routerImpls(tt.modes); !slices.Equal(got, tt.want) {
			t.Errorf("routerImpls(%v) = %v, want %v", tt.modes, got, tt.want)
		}
	}
}

func TestLoadavg(t *testing.T) {
	tests := []struct {
		line    string
		want    float64
		wantErr bool
	}{
		{"0.43 0.31 0.44 2/612 30726\n", 0.43, false},
		{"12.50 9.01 3.00 1/1 1", 12.5, false},
		{"", 0, true},
		{"x 0.31 0.44", 0, true},
	}
	for _, tt := range tests {
		got, err := parseLoadavg(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseLoadavg(%q) = %v, %v; want %v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
	if s := summariseLoad(nil).String(); s != "n/a" {
		t.Errorf("no samples: %q, want n/a", s)
	}
	if s := summariseLoad([]float64{1, 3, 2}).String(); s != "1.00/2.00/3.00" {
		t.Errorf("1, 3, 2: %q, want 1.00/2.00/3.00", s)
	}
}

func TestReportRouters(t *testing.T) {
	var b strings.Builder
	reportRouters(&b, 1, 10*time.Millisecond, 10*time.Minute, true, nil)
	if b.Len() != 0 {
		t.Fatalf("no results: printed %q", b.String())
	}
	res := []routersResult{
		{name: "vipd-vrrp", takeovers: 0, gap: 14 * time.Millisecond, load: summariseLoad([]float64{0.5, 1.5})},
		{name: "keepalived", takeovers: 2, gap: 91 * time.Millisecond, load: summariseLoad([]float64{0.5, 1.5})},
	}
	res[0].id.cpu = [2]float64{0.9, 0.4}
	res[0].id.mem[0].RSS = 16 << 20
	reportRouters(&b, 1, 10*time.Millisecond, 10*time.Minute, true, res)
	out := b.String()
	for _, want := range []string{"side by side, the same window", "CPU over 10m0s", "load average min/mean/max"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last2 := lines[len(lines)-2:]
	if f := strings.Fields(last2[0]); !slices.Equal(f, []string{"vipd-vrrp", "16.0", "0.0", "0.90", "0.0", "0.0", "0.40", "0", "(0)", "14", "0.50/1.00/1.50"}) {
		t.Errorf("vipd row: %q", f)
	}
	if f := strings.Fields(last2[1]); f[0] != "keepalived" || f[7] != "2" || f[9] != "91" {
		t.Errorf("keepalived row: %q", f)
	}
	b.Reset()
	reportRouters(&b, 1, 10*time.Millisecond, time.Minute, false, res)
	if !strings.Contains(b.String(), "one implementation after the other") {
		t.Errorf("sequential report: %s", b.String())
	}
}
