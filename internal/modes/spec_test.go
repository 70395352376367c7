package modes

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
	"github.com/vipd/vipd/internal/node"
)

// healthConfig has every check kind, every effect, both policies and
// hooks with and without a timeout.
const healthConfig = `apiVersion: vipd.io/v1alpha1
kind: Config
node: cp-1
mode: static
health: {startupDelay: 30s}
groups:
- name: api
  priority: 150
  vips: [{address: 198.51.100.100}]
  track: [{check: apiserver}, {check: drain}, {check: haproxy, weight: -60}, {check: uplink, weight: 20}]
  notify:
    command: [/etc/keepalived/notify.sh]
    master: [/bin/logger, master]
    backup: [/bin/logger, backup]
    fault: [/bin/logger, fault]
    stop: [/bin/logger, stop]
    timeout: 5s
- name: ingress
  vips: [{address: 198.51.100.101}]
  track: [{check: ingress}, {check: script, weight: 10}]
  whenNoneHealthy: release
  notify: {master: [/bin/true]}
- name: plain
  vips: [{address: 198.51.100.102}]
checks:
- name: apiserver
  interval: 200ms
  timeout: 150ms
  rise: 3
  fall: 4
  http: {url: "https://127.0.0.1:6443/readyz", caFile: /etc/kubernetes/pki/ca.crt, certFile: /c.crt, keyFile: /c.key,
         bearerTokenFile: /token, host: kubernetes, expectStatus: "200"}
- name: web
  http: {url: "https://127.0.0.1:8443/", insecureSkipVerify: true, expectStatus: 204-302}
- name: defaults
  http: {url: "http://127.0.0.1:8080/healthz"}
- name: haproxy
  tcp: {address: "127.0.0.1:8404"}
- name: script
  exec: {command: [/etc/keepalived/check.sh, -q], user: nobody}
- name: ingress
  endpoints: {namespace: ingress-nginx, service: ingress-nginx-controller, kubeconfig: /etc/vipd/kubeconfig, server: "https://127.0.0.1:6443"}
- name: uplink
  interface: {name: eth1}
- name: drain
  file: {path: /etc/vipd/drain}
`

// loadConfig parses and validates y (every VIP is on eth0).
func loadConfig(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(eth0Host{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHealthSpecEveryKind(t *testing.T) {
	c := loadConfig(t, healthConfig)
	s := NodeSpec(c, "v1")
	want := []health.Spec{
		{Name: "apiserver", Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 3, Fall: 4,
			HTTP: &health.HTTP{URL: "https://127.0.0.1:6443/readyz", CAFile: "/etc/kubernetes/pki/ca.crt", CertFile: "/c.crt", KeyFile: "/c.key",
				BearerTokenFile: "/token", Host: "kubernetes", StatusMin: 200, StatusMax: 200}},
		{Name: "web", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			HTTP: &health.HTTP{URL: "https://127.0.0.1:8443/", InsecureSkipVerify: true, StatusMin: 204, StatusMax: 302}},
		{Name: "defaults", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			HTTP: &health.HTTP{URL: "http://127.0.0.1:8080/healthz", StatusMin: 200, StatusMax: 399}},
		{Name: "haproxy", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			TCP: &health.TCP{Address: "127.0.0.1:8404"}},
		{Name: "script", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			Exec: &health.Exec{Command: []string{"/etc/keepalived/check.sh", "-q"}, User: "nobody"}},
		{Name: "ingress", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			Endpoints: &health.Endpoints{Namespace: "ingress-nginx", Service: "ingress-nginx-controller", NodeName: "cp-1",
				Kubeconfig: "/etc/vipd/kubeconfig", Server: "https://127.0.0.1:6443"}},
		{Name: "uplink", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			Interface: &health.Interface{Name: "eth1"}},
		{Name: "drain", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2,
			File: &health.File{Path: "/etc/vipd/drain"}},
	}
	if len(s.Checks) != len(want) {
		t.Fatalf("%d checks, want %d: %+v", len(s.Checks), len(want), s.Checks)
	}
	for i := range want {
		if !reflect.DeepEqual(s.Checks[i], want[i]) {
			t.Errorf("check %s:\n got %s\nwant %s", want[i].Name, show(s.Checks[i]), show(want[i]))
		}
	}
	// HealthSpec alone gives the same, with the node name it is given.
	if got := HealthSpec(c.Checks[5], "other"); got.Endpoints.NodeName != "other" {
		t.Errorf("HealthSpec NodeName = %q, want the name passed", got.Endpoints.NodeName)
	}
}

// TestEndpointsNodeNameIsTheConfigNode: the endpoints check looks for
// this node's name as the config names it (node:, default the hostname),
// which is what kubelet registers when the two agree.
func TestEndpointsNodeNameIsTheConfigNode(t *testing.T) {
	c := loadConfig(t, `apiVersion: vipd.io/v1alpha1
kind: Config
node: worker-7
mode: lease
lease: {kubeconfig: /etc/vipd/kubeconfig}
groups:
- name: ingress
  vips: [{address: 198.51.100.100}]
  track: [{check: ingress}]
checks:
- name: ingress
  endpoints: {namespace: ingress, service: nginx}
`)
	e := NodeSpec(c, "").Checks[0].Endpoints
	if e == nil || e.NodeName != "worker-7" || e.Kubeconfig != "/etc/vipd/kubeconfig" || e.Server != "" {
		t.Fatalf("endpoints = %+v, want NodeName worker-7 and the lease's kubeconfig", e)
	}
}

func TestNodeSpecGroupsTracksNotify(t *testing.T) {
	s := NodeSpec(loadConfig(t, healthConfig), "v1")
	if s.Node != "cp-1" || s.Mode != config.ModeStatic || s.Version != "v1" {
		t.Errorf("spec head %+v", s)
	}
	if s.StartupDelay != 30*time.Second || s.MinMoveInterval != config.DefaultMinMoveInterval {
		t.Errorf("startupDelay %s, minMoveInterval %s; want 30s and the default 10s", s.StartupDelay, s.MinMoveInterval)
	}
	if len(s.Groups) != 3 {
		t.Fatalf("groups %+v", s.Groups)
	}
	api, ingress, plain := s.Groups[0], s.Groups[1], s.Groups[2]

	wantTrack := []node.Track{{Check: "apiserver"}, {Check: "drain"}, {Check: "haproxy", Weight: -60}, {Check: "uplink", Weight: 20}}
	if api.Name != "api" || api.Priority != 150 || !reflect.DeepEqual(api.Track, wantTrack) || !api.KeepWhenNoneHealthy {
		t.Errorf("api: %+v; want tracks %+v and keep (the default)", api, wantTrack)
	}
	wantHooks := &hooks.Spec{Command: []string{"/etc/keepalived/notify.sh"}, Master: []string{"/bin/logger", "master"},
		Backup: []string{"/bin/logger", "backup"}, Fault: []string{"/bin/logger", "fault"}, Stop: []string{"/bin/logger", "stop"}, Timeout: 5 * time.Second}
	if !reflect.DeepEqual(api.Notify, wantHooks) {
		t.Errorf("api notify %+v, want %+v", api.Notify, wantHooks)
	}

	if !reflect.DeepEqual(ingress.Track, []node.Track{{Check: "ingress"}, {Check: "script", Weight: 10}}) || ingress.KeepWhenNoneHealthy {
		t.Errorf("ingress: %+v; want its tracks and release", ingress)
	}
	if want := (&hooks.Spec{Master: []string{"/bin/true"}, Timeout: config.DefaultNotifyTimeout}); !reflect.DeepEqual(ingress.Notify, want) {
		t.Errorf("ingress notify %+v, want %+v (the default timeout)", ingress.Notify, want)
	}

	if plain.Track != nil || plain.Notify != nil || !plain.KeepWhenNoneHealthy || plain.Priority != config.DefaultPriority {
		t.Errorf("plain: %+v; want no tracks, no hooks, keep", plain)
	}
}

// TestNodeSpecMinMoveIntervalOff: minMoveInterval 0 reaches the daemon as 0.
func TestNodeSpecMinMoveIntervalOff(t *testing.T) {
	s := NodeSpec(loadConfig(t, `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: static
health: {minMoveInterval: 0s}
groups: [{name: web, vips: [{address: 198.51.100.100}]}]
`), "")
	if s.MinMoveInterval != 0 || s.StartupDelay != 0 || s.Checks != nil {
		t.Fatalf("spec %+v", s)
	}
}

// TestNodeSpecUnauthenticated: the config's unauthenticated paths reach
// the daemon (for its log and /status); a keyed gossip cluster has none.
func TestNodeSpecUnauthenticated(t *testing.T) {
	const head = "apiVersion: vipd.io/v1alpha1\nkind: Config\nnode: n1\n"
	const group = "groups: [{name: web, vips: [{address: 198.51.100.100}]}]\n"
	key := gossipKey(t)
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"static", "mode: static\n" + group, ""},
		{"gossip with a key", "mode: gossip\ngossip: {keyFile: " + key + "}\n" + group, ""},
		{"gossip insecure", "mode: gossip\ngossip: {insecure: true}\n" + group, "gossip: gossip.insecure is true"},
		{"vrrp", "mode: vrrp\ngroups: [{name: web, vrrp: {vrid: 51}, vips: [{address: 198.51.100.100}]}]\n", "vrrp: adverts carry no authentication"},
	} {
		got := NodeSpec(loadConfig(t, head+tc.yaml), "").Unauthenticated
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: %q, want none", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
			t.Errorf("%s: %q, want one starting %q", tc.name, got, tc.want)
		}
	}
}

// show prints a spec with its kind's fields (%+v alone prints pointers).
func show(s health.Spec) string {
	out := fmt.Sprintf("%s %s/%s rise %d fall %d", s.Name, s.Interval, s.Timeout, s.Rise, s.Fall)
	for _, p := range []any{s.HTTP, s.TCP, s.Exec, s.Endpoints, s.Interface, s.File} {
		if v := reflect.ValueOf(p); !v.IsNil() {
			out += fmt.Sprintf(" %+v", v.Elem().Interface())
		}
	}
	return out
}
