package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/node"
	"github.com/vipd/vipd/internal/testutil"
)

// TestLabVerifyStrayHost: owner verification with a real vipd. A stray
// host (a lab node without vipd) adds the owner's VIPs with `ip addr add`
// and sends nothing: no announcement for the conflict watch to see. Only
// the owner's probes find it: /status names both MACs, /readyz is 503,
// the metric counts it, and the re-announcement brings a client whose
// neighbour entry points at the stray back to the owner. When the stray
// goes, the owner is ready again.
func TestLabVerifyStrayHost(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	owner, stray := l.Nodes[0], l.Nodes[1]
	v4, v6 := l.VIPv4(87), l.VIPv6(87)
	c := lab.StaticConfig(owner.Name, v4, v6)
	interval := time.Second
	c.Verify = config.Verify{Interval: &interval}
	p, err := l.StartVipdConfig(owner, bin, c)
	if err != nil {
		t.Fatal(err)
	}
	vipStatus := func(st node.Status, vip netip.Addr) node.VIPStatus {
		for _, g := range st.Groups {
			for _, v := range g.VIPs {
				if v.Address == vip.String() {
					return v
				}
			}
		}
		return node.VIPStatus{}
	}
	verified := func(want string) func() bool {
		return func() bool {
			st, _ := getStatus(t, owner)
			for _, vip := range []netip.Addr{v4, v6} {
				if v := vipStatus(st, vip).Verify; v == nil || v.Result != want {
					return false
				}
			}
			return true
		}
	}
	testutil.WaitFor(t, "both VIPs verified ok", 15*time.Second, verified(node.VerifyOK))
	if _, code := getStatus(t, owner); code != 200 {
		t.Fatalf("/readyz %d before the stray", code)
	}

	// The stray plants the VIPs, and a client's neighbour entries point
	// at it (as after a stray gratuitous ARP the owner did not hear).
	for _, vip := range []netip.Addr{v4, v6} {
		if err := stray.AddAddress(netip.PrefixFrom(vip, vip.BitLen())); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Client.Command(context.Background(), "ip", "neigh", "replace", vip.String(), "lladdr", stray.MAC.String(),
			"dev", l.Client.Link, "nud", "stale").CombinedOutput(); err != nil {
			t.Fatalf("poisoning the client's entry for %s: %v\n%s", vip, err, out)
		}
	}
	found := time.Now()
	testutil.WaitFor(t, "split found for both VIPs", 15*time.Second, verified(node.VerifySplit))
	t.Logf("split found %v after the stray planted the VIPs", time.Since(found).Round(time.Millisecond))
	st, code := getStatus(t, owner)
	if code != 503 || !strings.Contains(st.NotReady, "verify: web "+v4.String()+": split") {
		t.Fatalf("/readyz %d, notReady %q", code, st.NotReady)
	}
	for _, vip := range []netip.Addr{v4, v6} {
		v := vipStatus(st, vip).Verify
		if !slices.Equal(v.MACs, []string{owner.MAC.String(), stray.MAC.String()}) || !v.Wrong || v.Findings[node.VerifySplit] == 0 {
			t.Fatalf("%s: verify %+v, want the owner's %s and the stray's %s", vip, v, owner.MAC, stray.MAC)
		}
	}
	m, _ := scrapeMetrics(t, owner)
	for _, vip := range []netip.Addr{v4, v6} {
		if n := m[fmt.Sprintf(`vipd_verify_findings_total{group="web",result="split",vip="%s"}`, vip)]; n < 1 {
			t.Errorf("split findings for %s = %v", vip, n)
		}
		if n := m[fmt.Sprintf(`vipd_verify_answering_macs{group="web",vip="%s"}`, vip)]; n != 2 {
			t.Errorf("answering MACs for %s = %v, want 2", vip, n)
		}
	}
	if m["vipd_verify_probes_total"] < 4 {
		t.Errorf("probes %v", m["vipd_verify_probes_total"])
	}
	// The reaction: the owner re-announces, and the client's entries
	// return to it.
	for _, vip := range []netip.Addr{v4, v6} {
		testutil.WaitFor(t, "client back on the owner's MAC for "+vip.String(), 10*time.Second, func() bool {
			return clientNeighMAC(l, vip) == owner.MAC.String()
		})
	}
	if !strings.Contains(p.Output(), "VIP answered wrongly on the wire") || !strings.Contains(p.Output(), "re-announcing a VIP after a failed verification") {
		t.Fatalf("finding or reaction not logged:\n%s", p.Output())
	}

	// The stray goes: verified ok, ready again.
	for _, vip := range []netip.Addr{v4, v6} {
		if err := stray.DelAddress(netip.PrefixFrom(vip, vip.BitLen())); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "both VIPs verified ok again", 15*time.Second, verified(node.VerifyOK))
	testutil.WaitFor(t, "ready again", 5*time.Second, func() bool { _, code := getStatus(t, owner); return code == 200 })
	if n := strings.Count(p.Output(), "VIP answered wrongly on the wire"); n > 4 {
		t.Errorf("%d finding log lines for two VIPs over a few seconds: not rate-limited\n%s", n, p.Output())
	}
}

// clientNeighMAC is the lab client's neighbour entry for vip ("" if none).
func clientNeighMAC(l *lab.Lab, vip netip.Addr) string {
	out, _ := l.Client.Command(context.Background(), "ip", "neigh", "show", vip.String()).CombinedOutput()
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TestLabVerifyCost measures what verification costs a real vipd: CPU per
// probe, with 100 VIPs (50 IPv4, 50 IPv6) probed at 50 probes/s against the
// same daemon with verification off. A figure for docs/verify.md, not a
// pass/fail test: it runs only with VIPD_VERIFY_COST=1.
func TestLabVerifyCost(t *testing.T) {
	if os.Getenv("VIPD_VERIFY_COST") != "1" {
		t.Skip("a measurement: set VIPD_VERIFY_COST=1")
	}
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	var vips []netip.Addr
	for i := 1; i <= 50; i++ {
		vips = append(vips, l.VIPv4(i), l.VIPv6(i))
	}
	const span = 20 * time.Second
	measure := func(interval time.Duration, rate int) (cpu, user time.Duration, probes float64) {
		c := lab.StaticConfig(n.Name, vips...)
		c.Verify = config.Verify{Interval: &interval, MaxRate: rate}
		p, err := l.StartVipdConfig(n, bin, c)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "VIPs bound", 20*time.Second, func() bool { st, code := getStatus(t, n); return code == 200 && st.Groups[0].Owner })
		time.Sleep(3 * time.Second) // past the start-up burst
		st, _ := getStatus(t, n)
		m0, _ := scrapeMetrics(t, n)
		c0, u0 := procCPU(t, st.PID)
		time.Sleep(span)
		c1, u1 := procCPU(t, st.PID)
		m1, _ := scrapeMetrics(t, n)
		_ = p.Signal(syscall.SIGTERM)
		if _, err := p.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		return c1 - c0, u1 - u0, m1["vipd_verify_probes_total"] - m0["vipd_verify_probes_total"]
	}
	offCPU, offUser, _ := measure(0, 20)
	onCPU, onUser, probes := measure(2*time.Second, 1000)
	per, perUser := time.Duration(0), time.Duration(0)
	if probes > 0 {
		per = time.Duration(float64(onCPU-offCPU) / probes)
		perUser = time.Duration(float64(onUser-offUser) / probes)
	}
	// System time includes the lab's veth and bridge: a frame sent on a
	// veth is received, bridged and handled by every namespace in the
	// sender's context, which a real NIC does not charge to vipd.
	t.Logf("100 VIPs, %s: verify off %v CPU (%.2f%% of a core, user %v); on (%0.f probes, %.1f/s) %v CPU (%.2f%%, user %v); per probe %v (user %v)",
		span, offCPU, 100*offCPU.Seconds()/span.Seconds(), offUser, probes, probes/span.Seconds(), onCPU, 100*onCPU.Seconds()/span.Seconds(), onUser, per, perUser)
}

// procCPU is pid's user + system CPU time and its user time (clock ticks
// of 10 ms).
func procCPU(t *testing.T, pid int) (total, user time.Duration) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond, time.Duration(ut) * 10 * time.Millisecond
}
