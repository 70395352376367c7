package addr

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The kernel's cost of renewing a VIP's lifetime grows with the VIPs on its
// interface for IPv6: every RTM_NEWADDR for IPv6 goes through
// ipv6_find_idev → ipv6_mc_up, which walks every multicast group of the
// interface (one solicited-node group per VIP), marks each for a new MLDv2
// state-change report and schedules the report (net/ipv6/addrconf.c,
// mcast.c; no flag or other request skips it). One renewal costs about
// 15 µs + 280 ns per IPv6 address on the interface (measured with 10 to
// 2,000 addresses, docs/benchmark.md "Scale"), so renewing N of them every
// refresh costs N × (15 µs + N × 280 ns) per refresh: a quarter of a core
// for 1,000 VIPs renewed every second. An IPv4 renewal costs about 10 µs
// whatever the number of addresses.
//
// Renewing less often is the only way down that keeps the dead-man's
// switch: PlanUpkeep renews the VIPs of a crowded interface every Stride
// refresh intervals, with a lifetime longer by the same amount, so that
// their upkeep stays within 1/upkeepShare of a core.
const (
	// upkeepShare: the renewals of one interface and address family may
	// cost the kernel 1/upkeepShare of a core (0.25 %: with vipd's own
	// time and the announcements, 1,000 IPv6 VIPs idle within 1 %).
	upkeepShare = 400
	// MaxLifetime caps a scaled lifetime, as binding.lifetime is capped.
	MaxLifetime = time.Hour
)

// renewalCost estimates the kernel time of one renewal on an interface
// holding n addresses of the VIP's family (see above).
func renewalCost(v6 bool, n int) time.Duration {
	if !v6 {
		return 10 * time.Microsecond
	}
	return 15*time.Microsecond + time.Duration(n)*280*time.Nanosecond
}

// Upkeep is how the VIPs of one interface and address family are kept:
// each is renewed every Refresh with the kernel lifetime Lifetime, which is
// therefore how long a VIP may outlive a crashed or hung vipd (the crash
// bound; the kernel may remove it up to 1s later still).
type Upkeep struct {
	Interface string
	IPv6      bool
	// VIPs is the number of configured VIPs of the family on the interface.
	VIPs int
	// Stride is Refresh in binding.refresh intervals (1: not scaled).
	Stride            int
	Refresh, Lifetime time.Duration
}

// Family is "ipv4" or "ipv6".
func (u Upkeep) Family() string {
	if u.IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// MarshalJSON shows the durations as strings (for /status).
func (u Upkeep) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Interface string `json:"interface"`
		Family    string `json:"family"`
		VIPs      int    `json:"vips"`
		Refresh   string `json:"refresh"`
		Lifetime  string `json:"lifetime"`
	}{u.Interface, u.Family(), u.VIPs, u.Refresh.String(), u.Lifetime.String()})
}

// ScaleUpkeep is the upkeep of n VIPs of one family on one interface given
// binding.lifetime and binding.refresh (the floor) and the longest lifetime
// the mode allows (maxLifetime; 0: MaxLifetime). The renewal interval is
// the least multiple k of refresh that keeps the kernel's cost within
// 1/upkeepShare of a core; the lifetime grows by as much as the interval, so the slack
// a VIP has between its renewal and its expiry (lifetime - refresh: a
// stalled vipd, a failed renewal retried one refresh later) stays what it
// is unscaled. The lifetime is whole seconds (the kernel's unit) and never
// above maxLifetime, which bounds k.
func ScaleUpkeep(n int, v6 bool, lifetime, refresh, maxLifetime time.Duration) (stride int, scaledRefresh, scaledLifetime time.Duration) {
	if maxLifetime <= 0 || maxLifetime > MaxLifetime {
		maxLifetime = MaxLifetime
	}
	if n <= 0 || refresh <= 0 {
		return 1, refresh, lifetime
	}
	// k = ceil(n × cost × upkeepShare / refresh), in integers: n ×
	// cost stays below 2^63 / 200 for any n a config can hold.
	need := time.Duration(n) * renewalCost(v6, n) * upkeepShare
	k := int((need + refresh - 1) / refresh)
	scaled := func(k int) time.Duration {
		l := lifetime + time.Duration(k-1)*refresh
		if r := l % time.Second; r != 0 {
			l += time.Second - r
		}
		return l
	}
	if k > 1 {
		// Largest k the cap allows, then down until the rounded
		// lifetime fits too.
		k = min(k, 1+int((maxLifetime-lifetime)/refresh))
		for k > 1 && scaled(k) > maxLifetime {
			k--
		}
	}
	if k <= 1 {
		return 1, refresh, lifetime
	}
	return k, time.Duration(k) * refresh, scaled(k)
}

// PlanUpkeep is the upkeep of every interface and family among vips (the
// configured VIPs, counted once each), in interface then family order.
func PlanUpkeep(vips []VIP, lifetime, refresh, maxLifetime time.Duration) []Upkeep {
	count := map[classKey]map[netip.Addr]bool{}
	for _, v := range vips {
		k := classOf(v)
		if count[k] == nil {
			count[k] = map[netip.Addr]bool{}
		}
		count[k][v.Addr] = true
	}
	out := make([]Upkeep, 0, len(count))
	for k, set := range count {
		u := Upkeep{Interface: k.ifname, IPv6: k.v6, VIPs: len(set)}
		u.Stride, u.Refresh, u.Lifetime = ScaleUpkeep(u.VIPs, u.IPv6, lifetime, refresh, maxLifetime)
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Upkeep) int {
		if c := strings.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		if a.IPv6 == b.IPv6 {
			return 0
		}
		if a.IPv6 {
			return 1
		}
		return -1
	})
	return out
}
