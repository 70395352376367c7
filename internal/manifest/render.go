package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/vipd/vipd/internal/config"
)

// YAML renders the manifest: the header and warnings as comments, then the
// objects as YAML documents. Status and other server-filled fields are
// left out.
func (m *Manifest) YAML() ([]byte, error) {
	var b bytes.Buffer
	for _, h := range m.Header {
		writeComment(&b, h)
	}
	for _, w := range m.Warnings {
		writeComment(&b, "WARNING: "+w)
	}
	for i, o := range m.Objects {
		if i > 0 {
			b.WriteString("---\n")
		}
		if o.Comment != "" {
			writeComment(&b, o.Comment)
		}
		j, err := json.Marshal(o.Obj)
		if err != nil {
			return nil, err
		}
		var fields map[string]any
		if err := json.Unmarshal(j, &fields); err != nil {
			return nil, err
		}
		delete(fields, "status")
		y, err := yaml.Marshal(fields)
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// writeComment writes s as "# " lines of at most ~96 characters.
func writeComment(b *bytes.Buffer, s string) {
	line := "#"
	for _, w := range strings.Fields(s) {
		if len(line)+1+len(w) > 96 && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

// withoutNode removes the top-level node key from the config text, leaving
// everything else (comments included) as written.
func withoutNode(raw []byte) (string, bool, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(raw, &doc); err != nil {
		return "", false, err
	}
	if doc.Kind != yamlv3.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yamlv3.MappingNode {
		return string(raw), false, nil
	}
	top := doc.Content[0].Content
	for i := 0; i+1 < len(top); i += 2 {
		k, v := top[i], top[i+1]
		if k.Value != "node" {
			continue
		}
		if v.Line != k.Line || v.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle) != 0 || k.Column != 1 {
			return "", false, fmt.Errorf("line %d: write node: on one line (the DaemonSet's ConfigMap leaves it out)", k.Line)
		}
		lines := strings.SplitAfter(string(raw), "\n")
		lines = append(lines[:k.Line-1], lines[k.Line:]...)
		return strings.Join(lines, ""), true, nil
	}
	return string(raw), false, nil
}

// serviceDNS is <service>.<namespace>.svc[.<cluster domain>].
var serviceDNS = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\..+)?\.?$`)

// peerService is the headless Service that gossip.dns names, when it names
// one of the cluster's: it selects this DaemonSet's pods, not-ready ones
// too (a pod that has not passed its probe yet is still a peer).
func peerService(cfg *config.Config, o Options) (*corev1.Service, error) {
	if cfg.Mode != config.ModeGossip || cfg.Gossip.DNS == "" {
		return nil, nil
	}
	sub := serviceDNS.FindStringSubmatch(strings.ToLower(cfg.Gossip.DNS))
	if sub == nil {
		return nil, nil // a name of the user's own DNS
	}
	name, ns := sub[1], sub[3]
	if ns != o.Namespace {
		return nil, fmt.Errorf("gossip.dns %q names the Service %s in namespace %s, but the DaemonSet goes to namespace %s: a Service selects pods of its own namespace only; use --namespace %s or a name in %s",
			cfg.Gossip.DNS, name, ns, o.Namespace, ns, o.Namespace)
	}
	_, p, err := net.SplitHostPort(cfg.Gossip.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip.bind %q: %v", cfg.Gossip.Bind, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("gossip.bind %q: port: %v", cfg.Gossip.Bind, err)
	}
	target := intstr.FromInt32(int32(port))
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(o)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 labels(o),
			Ports: []corev1.ServicePort{
				{Name: "gossip-tcp", Protocol: corev1.ProtocolTCP, Port: int32(port), TargetPort: target},
				{Name: "gossip-udp", Protocol: corev1.ProtocolUDP, Port: int32(port), TargetPort: target},
			},
		},
	}, nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
