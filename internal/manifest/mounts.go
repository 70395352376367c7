package manifest

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vipd/vipd/internal/config"
)

// What a mount brings into the container.
type source int

const (
	hostFile   source = iota // a file of the node that must exist (a CA, a kubeconfig)
	hostDir                  // a directory of the node (the config, a drain switch's home)
	kubeConfig               // the ConfigMap (and the gossip key, when it lives beside it)
	kubeSecret               // the gossip key's Secret, in a directory of its own
)

// need is one path the config makes vipd read, and the config key that
// names it (for error messages).
type need struct {
	path   string
	src    source
	origin string
	// hostType is the hostPath type for host sources.
	hostType corev1.HostPathType
}

func (n need) fromHost() bool { return n.src == hostFile || n.src == hostDir }

// hostFiles lists the node files the config names that vipd opens (never
// the gossip key: where it comes from depends on the kind of manifest).
func hostFiles(cfg *config.Config) []need {
	var ns []need
	add := func(p, origin string) {
		if p != "" {
			ns = append(ns, need{path: path.Clean(p), src: hostFile, origin: origin, hostType: corev1.HostPathFile})
		}
	}
	if cfg.Lease != nil {
		add(cfg.Lease.Kubeconfig, "lease.kubeconfig")
	}
	for i, k := range cfg.Checks {
		key := "checks[" + strconv.Itoa(i) + "]"
		if h := k.HTTP; h != nil {
			add(h.CAFile, key+".http.caFile")
			add(h.CertFile, key+".http.certFile")
			add(h.KeyFile, key+".http.keyFile")
			add(h.BearerTokenFile, key+".http.bearerTokenFile")
		}
		if e := k.Endpoints; e != nil && (cfg.Lease == nil || e.Kubeconfig != cfg.Lease.Kubeconfig) {
			add(e.Kubeconfig, key+".endpoints.kubeconfig")
		}
		if f := k.File; f != nil {
			// The file comes and goes (touch / rm on the node): its
			// directory is what can be mounted.
			ns = append(ns, need{path: path.Dir(path.Clean(f.Path)), src: hostDir, origin: key + ".file.path", hostType: corev1.HostPathDirectoryOrCreate})
		}
	}
	return ns
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// plan turns needs into volumes and mounts. Host paths inside a host
// directory already mounted are seen through it. Anything else nested or
// shared is an error: mounting one volume inside another makes the
// container runtime create the inner mount point in the outer volume,
// which fails on a read-only mount (and writes to the node's directory
// otherwise).
type plan struct {
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
	taken   []need // mounted, in order
	names   map[string]bool
}

func (p *plan) add(n need, vs corev1.VolumeSource, name string) error {
	if !path.IsAbs(n.path) {
		return fmt.Errorf("%s: %q is relative: a container sees only what is mounted at an absolute path; write it absolute", n.origin, n.path)
	}
	for _, t := range p.taken {
		nested := within(n.path, t.path) || within(t.path, n.path)
		if !nested {
			continue
		}
		if n.fromHost() && t.src == hostDir && within(n.path, t.path) {
			return nil // seen through the node directory already mounted
		}
		if n.fromHost() && t.fromHost() && n.path == t.path {
			return nil
		}
		return fmt.Errorf("%s (%s, %s) and %s (%s, %s) overlap: in a container one cannot be mounted inside the other; move one of them to another directory",
			n.origin, n.path, n.src, t.origin, t.path, t.src)
	}
	if name == "" {
		name = volumeName(n.path)
	}
	base := strings.TrimRight(name[:min(len(name), 58)], "-")
	for i := 2; p.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if p.names == nil {
		p.names = map[string]bool{}
	}
	p.names[name] = true
	p.taken = append(p.taken, n)
	p.volumes = append(p.volumes, corev1.Volume{Name: name, VolumeSource: vs})
	p.mounts = append(p.mounts, corev1.VolumeMount{Name: name, MountPath: n.path, ReadOnly: true})
	return nil
}

// addHost mounts host needs, directories first so files inside them need
// no mount of their own.
func (p *plan) addHost(ns []need) error {
	ns = slices.Clone(ns)
	slices.SortStableFunc(ns, func(a, b need) int {
		if (a.src == hostDir) != (b.src == hostDir) {
			if a.src == hostDir {
				return -1
			}
			return 1
		}
		return len(a.path) - len(b.path) // outer directories first
	})
	for _, n := range ns {
		t := n.hostType
		if err := p.add(n, corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: n.path, Type: &t}}, ""); err != nil {
			return err
		}
	}
	return nil
}

func (s source) String() string {
	switch s {
	case hostFile:
		return "a file of the node"
	case hostDir:
		return "a directory of the node"
	case kubeConfig:
		return "the ConfigMap"
	default:
		return "the Secret"
	}
}

var notLabel = regexp.MustCompile(`[^a-z0-9]+`)

// volumeName makes a DNS label from a path: /etc/kubernetes/pki/ca.crt ->
// host-etc-kubernetes-pki-ca-crt.
func volumeName(p string) string {
	s := "host-" + strings.Trim(notLabel.ReplaceAllString(strings.ToLower(p), "-"), "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-")
}
