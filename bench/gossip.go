package main

import (
	"context"
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vipd/vipd/election/gossip"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
)

// gossipMode runs vipd in gossip mode (memberlist, profile fast, encrypted)
// with all three nodes as peers. The highest priority owns the group, so
// node1 takes it back when it returns (like VRRP preemption).
type gossipMode struct {
	*vipdMode
	vip   netip.Addr
	key   string // key file
	peers []string
}

func newGossipMode(bin string, vip netip.Addr) *gossipMode {
	m := &gossipMode{vip: vip}
	m.vipdMode = newVipdMode("vipd-gossip", bin,
		"gossip: profile fast (probe 100ms/50ms, suspicion 300ms), encryption on, binding.lifetime 3s (default), priorities 150/100/50 (highest wins: node1 takes the group back)",
		vrrpPrios, 3*time.Second, m.configFor)
	return m
}

func (m *gossipMode) Setup(_ context.Context, l *lab.Lab) error {
	m.peers = nil
	for _, n := range l.Nodes {
		m.peers = append(m.peers, n.IPv4.Addr().String())
	}
	m.key = filepath.Join(l.TempDir(), "bench-gossip.key")
	// A fixed 32-byte lab key (AES-256); only these namespaces use it.
	return os.WriteFile(m.key, []byte(base64.StdEncoding.EncodeToString([]byte("vipd-bench-key-0123456789abcdefg"))+"\n"), 0o600)
}

func (m *gossipMode) configFor(h *lab.Host, prio int) *config.Config {
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeGossip,
		Gossip:  &config.Gossip{Peers: m.peers, KeyFile: m.key, Profile: gossip.ProfileFast},
		Binding: config.Binding{Lifetime: 3 * time.Second, Refresh: time.Second},
		Groups: []config.Group{{Name: "web", Priority: prio,
			VIPs: []config.VIP{{Address: m.vip.String(), Interface: "eth0"}}}},
	}
}
