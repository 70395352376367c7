package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/vipd/vipd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files (and the generated manifests under deploy/) from the generator's output")

// goldenCase is one config rendered into one manifest. Goldens under deploy/
// are the shipped manifests themselves: they are the generator's output, so
// they cannot drift from it.
type goldenCase struct {
	name    string
	kind    string // static-pod or daemonset
	config  string // relative to the repository root
	keyFile string // --gossip-key, relative to the repository root
	opts    Options
	golden  string // relative to the repository root
}

var goldenCases = []goldenCase{
	{name: "vrrp static pod", kind: "static-pod", config: "examples/vrrp-apiserver.yaml", golden: "deploy/vrrp/static-pod.yaml"},
	{name: "lease static pod", kind: "static-pod", config: "examples/lease-controlplane.yaml", golden: "deploy/lease/static-pod.yaml"},
	{name: "lease daemonset", kind: "daemonset", config: "examples/lease-daemonset.yaml", golden: "deploy/lease/daemonset.yaml",
		opts: Options{NodeSelector: map[string]string{"node-role.kubernetes.io/lb": ""}}},
	{name: "gossip daemonset with key", kind: "daemonset", config: "internal/manifest/testdata/gossip-key.yaml",
		keyFile: "internal/manifest/testdata/gossip.key", golden: "internal/manifest/testdata/gossip-daemonset.golden.yaml"},
	{name: "ingress daemonset with endpoints check", kind: "daemonset", config: "examples/ingress-daemonset.yaml",
		keyFile: "internal/manifest/testdata/gossip.key",
		opts:    Options{Namespace: "ingress-nginx", Name: "vipd-ingress"}, golden: "internal/manifest/testdata/ingress-daemonset.golden.yaml"},
	{name: "vrrp pair with exec check and hooks", kind: "static-pod", config: "examples/vrrp-lb-pair.yaml",
		golden: "internal/manifest/testdata/vrrp-lb-pair-static-pod.golden.yaml"},
}

// root is the repository root (tests run in internal/manifest).
const root = "../.."

func generate(t *testing.T, c goldenCase) *Manifest {
	t.Helper()
	key := ""
	if c.keyFile != "" {
		key = filepath.Join(root, c.keyFile)
	}
	cfg, raw, err := Load(filepath.Join(root, c.config), key)
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	o.ConfigName = c.config
	var m *Manifest
	if c.kind == "static-pod" {
		m, err = StaticPod(cfg, o)
	} else {
		m, err = DaemonSet(cfg, raw, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(t *testing.T, m *Manifest) []byte {
	t.Helper()
	out, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, generate(t, c))
			path := filepath.Join(root, c.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/manifest -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generator's output (run go test ./internal/manifest -run TestGolden -update and review the diff):\n%s", c.golden, diffLines(string(want), string(got)))
			}
		})
	}
}

// diffLines shows the first differing lines.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return "(same lines)"
}

// strictDecoder decodes with the API types and fails on unknown or
// duplicate fields, as kubectl apply's server-side validation would.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

var docSep = regexp.MustCompile(`(?m)^---$`)

// decodeAll decodes every document of a manifest file; documents without
// apiVersion and kind are not Kubernetes objects and are returned as nil.
func decodeAll(t *testing.T, name string, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		if !kubeObjectRE.MatchString(doc) {
			t.Logf("%s: document %d has no apiVersion: not a Kubernetes object, not checked here", name, i+1)
			continue
		}
		obj, _, err := strictDecoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, i+1, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// podSpecs returns the pod specs among objs (a Pod's, a DaemonSet's template).
func podSpecs(objs []runtime.Object) []*corev1.PodSpec {
	var specs []*corev1.PodSpec
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Pod:
			specs = append(specs, &o.Spec)
		case *appsv1.DaemonSet:
			specs = append(specs, &o.Spec.Template.Spec)
		}
	}
	return specs
}

// securityRules are the properties every vipd pod has (issue #14), each a
// reason to fail. They are checked on the decoded objects, so a field that
// the API would drop or misread does not count.
var securityRules = []struct {
	name string
	ok   func(s *corev1.PodSpec, c *corev1.Container) bool
}{
	{"hostNetwork", func(s *corev1.PodSpec, _ *corev1.Container) bool { return s.HostNetwork }},
	{"priorityClassName system-node-critical", func(s *corev1.PodSpec, _ *corev1.Container) bool {
		return s.PriorityClassName == "system-node-critical"
	}},
	{"terminationGracePeriodSeconds covers the 10 s goodbye", func(s *corev1.PodSpec, _ *corev1.Container) bool {
		return s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds > electorStopSeconds
	}},
	{"seccomp RuntimeDefault", func(s *corev1.PodSpec, _ *corev1.Container) bool {
		return s.SecurityContext != nil && s.SecurityContext.SeccompProfile != nil && s.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	}},
	{"capabilities: drop ALL, add exactly NET_ADMIN and NET_RAW", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil {
			return false
		}
		add := slices.Clone(sc.Capabilities.Add)
		slices.Sort(add)
		return slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && slices.Equal(add, []corev1.Capability{"NET_ADMIN", "NET_RAW"})
	}},
	{"readOnlyRootFilesystem", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		return c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
	}},
	{"allowPrivilegeEscalation false", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		return c.SecurityContext != nil && c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation
	}},
	{"not privileged", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		return c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged
	}},
	{"liveness probe: GET /healthz on loopback", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		p := c.LivenessProbe
		return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == "/healthz" && (p.HTTPGet.Host == "127.0.0.1" || p.HTTPGet.Host == "::1")
	}},
	{"resources: requests, a memory limit, no CPU limit", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		r := c.Resources
		_, cpuLimit := r.Limits[corev1.ResourceCPU]
		return !r.Requests.Cpu().IsZero() && !r.Requests.Memory().IsZero() && !r.Limits.Memory().IsZero() && !cpuLimit
	}},
	{"every volume mounted read-only", func(_ *corev1.PodSpec, c *corev1.Container) bool {
		return !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return !m.ReadOnly })
	}},
	{"no hostPID, hostIPC", func(s *corev1.PodSpec, _ *corev1.Container) bool { return !s.HostPID && !s.HostIPC }},
	{"image is deploy/IMAGE", func(_ *corev1.PodSpec, c *corev1.Container) bool { return c.Image == DefaultImage }},
}

// TestSecurityProperties decodes every generated manifest and every pod
// under deploy/ with the API types and holds each pod to securityRules.
func TestSecurityProperties(t *testing.T) {
	sources := map[string][]byte{}
	for _, c := range goldenCases {
		sources["generated: "+c.name] = render(t, generate(t, c))
	}
	for _, f := range deployManifests(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sources[f] = data
	}
	pods := 0
	for name, data := range sources {
		for _, s := range podSpecs(decodeAll(t, name, data)) {
			if len(s.Containers) != 1 || len(s.InitContainers) != 0 {
				t.Errorf("%s: want exactly vipd's container, have %d (+%d init)", name, len(s.Containers), len(s.InitContainers))
				continue
			}
			pods++
			for _, r := range securityRules {
				if !r.ok(s, &s.Containers[0]) {
					t.Errorf("%s: %s: not so", name, r.name)
				}
			}
		}
	}
	if pods < len(goldenCases) {
		t.Fatalf("checked %d pods, want at least %d", pods, len(goldenCases))
	}
	t.Logf("%d pod specs hold all %d rules", pods, len(securityRules))
}

// deployManifests lists the YAML files under deploy/ that this package
// vouches for: all but the Helm chart and the kustomize bases (tested with
// their own tools).
func deployManifests(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (rel == filepath.Join("deploy", "helm") || rel == filepath.Join("deploy", "kustomize")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d manifests under deploy/: %v", len(files), files)
	}
	return files
}

// kubeObjectRE tells a Kubernetes manifest from other YAML under deploy/
// (e.g. Prometheus rule files), which the API server cannot check.
var kubeObjectRE = regexp.MustCompile(`(?m)^apiVersion:\s*\S+`)

func TestDefaultImageIsDeployIMAGE(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "IMAGE"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(data)); DefaultImage != want {
		t.Fatalf("DefaultImage = %q, deploy/IMAGE says %q", DefaultImage, want)
	}
}

// TestDeployImagesAreIMAGE: every image: under deploy/ names deploy/IMAGE
// (Helm templates excepted: they take it from values).
func TestDeployImagesAreIMAGE(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "IMAGE"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(data))
	imageRE := regexp.MustCompile(`(?m)^[ \t]*(?:-[ \t]+)?image:[ \t]*["']?([^"'\s#{][^"'\s#]*)`)
	n := 0
	err = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "templates" && strings.Contains(filepath.ToSlash(p), "/deploy/helm/") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range imageRE.FindAllStringSubmatch(string(b), -1) {
			n++
			if m[1] != want {
				t.Errorf("%s: image %s, want %s (deploy/IMAGE)", p, m[1], want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("found %d image: lines under deploy/, want at least 3", n)
	}
}

// TestRBACMatchesDeploy: the Roles the generator writes grant what the
// hand-written RBAC of deploy/ grants (the static pod's identity and the
// endpoints check use those files).
func TestRBACMatchesDeploy(t *testing.T) {
	for _, c := range []struct {
		file string
		want []rbacv1.PolicyRule
	}{
		{"deploy/lease/rbac.yaml", LeaseRules()},
		{"deploy/health/endpoints-rbac.yaml", EndpointsRules()},
	} {
		data, err := os.ReadFile(filepath.Join(root, c.file))
		if err != nil {
			t.Fatal(err)
		}
		roles := 0
		for _, o := range decodeAll(t, c.file, data) {
			if r, ok := o.(*rbacv1.Role); ok {
				roles++
				if !reflect.DeepEqual(r.Rules, c.want) {
					t.Errorf("%s: Role %s rules %+v, the generator writes %+v", c.file, r.Name, r.Rules, c.want)
				}
			}
		}
		if roles != 1 {
			t.Errorf("%s: %d Roles, want 1", c.file, roles)
		}
	}
}

func TestErrors(t *testing.T) {
	load := func(t *testing.T, text string) (*config.Config, []byte) {
		t.Helper()
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(workstation{}); err != nil {
			t.Fatal(err)
		}
		return cfg, []byte(text)
	}
	const head = "apiVersion: vipd.io/v1alpha1\nkind: Config\n"
	const group = "groups: [{name: g, vips: [{address: 198.51.100.1}]}]\n"
	for _, c := range []struct {
		name, kind, config string
		opts               Options
		want               string
	}{
		{"static pod in lease mode without a kubeconfig", "static-pod", head + "mode: lease\n" + group, Options{}, "lease.kubeconfig: required in a static pod"},
		{"static pod endpoints check without a kubeconfig", "static-pod", head + "mode: static\n" + group +
			"checks: [{name: e, endpoints: {namespace: n, service: s}}]\n", Options{}, "checks[0].endpoints.kubeconfig: required"},
		{"daemonset with a lease kubeconfig", "daemonset", head + "mode: lease\nlease: {kubeconfig: /k}\n" + group, Options{}, `lease.kubeconfig "/k": a DaemonSet uses its ServiceAccount`},
		{"daemonset with an endpoints kubeconfig", "daemonset", head + "mode: gossip\ngossip: {insecure: true}\n" + group +
			"checks: [{name: e, endpoints: {namespace: n, service: s, kubeconfig: /k}}]\n", Options{}, `checks[0].endpoints.kubeconfig "/k"`},
		{"gossip.dns Service in another namespace", "daemonset", head + "mode: gossip\ngossip: {dns: peers.other.svc.cluster.local, insecure: true}\n" + group, Options{},
			"names the Service peers in namespace other, but the DaemonSet goes to namespace kube-system"},
		{"drain file in the key's directory", "daemonset", head + "mode: gossip\ngossip: {keyFile: " + absTestKey(t) + "}\n" + group +
			"checks: [{name: d, file: {path: " + filepath.Dir(absTestKey(t)) + "/drain}}]\n", Options{}, "overlap"},
		{"CA file under the config's directory", "daemonset", head + "mode: static\n" + group +
			"checks: [{name: h, http: {url: 'https://127.0.0.1/', caFile: /config/ca.crt}}]\n", Options{}, "checks[0].http.caFile (/config/ca.crt, a file of the node) and the config"},
		{"a relative CA file", "static-pod", head + "mode: static\n" + group +
			"checks: [{name: h, http: {url: 'https://127.0.0.1/', caFile: pki/ca.crt}}]\n", Options{}, `checks[0].http.caFile: "pki/ca.crt" is relative`},
		{"node written over two lines", "daemonset", head + "node: >-\n  a\nmode: static\n" + group, Options{}, "write node: on one line"},
		{"a namespace that is no DNS label", "daemonset", head + "mode: static\n" + group, Options{Namespace: "Kube_System"}, `namespace "Kube_System": must be a DNS label`},
		{"a probe port that is a name", "static-pod", head + "mode: static\nhttp: {listen: '127.0.0.1:http'}\n" + group, Options{}, "numeric port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, raw := load(t, c.config)
			var err error
			if c.kind == "static-pod" {
				_, err = StaticPod(cfg, c.opts)
			} else {
				_, err = DaemonSet(cfg, raw, c.opts)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func absTestKey(t *testing.T) string {
	p, err := filepath.Abs("testdata/gossip.key")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGossipKeyElsewhere(t *testing.T) {
	// The config names the key's path on the node; --gossip-key reads it here.
	if _, _, err := Load(filepath.Join(root, "internal/manifest/testdata/gossip-key.yaml"), ""); err == nil || !strings.Contains(err.Error(), "gossip.keyFile") {
		t.Fatalf("without --gossip-key: %v, want the unreadable key file named", err)
	}
	cfg, _, err := Load(filepath.Join(root, "internal/manifest/testdata/gossip-key.yaml"), "testdata/gossip.key")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gossip.KeyFile != "/etc/vipd/gossip.key" || len(cfg.Gossip.Keys) != 1 {
		t.Fatalf("keyFile %q, %d keys", cfg.Gossip.KeyFile, len(cfg.Gossip.Keys))
	}
	if _, _, err := Load(filepath.Join(root, "examples/vrrp-apiserver.yaml"), "testdata/gossip.key"); err == nil {
		t.Fatal("a key for a config without gossip.keyFile was accepted")
	}
}

func TestProbeTarget(t *testing.T) {
	for _, c := range []struct {
		listen, host string
		port         int
	}{
		{"127.0.0.1:9610", "127.0.0.1", 9610},
		{"0.0.0.0:9000", "127.0.0.1", 9000},
		{":9000", "127.0.0.1", 9000},
		{"[::]:9610", "::1", 9610},
		{"[::1]:9610", "::1", 9610},
		{"198.51.100.5:80", "198.51.100.5", 80},
	} {
		h, p, err := probeTarget(c.listen)
		if err != nil || h != c.host || p != c.port {
			t.Errorf("probeTarget(%q) = %q, %d, %v; want %q, %d", c.listen, h, p, err, c.host, c.port)
		}
	}
}

func TestGracePeriod(t *testing.T) {
	for _, c := range []struct {
		name   string
		groups []config.Group
		want   int64
	}{
		{"no hooks: the elector's 10 s and a margin", []config.Group{{Name: "a"}}, 15},
		{"hooks: another 10 s for them", []config.Group{{Name: "a"}, {Name: "b", Notify: &config.Notify{Command: []string{"/x"}}}}, 25},
	} {
		if got := gracePeriod(&config.Config{Groups: c.groups}); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestWithoutNode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a: 1\nnode: x   # c\nb: 2\n", "a: 1\nb: 2\n"},
		{"# head\nnode: \"x\"\n", "# head\n"},
		{"a: 1\n", "a: 1\n"},
		{"a:\n  node: nested\n", "a:\n  node: nested\n"},
	} {
		got, _, err := withoutNode([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("withoutNode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestVolumeName(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/vipd":                   "host-etc-vipd",
		"/etc/kubernetes/pki/ca.crt":  "host-etc-kubernetes-pki-ca-crt",
		"/" + strings.Repeat("a", 80): "host-" + strings.Repeat("a", 58),
	} {
		if got := volumeName(in); got != want || len(got) > 63 {
			t.Errorf("volumeName(%q) = %q, want %q", in, got, want)
		}
	}
}
