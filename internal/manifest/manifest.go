// Package manifest writes the Kubernetes objects that run vipd for a
// config: a static pod for the kube-apiserver VIP on kubeadm control planes,
// or a DaemonSet with its ServiceAccount, least-privilege RBAC, ConfigMap,
// gossip-key Secret and peer Service. The objects are built with the API
// types (k8s.io/api), so what is written is what the API server decodes;
// docs/manifest.md says why each setting is there.
package manifest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/vipd/vipd/internal/config"
)

// DefaultImage is the image every manifest names: deploy/IMAGE's content
// (TestDefaultImageIsDeployIMAGE holds them together).
const DefaultImage = "ghcr.io/vipd/vipd:v0.1.0"

// Defaults of Options.
const (
	DefaultNamespace = "kube-system"
	DefaultName      = "vipd"
)

// Where the config is inside the container. The static pod mounts the
// node's /etc/vipd (the file is put there by hand, like every other file of
// the node the config names). The DaemonSet's config comes from its
// ConfigMap, mounted apart from /etc/vipd so the node's /etc/vipd (a drain
// switch's usual home) can be mounted too.
const (
	StaticPodConfigDir = "/etc/vipd"
	DaemonSetConfigDir = "/config"
	ConfigFileName     = "vipd.yaml"
	gossipKeyName      = "gossip.key"
)

// Shutdown: node.Run gives the elector 10 s to remove the VIPs and say
// goodbye (priority-0 advert, Lease release, memberlist leave), then the
// notify hooks up to another 10 s to finish; the kubelet's SIGKILL must
// come later than both.
const (
	electorStopSeconds = 10
	hooksStopSeconds   = 10
	graceMarginSeconds = 5
)

// Options are the choices that are not in the config.
type Options struct {
	// Image of the vipd container. Default DefaultImage.
	Image string
	// Namespace of the namespaced objects. Default kube-system.
	Namespace string
	// Name of the Pod, DaemonSet, ServiceAccount, ConfigMap, Roles: several
	// vipd DaemonSets can share a namespace. Default vipd.
	Name string
	// NodeSelector for the DaemonSet's pods (e.g. node-role.kubernetes.io/lb: "").
	NodeSelector map[string]string
	// ConfigName is how the header comment names the input file.
	ConfigName string
}

func (o Options) withDefaults() Options {
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.ConfigName == "" {
		o.ConfigName = "FILE"
	}
	return o
}

// command is the command line that writes this manifest (the gossip key's
// file on the workstation left out).
func (o Options) command(kind string) string {
	s := "vipd manifest " + kind + " --config " + o.ConfigName
	if o.Image != DefaultImage {
		s += " --image " + o.Image
	}
	if o.Namespace != DefaultNamespace {
		s += " --namespace " + o.Namespace
	}
	if o.Name != DefaultName {
		s += " --name " + o.Name
	}
	if len(o.NodeSelector) > 0 {
		kvs := make([]string, 0, len(o.NodeSelector))
		for k, v := range o.NodeSelector {
			kvs = append(kvs, k+"="+v)
		}
		slices.Sort(kvs)
		s += " --node-selector " + strings.Join(kvs, ",")
	}
	return s
}

func (o Options) validate() error {
	var errs []error
	if !dnsLabel(o.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: must be a DNS label (a-z, 0-9, '-', at most 63)", o.Namespace))
	}
	if !dnsLabel(o.Name) || len(o.Name) > 40 {
		errs = append(errs, fmt.Errorf("name %q: must be a DNS label of at most 40 characters (objects are named after it, e.g. NAME-health-endpoints)", o.Name))
	}
	if strings.ContainsAny(o.Image, " \t\n") {
		errs = append(errs, fmt.Errorf("image %q: must not contain white space", o.Image))
	}
	return errors.Join(errs...)
}

func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(s)-1
		if !ok {
			return false
		}
	}
	return true
}

// Manifest is the generated objects and what a person must know about them.
type Manifest struct {
	// Header is written as comment lines above the first object:
	// instructions for the person installing it.
	Header []string
	// Warnings are things in the config that will not work as the person
	// may expect in a container; also written into the header.
	Warnings []string
	Objects  []Object
}

// Object is one API object and a one-line comment written above it.
type Object struct {
	Comment string
	Obj     runtime.Object
}

func (m *Manifest) add(comment string, obj runtime.Object) {
	m.Objects = append(m.Objects, Object{Comment: comment, Obj: obj})
}

func (m *Manifest) warnf(format string, args ...any) {
	m.Warnings = append(m.Warnings, fmt.Sprintf(format, args...))
}

func labels(o Options) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "vipd", "app.kubernetes.io/instance": o.Name}
}

// gracePeriod is terminationGracePeriodSeconds: long enough for the
// elector's goodbye, and for the hooks when the config has any.
func gracePeriod(cfg *config.Config) int64 {
	s := electorStopSeconds + graceMarginSeconds
	if slices.ContainsFunc(cfg.Groups, func(g config.Group) bool { return g.Notify != nil }) {
		s += hooksStopSeconds
	}
	return int64(s)
}

// probeTarget is where the kubelet finds /healthz. With hostNetwork the
// pod's network namespace is the node's, which is where the kubelet probes
// from, so a loopback listener is reachable; an "any" address is probed on
// loopback.
func probeTarget(listen string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("http.listen %q: %v", listen, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("http.listen %q: the kubelet probes /healthz on a numeric port, 1..65535", listen)
	}
	switch h {
	case "", "0.0.0.0":
		h = "127.0.0.1"
	case "::":
		h = "::1"
	}
	return h, port, nil
}

// systemNodeCriticalPriority is the value of the built-in
// system-node-critical PriorityClass.
const systemNodeCriticalPriority int32 = 2000001000

func ptr[T any](v T) *T { return &v }

// container is vipd's one container, the same in both kinds of manifest.
func container(cfg *config.Config, o Options, configPath string, mounts []corev1.VolumeMount) (corev1.Container, error) {
	host, port, err := probeTarget(cfg.HTTP.Listen)
	if err != nil {
		return corev1.Container{}, err
	}
	return corev1.Container{
		Name:  "vipd",
		Image: o.Image,
		Args:  []string{"run", "--config", configPath},
		SecurityContext: &corev1.SecurityContext{
			// Kubernetes grants capabilities to uid 0 only (no ambient
			// capabilities), and with no_new_privs a non-root image's
			// file capabilities are ignored: root, with two capabilities.
			RunAsUser:    ptr(int64(0)),
			RunAsNonRoot: ptr(false),
			Capabilities: &corev1.Capabilities{
				Drop: []corev1.Capability{"ALL"},
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
			},
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Host: host, Port: intstr.FromInt32(int32(port)), Path: "/healthz",
			}},
			PeriodSeconds:    10,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
			// No CPU limit: CFS throttling would delay adverts and renewals
			// and cause needless failovers. A memory limit bounds a leak.
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
		VolumeMounts:             mounts,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}, nil
}

func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// commandWarnings: exec checks and notify hooks run inside the container,
// whose image holds vipd and nothing else.
func commandWarnings(m *Manifest, cfg *config.Config) {
	for i, k := range cfg.Checks {
		if k.Exec != nil && len(k.Exec.Command) > 0 {
			m.warnf("checks[%d].exec runs %s inside the vipd container, whose image holds only vipd: the command (and any shell or library it needs) must be mounted into the container", i, k.Exec.Command[0])
			if k.Exec.User != "" {
				m.warnf("checks[%d].exec.user %q needs CAP_SETUID and CAP_SETGID, which the container does not have", i, k.Exec.User)
			}
		}
	}
	for i, g := range cfg.Groups {
		if n := g.Notify; n != nil {
			for _, c := range [][]string{n.Command, n.Master, n.Backup, n.Fault, n.Stop} {
				if len(c) > 0 {
					m.warnf("groups[%d].notify runs %s inside the vipd container, whose image holds only vipd: the command (and any shell it needs) must be mounted into the container", i, c[0])
					break
				}
			}
		}
	}
}

// serverHosts are the host names of the API servers the config names.
func serverHosts(cfg *config.Config) []string {
	var hs []string
	add := func(s string) {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" && !slices.Contains(hs, u.Hostname()) {
			hs = append(hs, u.Hostname())
		}
	}
	if cfg.Lease != nil {
		add(cfg.Lease.Server)
	}
	for _, k := range cfg.Checks {
		if k.Endpoints != nil {
			add(k.Endpoints.Server)
		}
	}
	return hs
}

// StaticPod writes a Pod for /etc/kubernetes/manifests: the kube-apiserver
// VIP on kubeadm control planes, which must work before (and without) the
// API server. A static pod cannot use ConfigMaps, Secrets or a
// ServiceAccount, so the config and every file it names are the node's,
// mounted read-only.
func StaticPod(cfg *config.Config, o Options) (*Manifest, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := &Manifest{}
	var errs []error
	if cfg.Mode == config.ModeLease && cfg.Lease.Kubeconfig == "" {
		errs = append(errs, errors.New("lease.kubeconfig: required in a static pod, which has no service account token; e.g. /etc/vipd/vipd.kubeconfig (docs/manifest.md)"))
	}
	for i, k := range cfg.Checks {
		if k.Endpoints != nil && k.Endpoints.Kubeconfig == "" {
			errs = append(errs, fmt.Errorf("checks[%d].endpoints.kubeconfig: required in a static pod, which has no service account token", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	var p plan
	ns := append([]need{{path: StaticPodConfigDir, src: hostDir, origin: "the config (" + StaticPodConfigDir + "/" + ConfigFileName + ")", hostType: corev1.HostPathDirectory}}, hostFiles(cfg)...)
	if cfg.Gossip != nil && cfg.Gossip.KeyFile != "" {
		ns = append(ns, need{path: path.Clean(cfg.Gossip.KeyFile), src: hostFile, origin: "gossip.keyFile", hostType: corev1.HostPathFile})
	}
	if err := p.addHost(ns); err != nil {
		return nil, err
	}
	c, err := container(cfg, o, StaticPodConfigDir+"/"+ConfigFileName, p.mounts)
	if err != nil {
		return nil, err
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels(o)},
		Spec: corev1.PodSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			// The kubelet does not resolve a static pod's priority class
			// (kubernetes#113940): without the number, graceful node
			// shutdown stops vipd first, as priority 0 (docs/shutdown.md).
			Priority:                      ptr(systemNodeCriticalPriority),
			TerminationGracePeriodSeconds: ptr(gracePeriod(cfg)),
			AutomountServiceAccountToken:  ptr(false),
			SecurityContext:               podSecurityContext(),
			Containers:                    []corev1.Container{c},
			Volumes:                       p.volumes,
		},
	}
	if slices.Contains(serverHosts(cfg), "kubernetes") {
		// The name every kubeadm serving certificate carries, pointed at
		// this node's own API server: TLS verifies without a new SAN and
		// vipd never reaches the API server through the VIP it manages.
		pod.Spec.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"kubernetes"}}}
	}
	m.add("", pod)

	m.Header = []string{
		fmt.Sprintf("vipd as a static pod, written by `%s`; regenerate rather than edit (docs/manifest.md).", o.command("static-pod")),
		fmt.Sprintf("Put this file in /etc/kubernetes/manifests/ on every control-plane node, and the config as %s/%s on each (its own node name and priorities); the kubelet runs the pod without the API server.", StaticPodConfigDir, ConfigFileName),
	}
	if fs := mountedFiles(p.taken); len(fs) > 0 {
		m.Header = append(m.Header, "The node must also hold "+strings.Join(fs, ", ")+" (mounted read-only).")
	}
	switch cfg.Mode {
	case config.ModeLease:
		m.Header = append(m.Header,
			fmt.Sprintf("Lease mode: vipd uses %s, a kubeconfig for the \"vipd\" identity of deploy/lease/rbac.yaml. On the very first control-plane node there is no RBAC yet: start with /etc/kubernetes/admin.conf (kubeadm 1.29+: super-admin.conf, as admin.conf's group is only bound once the API server is up), apply rbac.yaml, then switch to the vipd identity.", cfg.Lease.Kubeconfig))
		if cfg.Lease.Server == "" {
			m.warnf("lease.server is unset: vipd reaches the API server at the kubeconfig's address; if that is the VIP vipd manages, the election depends on itself: set lease.server: https://kubernetes:6443 (this node's API server)")
		}
	case config.ModeVRRP:
		m.Header = append(m.Header, "VRRP needs no API server: the VIP is up before `kubeadm init` finishes and stays up while the API is down.")
	}
	commandWarnings(m, cfg)
	return m, nil
}

func mountedFiles(ns []need) []string {
	var fs []string
	for _, n := range ns {
		if n.src == hostFile {
			fs = append(fs, n.path)
		}
	}
	return fs
}

// DaemonSet writes a DaemonSet and what it needs: a ServiceAccount with
// only the rights the config uses, the config in a ConfigMap, the gossip
// key in a Secret, and the headless Service that gossip.dns names. raw is
// the config file as written: the ConfigMap carries it, comments included,
// without its node name (every pod reads the same file).
func DaemonSet(cfg *config.Config, raw []byte, o Options) (*Manifest, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := &Manifest{}
	var errs []error
	if cfg.Lease != nil && cfg.Lease.Kubeconfig != "" {
		errs = append(errs, fmt.Errorf("lease.kubeconfig %q: a DaemonSet uses its ServiceAccount (in-cluster), whose rights this manifest grants; remove it (a kubeconfig is for the static pod and systemd)", cfg.Lease.Kubeconfig))
	}
	for i, k := range cfg.Checks {
		if k.Endpoints != nil && k.Endpoints.Kubeconfig != "" && (cfg.Lease == nil || cfg.Lease.Kubeconfig == "") {
			errs = append(errs, fmt.Errorf("checks[%d].endpoints.kubeconfig %q: a DaemonSet uses its ServiceAccount (in-cluster), whose rights this manifest grants; remove it", i, k.Endpoints.Kubeconfig))
		}
	}
	text, hadNode, err := withoutNode(raw)
	if err != nil {
		errs = append(errs, err)
	}
	svc, err := peerService(cfg, o)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if hadNode {
		m.warnf("the config's node %q is left out of the ConfigMap: every pod reads the same file, so each uses its host name (with hostNetwork, the node's); it must be unique%s", cfg.Node,
			map[bool]string{true: " and equal the Kubernetes node name (the endpoints check matches it)", false: ""}[hasEndpoints(cfg)])
	}

	// Volumes: the ConfigMap (and the key beside it), the key elsewhere,
	// then the node's files.
	var p plan
	cfgSources := []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: o.Name},
		Items:                []corev1.KeyToPath{{Key: ConfigFileName, Path: ConfigFileName}},
	}}}
	keyFile := ""
	if cfg.Gossip != nil && cfg.Gossip.KeyFile != "" {
		keyFile = path.Clean(cfg.Gossip.KeyFile)
	}
	secretName := o.Name + "-gossip-key"
	keyProjection := func() corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName},
			Items:                []corev1.KeyToPath{{Key: gossipKeyName, Path: path.Base(keyFile)}},
		}}
	}
	if keyFile != "" && path.Dir(keyFile) == DaemonSetConfigDir {
		if path.Base(keyFile) == ConfigFileName {
			return nil, fmt.Errorf("gossip.keyFile %q is where the DaemonSet mounts the config: choose another file name", keyFile)
		}
		cfgSources = append(cfgSources, keyProjection())
	}
	if err := p.add(need{path: DaemonSetConfigDir, src: kubeConfig, origin: "the config (" + DaemonSetConfigDir + "/" + ConfigFileName + ")"},
		corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: cfgSources, DefaultMode: ptr(int32(0o440))}}, "config"); err != nil {
		return nil, err
	}
	if keyFile != "" && path.Dir(keyFile) != DaemonSetConfigDir {
		if err := p.add(need{path: path.Dir(keyFile), src: kubeSecret, origin: "gossip.keyFile"},
			corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{keyProjection()}, DefaultMode: ptr(int32(0o400))}}, "gossip-key"); err != nil {
			return nil, err
		}
	}
	if err := p.addHost(hostFiles(cfg)); err != nil {
		return nil, err
	}
	c, err := container(cfg, o, DaemonSetConfigDir+"/"+ConfigFileName, p.mounts)
	if err != nil {
		return nil, err
	}
	// Readiness is "the process works" (/healthz), not /readyz: an
	// ineligible node (drained, its ingress pod not ready) is a normal
	// backup, and an unready pod would stall rolling updates and drop out
	// of the gossip peers' Service.
	c.ReadinessProbe = c.LivenessProbe.DeepCopy()
	c.ReadinessProbe.PeriodSeconds = 5

	needsAPI := cfg.Mode == config.ModeLease || hasEndpoints(cfg)
	m.add("The identity of vipd's pods; bound below to exactly the rights the config uses.", &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels(o)},
		AutomountServiceAccountToken: ptr(needsAPI),
	})
	if cfg.Mode == config.ModeLease {
		m.add("Lease mode: the group Leases and Events about them in lease.namespace (as deploy/lease/rbac.yaml).",
			&rbacv1.Role{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
				ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: cfg.Lease.Namespace, Labels: labels(o)},
				Rules:      LeaseRules(),
			})
		m.add("", binding(o, o.Name, cfg.Lease.Namespace))
	}
	for _, ns := range endpointsNamespaces(cfg) {
		name := o.Name + "-health-endpoints"
		m.add("The endpoints check: list and watch EndpointSlices in the Service's namespace (as deploy/health/endpoints-rbac.yaml).",
			&rbacv1.Role{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(o)},
				Rules:      EndpointsRules(),
			})
		m.add("", binding(o, name, ns))
	}
	m.add("The config, read by every pod ("+DaemonSetConfigDir+"/"+ConfigFileName+").", &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels(o)},
		Data:       map[string]string{ConfigFileName: text},
	})
	if keyFile != "" {
		var b strings.Builder
		for _, k := range cfg.Gossip.Keys {
			b.WriteString(base64Std(k) + "\n")
		}
		m.add("The gossip encryption key(s), mounted at gossip.keyFile ("+keyFile+"). Secret: keep this file like the key.", &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: o.Namespace, Labels: labels(o)},
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{gossipKeyName: b.String()},
		})
	}
	if svc != nil {
		m.add("gossip.dns: the peers are this headless Service's addresses, not-ready pods included.", svc)
	}
	maxUnavailable := intstr.FromInt32(1)
	ds := &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels(o)},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels(o)},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(o)},
				Spec: corev1.PodSpec{
					ServiceAccountName:            o.Name,
					AutomountServiceAccountToken:  ptr(needsAPI),
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					PriorityClassName:             "system-node-critical",
					TerminationGracePeriodSeconds: ptr(gracePeriod(cfg)),
					SecurityContext:               podSecurityContext(),
					NodeSelector:                  o.NodeSelector,
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers:                    []corev1.Container{c},
					Volumes:                       p.volumes,
				},
			},
		},
	}
	m.add("", ds)

	m.Header = []string{
		fmt.Sprintf("vipd as a DaemonSet, written by `%s`; regenerate rather than edit (docs/manifest.md).", o.command("daemonset")),
		"Apply it with kubectl apply -f. Every pod runs on its node's network (hostNetwork) and holds the VIPs there when elected.",
	}
	if fs := mountedFiles(p.taken); len(fs) > 0 {
		m.Header = append(m.Header, "Every node it runs on must hold "+strings.Join(fs, ", ")+" (mounted read-only).")
	}
	if keyFile != "" {
		m.Header = append(m.Header, "It holds the gossip key in a Secret: keep it like the key, out of version control.")
	}
	commandWarnings(m, cfg)
	return m, nil
}

func hasEndpoints(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Checks, func(k config.Check) bool { return k.Endpoints != nil })
}

func endpointsNamespaces(cfg *config.Config) []string {
	var nss []string
	for _, k := range cfg.Checks {
		if k.Endpoints != nil && !slices.Contains(nss, k.Endpoints.Namespace) {
			nss = append(nss, k.Endpoints.Namespace)
		}
	}
	return nss
}

func binding(o Options, role, ns string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: ns, Labels: labels(o)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: o.Name, Namespace: o.Namespace}},
	}
}

// LeaseRules are Lease mode's rights: its Leases (get/watch/update/create;
// no list, no delete) and Events (create), in lease.namespace. The same as
// deploy/lease/rbac.yaml (a test holds them together).
func LeaseRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "watch", "update", "create"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	}
}

// EndpointsRules are the endpoints check's rights in its Service's
// namespace: the same as deploy/health/endpoints-rbac.yaml.
func EndpointsRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
	}
}
