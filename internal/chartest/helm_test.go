package chartest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/helm")

const chart = "deploy/helm/vipd"

// The shapes' test values (testdata/helm/<name>.values.yaml); each is rendered
// into testdata/helm/<name>.golden.yaml in namespace kube-system.
var helmCases = []string{"control-plane", "ingress", "multivip-lease", "multivip-gossip", "groups"}

func valuesFile(name string) string {
	return filepath.Join("internal/chartest/testdata/helm", name+".values.yaml")
}

func render(t *testing.T, name string) string {
	t.Helper()
	out, err := runHelm(t, "template", "vipd", chart, "--namespace", "kube-system", "-f", valuesFile(name))
	if err != nil {
		t.Fatalf("helm template %s: %v", name, err)
	}
	return out
}

// TestChartImage: the chart's default image is deploy/IMAGE, and its
// appVersion the image's tag.
func TestChartImage(t *testing.T) {
	var values struct {
		Image string `json:"image"`
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	for f, v := range map[string]any{"values.yaml": &values, "Chart.yaml": &meta} {
		b, err := os.ReadFile(filepath.Join(root(t), chart, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	img := image(t)
	if values.Image != img {
		t.Errorf("values.yaml image %q, want deploy/IMAGE %q", values.Image, img)
	}
	if tag := img[strings.LastIndex(img, ":")+1:]; meta.AppVersion != tag {
		t.Errorf("Chart.yaml appVersion %q, want the image tag %q", meta.AppVersion, tag)
	}
}

// TestHelmLint: `helm lint --strict` for every shape.
func TestHelmLint(t *testing.T) {
	for _, name := range helmCases {
		t.Run(name, func(t *testing.T) {
			out, err := runHelm(t, "lint", "--strict", chart, "--namespace", "kube-system", "-f", valuesFile(name))
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
		})
	}
}

// TestHelmTemplate: each shape renders as its golden file, every object
// decodes strictly with the API types, the pod spec keeps its promises and
// the vipd config validates.
func TestHelmTemplate(t *testing.T) {
	for _, name := range helmCases {
		t.Run(name, func(t *testing.T) {
			out := render(t, name)
			golden := filepath.Join("testdata/helm", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestHelmTemplate -update writes it)", err)
			}
			if out != string(want) {
				t.Errorf("helm template differs from %s (go test -run TestHelmTemplate -update, then review the diff)", golden)
			}
			checkObjects(t, name, decodeAll(t, name, splitDocs(out)))
		})
	}
}

// TestHelmRejects: a typo or a missing choice fails the install, naming the
// key, before anything reaches the cluster.
func TestHelmRejects(t *testing.T) {
	vip := []string{"--set", "vips={198.51.100.10}"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"top-level typo", append([]string{"--set", "shpe=ingress"}, vip...), "'shpe' not allowed"},
		{"nested typo", append([]string{"--set", "config.binding.lifetme=3s"}, vip...), "'lifetme' not allowed"},
		{"group typo", []string{"--set", "groups[0].name=a", "--set", "groups[0].vips[0].adress=198.51.100.10"}, "'adress' not allowed"},
		{"check typo", append([]string{"--set", "checks[0].name=a", "--set", "checks[0].tpc.address=127.0.0.1:80"}, vip...), "'tpc' not allowed"},
		{"unknown shape", append([]string{"--set", "shape=ingres"}, vip...), "/shape"},
		{"bad duration", append([]string{"--set", "controlPlane.advertInterval=100"}, vip...), "/controlPlane/advertInterval"},
		{"short grace period", append([]string{"--set", "terminationGracePeriodSeconds=5"}, vip...), "/terminationGracePeriodSeconds"},
		{"no VIP", nil, "vips or groups"},
		{"gossip without a key", append([]string{"--set", "shape=multiVIP", "--set", "mode=gossip"}, vip...), "gossipKey"},
		{"gossip key not base64 of 16/24/32 bytes", append([]string{"--set", "shape=multiVIP", "--set", "mode=gossip", "--set", "gossipKey.value=c2VjcmV0"}, vip...), "/gossipKey/value"},
		{"control plane without VRRP", append([]string{"--set", "mode=lease"}, vip...), "shape controlPlane runs vrrp only"},
		{"other mode's section", append([]string{"--set", "shape=ingress", "--set", "config.vrrp.preempt=false"}, vip...), "config.vrrp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(t, append([]string{"template", "vipd", chart, "--namespace", "kube-system"}, tc.args...)...)
			var he *helmError
			if !errors.As(err, &he) {
				t.Fatalf("rendered, want an error naming %q:\n%s", tc.want, out)
			}
			if !strings.Contains(he.stderr, tc.want) {
				t.Errorf("error does not name %q:\n%s", tc.want, he.stderr)
			}
		})
	}
}

// TestHelmDryRun: every object of every shape is accepted by a real
// kube-apiserver (server-side dry run, strict field validation).
func TestHelmDryRun(t *testing.T) {
	for _, name := range helmCases {
		t.Run(name, func(t *testing.T) {
			dryRun(t, name, splitDocs(render(t, name)))
		})
	}
}

// TestDryRunRefuses: the dry run is not a rubber stamp: an unknown field
// and an invalid value are refused.
func TestDryRunRefuses(t *testing.T) {
	docs := []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\ndatta: {}\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: b, namespace: kube-system}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: c}}\n    spec: {containers: [{name: x, image: x}]}\n",
	}
	errs := dryRunErrors(t, docs)
	if len(errs) != len(docs) {
		t.Fatalf("%d of %d bad objects refused: %v", len(errs), len(docs), errs)
	}
	for _, want := range []string{`unknown field "datta"`, "does not match template `labels`"} {
		if !strings.Contains(fmt.Sprint(errs), want) {
			t.Errorf("errors do not say %q: %v", want, errs)
		}
	}
}

// TestHelmPinned: the test looks for the Helm that tools/helm/build.sh builds.
func TestHelmPinned(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "tools/helm/build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nversion="+helmVersion+"\n") {
		t.Errorf("tools/helm/build.sh does not build helm %s (helmVersion in helpers_test.go)", helmVersion)
	}
}

// TestHelmNotes: NOTES.txt renders for every shape and tells what the shape
// needs to be told (a client-side dry-run install renders it; template does not).
func TestHelmNotes(t *testing.T) {
	want := map[string][]string{
		"control-plane":   {"vipd manifest static-pod", "kubectl -n kube-system exec"},
		"ingress":         {"ingress-nginx/ingress-nginx-controller", "Kubernetes node name"},
		"multivip-gossip": {"Service vipd-gossip", "7946"},
	}
	for name, phrases := range want {
		t.Run(name, func(t *testing.T) {
			out, err := runHelm(t, "install", "vipd", chart, "--namespace", "kube-system", "--dry-run=client", "-f", valuesFile(name))
			if err != nil {
				t.Fatal(err)
			}
			_, notes, ok := strings.Cut(out, "\nNOTES:\n")
			if !ok {
				t.Fatalf("no NOTES in:\n%s", out)
			}
			for _, p := range phrases {
				if !strings.Contains(notes, p) {
					t.Errorf("NOTES lack %q:\n%s", p, notes)
				}
			}
		})
	}
}
