package kubetest

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

// TestControlPlane: the servers come up, both identities authenticate, RBAC
// is on (the vipd identity has no rights until a Role grants them), and the
// API server can be stopped and restarted under the same URL with the data kept.
func TestControlPlane(t *testing.T) {
	Require(t)
	ctx := t.Context()
	start := time.Now()
	cp, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	t.Logf("cold start of etcd + kube-apiserver: %s", time.Since(start).Round(time.Millisecond))

	cfg, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != cp.URL {
		t.Fatalf("kubeconfig host %s", cfg.Host)
	}
	admin, err := cp.Client(cp.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	v, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server version %s", v.GitVersion)
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	vipd, _ := cp.Client(cp.VipdToken)
	if _, err := vipd.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("vipd identity can list leases without any Role")
	}

	cp.StopAPIServer()
	c2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := admin.CoreV1().Namespaces().Get(c2, "kube-system", metav1.GetOptions{}); err == nil {
		t.Fatal("API server still answers after StopAPIServer")
	}
	restart := time.Now()
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server restart: %s", time.Since(restart).Round(time.Millisecond))
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}
