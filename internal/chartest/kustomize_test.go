package chartest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

var overlays = []string{"control-plane", "ingress", "multi-vip"}

// build runs kustomize (krusty: what `kubectl kustomize` runs) on an overlay.
func build(t *testing.T, overlay string) []string {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root(t), "deploy/kustomize/overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitDocs(string(out))
}

// TestKustomize: every overlay builds; its objects decode strictly, keep
// the pod spec every vipd manifest keeps, name deploy/IMAGE, carry a valid
// vipd config, and a real kube-apiserver accepts them (dry run).
func TestKustomize(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			docs := build(t, o)
			objs := decodeAll(t, o, docs)
			checkObjects(t, o, objs)
			dryRun(t, o, docs)
		})
	}
}

// TestKustomizeImage: the base's images: entry names deploy/IMAGE, so
// `kustomize edit set image` has one thing to replace.
func TestKustomizeImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/kustomize/base/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(image(t), ":")
	for _, want := range []string{"- name: " + name, "newTag: " + tag} {
		if !strings.Contains(string(b), want) {
			t.Errorf("base/kustomization.yaml images: lacks %q (deploy/IMAGE is %s)", want, image(t))
		}
	}
}

// TestKustomizeRBAC: the overlays' Roles grant exactly the rules of the
// shipped least-privilege manifests they copy.
func TestKustomizeRBAC(t *testing.T) {
	rules := func(t *testing.T, objs []kruntime.Object) map[string][]rbacv1.PolicyRule {
		m := map[string][]rbacv1.PolicyRule{}
		for _, o := range objs {
			if r, ok := o.(*rbacv1.Role); ok {
				m[r.Namespace+"/"+r.Name] = r.Rules
			}
		}
		return m
	}
	shipped := map[string][]rbacv1.PolicyRule{}
	for _, f := range []string{"deploy/lease/rbac.yaml", "deploy/health/endpoints-rbac.yaml"} {
		b, err := os.ReadFile(filepath.Join(root(t), f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range rules(t, decodeAll(t, f, splitDocs(string(b)))) {
			shipped[k] = v
		}
	}
	for _, o := range []string{"ingress", "multi-vip"} {
		got := rules(t, decodeAll(t, o, build(t, o)))
		if len(got) == 0 {
			t.Errorf("%s: no Role", o)
		}
		for k, v := range got {
			if !reflect.DeepEqual(v, shipped[k]) {
				t.Errorf("%s: Role %s grants %v, the shipped manifest %v", o, k, v, shipped[k])
			}
		}
	}
}
