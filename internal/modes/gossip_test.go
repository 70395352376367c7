package modes

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/election/gossip"
	"github.com/vipd/vipd/internal/config"
)

// gossipKey writes a gossip key file for one test: every config of the
// test names the same one (a changed key file needs a restart).
func gossipKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// gossipConfig validates yaml with its KEYFILE replaced by key.
func gossipConfig(t *testing.T, key, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(strings.ReplaceAll(yaml, "KEYFILE", key)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(eth0Host{}); err != nil {
		t.Fatal(err)
	}
	return c
}

const gossipBase = `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: gossip
gossip: {bind: "127.0.0.1:17946", peers: [198.51.100.12], keyFile: KEYFILE}
groups:
- {name: web, vips: [{address: 198.51.100.100}]}
`

// Reload (before Run, so nothing is owned): groups are replaced, a
// transport change is refused with the setting named.
func TestReloadGossip(t *testing.T) {
	m, _ := Lookup(config.ModeGossip)
	if m.Reload == nil {
		t.Fatal("gossip has no Reload")
	}
	key := gossipKey(t)
	e, err := m.New(gossipConfig(t, key, gossipBase), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	added := gossipConfig(t, key, gossipBase+"- {name: api, vips: [{address: 198.51.100.101}]}\n")
	e.SetInput("api", election.Input{Eligible: true, Priority: 90})
	if err := m.Reload(e, added); err != nil {
		t.Fatalf("adding a group: %v", err)
	}
	if bids := e.Status().(gossip.Status).Bids; len(bids) != 2 || bids[1].Group != "api" || bids[1].Priority != 90 {
		t.Fatalf("bids after the reload: %+v", bids)
	}
	for _, tt := range []struct{ change, want string }{
		{`"127.0.0.1:17946"`, "gossip.bind"},
		{`[198.51.100.12]`, "gossip.peers"},
		{`{bind:`, "gossip.profile"},
	} {
		repl := map[string]string{`"127.0.0.1:17946"`: `"127.0.0.1:17947"`, `[198.51.100.12]`: `[198.51.100.13]`, `{bind:`: `{profile: lan, bind:`}[tt.change]
		c := gossipConfig(t, key, strings.Replace(gossipBase, tt.change, repl, 1))
		err := m.Reload(e, c)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "restart") {
			t.Errorf("changing %s: err = %v, want one naming %s and a restart", tt.want, err, tt.want)
		}
	}
	if bids := e.Status().(gossip.Status).Bids; len(bids) != 2 {
		t.Fatalf("a refused reload changed the groups: %+v", bids)
	}
}
