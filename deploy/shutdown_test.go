// Package deploy holds tests of the shipped manifests (there is no Go code
// here).
package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// stopWindow is how long vipd may take from SIGTERM to exit: the elector's
// stop (internal/node Deps.StopTimeout, 10 s; by its end the VIPs are gone
// and the peers told), the HTTP server's 1 s, and room for the STOP hooks.
// Same figure as the systemd unit's bound (deploy/systemd/unit_test.go).
const stopWindow = 15 * time.Second

// systemNodeCritical is the value of PriorityClass system-node-critical.
const systemNodeCritical = 2000001000

// podSpecs decodes every Pod, DaemonSet and Deployment under deploy/ that
// runs the vipd image, by file. Helm templates and kustomize directories
// (patches are partial objects) are checked where they are rendered.
// Keys are "path#document"; a static pod's key ends in "(static pod)".
func podSpecs(t *testing.T) map[string]corev1.PodSpec {
	t.Helper()
	img, err := os.ReadFile("IMAGE")
	if err != nil {
		t.Fatal(err)
	}
	image := strings.TrimSpace(string(img))
	out := map[string]corev1.PodSpec{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "helm" || d.Name() == "templates" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "kustomization.yaml")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
			if err != nil {
				continue // not a Kubernetes object (e.g. a Prometheus rule file)
			}
			var spec corev1.PodSpec
			key := path + "#" + strconv.Itoa(i)
			switch o := obj.(type) {
			case *corev1.Pod: // a bare Pod under deploy/ is a static pod
				spec = o.Spec
				key += " (static pod)"
			case *appsv1.DaemonSet:
				spec = o.Spec.Template.Spec
			case *appsv1.Deployment:
				spec = o.Spec.Template.Spec
			default:
				continue
			}
			if slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return c.Image == image }) {
				out[key] = spec
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPodsReleaseOnNodeShutdown: kubelet's graceful node shutdown stops
// regular pods first and pods of priority class system-node-critical last
// (in shutdownGracePeriodCriticalPods), each with its
// terminationGracePeriodSeconds capped by the phase's budget. So the vipd
// pod must be node-critical (it goes after the workloads, before the
// kubelet and the network) and have a grace period covering its stop window
// (SIGTERM → VIPs removed, peers told). docs/shutdown.md.
//
// The kubelet groups pods by spec.priority, which only the API server's
// admission fills in from priorityClassName: a static pod needs the number
// itself (as kubeadm writes it for the control plane), or it is stopped in
// the first phase with priority 0 (kubernetes/kubernetes#113940, #133442).
func TestPodsReleaseOnNodeShutdown(t *testing.T) {
	specs := podSpecs(t)
	for _, want := range []string{"vrrp/static-pod.yaml#", "lease/static-pod.yaml#", "lease/daemonset.yaml#"} {
		found := false
		for key := range specs {
			found = found || strings.HasPrefix(key, want)
		}
		if !found {
			t.Errorf("%s: no vipd pod found there (moved? update this test)", strings.TrimSuffix(want, "#"))
		}
	}
	for name, s := range specs {
		if s.PriorityClassName != "system-node-critical" {
			t.Errorf("%s: priorityClassName %q, want system-node-critical (stopped last at node shutdown, never preempted)", name, s.PriorityClassName)
		}
		if strings.HasSuffix(name, "(static pod)") && (s.Priority == nil || *s.Priority != systemNodeCritical) {
			t.Errorf("%s: priority %v, want %d beside priorityClassName: the kubelet does not resolve the class of a static pod", name, s.Priority, systemNodeCritical)
		}
		grace := 30 * time.Second // the API default
		if s.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*s.TerminationGracePeriodSeconds) * time.Second
		}
		if grace < stopWindow {
			t.Errorf("%s: terminationGracePeriodSeconds %v < vipd's stop window %v: SIGKILL could come before the VIPs are handed over", name, grace, stopWindow)
		}
		if !s.HostNetwork {
			t.Errorf("%s: hostNetwork false: the VIPs would be bound in the pod's namespace", name)
		}
		for _, c := range s.Containers {
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
				t.Errorf("%s: container %s has a preStop hook: it delays SIGTERM and eats the grace period", name, c.Name)
			}
			if c.Lifecycle != nil && c.Lifecycle.StopSignal != nil && *c.Lifecycle.StopSignal != corev1.SIGTERM {
				t.Errorf("%s: container %s stops with %s, want SIGTERM (vipd's graceful stop)", name, c.Name, *c.Lifecycle.StopSignal)
			}
		}
	}
}
