package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Timing profiles. See docs/gossip.md for the measured figures and the
// trade-off (fast detects a crashed node in well under a second, at the cost
// of declaring a node dead that stalls for ~0.3 s or more).
const (
	ProfileFast = "fast"
	ProfileLAN  = "lan"
	ProfileWAN  = "wan"
)

// profileConfig returns memberlist's config for a profile.
func profileConfig(name string) (*memberlist.Config, error) {
	c, err := profileTiming(name)
	if err != nil {
		return nil, err
	}
	// No LZW compression of what we send (memberlist compresses every
	// packet by default): each compressed packet allocated a 64 KiB LZW
	// writer (and each received one a ~20 KiB reader), which at the fast
	// profile's pings and acks kept the garbage collector busy, for
	// payloads (pings, acks, ≤ 512-byte metas, hash tables) that LZW hardly
	// shrinks. Receiving is unchanged: memberlist decompresses a compressed
	// packet whatever this setting, so members of either kind interoperate.
	c.EnableCompression = false
	return c, nil
}

// profileTiming returns memberlist's config with a profile's timing.
func profileTiming(name string) (*memberlist.Config, error) {
	switch name {
	case ProfileFast:
		c := memberlist.DefaultLANConfig()
		// Every 100ms each member pings one other (round robin), so with a
		// few members a dead one is pinged within ~100ms; no ack within 50ms
		// (a LAN round trip is well under 1ms) starts indirect pings and a
		// TCP ping through the rest of the interval.
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 50 * time.Millisecond
		// Suspicion lasts SuspicionMult*ProbeInterval = 300ms (for < 10
		// members), doubled until another member confirms it. A live but
		// suspected member refutes within that time when it hears of it.
		c.SuspicionMult = 3
		c.SuspicionMaxTimeoutMult = 2
		// Gossip every 20ms so a leave or a meta update (a released group)
		// reaches peers within a few tens of milliseconds: the graceful
		// handover budget is 100ms. Cheap: vipd clusters are small.
		c.GossipInterval = 20 * time.Millisecond
		c.GossipNodes = 4
		c.PushPullInterval = 5 * time.Second
		c.GossipToTheDeadTime = 5 * time.Second
		c.TCPTimeout = time.Second
		c.DeadNodeReclaimTime = time.Second
		return c, nil
	case ProfileLAN:
		c := memberlist.DefaultLANConfig()
		c.DeadNodeReclaimTime = 10 * time.Second
		return c, nil
	case ProfileWAN:
		c := memberlist.DefaultWANConfig()
		c.DeadNodeReclaimTime = 30 * time.Second
		return c, nil
	}
	return nil, fmt.Errorf("unknown gossip profile %q (want fast, lan or wan)", name)
}
