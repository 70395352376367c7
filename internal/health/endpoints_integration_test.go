package health

// The endpoints check against a real kube-apiserver + etcd
// (internal/kubetest), as the ServiceAccount kube-system/vipd with exactly
// the rights of deploy/health/endpoints-rbac.yaml.

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vipd/vipd/internal/kubetest"
)

// startControlPlane starts this test's own control plane (the package has
// no TestMain; the test also stops and restarts the API server).
func startControlPlane(t *testing.T) *kubetest.ControlPlane {
	t.Helper()
	kubetest.Require(t)
	start := time.Now()
	cp, err := kubetest.Start(t.Context(), kubetest.Options{})
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("control plane ready in %s at %s", time.Since(start).Round(time.Millisecond), cp.URL)
	return cp
}

// realWatch runs the check for ns/web on node as the vipd ServiceAccount
// (through its kubeconfig, as the daemon would).
func realWatch(t *testing.T, cp *kubetest.ControlPlane, ns, node string) (obs chan observation, done chan error) {
	t.Helper()
	w, err := newEndpointsWatcher(Spec{Name: "ingress-" + node, Interval: time.Second,
		Endpoints: &Endpoints{Namespace: ns, Service: "web", NodeName: node, Kubeconfig: cp.VipdKubeconfig}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	obs, done = make(chan observation, 1000), make(chan error, 1)
	go func() { done <- w.Watch(ctx, func(ok bool, d string) { obs <- observation{ok, d} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Watch after cancel: %v", node, err)
		}
	})
	return obs, done
}

// waitObs waits for an observation with ok and a detail containing want;
// others on the way are skipped (the informer may report intermediate
// states). The timeout is long because after an API server restart the
// informer reconnects only after its backoff (observed: 15 s).
func waitObs(t *testing.T, node string, obs chan observation, ok bool, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	var last observation
	for {
		select {
		case o := <-obs:
			if o.ok == ok && strings.Contains(o.detail, want) {
				return
			}
			last = o
		case <-timeout:
			t.Fatalf("%s: no observation (%v, %q) in 60s; last %+v", node, ok, want, last)
		}
	}
}

func TestEndpointsRealAPIServer(t *testing.T) {
	cp := startControlPlane(t)
	admin, err := cp.Client(cp.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const ns = "ingress"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.ApplyRoles(t, admin, "deploy/health/endpoints-rbac.yaml", ns)
	forbidden(t, cp)
	if _, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slices := admin.DiscoveryV1().EndpointSlices(ns)
	// No controller-manager runs: the test plays the EndpointSlice controller.
	if _, err := slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{ep("1", "node-a", ptr(true), nil)},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80))}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := func(p string) {
		t.Helper()
		if _, err := slices.Patch(ctx, "web-1", types.JSONPatchType, []byte(p), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patch %s: %v", p, err)
		}
	}

	a, _ := realWatch(t, cp, ns, "node-a")
	b, _ := realWatch(t, cp, ns, "node-b")
	waitObs(t, "node-a", a, true, "1 ready endpoint on node-a (1 ready in total)")
	waitObs(t, "node-b", b, false, "no ready endpoint on node-b (1 ready elsewhere)")

	patch(`[{"op":"replace","path":"/endpoints/0/conditions/ready","value":false}]`)
	waitObs(t, "node-a", a, false, "no ready endpoint on node-a (1 not ready here, 0 ready elsewhere)")

	patch(`[{"op":"add","path":"/endpoints/-","value":{"addresses":["198.51.100.2"],"nodeName":"node-b","conditions":{"ready":true},"targetRef":{"kind":"Pod","uid":"pod-2"}}}]`)
	waitObs(t, "node-b", b, true, "1 ready endpoint on node-b (1 ready in total)")
	waitObs(t, "node-a", a, false, "no ready endpoint on node-a (1 not ready here, 1 ready elsewhere)")

	// API server gone: the informers keep their last view; node-b stays ok
	// over 3 ticks of its interval.
	cp.StopAPIServer()
	stopped := time.Now()
	for len(b) > 0 { // observations from before the stop
		<-b
	}
	for range 3 {
		waitObs(t, "node-b", b, true, "1 ready endpoint on node-b")
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server down for %s (restart included), node-b kept its view", time.Since(stopped).Round(time.Millisecond))

	if err := slices.Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Once the informers re-listed or re-watched after the restart.
	deleted := time.Now()
	waitObs(t, "node-a", a, false, "service has no EndpointSlice")
	waitObs(t, "node-b", b, false, "service has no EndpointSlice")
	t.Logf("deletion after the restart seen in %s", time.Since(deleted).Round(time.Millisecond))
}

// forbidden: without the Role in the Service's namespace (here "default")
// the first list is forbidden, and Watch fails (the runner retries; the check
// counts as failing) instead of staying unknown forever.
func forbidden(t *testing.T, cp *kubetest.ControlPlane) {
	t.Helper()
	w, err := newEndpointsWatcher(Spec{Name: "x",
		Endpoints: &Endpoints{Namespace: "default", Service: "web", NodeName: "node-a", Kubeconfig: cp.VipdKubeconfig}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = w.Watch(ctx, func(ok bool, d string) { t.Errorf("observed (%v, %q) without rights", ok, d) })
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want Forbidden", err)
	}
	t.Logf("without the Role: %v", err)
}
