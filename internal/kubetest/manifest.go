package kubetest

import (
	"os"
	"path/filepath"
	"regexp"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// ApplyRoles creates the Roles and RoleBindings of the repository's
// manifest rel (e.g. deploy/health/endpoints-rbac.yaml) in namespace ns,
// its example namespace replaced, as admin: tests use the shipped file
// itself, so it cannot drift from what they prove.
func ApplyRoles(t TB, admin kubernetes.Interface, rel, ns string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("%s not found above the test's directory", rel)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decoding %s: %v", rel, err)
		}
		switch o := obj.(type) {
		case *rbacv1.Role:
			o.Namespace = ns
			_, err = admin.RbacV1().Roles(ns).Create(t.Context(), o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			o.Namespace = ns
			_, err = admin.RbacV1().RoleBindings(ns).Create(t.Context(), o, metav1.CreateOptions{})
		default:
			t.Fatalf("unexpected %T in %s (only Roles and RoleBindings)", obj, rel)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
