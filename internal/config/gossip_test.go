package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const gossipBase = `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: gossip
groups:
  - name: web
    vips: [{address: 198.51.100.100}]
`

func TestGossipDefaults(t *testing.T) {
	c, err := Parse([]byte(gossipBase + "gossip: {insecure: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	g := c.Gossip
	if g.Bind != "0.0.0.0:7946" || g.Profile != "fast" || g.RejoinInterval != time.Second || g.Quorum || g.Expect != 0 || g.Keys != nil || !g.Insecure {
		t.Errorf("defaults: %+v", g)
	}
}

func TestGossipValidation(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# rotated 2026-11\nMDEyMzQ1Njc4OWFiY2RlZg==\n\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=")
	short := write("short", "c2hvcnQ=\n")
	notb64 := write("notb64", "this is not base64!\n")
	empty := write("empty", "# nothing\n\n")
	dup := write("dup", "MDEyMzQ1Njc4OWFiY2RlZg==\nMDEyMzQ1Njc4OWFiY2RlZg==\n")

	tests := []struct {
		name, yaml string
		want       string // substring of the error; "" = valid
	}{
		{"all set", `gossip: {bind: "198.51.100.10:7000", advertise: 198.51.100.10, peers: [198.51.100.11, "198.51.100.12:7000", "[2001:db8::13]:7000", vipd-0.vipd.example.], dns: vipd.kube-system.svc.cluster.local, expect: 3, quorum: true, profile: lan, rejoinInterval: 5s, keyFile: ` + good + `}`, ""},
		{"bind not host:port", `gossip: {bind: "0.0.0.0"}`, `gossip.bind: "0.0.0.0": must be IP:port`},
		{"bind name", `gossip: {bind: "localhost:7946"}`, `gossip.bind: "localhost:7946": host must be an IP address`},
		{"bind port", `gossip: {bind: "0.0.0.0:0"}`, `gossip.bind: "0.0.0.0:0": port must be 1..65535`},
		{"advertise unspecified", `gossip: {advertise: 0.0.0.0}`, `gossip.advertise: "0.0.0.0": must be a specific IP`},
		{"advertise port", `gossip: {advertise: "198.51.100.10:99999"}`, `gossip.advertise: "198.51.100.10:99999": port must be 1..65535`},
		{"peer bad host", `gossip: {peers: ["bad_host!"]}`, `gossip.peers[0]: "bad_host!": host must be an IP address or a DNS name`},
		{"peer v6 no brackets", `gossip: {peers: ["2001:db8::1:7946:x"]}`, `gossip.peers[0]`},
		{"peer port", `gossip: {peers: ["198.51.100.11:0"]}`, `gossip.peers[0]: "198.51.100.11:0": port must be 1..65535`},
		{"peer dup", `gossip: {peers: [198.51.100.11, 198.51.100.11]}`, `gossip.peers[1]: "198.51.100.11": duplicates gossip.peers[0]`},
		{"dns", `gossip: {dns: "not a name"}`, `gossip.dns: "not a name": must be a DNS name`},
		{"expect range", `gossip: {expect: -1}`, `gossip.expect: -1: must be between 0`},
		{"quorum needs expect", `gossip: {quorum: true}`, `gossip.expect: 0: must be at least 2 when gossip.quorum is true`},
		{"profile", `gossip: {profile: turbo}`, `gossip.profile: "turbo": must be one of fast, lan, wan`},
		{"rejoin", `gossip: {rejoinInterval: 10ms}`, `gossip.rejoinInterval: 10ms: must be between 100ms and 10m`},
		{"key missing", `gossip: {keyFile: ` + filepath.Join(dir, "nope") + `}`, `gossip.keyFile: "` + filepath.Join(dir, "nope") + `": cannot be read`},
		{"key short", `gossip: {keyFile: ` + short + `}`, `line 1 decodes to 5 bytes; a key must be 16, 24 or 32 bytes`},
		{"key not base64", `gossip: {keyFile: ` + notb64 + `}`, `line 1 is not base64`},
		{"key empty", `gossip: {keyFile: ` + empty + `}`, `holds no key`},
		{"key dup", `gossip: {keyFile: ` + dup + `}`, `line 2 repeats key 1`},
		{"unknown key", `gossip: {peer: [a]}`, `unknown key "peer"`},
		// Secure by default: no key is an error unless insecure says so.
		{"no key", `gossip: {peers: [198.51.100.11]}`, `gossip.keyFile: not set, and gossip.insecure is not true: without a key any host`},
		{"no gossip section", ``, `gossip.keyFile: not set, and gossip.insecure is not true`},
		{"insecure", `gossip: {insecure: true}`, ""},
		{"insecure and key", `gossip: {insecure: true, keyFile: ` + good + `}`, `gossip.insecure: true: must not be set together with gossip.keyFile`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(gossipBase + tt.yaml))
			if err == nil {
				err = c.Validate(fakeHost{})
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if tt.want == "" && c.Gossip.KeyFile != "" && len(c.Gossip.Keys) != 2 {
				t.Errorf("keys: %d, want 2", len(c.Gossip.Keys))
			}
		})
	}
}

// gossipGroupsYAML is a gossip config with n groups (one IPv6 VIP each).
func gossipGroupsYAML(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\nmode: gossip\ngossip: {insecure: true}\ngroups:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {name: g%d, vips: [{address: \"2001:db8::%x\"}]}\n", i, i+1)
	}
	return b.String()
}

// Gossip mode held 45 groups while every bid lived in the 512-byte node
// meta; with group tables it holds GossipMaxGroups.
func TestGossipGroupCap(t *testing.T) {
	for _, n := range []int{46, 1000, GossipMaxGroups} {
		c, err := Parse([]byte(gossipGroupsYAML(n)))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(fakeHost{}); err != nil {
			t.Errorf("%d groups: %v", n, err)
		}
	}
}

func TestGossipTooManyGroups(t *testing.T) {
	c, err := Parse([]byte(gossipGroupsYAML(GossipMaxGroups + 1)))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(fakeHost{})
	if err == nil || len(err.(Errors)) != 1 || !strings.Contains(err.Error(), fmt.Sprintf("groups: %d: mode gossip supports at most %d groups", GossipMaxGroups+1, GossipMaxGroups)) {
		t.Fatalf("err = %v", err)
	}
}
