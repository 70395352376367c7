package config

import "testing"

func TestUnauthenticatedPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"static", Config{Mode: "static"}, 0},
		{"lease", Config{Mode: "lease"}, 0},
		{"vrrp", Config{Mode: "vrrp"}, 1},
		// Validation refuses gossip without a key unless insecure is set.
		{"gossip insecure", Config{Mode: "gossip", Gossip: &Gossip{Insecure: true}}, 1},
		{"gossip unvalidated", Config{Mode: "gossip"}, 0},
		{"gossip with key", Config{Mode: "gossip", Gossip: &Gossip{KeyFile: "/etc/vipd/gossip.key"}}, 0},
	} {
		if got := tc.cfg.UnauthenticatedPaths(); len(got) != tc.want {
			t.Errorf("%s: %q, want %d path(s)", tc.name, got, tc.want)
		}
	}
}
