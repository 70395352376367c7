package kubevip

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeHost has eth0 (198.51.100.0/24, 2001:db8::/64) and eth1 (203.0.113.0/24),
// like internal/config's tests.
type fakeHost struct{}

func (fakeHost) InterfaceExists(name string) bool { return name == "eth0" || name == "eth1" }

func (fakeHost) InterfaceFor(ip netip.Addr) (string, bool) {
	switch {
	case netip.MustParsePrefix("198.51.100.0/24").Contains(ip), netip.MustParsePrefix("2001:db8::/64").Contains(ip):
		return "eth0", true
	case netip.MustParsePrefix("203.0.113.0/24").Contains(ip):
		return "eth1", true
	}
	return "", false
}

// TestGolden converts each manifest in testdata and compares the config
// (NAME.golden.yaml) and the notes (NAME.golden.notes) with the golden
// files; every config must pass validation as printed.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		opt      Options
	}{
		{"arp-static-pod", "arp-static-pod.yaml", Options{}},
		{"arp-static-pod-vrrp", "arp-static-pod.yaml", Options{Mode: "vrrp"}},
		{"arp-static-pod-gossip", "arp-static-pod.yaml", Options{Mode: "gossip", Peers: []string{"198.51.100.11", "198.51.100.12", "198.51.100.13"}}},
		{"super-admin-static-pod", "super-admin-static-pod.yaml", Options{}},
		{"lease-daemonset-services", "lease-daemonset-services.yaml", Options{}},
		{"bgp-daemonset", "bgp-daemonset.yaml", Options{VRID: 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Convert(in, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.YAML()
			if err != nil {
				t.Fatal(err)
			}
			var notes strings.Builder
			for _, n := range r.Notes {
				notes.WriteString(n.String() + "\n")
			}
			golden(t, tc.name+".golden.yaml", out)
			golden(t, tc.name+".golden.notes", []byte(notes.String()))

			c, err := config.Parse(out)
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if c.Gossip != nil && c.Gossip.KeyFile != "" {
				// The key the notes tell the user to create.
				key := filepath.Join(t.TempDir(), "gossip.key")
				if err := os.WriteFile(key, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				c.Gossip.KeyFile = key
			}
			if err := c.Validate(fakeHost{}); err != nil {
				t.Fatalf("output does not validate: %v", err)
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

const pod = `apiVersion: v1
kind: Pod
metadata: {name: kube-vip, namespace: kube-system}
spec:
  containers:
  - name: kube-vip
    image: ghcr.io/kube-vip/kube-vip:v0.8.9
    env:
`

func TestErrors(t *testing.T) {
	broken, err := os.ReadFile("testdata/broken.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		opt      Options
		want     string
	}{
		{"broken yaml", string(broken), Options{}, "document 1: line 12: did not find expected key"},
		{"empty", "", Options{}, "no Pod or DaemonSet"},
		{"only rbac", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: kube-vip}\n", Options{}, "no Pod or DaemonSet"},
		{"other container", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - {name: web, image: nginx}\n", Options{}, "no kube-vip container"},
		{"two", pod + "    - {name: address, value: 198.51.100.10}\n---\n" + pod, Options{}, "2 kube-vip containers"},
		{"no address", pod + "    - {name: vip_arp, value: \"true\"}\n", Options{}, "env address (or vip_address) is not set"},
		{"services only", pod + "    - {name: svc_enable, value: \"true\"}\n", Options{}, "only load-balances Services"},
		{"bad bool", pod + "    - {name: address, value: 198.51.100.10}\n    - {name: vip_arp, value: \"yes\"}\n", Options{}, `env vip_arp: "yes" is not true or false`},
		{"bad int", pod + "    - {name: address, value: 198.51.100.10}\n    - {name: vip_leaderelection, value: \"true\"}\n    - {name: vip_leaseduration, value: 5s}\n", Options{}, `env vip_leaseduration: "5s" is not a whole number`},
		{"dns name", pod + "    - {name: address, value: api.example.com}\n", Options{}, `env address: "api.example.com" is not an IP address`},
		{"ddns", pod + "    - {name: address, value: api}\n    - {name: vip_ddns, value: \"true\"}\n", Options{}, "registers with DHCP/DDNS (vip_ddns)"},
		{"old name", pod + "    - {name: vip_address, value: nope}\n", Options{}, `env vip_address: "nope"`},
		{"lo", pod + "    - {name: address, value: 198.51.100.10}\n    - {name: vip_interface, value: lo}\n", Options{}, "env vip_interface: lo"},
		{"bad mode", pod + "    - {name: address, value: 198.51.100.10}\n", Options{Mode: "raft"}, `--mode "raft"`},
		{"peers in lease", pod + "    - {name: address, value: 198.51.100.10}\n", Options{Mode: "lease", Peers: []string{"198.51.100.11"}}, "--peers is for mode vrrp"},
		{"bad peer", pod + "    - {name: address, value: 198.51.100.10}\n", Options{Mode: "vrrp", Peers: []string{"nope"}}, "would not validate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]byte(tc.in), tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestOddInputs: whatever the manifest, convert returns a result or an
// error, never panics, and a result validates.
func TestOddInputs(t *testing.T) {
	for _, in := range []string{
		"---\n---\n",
		"# only a comment\n",
		"kind: Pod\n",
		"apiVersion: v1\nkind: Pod\n",
		"apiVersion: v1\nkind: Pod\nspec: 3\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nspec: {template: {spec: {containers: [{name: kube-vip}]}}}\n",
		pod + "    - {name: address, value: \"198.51.100.10, 2001:db8::10\"}\n    - {name: vip_arpRate, value: \"500\"}\n",
		pod + "    - {name: vip_address, value: 198.51.100.10}\n    - {name: address, value: 198.51.100.11}\n",
		pod + "    - {name: address, value: 198.51.100.0}\n    - {name: vip_leaderelection, value: \"true\"}\n    - {name: vip_renewdeadline, value: \"1\"}\n    - {name: vip_retryperiod, value: \"60\"}\n",
		pod + "  - {name: kube-vip-cloud-provider, image: ghcr.io/kube-vip/kube-vip-cloud-provider:v0.0.12}\n",
	} {
		r, err := Convert([]byte(in), Options{})
		if err != nil {
			continue
		}
		out, err := r.YAML()
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(out)
		if err == nil {
			err = c.Validate(fakeHost{})
		}
		if err != nil {
			t.Errorf("input\n%s\ngave a config that does not validate: %v\n%s", in, err, out)
		}
	}
}

func FuzzConvert(f *testing.F) {
	for _, name := range []string{"arp-static-pod.yaml", "bgp-daemonset.yaml", "broken.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Convert(data, Options{})
		if err != nil {
			return
		}
		if _, err := r.YAML(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrorLineCountsFromFileStart(t *testing.T) {
	in := "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\n  bad: [\n"
	_, err := Convert([]byte(in), Options{})
	if err == nil || !strings.Contains(err.Error(), "document 2: ") || !strings.Contains(err.Error(), "line 7:") {
		t.Fatalf("got %v, want document 2 and line 7", err)
	}
}
