// Package kubevip converts a kube-vip manifest (a static Pod or a
// DaemonSet) into the equivalent vipd config, naming every kube-vip setting
// that has no vipd equivalent and what the user must fill in.
package kubevip

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// found is the kube-vip container and the pod spec around it.
type found struct {
	// Where names it for messages: "Pod kube-system/kube-vip, container kube-vip".
	Where     string
	Static    bool // a Pod (kubeadm's static pod), not a DaemonSet
	Spec      *corev1.PodSpec
	Container *corev1.Container
}

// findContainer decodes every document of a (multi-document) manifest with
// the Kubernetes API types and returns the one kube-vip container among the
// Pods and DaemonSets. Other kinds (RBAC, ServiceAccounts, CRDs) are skipped.
func findContainer(data []byte) (*found, error) {
	var hits []*found
	workloads := 0
	for doc, d := range splitDocuments(data) {
		js, err := utilyaml.ToJSON(d.text)
		if err != nil {
			// The YAML library counts lines from the document's start.
			msg := yamlLineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
				n, _ := strconv.Atoi(yamlLineRE.FindStringSubmatch(m)[1])
				return "line " + strconv.Itoa(n+d.line-1) + ":"
			})
			return nil, fmt.Errorf("document %d: %s", doc+1, msg)
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "{}" {
			continue // empty document, or only comments
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(js, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			continue // a kind Kubernetes itself does not define: not kube-vip's pod
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", doc+1, d.line, err)
		}
		var spec *corev1.PodSpec
		var where string
		static := false
		switch o := obj.(type) {
		case *corev1.Pod:
			spec, where, static = &o.Spec, "Pod "+qualified(o.Namespace, o.Name), true
		case *appsv1.DaemonSet:
			spec, where = &o.Spec.Template.Spec, "DaemonSet "+qualified(o.Namespace, o.Name)
		default:
			continue
		}
		workloads++
		for i := range spec.Containers {
			c := &spec.Containers[i]
			if isKubeVIP(c) {
				hits = append(hits, &found{Where: where + ", container " + c.Name, Static: static, Spec: spec, Container: c})
			}
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		if workloads == 0 {
			return nil, errors.New("no Pod or DaemonSet in the manifest")
		}
		return nil, errors.New("no kube-vip container (image .../kube-vip:TAG or container name kube-vip) in the manifest's Pods and DaemonSets")
	}
	names := make([]string, len(hits))
	for i, h := range hits {
		names[i] = h.Where
	}
	return nil, fmt.Errorf("%d kube-vip containers (%s): convert one manifest at a time", len(hits), strings.Join(names, "; "))
}

type document struct {
	text []byte
	line int // of its first line in the file, from 1
}

var (
	separatorRE = regexp.MustCompile(`^---\s*$`)
	yamlLineRE  = regexp.MustCompile(`(?:yaml: )?line (\d+):`)
)

// splitDocuments splits a multi-document YAML stream at "---" lines, as
// kubectl does, remembering where each document starts for error messages.
func splitDocuments(data []byte) []document {
	var docs []document
	cur := document{line: 1}
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		if separatorRE.Match(bytes.TrimRight(l, "\r\n")) {
			docs = append(docs, cur)
			cur = document{line: i + 2}
			continue
		}
		cur.text = append(cur.text, l...)
	}
	return append(docs, cur)
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// isKubeVIP: the image's repository is kube-vip (ghcr.io/kube-vip/kube-vip,
// plndr/kube-vip, a mirror's .../kube-vip), or, for an image renamed in a
// private registry, the container is called kube-vip. The cloud provider
// (kube-vip-cloud-provider) is not kube-vip.
func isKubeVIP(c *corev1.Container) bool {
	repo := c.Image
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	base := path.Base(repo)
	if i := strings.IndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	return base == "kube-vip" || c.Name == "kube-vip"
}
