package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// fakeNode is a node for Run: files (config, /proc), links and remote
// answers, all in memory.
type fakeNode struct {
	files  map[string]string
	links  map[string]Link
	routes map[netip.Addr]string
	dial   map[string]error
	heard  map[string][]Heard // "eth0/4"
	health func() (int, string, error)
	kube   func(path string) (KubeResponse, error)
}

func newFakeNode(configYAML string) *fakeNode {
	n := &fakeNode{
		files: map[string]string{
			"/etc/vipd/config.yaml": configYAML,
			"/proc/self/status":     "CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n",
		},
		links: map[string]Link{"eth0": {Name: "eth0", AdminUp: true, OperState: "up", Prefixes: []netip.Prefix{
			netip.MustParsePrefix("198.51.100.11/24"), netip.MustParsePrefix("2001:db8::11/64"), netip.MustParsePrefix("fe80::1/64")}}},
		routes: map[netip.Addr]string{},
		dial:   map[string]error{},
		heard:  map[string][]Heard{},
		health: func() (int, string, error) { return 0, "", fmt.Errorf("dial: %w", syscall.ECONNREFUSED) },
	}
	for _, k := range []string{"arp_ignore", "arp_announce", "arp_notify", "rp_filter"} {
		n.sysctl("ipv4", "all", k, 0)
		n.sysctl("ipv4", "eth0", k, 0)
	}
	n.sysctl("ipv6", "eth0", "disable_ipv6", 0)
	n.sysctl("ipv6", "all", "accept_dad", 0)
	n.sysctl("ipv6", "eth0", "accept_dad", 1)
	return n
}

func (n *fakeNode) sysctl(fam, ifc, key string, v int) {
	n.files["/proc/sys/net/"+fam+"/conf/"+ifc+"/"+key] = fmt.Sprintf("%d\n", v)
}

// InterfaceExists and InterfaceFor make fakeNode a config.Host.
func (n *fakeNode) InterfaceExists(name string) bool { _, ok := n.links[name]; return ok }
func (n *fakeNode) InterfaceFor(ip netip.Addr) (string, bool) {
	for name, l := range n.links {
		if _, ok := l.Subnet(ip); ok {
			return name, true
		}
	}
	return "", false
}

func (n *fakeNode) deps() Deps {
	return Deps{
		ReadFile: func(p string) ([]byte, error) {
			s, ok := n.files[p]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			}
			return []byte(s), nil
		},
		Host: n,
		Link: func(name string) (Link, error) {
			l, ok := n.links[name]
			if !ok {
				return Link{}, ErrNoLink
			}
			return l, nil
		},
		DefaultRouteLinks: func() ([]string, error) { return nil, nil },
		RouteGet: func(dst netip.Addr) (string, error) {
			if out, ok := n.routes[dst]; ok {
				return out, nil
			}
			return "", errors.New("network is unreachable")
		},
		LocalAddr: func(a netip.Addr) bool {
			for _, l := range n.links {
				for _, p := range l.Prefixes {
					if p.Addr() == a {
						return true
					}
				}
			}
			return false
		},
		DialTCP: func(_ context.Context, addr string) error {
			if err, ok := n.dial[addr]; ok {
				return err
			}
			return errors.New("i/o timeout")
		},
		LookupHost: func(context.Context, string) ([]string, error) { return nil, errors.New("no such host") },
		HTTPGet:    func(context.Context, string) (int, string, error) { return n.health() },
		ListenVRRP: func(_ context.Context, ifname string, family int, _ []uint8, _ time.Duration) ([]Heard, error) {
			return n.heard[fmt.Sprintf("%s/%d", ifname, family)], nil
		},
		KubeGet: func(_ context.Context, _ *config.Lease, path string) (KubeResponse, error) { return n.kube(path) },
	}
}

func (n *fakeNode) run(t *testing.T) ([]Line, string) {
	t.Helper()
	var out bytes.Buffer
	lines := Run(context.Background(), Options{ConfigPath: "/etc/vipd/config.yaml", Out: &out}, n.deps())
	return lines, out.String()
}

// find returns the lines whose check starts with prefix.
func find(lines []Line, prefix string) []Line {
	var out []Line
	for _, l := range lines {
		if strings.HasPrefix(l.Check, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func expectLine(t *testing.T, lines []Line, prefix string, v Verdict, says string) {
	t.Helper()
	for _, l := range find(lines, prefix) {
		if l.Verdict == v && strings.Contains(l.String(), says) {
			return
		}
	}
	t.Errorf("no %s line %q saying %q in:\n%s", v, prefix, says, dump(lines))
}

func dump(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.String() + "\n")
	}
	return b.String()
}

const vrrpConfig = `apiVersion: vipd.io/v1alpha1
kind: Config
node: node1
mode: vrrp
groups:
  - name: web
    vips:
      - address: 198.51.100.100
      - address: 2001:db8::100
    vrrp:
      vrid: 51
`

func TestRunCleanVRRPNode(t *testing.T) {
	n := newFakeNode(vrrpConfig)
	lines, out := n.run(t)
	for _, l := range lines {
		if l.Verdict != OK && l.Check != "unauthenticated" {
			t.Errorf("not OK on a clean node: %s", l)
		}
	}
	expectLine(t, lines, "unauthenticated", Warn, "vrrp")
	expectLine(t, lines, "interface eth0", OK, "group web")
	expectLine(t, lines, "vip 198.51.100.100", OK, "198.51.100.0/24")
	expectLine(t, lines, "vrrp vrid 51 IPv4 on eth0", OK, "no other router heard")
	expectLine(t, lines, "vrrp vrid 51 IPv6 on eth0", OK, "no other router heard")
	expectLine(t, lines, "http", OK, "not running")
	if ExitCode(lines) != 1 {
		t.Errorf("exit %d, want 1 (the unauthenticated VRRP warning)", ExitCode(lines))
	}
	if out != dump(lines) {
		t.Errorf("streamed output differs from the lines:\n%s\nvs\n%s", out, dump(lines))
	}
}

func TestRunStaticCleanIsExitZero(t *testing.T) {
	n := newFakeNode(`apiVersion: vipd.io/v1alpha1
kind: Config
mode: static
node: node1
groups: [{name: web, vips: [{address: 198.51.100.100}]}]
`)
	n.health = func() (int, string, error) { return 200, "ok", nil }
	lines, _ := n.run(t)
	if ExitCode(lines) != 0 {
		t.Errorf("exit %d on a clean static node:\n%s", ExitCode(lines), dump(lines))
	}
	expectLine(t, lines, "http", OK, "healthy")
	if len(find(lines, "sysctl eth0 disable_ipv6")) != 0 {
		t.Error("IPv6 checks without IPv6 VIPs")
	}
}

func TestRunConfigFailureSkipsTheRest(t *testing.T) {
	n := newFakeNode(strings.Replace(vrrpConfig, "vrid: 51", "vrid: 300", 1))
	lines, _ := n.run(t)
	expectLine(t, lines, "config", Fail, "groups[0].vrrp.vrid: 300: must be between 1 and 255")
	expectLine(t, lines, "capabilities", OK, "")
	expectLine(t, lines, "remaining checks", Warn, "skipped")
	if len(lines) != 3 || ExitCode(lines) != 2 {
		t.Errorf("want config, capabilities and the skip line, exit 2:\n%s", dump(lines))
	}
	n = newFakeNode("")
	delete(n.files, "/etc/vipd/config.yaml")
	lines, _ = n.run(t)
	expectLine(t, lines, "config", Fail, "does not exist")
}

func TestRunMissingInterface(t *testing.T) {
	n := newFakeNode(strings.Replace(vrrpConfig, "vrid: 51", "vrid: 51\n      interface: bond0", 1))
	lines, _ := n.run(t)
	expectLine(t, lines, "config", OK, "valid")
	expectLine(t, lines, "interface bond0", Fail, "not present")
	if ExitCode(lines) != 2 {
		t.Errorf("exit %d, want 2", ExitCode(lines))
	}
	if len(find(lines, "vrrp vrid 51 IPv4 on bond0")) != 0 {
		t.Error("listened on a missing interface")
	}
	// A link that is down.
	n = newFakeNode(vrrpConfig)
	l := n.links["eth0"]
	l.OperState = "lowerlayerdown"
	n.links["eth0"] = l
	lines, _ = n.run(t)
	expectLine(t, lines, "interface eth0", Fail, "lowerlayerdown")
}

func TestRunSysctlsAndSubnets(t *testing.T) {
	n := newFakeNode(strings.Replace(vrrpConfig, "      - address: 2001:db8::100\n", "      - address: 2001:db8::100\n      - address: 203.0.113.7\n        interface: eth0\n", 1))
	n.sysctl("ipv4", "eth0", "arp_ignore", 2)
	n.sysctl("ipv4", "all", "rp_filter", 1)
	n.sysctl("ipv6", "eth0", "disable_ipv6", 1)
	n.routes[netip.MustParseAddr("198.51.100.12")] = "eth1"
	lines, _ := n.run(t)
	expectLine(t, lines, "vip 203.0.113.7", Warn, "in no subnet of eth0 (198.51.100.11/24;")
	expectLine(t, lines, "sysctl eth0 arp_ignore", Fail, "203.0.113.7")
	expectLine(t, lines, "sysctl eth0 rp_filter", OK, "strict")
	expectLine(t, lines, "sysctl eth0 disable_ipv6", Fail, "cannot be bound")
	if ExitCode(lines) != 2 {
		t.Errorf("exit %d", ExitCode(lines))
	}
}

func TestRunVRRPCollisionAndPeers(t *testing.T) {
	cfg := strings.Replace(vrrpConfig, "vrid: 51", "vrid: 51\n      unicastPeers: [198.51.100.12, \"2001:db8::12\"]", 1)
	n := newFakeNode(cfg)
	n.routes[netip.MustParseAddr("198.51.100.12")] = "eth0"
	n.routes[netip.MustParseAddr("2001:db8::12")] = "eth1"
	n.heard["eth0/4"] = []Heard{
		{Src: netip.MustParseAddr("198.51.100.12"), VRID: 51, Priority: 100, Interval: time.Second, VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}, Count: 3},
		{Src: netip.MustParseAddr("198.51.100.66"), VRID: 51, Priority: 150, Interval: time.Second, VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.200")}, Count: 3},
		// Our own adverts (vipd running here) are not another router.
		{Src: netip.MustParseAddr("198.51.100.11"), VRID: 51, Priority: 200, Interval: time.Second, VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.200")}, Count: 3},
	}
	lines, _ := n.run(t)
	expectLine(t, lines, "vrrp vrid 51 IPv4 on eth0", OK, "198.51.100.12 priority 100")
	expectLine(t, lines, "vrrp vrid 51 IPv4 on eth0", Fail, "198.51.100.66 priority 150 interval 1s advertises 198.51.100.200 (3 heard), but our VIPs are 198.51.100.100: a VRID collision")
	if got := len(find(lines, "vrrp vrid 51 IPv4 on eth0")); got != 2 {
		t.Errorf("%d lines for VRID 51 IPv4, want 2 (own adverts ignored):\n%s", got, dump(lines))
	}
	expectLine(t, lines, "vrrp peer 198.51.100.12", OK, "routed via eth0")
	expectLine(t, lines, "vrrp peer 2001:db8::12", Warn, "routed via eth1")
	// Without CAP_NET_RAW the listen is skipped, and said so.
	n.files["/proc/self/status"] = "CapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n"
	lines, _ = n.run(t)
	expectLine(t, lines, "vrrp listen", Warn, "CAP_NET_RAW")
}

func TestRunGossipPeers(t *testing.T) {
	n := newFakeNode(`apiVersion: vipd.io/v1alpha1
kind: Config
node: node1
mode: gossip
gossip:
  insecure: true
  peers: [198.51.100.11, 198.51.100.12, "198.51.100.13:8000", 198.51.100.14]
groups: [{name: web, vips: [{address: 198.51.100.100}]}]
`)
	// Does this branch's schema know gossip.insecure yet? Without it the
	// config is plain.
	if _, err := config.Parse([]byte(n.files["/etc/vipd/config.yaml"])); err != nil {
		n.files["/etc/vipd/config.yaml"] = strings.Replace(n.files["/etc/vipd/config.yaml"], "  insecure: true\n", "", 1)
	}
	n.dial["198.51.100.12:7946"] = nil
	n.dial["198.51.100.13:8000"] = fmt.Errorf("connect: %w", syscall.ECONNREFUSED)
	lines, _ := n.run(t)
	expectLine(t, lines, "gossip peer 198.51.100.11:7946", OK, "own address")
	expectLine(t, lines, "gossip peer 198.51.100.12:7946", OK, "reachable")
	expectLine(t, lines, "gossip peer 198.51.100.13:8000", Warn, "nothing listens")
	expectLine(t, lines, "gossip peer 198.51.100.14:7946", Fail, "unreachable")
	expectLine(t, lines, "unauthenticated", Warn, "keyFile")
}

// TestRunLeaseAgainstAPIServer runs the Lease checks through the real
// client code (kubeconfig, rest config) against a fake API server that
// answers with a Date header off by a chosen skew.
func TestRunLeaseAgainstAPIServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		skew      time.Duration
		wantLease Verdict
		leaseSays string
		wantSkew  Verdict
	}{
		{"held, in sync", 200, `{"spec":{"holderIdentity":"node2"}}`, 0, OK, "held by node2", OK},
		{"not yet created", 404, `{"kind":"Status","message":"leases \"vipd-web\" not found"}`, 0, OK, "does not exist yet", OK},
		{"forbidden", 403, `{"kind":"Status","message":"leases is forbidden: User \"x\" cannot get"}`, 0, Fail, "cannot get", OK},
		{"unauthorized, skewed", 401, `{"kind":"Status","message":"Unauthorized"}`, 10 * time.Second, Fail, "401", Fail},
		{"skew 2.5s", 200, `{"spec":{}}`, 2500 * time.Millisecond, OK, "held by nobody", Warn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(tc.skew).UTC().Format(http.TimeFormat))
				if r.URL.Path == "/version" {
					_, _ = w.Write([]byte(`{"gitVersion":"v1.36.0"}`))
					return
				}
				if r.URL.Path != "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/vipd-web" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			kc := filepath.Join(t.TempDir(), "kubeconfig")
			if err := os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, srv.URL)), 0o600); err != nil {
				t.Fatal(err)
			}
			n := newFakeNode(fmt.Sprintf(`apiVersion: vipd.io/v1alpha1
kind: Config
node: node1
mode: lease
lease: {kubeconfig: %q}
groups: [{name: web, vips: [{address: 198.51.100.100}]}]
`, kc))
			d := n.deps()
			d.KubeGet = SystemDeps().KubeGet
			lines := Run(context.Background(), Options{ConfigPath: "/etc/vipd/config.yaml"}, d)
			expectLine(t, lines, "api server lease kube-system/vipd-web", tc.wantLease, tc.leaseSays)
			expectLine(t, lines, "clock skew", tc.wantSkew, "")
		})
	}
}
