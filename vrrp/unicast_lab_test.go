package vrrp_test

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
	"github.com/vipd/vipd/vrrp"
)

// TestLabUnicastRejectsStrangers (issue #11, 3, unicast half): in unicast
// mode only configured peers are heard. Two vipd nodes list each other by
// link-local address; the client sends priority-254 adverts from its own
// link-local address to the master. Before, any IPv6 link-local source was
// accepted and the master stepped down (VIP gone); now the kernel filter
// drops them and node1 stays master with its VIP.
func TestLabUnicastRejectsStrangers(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	vip := l.VIPv6(6)
	ll := []netip.Addr{linkLocal(t, l.Nodes[0]), linkLocal(t, l.Nodes[1])}
	cfg := func(i, prio int) *config.Config {
		return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: l.Nodes[i].Name, Mode: config.ModeVRRP,
			Groups: []config.Group{{Name: "web", Priority: prio, VIPs: []config.VIP{{Address: vip.String()}},
				VRRP: &config.GroupVRRP{VRID: 56, AdvertInterval: 100 * time.Millisecond, UnicastPeers: []string{ll[1-i].String()}}}}}
	}
	for i, prio := range []int{150, 100} {
		if _, err := l.StartVipdConfig(l.Nodes[i], bin, cfg(i, prio)); err != nil {
			t.Fatal(err)
		}
	}
	waitVipdSees(t, l.Nodes[1], []netip.Addr{ll[0]}, 150, 15*time.Second)
	if err := l.Nodes[0].WaitAddress(vip, true, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stranger := linkLocal(t, l.Client)
	s, err := vrrplab.NewSender(l.Client, 6, stranger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := vrrp.Advert{VRID: 56, Priority: 254, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
	// Ten spoofed adverts, one per advert interval, each answered (or not)
	// by the master at once: a step-down shows at the first.
	for range 10 {
		if err := s.Send(a, stranger, l.Nodes[0].IPv6.Addr()); err != nil {
			t.Fatal(err)
		}
		if err := l.Nodes[0].WaitAddress(vip, false, 100*time.Millisecond); err == nil {
			t.Fatalf("node1 gave its VIP up for a priority-254 advert from %s, not a configured peer", stranger)
		}
	}
	st, err := vrrplab.VipdStatus(l.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Routers) != 1 || st.Routers[0].State != "master" {
		t.Fatalf("node1 is not master after the stranger's adverts: %+v", st)
	}
	t.Logf("node1: %+v", st)
}

// TestKeepalivedCheckUnicastSrc (issue #11, 7a): keepalived with
// check_unicast_src accepts unicast adverts only from its unicast_peer
// addresses. vipd (priority 200) sends its IPv6 adverts from its global
// address (unicastSource), the address keepalived lists, so keepalived
// (150) stays backup; before, they came from vipd's link-local address,
// keepalived discarded them and became a second master.
func TestKeepalivedCheckUnicastSrc(t *testing.T) {
	requireKeepalived(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := lab.BuildVipd(t)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	vip := l.VIPv6(7)
	r := vrrplab.Router{VRID: 57, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip},
		Unicast: true, UnicastSource: true, CheckUnicastSrc: true}
	v2, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 200, r, []netip.Addr{n1.IPv6.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.WaitAddress(vip, true, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ka, err := vrrplab.StartKeepalived(l, n1, vrrplab.KeepalivedConfig(n1, 150, r, netip.Addr{}, []netip.Addr{n2.IPv6.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	waitKeepalivedBackup(t, ka)
	if strings.Contains(ka.Output(), "not a unicast peer") || strings.Contains(ka.Output(), "unknown unicast") {
		t.Errorf("keepalived rejected vipd's adverts:\n%s", ka.Output())
	}
	// Both ways: vipd leaves (priority 0 from its global address), keepalived
	// takes over; vipd, back at a lower priority, hears keepalived.
	v2.Signal(syscall.SIGTERM)
	v2.Wait(10 * time.Second)
	if err := ka.WaitLog("received priority 0 advertisement", 3*time.Second); err != nil {
		t.Error(err)
	}
	if err := n1.WaitAddress(vip, true, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartVipdConfig(n2, bin, vrrplab.VipdConfig(n2, 100, r, []netip.Addr{n1.IPv6.Addr()})); err != nil {
		t.Fatal(err)
	}
	waitVipdSees(t, n2, []netip.Addr{n1.IPv6.Addr()}, 150, 10*time.Second)
}
