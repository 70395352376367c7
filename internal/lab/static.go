package lab

import (
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// StaticConfig is the config lab tests give a vipd that holds vips on eth0
// in mode static: a 3 s kernel lifetime refreshed every second, and three
// announcements 100 ms apart.
func StaticConfig(node string, vips ...netip.Addr) *config.Config {
	c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: node, Mode: config.ModeStatic,
		Binding:  config.Binding{Lifetime: 3 * time.Second, Refresh: time.Second},
		Announce: config.Announce{Count: 3, Interval: 100 * time.Millisecond},
		Groups:   []config.Group{{Name: "web"}},
	}
	for _, v := range vips {
		c.Groups[0].VIPs = append(c.Groups[0].VIPs, config.VIP{Address: v.String(), Interface: "eth0"})
	}
	return c
}
