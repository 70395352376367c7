package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// gossipMode runs vipd in gossip mode (memberlist, profile fast, encrypted)
// with all three nodes as peers. The highest priority owns the group, so
// node1 takes it back when it returns (like VRRP preemption).
type gossipMode struct {
	*vipdMode
	vip   netip.Addr
	key   string // key file
	peers string
}

func newGossipMode(bin string, vip netip.Addr) *gossipMode {
	m := &gossipMode{vip: vip}
	m.vipdMode = newVipdMode("vipd-gossip", bin,
		"gossip: profile fast (probe 100ms/50ms, suspicion 300ms), encryption on, binding.lifetime 3s (default), priorities 150/100/50 (highest wins: node1 takes the group back)",
		vrrpPrios, 3*time.Second, m.configFor)
	return m
}

func (m *gossipMode) Setup(_ context.Context, l *lab.Lab) error {
	var peers []string
	for _, n := range l.Nodes {
		peers = append(peers, n.IPv4.Addr().String())
	}
	m.peers = strings.Join(peers, ", ")
	m.key = filepath.Join(l.TempDir(), "bench-gossip.key")
	// A fixed 32-byte lab key (AES-256); only these namespaces use it.
	return os.WriteFile(m.key, []byte(base64.StdEncoding.EncodeToString([]byte("vipd-bench-key-0123456789abcdefg"))+"\n"), 0o600)
}

func (m *gossipMode) configFor(h *lab.Host, prio int) string {
	return fmt.Sprintf(`apiVersion: vipd.io/v1alpha1
kind: Config
node: %s
mode: gossip
gossip:
  peers: [%s]
  keyFile: %s
  profile: fast
binding: {lifetime: 3s, refresh: 1s}
groups:
- name: web
  priority: %d
  vips: [{address: %s, interface: eth0}]
`, h.Name, m.peers, m.key, prio, m.vip)
}
