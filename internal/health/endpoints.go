package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/vipd/vipd/internal/kube"
)

// userAgent names the check's requests in the API server's logs and audit.
const userAgent = "vipd-health"

// endpointsWatcher is the "endpoints" check: it follows the Service's
// EndpointSlices through an informer and passes while one of them has a
// ready endpoint on this node.
type endpointsWatcher struct {
	ns, service, node string
	// every re-observes the informer's cache (not the API) so that a state
	// that does not change still counts toward rise/fall; 0: events only.
	every time.Duration
	// client is called by every Watch, so a restarted Watch re-reads the
	// kubeconfig and the service-account token.
	client func() (kubernetes.Interface, error)
}

// newEndpointsWatcher builds the check for s.Endpoints. The API client is
// built by Watch (an error there is a failing check the runner retries, not
// a configuration error).
func newEndpointsWatcher(s Spec) (Watcher, error) {
	w, err := newEndpointsWatcherClient(s, nil)
	if err != nil {
		return nil, err
	}
	e := *s.Endpoints
	w.client = func() (kubernetes.Interface, error) {
		rc, err := kube.RESTConfig(e.Kubeconfig, e.Server, userAgent)
		if err != nil {
			return nil, err
		}
		return kubernetes.NewForConfig(rc)
	}
	return w, nil
}

// newEndpointsWatcherClient is newEndpointsWatcher with a given clientset
// (tests: k8s.io/client-go/kubernetes/fake, the real test API server).
func newEndpointsWatcherClient(s Spec, cs kubernetes.Interface) (*endpointsWatcher, error) {
	e := s.Endpoints
	if e == nil {
		return nil, fmt.Errorf("check %q: not an endpoints check", s.Name)
	}
	for _, f := range []struct{ name, v string }{{"namespace", e.Namespace}, {"service", e.Service}, {"node name", e.NodeName}} {
		if f.v == "" {
			return nil, fmt.Errorf("check %q: endpoints: the %s is empty", s.Name, f.name)
		}
	}
	w := &endpointsWatcher{ns: e.Namespace, service: e.Service, node: e.NodeName, every: s.Interval}
	if cs != nil {
		w.client = func() (kubernetes.Interface, error) { return cs, nil }
	}
	return w, nil
}

// Watch runs an informer on the Service's EndpointSlices and calls observe
// after the first full list (never before: until then the check stays
// unknown), after every change (bursts coalesced) and every s.Interval.
//
// It returns an error when the client cannot be built or the first list
// fails (e.g. the API is unreachable, or RBAC forbids it). Once synced, the
// informer keeps its last view through API outages and re-lists by itself.
// An error that ends a list or watch then shows in the detail until the next
// event; client-go retries a refused connection without reporting it, so an
// API server that is simply down leaves the detail as it was.
func (w *endpointsWatcher) Watch(ctx context.Context, observe func(ok bool, detail string)) error {
	cs, err := w.client()
	if err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", w.ns, w.service, err)
	}
	selector := labels.Set{discoveryv1.LabelServiceName: w.service}.AsSelector()
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(w.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector.String() }))
	slices := f.Discovery().V1().EndpointSlices()
	inf := slices.Informer()

	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	apiErrs := make(chan error, 1)
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if benignWatchError(err) {
			return
		}
		select { // the newest error wins; the reader wants the current one
		case apiErrs <- err:
		default:
			select {
			case <-apiErrs:
			default:
			}
			select {
			case apiErrs <- err:
			default:
			}
		}
	}); err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", w.ns, w.service, err)
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	})
	if err != nil {
		return fmt.Errorf("endpoints %s/%s: %w", w.ns, w.service, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	synced := make(chan bool, 1)
	defer func() {
		cancel()
		<-synced
		f.Shutdown() // waits for the informer's goroutines
	}()
	f.Start(ctx.Done())
	// reg.HasSynced: the handler, too, has had the initial list's adds, so
	// the drain below leaves no stale poke.
	go func() { synced <- cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) }()
	var apiErr error // since the last event from the API
	select {
	case <-ctx.Done():
		return nil
	case apiErr = <-apiErrs:
		if !reg.HasSynced() { // a retry may have synced meanwhile
			return fmt.Errorf("endpoints %s/%s: listing EndpointSlices: %w", w.ns, w.service, apiErr)
		}
	case ok := <-synced:
		synced <- ok // for the deferred receive
		if !ok {
			return nil // ctx ended
		}
	}

	var tick <-chan time.Time
	if w.every > 0 {
		t := time.NewTicker(w.every)
		defer t.Stop()
		tick = t.C
	}
	lister := slices.Lister().EndpointSlices(w.ns)
	select { // the first observation covers the initial list
	case <-changed:
	default:
	}
	for {
		list, err := lister.List(selector)
		if err != nil { // the cache's List cannot fail with a label selector
			return fmt.Errorf("endpoints %s/%s: %w", w.ns, w.service, err)
		}
		ok, detail := evalEndpoints(list, w.service, w.node)
		if apiErr != nil {
			detail += " (last known state; API error: " + apiErr.Error() + ")"
		}
		observe(ok, detail)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			apiErr = nil // an event is news from the API
		case apiErr = <-apiErrs:
		case <-tick:
		}
	}
}

// benignWatchError: a watch that ended normally or whose resourceVersion
// expired; the reflector re-lists and nothing is wrong (as in
// cache.DefaultWatchErrorHandler).
func benignWatchError(err error) bool {
	return errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// evalEndpoints is the check's verdict on the Service's EndpointSlices: ok
// when one has a ready endpoint whose nodeName is node.
//
// "ready": the EndpointConditions API reference (discovery.k8s.io/v1,
// k8s.io/api/discovery/v1 EndpointConditions.Ready) says "A nil value should
// be interpreted as "true". In general, an endpoint should be marked ready if
// it is serving and not terminating". A terminating endpoint therefore
// counts only if its ready condition is nil or true (publishNotReadyAddresses),
// and serving alone does not count.
//
// The same endpoint may be in several slices (one per address family, or
// briefly two while the controller moves it), so endpoints are counted once
// per target (pod UID) or, without a target, per address.
func evalEndpoints(slices []*discoveryv1.EndpointSlice, service, node string) (ok bool, detail string) {
	ready := map[string]bool{}  // endpoint key -> ready (in any slice)
	onNode := map[string]bool{} // endpoint key -> nodeName == node
	n := 0
	for _, s := range slices {
		if s == nil || s.Labels[discoveryv1.LabelServiceName] != service {
			continue // the fake clientset's watch does not filter by label
		}
		n++
		for _, ep := range s.Endpoints {
			k := endpointKey(s, ep)
			ready[k] = ready[k] || ep.Conditions.Ready == nil || *ep.Conditions.Ready
			onNode[k] = onNode[k] || (ep.NodeName != nil && *ep.NodeName == node)
		}
	}
	if n == 0 {
		return false, "service has no EndpointSlice"
	}
	var here, notReadyHere, total int
	for k, r := range ready {
		switch {
		case r && onNode[k]:
			here++
		case onNode[k]:
			notReadyHere++
		}
		if r {
			total++
		}
	}
	if here > 0 {
		return true, fmt.Sprintf("%d ready %s on %s (%d ready in total)", here, plural(here, "endpoint"), node, total)
	}
	if notReadyHere > 0 {
		return false, fmt.Sprintf("no ready endpoint on %s (%d not ready here, %d ready elsewhere)", node, notReadyHere, total)
	}
	return false, fmt.Sprintf("no ready endpoint on %s (%d ready elsewhere)", node, total)
}

func endpointKey(s *discoveryv1.EndpointSlice, ep discoveryv1.Endpoint) string {
	if t := ep.TargetRef; t != nil && t.UID != "" {
		return "uid/" + string(t.UID)
	}
	return string(s.AddressType) + "/" + strings.Join(ep.Addresses, ",")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
