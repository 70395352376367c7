package manifest

// A server-side dry run against a real kube-apiserver (internal/kubetest):
// every generated manifest and every manifest under deploy/ (except the Helm
// chart and kustomize bases, which their own tests render and check) must be
// accepted as it is, with strict field validation.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/vipd/vipd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// TestServerDryRun: the API server accepts every object (dry run as admin,
// fieldValidation=Strict: an unknown or duplicate field is an error, not a
// warning).
func TestServerDryRun(t *testing.T) {
	cp := kubetest.Shared(t)
	start := time.Now()
	admin, err := cp.Client(cp.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cp.RESTConfig(cp.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(admin.Discovery()))
	ctx := t.Context()

	type source struct{ name, data string }
	var sources []source
	for _, c := range goldenCases {
		sources = append(sources, source{"generated: " + c.name, string(render(t, generate(t, c)))})
	}
	for _, f := range deployManifests(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, source{f, string(data)})
	}

	namespaces := map[string]bool{}
	n := 0
	for _, s := range sources {
		// Strictly typed first: the API types must know every field.
		decodeAll(t, s.name, []byte(s.data))
		for i, doc := range docSep.Split(s.data, -1) {
			if strings.TrimSpace(stripComments(doc)) == "" || !kubeObjectRE.MatchString(doc) {
				continue
			}
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: document %d: %v", s.name, i+1, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(j); err != nil {
				t.Fatalf("%s: document %d: %v", s.name, i+1, err)
			}
			gvk := u.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Errorf("%s: %s: %v", s.name, gvk, err)
				continue
			}
			ns := u.GetNamespace()
			if ns != "" && !namespaces[ns] {
				// Namespaced objects need their namespace (really created:
				// a dry-run namespace does not exist for the next call).
				_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
				namespaces[ns] = true
			}
			_, err = dyn.Resource(mapping.Resource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{
				DryRun:          []string{metav1.DryRunAll},
				FieldValidation: metav1.FieldValidationStrict,
			})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Errorf("%s: %s %s/%s: %v", s.name, gvk.Kind, ns, u.GetName(), err)
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("dry-ran %d objects, want at least 20", n)
	}
	t.Logf("%d objects from %d manifests sent to the API server (dry run, strict) in %s", n, len(sources), time.Since(start).Round(time.Millisecond))
}
