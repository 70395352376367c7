package node

import (
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/internal/addr"
)

// Spec is the daemon's part of the validated configuration, translated once
// (internal/modes.NodeSpec); node never reads the config package.
type Spec struct {
	Node    string
	Mode    string
	Version string
	// HTTPListen is where /healthz, /readyz and /status are served.
	HTTPListen string
	// Lifetime and Refresh are the VIPs' kernel lifetime and its renewal.
	Lifetime, Refresh time.Duration
	Announce          arp.Schedule
	Groups            []Group
}

// Group is one configured group as the daemon needs it.
type Group struct {
	Name     string
	Priority int
	VIPs     []addr.VIP
}

// AllVIPs lists every VIP of groups.
func AllVIPs(groups []Group) []addr.VIP {
	var out []addr.VIP
	for _, g := range groups {
		out = append(out, g.VIPs...)
	}
	return out
}

// Interfaces lists the interfaces groups bind on, each once, in config order.
func Interfaces(groups []Group) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range AllVIPs(groups) {
		if !seen[v.Interface] {
			seen[v.Interface] = true
			out = append(out, v.Interface)
		}
	}
	return out
}
