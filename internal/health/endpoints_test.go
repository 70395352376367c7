package health

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func ptr[T any](v T) *T { return &v }

// ep is an endpoint of pod uid on node with the given ready and terminating
// conditions (nil: unset).
func ep(uid, node string, ready, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{"198.51.100." + uid},
		NodeName:   ptr(node),
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", UID: types.UID("pod-" + uid)},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating},
	}
}

func slice(name, service string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ingress", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}

func TestEvalEndpoints(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	for _, tc := range []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		ok     bool
		detail string
	}{
		{"no slice", nil, false, "service has no EndpointSlice"},
		{"other service's slice", []*discoveryv1.EndpointSlice{slice("x", "other", ep("1", "node-a", yes, nil))}, false, "service has no EndpointSlice"},
		{"empty slice", []*discoveryv1.EndpointSlice{slice("s", "web")}, false, "no ready endpoint on node-a (0 ready elsewhere)"},
		{"ready here", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-a", yes, nil))}, true, "1 ready endpoint on node-a (1 ready in total)"},
		{"nil ready here", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-a", nil, nil))}, true, "1 ready endpoint on node-a (1 ready in total)"},
		{"not ready here", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-a", no, nil), ep("2", "node-b", yes, nil))}, false,
			"no ready endpoint on node-a (1 not ready here, 1 ready elsewhere)"},
		{"other node only", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-b", yes, nil), ep("2", "node-c", nil, nil))}, false,
			"no ready endpoint on node-a (2 ready elsewhere)"},
		{"no node name", []*discoveryv1.EndpointSlice{slice("s", "web", discoveryv1.Endpoint{Addresses: []string{"198.51.100.9"}})}, false,
			"no ready endpoint on node-a (1 ready elsewhere)"},
		{"terminating, not ready", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-a", no, yes))}, false,
			"no ready endpoint on node-a (1 not ready here, 0 ready elsewhere)"},
		{"terminating but ready (publishNotReadyAddresses)", []*discoveryv1.EndpointSlice{slice("s", "web", ep("1", "node-a", yes, yes))}, true,
			"1 ready endpoint on node-a (1 ready in total)"},
		{"multiple slices", []*discoveryv1.EndpointSlice{
			slice("s1", "web", ep("1", "node-b", yes, nil), ep("2", "node-a", no, nil)),
			slice("s2", "web", ep("3", "node-a", yes, nil), ep("4", "node-c", yes, nil)),
			slice("s3", "web", ep("5", "node-a", nil, nil)),
		}, true, "2 ready endpoints on node-a (4 ready in total)"},
		{"same pod in two slices (dual stack) counts once", []*discoveryv1.EndpointSlice{
			slice("v4", "web", ep("1", "node-a", yes, nil)),
			func() *discoveryv1.EndpointSlice {
				s := slice("v6", "web", ep("1", "node-a", yes, nil))
				s.AddressType, s.Endpoints[0].Addresses = discoveryv1.AddressTypeIPv6, []string{"2001:db8::1"}
				return s
			}(),
		}, true, "1 ready endpoint on node-a (1 ready in total)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, detail := evalEndpoints(tc.slices, "web", "node-a")
			if ok != tc.ok || detail != tc.detail {
				t.Errorf("got (%v, %q), want (%v, %q)", ok, detail, tc.ok, tc.detail)
			}
		})
	}
}

func TestNewEndpointsWatcherBadSpec(t *testing.T) {
	for _, s := range []Spec{
		{Name: "c"},
		{Name: "c", Endpoints: &Endpoints{Service: "web", NodeName: "n"}},
		{Name: "c", Endpoints: &Endpoints{Namespace: "ns", NodeName: "n"}},
		{Name: "c", Endpoints: &Endpoints{Namespace: "ns", Service: "web"}},
	} {
		if _, err := newEndpointsWatcher(s); err == nil {
			t.Errorf("%+v: no error", s.Endpoints)
		}
	}
}

// The client is built by Watch, so a missing kubeconfig is a Watch error.
func TestEndpointsWatchNoClient(t *testing.T) {
	w, err := newEndpointsWatcher(Spec{Name: "c", Endpoints: &Endpoints{Namespace: "ns", Service: "web", NodeName: "n",
		Kubeconfig: t.TempDir() + "/missing"}})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Watch(t.Context(), func(bool, string) { t.Error("observed without a client") })
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("err = %v", err)
	}
}

type observation struct {
	ok     bool
	detail string
}

// fakeWatch runs a watcher for ingress/web on node-a against cs; the
// returned channel has every observation. Watch's error goes to done.
func fakeWatch(t *testing.T, cs *fake.Clientset, every time.Duration) (obs chan observation, done chan error, cancel context.CancelFunc) {
	t.Helper()
	w, err := newEndpointsWatcherClient(Spec{Name: "ingress", Interval: every,
		Endpoints: &Endpoints{Namespace: "ingress", Service: "web", NodeName: "node-a"}}, cs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	obs, done = make(chan observation, 100), make(chan error, 1)
	go func() { done <- w.Watch(ctx, func(ok bool, d string) { obs <- observation{ok, d} }) }()
	return obs, done, cancel
}

// settle lets the bubble's fake clock pass cache.WaitForCacheSync's 100 ms
// poll, then waits until every goroutine is blocked.
func settle() {
	time.Sleep(150 * time.Millisecond)
	synctest.Wait()
}

// next returns the one observation made since the last call (inside a
// synctest bubble, after everything settled).
func next(t *testing.T, obs chan observation) observation {
	t.Helper()
	settle()
	select {
	case o := <-obs:
		if len(obs) > 0 {
			t.Fatalf("more than one observation: %+v, then %d more", o, len(obs))
		}
		return o
	default:
		t.Fatal("no observation")
	}
	return observation{}
}

func none(t *testing.T, obs chan observation) {
	t.Helper()
	settle()
	if len(obs) > 0 {
		t.Fatalf("unexpected observation %+v", <-obs)
	}
}

var sliceGVR = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

func TestEndpointsWatchFake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		yes, no := ptr(true), ptr(false)
		cs := fake.NewClientset(slice("web-1", "web", ep("1", "node-a", yes, nil)))
		// The list blocks until released: nothing is observed before sync.
		release := make(chan struct{})
		cs.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
			<-release
			return false, nil, nil
		})
		obs, done, cancel := fakeWatch(t, cs, 0)
		none(t, obs)
		close(release)
		if o := next(t, obs); !o.ok || o.detail != "1 ready endpoint on node-a (1 ready in total)" {
			t.Fatalf("after sync: %+v", o)
		}

		c := cs.DiscoveryV1().EndpointSlices("ingress")
		update := func(s *discoveryv1.EndpointSlice) {
			t.Helper()
			if _, err := c.Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name   string
			do     func()
			ok     bool
			detail string
		}{
			{"not ready", func() { update(slice("web-1", "web", ep("1", "node-a", no, nil))) }, false,
				"no ready endpoint on node-a (1 not ready here, 0 ready elsewhere)"},
			{"nil ready", func() { update(slice("web-1", "web", ep("1", "node-a", nil, nil))) }, true,
				"1 ready endpoint on node-a (1 ready in total)"},
			{"terminating", func() { update(slice("web-1", "web", ep("1", "node-a", no, yes))) }, false,
				"no ready endpoint on node-a (1 not ready here, 0 ready elsewhere)"},
			{"moved to another node", func() { update(slice("web-1", "web", ep("1", "node-b", yes, nil))) }, false,
				"no ready endpoint on node-a (1 ready elsewhere)"},
			{"second slice with a ready endpoint here", func() {
				if _, err := c.Create(t.Context(), slice("web-2", "web", ep("2", "node-a", yes, nil)), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}, true, "1 ready endpoint on node-a (2 ready in total)"},
			{"first slice deleted", func() {
				if err := c.Delete(t.Context(), "web-1", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}, true, "1 ready endpoint on node-a (1 ready in total)"},
			{"another service's slice is ignored", func() {
				if _, err := c.Create(t.Context(), slice("other-1", "other", ep("3", "node-a", no, nil)), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}, true, "1 ready endpoint on node-a (1 ready in total)"},
			{"last slice deleted", func() {
				if err := c.Delete(t.Context(), "web-2", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}, false, "service has no EndpointSlice"},
		}
		for _, s := range steps {
			s.do()
			settle()
			// Events may be coalesced or not (the other service's slice may
			// or may not reach the handler): the last observation counts.
			var o observation
			n := len(obs)
			for range n {
				o = <-obs
			}
			if n == 0 || o.ok != s.ok || o.detail != s.detail {
				t.Fatalf("%s: %d observations, last %+v; want (%v, %q)", s.name, n, o, s.ok, s.detail)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Watch after cancel: %v", err)
		}
	})
}

// With an interval, an unchanged state is observed again every interval
// (from the cache: no API request), so rise/fall can count it.
func TestEndpointsWatchInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := fake.NewClientset()
		obs, done, cancel := fakeWatch(t, cs, time.Second)
		if o := next(t, obs); o.ok || o.detail != "service has no EndpointSlice" {
			t.Fatalf("after sync: %+v", o)
		}
		lists := 0
		cs.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
			lists++
			return false, nil, nil
		})
		for i := range 3 {
			time.Sleep(time.Second)
			if o := next(t, obs); o.ok || o.detail != "service has no EndpointSlice" {
				t.Fatalf("tick %d: %+v", i, o)
			}
		}
		if lists != 0 {
			t.Errorf("%d list requests while ticking", lists)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A first list that fails (here: RBAC) is Watch's error, with no observation.
func TestEndpointsWatchForbidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(sliceGVR.GroupResource(), "", nil)
		})
		obs, done, cancel := fakeWatch(t, cs, 0)
		defer cancel()
		settle()
		select {
		case err := <-done:
			if err == nil || !apierrors.IsForbidden(err) {
				t.Fatalf("err = %v, want a Forbidden error", err)
			}
		default:
			t.Fatal("Watch still runs after a forbidden list")
		}
		none(t, obs)
	})
}
