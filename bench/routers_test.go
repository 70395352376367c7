package main

import (
	"net/netip"
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
		name string
		seen []vrrplab.Advert
		n    int
		gap  time.Duration
	}{
		{"none", []vrrplab.Advert{adv(0, m, 150), adv(10, m, 150), adv(20, m, 150)}, 0, 80 * time.Millisecond},
		{"one episode of two adverts", []vrrplab.Advert{adv(0, m, 150), adv(50, b, 100), adv(55, b, 100), adv(60, m, 150), adv(70, m, 150)}, 1, 60 * time.Millisecond},
		{"two episodes", []vrrplab.Advert{adv(10, b, 100), adv(50, b, 100), adv(95, m, 150)}, 2, 95 * time.Millisecond},
		{"priority 0 is a goodbye", []vrrplab.Advert{adv(10, b, 0), adv(20, m, 150), adv(95, m, 150)}, 0, 75 * time.Millisecond},
		{"outside the window", []vrrplab.Advert{adv(-5, b, 100), adv(150, b, 100), adv(50, m, 150)}, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, gap := falseTakeovers(tt.seen, m, b, iv, at(0), at(100))
			if n != tt.n || gap != tt.gap {
				t.Errorf("got %d, %s; want %d, %s", n, gap, tt.n, tt.gap)
			}
		})
	}
}
