package chartest

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// root is the repository root (tests run in internal/chartest).
func root(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// image is deploy/IMAGE: the one image reference every manifest names.
func image(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/IMAGE"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// helmVersion is what tools/helm/build.sh builds; keep them equal.
const helmVersion = "v4.3.2"

// helm returns the pinned Helm: $VIPD_HELM, or the binary tools/helm/build.sh
// caches (keyed by Helm's and Go's versions, like scripts/test's staticcheck).
// Missing, it is built under VIPD_REQUIRE_LAB=1 (CI may not skip) and the
// test skips otherwise, saying how to get it.
func helm(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("VIPD_HELM"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	bin := filepath.Join(cache, "vipd", "helm-"+helmVersion+"-"+runtime.Version(), "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv("VIPD_REQUIRE_LAB") != "1" {
		t.Skipf("helm %s not built: run tools/helm/build.sh (~1.5 min once, then cached) or set VIPD_HELM (looked for %s)", helmVersion, bin)
	}
	out, err := exec.Command(filepath.Join(root(t), "tools/helm/build.sh")).Output()
	if err != nil {
		t.Fatalf("VIPD_REQUIRE_LAB=1 and helm is missing; tools/helm/build.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// runHelm runs helm with args in the repository root; it returns stdout, and
// stderr as the error text on failure.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	cmd.Dir = root(t)
	// Helm's own state stays out of the user's home.
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+tmp, "HELM_CONFIG_HOME="+tmp, "HELM_DATA_HOME="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// splitDocs splits a multi-document YAML stream, dropping empty documents
// (Helm's "# Source:" comments alone count as empty).
func splitDocs(s string) []string {
	var docs []string
	for _, d := range docSep.Split(s, -1) {
		body := false
		for _, l := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				body = true
				break
			}
		}
		if body {
			docs = append(docs, d)
		}
	}
	return docs
}

// strict decodes with the Kubernetes API types and fails on unknown or
// duplicate fields, as `kubectl apply --validate=strict` would.
var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

func decodeAll(t *testing.T, what string, docs []string) []kruntime.Object {
	t.Helper()
	var objs []kruntime.Object
	for i, d := range docs {
		obj, _, err := strict.Decode([]byte(d), nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d does not decode strictly with the API types: %v\n%s", what, i, err, d)
		}
		objs = append(objs, obj)
	}
	return objs
}

// checkObjects holds every rendering to the pod spec issue #14 asks of
// every vipd manifest, and validates the vipd config it carries.
func checkObjects(t *testing.T, what string, objs []kruntime.Object) {
	t.Helper()
	var (
		ds      *appsv1.DaemonSet
		cms     = map[string]*corev1.ConfigMap{}
		secrets = map[string]*corev1.Secret{}
	)
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			if ds != nil {
				t.Fatalf("%s: two DaemonSets", what)
			}
			ds = o
		case *corev1.ConfigMap:
			cms[o.Name] = o
		case *corev1.Secret:
			secrets[o.Name] = o
		}
		m, err := meta.Accessor(o)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetNamespace() == "" {
			t.Errorf("%s: %T %s has no namespace", what, o, m.GetName())
		}
	}
	if ds == nil {
		t.Fatalf("%s: no DaemonSet", what)
	}
	ps := ds.Spec.Template.Spec
	errorf := func(format string, args ...any) { t.Helper(); t.Errorf(what+": "+format, args...) }
	if !ps.HostNetwork {
		errorf("hostNetwork is not true")
	}
	if ps.PriorityClassName != "system-node-critical" {
		errorf("priorityClassName %q, want system-node-critical", ps.PriorityClassName)
	}
	// vipd's stop window is 10 s for the election, plus the goodbye.
	if g := ps.TerminationGracePeriodSeconds; g == nil || *g < 15 {
		errorf("terminationGracePeriodSeconds %v, want at least 15", g)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Image != image(t) {
		errorf("image %q, want deploy/IMAGE %q", c.Image, image(t))
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatalf("%s: no securityContext.capabilities", what)
	}
	if got := capNames(sc.Capabilities.Drop); got != "ALL" {
		errorf("capabilities.drop %s, want ALL", got)
	}
	if got := capNames(sc.Capabilities.Add); got != "NET_ADMIN,NET_RAW" {
		errorf("capabilities.add %s, want NET_ADMIN,NET_RAW", got)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errorf("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errorf("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		errorf("privileged")
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		errorf("no liveness probe on /healthz")
	}
	if p := c.ReadinessProbe; p != nil && (p.HTTPGet == nil || p.HTTPGet.Path != "/readyz") {
		errorf("readiness probe not on /readyz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		errorf("resources: want cpu and memory requests and a memory limit, got %v", c.Resources)
	}

	// The config: the ConfigMap the pod mounts at /etc/vipd, validated as
	// `vipd validate` would on a node with the interfaces it names.
	var cmName, keySecret, keyDir string
	for _, v := range ps.Volumes {
		for _, m := range c.VolumeMounts {
			if m.Name != v.Name {
				continue
			}
			switch {
			case m.MountPath == "/etc/vipd" && v.ConfigMap != nil:
				cmName = v.ConfigMap.Name
			case v.Secret != nil:
				keySecret, keyDir = v.Secret.SecretName, m.MountPath
			}
		}
	}
	cm := cms[cmName]
	if cm == nil {
		t.Fatalf("%s: the ConfigMap %q mounted at /etc/vipd is not rendered", what, cmName)
	}
	data, ok := cm.Data["vipd.yaml"]
	if !ok {
		t.Fatalf("%s: ConfigMap %s has no vipd.yaml", what, cmName)
	}
	if keySecret != "" {
		s := secrets[keySecret]
		if s == nil {
			t.Fatalf("%s: Secret %s is mounted but not rendered", what, keySecret)
		}
		// The key file lives where the pod mounts it; here, in a temp dir.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "key"), s.Data["key"], 0o600); err != nil {
			t.Fatal(err)
		}
		data = strings.ReplaceAll(data, keyDir+"/", dir+"/")
	}
	validateConfig(t, what, data)
}

func capNames(cs []corev1.Capability) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

// anyHost has every interface, and eth0's subnet holds every address: the
// config is checked as on a node that has what it names.
type anyHost struct{}

func (anyHost) InterfaceExists(string) bool            { return true }
func (anyHost) InterfaceFor(netip.Addr) (string, bool) { return "eth0", true }

func validateConfig(t *testing.T, what, data string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatalf("%s: the rendered vipd config does not parse: %v\n%s", what, err, data)
	}
	if err := c.Validate(anyHost{}); err != nil {
		t.Fatalf("%s: the rendered vipd config is invalid: %v\n%s", what, err, data)
	}
	if p := c.UnauthenticatedPaths(); len(p) > 0 && c.Mode != config.ModeVRRP {
		t.Errorf("%s: the rendered config leaves a door open: %v", what, p)
	}
	return c
}

// dryRun creates every document server-side with dryRun=All and strict
// field validation, as admin, against the package's real kube-apiserver.
// Namespaces the documents name are created (really) first.
func dryRun(t *testing.T, what string, docs []string) {
	t.Helper()
	for _, err := range dryRunErrors(t, docs) {
		t.Errorf("%s: %v", what, err)
	}
}

func dryRunErrors(t *testing.T, docs []string) (errs []error) {
	t.Helper()
	cp := kubetest.Shared(t)
	rc := cp.RESTConfig(cp.AdminToken)
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := cp.Client(cp.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, d := range docs {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatal(err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		ns := u.GetNamespace()
		if ns != "" {
			_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil && !strings.Contains(err.Error(), "already exists") {
				t.Fatal(err)
			}
		}
		_, err = dyn.Resource(m.Resource).Namespace(ns).Create(ctx, &u, metav1.CreateOptions{
			DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict",
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s refused by the API server (dry run): %w", gvk.Kind, ns, u.GetName(), err))
		}
	}
	return errs
}
