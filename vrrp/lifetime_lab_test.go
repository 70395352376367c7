package vrrp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// TestKeepalivedCrashNoGap (issue #11, 7c): vipd (priority 200) and
// keepalived (100) with keepalived's default 1s adverts; vipd is SIGKILLed.
// keepalived takes over after Master_Down_Interval (~3.6s); the dead node's
// VIP must still be bound until then, so the VIP always has a holder. Before,
// the 3s default lifetime let it expire 2.3-2.6s after the crash, ~850ms
// before keepalived took over; binding.lifetime is now derived from the
// advert interval (6s here).
func TestKeepalivedCrashNoGap(t *testing.T) {
	requireKeepalived(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	vip := l.VIPv4(10)
	r := vrrplab.Router{VRID: 60, Interval: time.Second, VIPs: []netip.Addr{vip}}
	v, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 200, r, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.WaitAddress(vip, true, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ka, err := vrrplab.StartKeepalived(l, n1, vrrplab.KeepalivedConfig(n1, 100, r, netip.Addr{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vrrplab.CleanVIPs(n1, r.VIPs) })
	if err := ka.WaitLog("Entering BACKUP STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := v.Kill(); err != nil {
		t.Fatal(err)
	}
	var gone, taken time.Duration
	for gone == 0 || taken == 0 {
		since := time.Since(killed)
		if since > 15*time.Second {
			t.Fatalf("after %s: VIP gone from vipd's node after %s, keepalived holds it after %s (0 = not yet)", since, gone, taken)
		}
		if held, err := n2.HasAddress(vip); err == nil && !held && gone == 0 {
			gone = since
		}
		if held, err := n1.HasAddress(vip); err == nil && held && taken == 0 {
			taken = since
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("SIGKILL: keepalived holds the VIP after %s; vipd's VIP removed by the kernel after %s",
		taken.Round(10*time.Millisecond), gone.Round(10*time.Millisecond))
	if gone < taken {
		t.Errorf("no holder for %s: vipd's VIP expired %s after the crash, keepalived took over only after %s",
			(taken - gone).Round(10*time.Millisecond), gone.Round(10*time.Millisecond), taken.Round(10*time.Millisecond))
	}
}
