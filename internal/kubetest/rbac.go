package kubetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// ApplyRBAC creates deploy/lease/rbac.yaml's objects (found by walking up
// from the working directory) as admin, so vipd runs with exactly the rights
// the manifest grants. Objects that already exist are left as they are.
// (Moved from election/lease's tests so the benchmark can use it too.)
func (cp *ControlPlane) ApplyRBAC(ctx context.Context) error {
	root, err := repoDir("deploy/lease/rbac.yaml")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy/lease/rbac.yaml"))
	if err != nil {
		return err
	}
	admin, err := cp.Client(cp.AdminToken)
	if err != nil {
		return err
	}
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			return fmt.Errorf("decoding rbac.yaml: %w", err)
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = admin.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = admin.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			return fmt.Errorf("unexpected object %T in rbac.yaml", obj)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("applying rbac.yaml: %w", err)
		}
	}
	return nil
}
