package node

import (
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
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
	// MaxLifetime bounds the longer lifetime of VIPs renewed less often on
	// a crowded interface (addr.PlanUpkeep; config.MaxBindingLifetime);
	// 0: addr.MaxLifetime.
	MaxLifetime time.Duration
	Announce    arp.Schedule
	Groups      []Group
	// Checks are the health checks the groups track.
	Checks []health.Spec
	// StartupDelay: for this long after start the node takes no group from
	// a healthy owner. MinMoveInterval: the least time between two
	// health-caused moves of one group toward this node (0: off).
	StartupDelay, MinMoveInterval time.Duration
	// Unauthenticated names the election's open doors
	// (config.UnauthenticatedPaths): logged at start, shown on /status.
	Unauthenticated []string
	// Verify is owner verification (docs/verify.md); Interval 0: off.
	Verify VerifySpec
}

// Track is one check's effect on a group: Weight 0 gates, N > 0 adds N
// while passing, N < 0 subtracts |N| while failing.
type Track struct {
	Check  string
	Weight int
}

// Group is one configured group as the daemon needs it.
type Group struct {
	Name     string
	Priority int
	VIPs     []addr.VIP
	Track    []Track
	// KeepWhenNoneHealthy is the group's policy "keep": a node whose gate
	// fails is degraded (a last resort) instead of ineligible.
	KeepWhenNoneHealthy bool
	// Notify is the group's hooks (nil: none).
	Notify *hooks.Spec
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
