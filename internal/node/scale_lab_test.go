package node

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/lab"
)

// 1,000 IPv6 VIPs in one static group (issue #15, cheap at scale): all
// bound, kept alive past three kernel lifetimes (3 s, renewed every second,
// spread over the interval), and all removed on SIGTERM. The CPU vipd used
// while idle is logged; the bound is only a sanity check: most of it is the
// kernel's (each IPv6 address renewal walks every multicast group of the
// interface, so 1,000 renewals a second cost ~20 % of a core on the test
// machine whatever vipd does; see docs/benchmark.md#scale).
func TestLabThousandVIPs(t *testing.T) {
	lab.Require(t)
	const n = 1000
	l := lab.New(t, lab.Options{Nodes: 1})
	h := l.Nodes[0]
	bin := lab.BuildVipd(t)
	vips := make([]netip.Addr, n)
	want := map[netip.Addr]bool{}
	for i := range vips {
		b := netip.MustParseAddr("2001:db8:5ca1::").As16()
		b[14], b[15] = byte((i+1)>>8), byte(i+1)
		vips[i] = netip.AddrFrom16(b)
		want[vips[i]] = true
	}
	p, err := l.StartVipdConfig(h, bin, lab.StaticConfig(h.Name, vips...))
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		ps, err := h.Addrs()
		// A dump that overlaps a renewal is interrupted; again.
		for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 50; try++ {
			ps, err = h.Addrs()
		}
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, p := range ps {
			if want[p.Addr()] {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(15 * time.Second)
	for count() < n {
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("%d of %d VIPs bound after 15s", count(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.WaitOutput("msg=transition", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(p.Output()) {
		if strings.Contains(line, "msg=transition") {
			if i := strings.Index(line, "takeover="); i >= 0 {
				t.Logf("vipd: %s", strings.TrimSpace(line[i:]))
			}
		}
	}
	// Three lifetimes: every VIP must be there at every check.
	cpu0, at0 := cpuTime(t, p.PID), time.Now()
	for i := range 9 {
		time.Sleep(time.Second)
		if k := count(); k != n {
			t.Fatalf("after %ds: %d of %d VIPs bound (a renewal missed its lifetime)", i+1, k, n)
		}
	}
	cpu := 100 * float64(cpuTime(t, p.PID)-cpu0) / float64(time.Since(at0))
	t.Logf("idle CPU with %d VIPs: %.1f%% of a core over %s", n, cpu, time.Since(at0).Round(time.Second))
	if cpu > 60 {
		t.Errorf("idle CPU %.1f%% of a core with %d VIPs: over the sanity bound of 60%%", cpu, n)
	}
	if strings.Contains(p.Output(), "deleted while owned") {
		t.Errorf("a VIP expired or was deleted while owned:\n%s", p.Output())
	}
	began := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Wait(15 * time.Second); !exited || err != nil {
		t.Fatalf("vipd exited=%v err=%v after SIGTERM", exited, err)
	}
	t.Logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	if k := count(); k != 0 {
		t.Fatalf("%d VIPs left bound after vipd stopped", k)
	}
}

// cpuTime is pid's user+system CPU time from /proc/PID/stat.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// f[11], f[12]: utime, stime (fields 14, 15 of proc(5)), in USER_HZ = 100.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
