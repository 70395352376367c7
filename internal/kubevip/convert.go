package kubevip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vipd/vipd/internal/config"
)

// Options are the choices convert cannot read from the manifest.
type Options struct {
	// Mode is the vipd election mode: lease, vrrp or gossip. Empty: lease
	// when kube-vip used leader election (the same kind of election), else
	// vrrp.
	Mode string
	// VRID for mode vrrp. 0: derived from the VIP (its last byte).
	VRID int
	// Peers: gossip.peers in mode gossip, the group's vrrp.unicastPeers in
	// mode vrrp (empty: multicast).
	Peers []string
}

// Note is one difference between kube-vip and the converted config, or
// something the user must fill in.
type Note struct {
	// Warning: a kube-vip setting is not carried over (the behaviour
	// changes). Otherwise an informational note or a to-do.
	Warning bool
	// Var is the kube-vip environment variable concerned, if any.
	Var  string
	Text string
}

func (n Note) String() string {
	s := "note: "
	if n.Warning {
		s = "warning: "
	}
	if n.Var != "" {
		s += "env " + n.Var + ": "
	}
	return s + n.Text
}

// Result is a converted manifest.
type Result struct {
	Config *config.Config
	// Source names the converted container: "Pod kube-system/kube-vip, container kube-vip".
	Source string
	Notes  []Note
}

// YAML is the config as vipd reads it, headed by a comment naming the source.
func (r *Result) YAML() ([]byte, error) {
	body, err := config.Marshal(r.Config)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Converted by `vipd convert kube-vip` from %s.\n", r.Source)
	b.WriteString("# Read the notes it printed; check with `vipd validate --config FILE` on each node.\n")
	b.Write(body)
	return b.Bytes(), nil
}

// kube-vip's defaults for the variables convert maps (cmd/kube-vip.go flags).
const (
	kvLeaseName      = "plndr-cp-lock"
	kvLeaseDuration  = 15
	kvRenewDeadline  = 10
	kvRetryPeriod    = 2
	kvPort           = 6443
	kvKubeconfigPath = "/etc/kubernetes/admin.conf" // where its static pod mounts the kubeconfig
	kvNamespace      = "kube-system"
)

// Paths of the cluster CA for the apiserver check: a kubeadm node's, and a
// pod's service account's (the same CA signs the API server's certificate).
const (
	hostCA = "/etc/kubernetes/pki/ca.crt"
	podCA  = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// converter carries one conversion's state.
type converter struct {
	f     *found
	env   map[string]string
	used  map[string]bool
	said  map[string]string // reason → the first variable warned with it
	notes []Note
}

func (c *converter) warn(v, format string, args ...any) {
	c.notes = append(c.notes, Note{Warning: true, Var: v, Text: fmt.Sprintf(format, args...)})
}

func (c *converter) note(v, format string, args ...any) {
	c.notes = append(c.notes, Note{Var: v, Text: fmt.Sprintf(format, args...)})
}

// get returns a variable's value and marks it handled.
func (c *converter) get(name string) (string, bool) {
	c.used[name] = true
	v, ok := c.env[name]
	return v, ok
}

// boolVar reads a switch as kube-vip does (strconv.ParseBool), def if unset.
func (c *converter) boolVar(name string, def bool) (bool, error) {
	s, ok := c.get(name)
	if !ok || s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("env %s: %q is not true or false (kube-vip would not start)", name, s)
	}
	return b, nil
}

// intVar reads a whole number in [lo, hi], def if unset.
func (c *converter) intVar(name string, def, lo, hi int) (int, error) {
	s, ok := c.get(name)
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("env %s: %q is not a whole number (kube-vip would not start)", name, s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("env %s: %d must be between %d and %d", name, n, lo, hi)
	}
	return n, nil
}

// Convert reads a kube-vip manifest and returns the equivalent vipd config.
// Errors name the document or variable that makes conversion impossible;
// everything that converts with a change in behaviour is a Note.
func Convert(manifest []byte, opt Options) (*Result, error) {
	f, err := findContainer(manifest)
	if err != nil {
		return nil, err
	}
	c := &converter{f: f, env: map[string]string{}, used: map[string]bool{}, said: map[string]string{}}
	c.readEnv()
	cfg, err := c.convert(opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Where, err)
	}
	c.leftovers()
	if err := selfCheck(cfg); err != nil {
		return nil, fmt.Errorf("%s: the converted config would not validate (please report this): %w", f.Where, err)
	}
	return &Result{Config: cfg, Source: f.Where, Notes: c.notes}, nil
}

// readEnv collects the container's plain values; a value kube-vip reads from
// elsewhere (a Secret, a field of the Pod) cannot be seen from the manifest.
func (c *converter) readEnv() {
	for _, e := range c.f.Container.Env {
		if e.ValueFrom != nil {
			if e.Name == "vip_nodename" && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
				c.used[e.Name] = true
				c.note(e.Name, "the node name is not written in the config: vipd uses the hostname, which is the kubelet's node name unless --hostname-override is set (then set node:)")
				continue
			}
			if _, known := ignored[e.Name]; !known {
				c.used[e.Name] = true
				c.warn(e.Name, "its value comes from %s, which convert cannot read: fill in the setting it maps to by hand", valueSource(e.ValueFrom))
			}
			continue // an ignored variable is warned about with the others
		}
		if _, dup := c.env[e.Name]; dup {
			c.note(e.Name, "is set twice; like Kubernetes, convert uses the last value")
		}
		c.env[e.Name] = e.Value
	}
	for _, from := range c.f.Container.EnvFrom {
		src := "a ConfigMap or Secret"
		switch {
		case from.ConfigMapRef != nil:
			src = "ConfigMap " + from.ConfigMapRef.Name
		case from.SecretRef != nil:
			src = "Secret " + from.SecretRef.Name
		}
		c.warn("", "the container reads variables from %s (envFrom), which convert cannot see: convert them by hand", src)
	}
}

func valueSource(v *corev1.EnvVarSource) string {
	switch {
	case v.SecretKeyRef != nil:
		return "Secret " + v.SecretKeyRef.Name
	case v.ConfigMapKeyRef != nil:
		return "ConfigMap " + v.ConfigMapKeyRef.Name
	case v.FieldRef != nil:
		return "the Pod's " + v.FieldRef.FieldPath
	case v.ResourceFieldRef != nil:
		return "the container's " + v.ResourceFieldRef.Resource
	}
	return "outside the manifest"
}

func (c *converter) warnIgnored(name, value string) {
	ig := ignored[name]
	if ig.off == "false" {
		if b, err := strconv.ParseBool(value); err == nil && !b {
			return // a switch left off: nothing is lost
		}
	} else if ig.off != "" && value == ig.off {
		return // kube-vip's default, written out by its generator
	}
	c.warnWhy(name, ig.why)
}

// warnWhy warns that name is not carried over; a reason already given for
// another variable is referred to, not repeated.
func (c *converter) warnWhy(name, why string) {
	if first, seen := c.said[why]; seen {
		c.warn(name, "not carried over, like %s", first)
		return
	}
	c.said[why] = name
	c.warn(name, "%s", why)
}

// leftovers warns about every variable convert did not map, in manifest order.
func (c *converter) leftovers() {
	for _, e := range c.f.Container.Env {
		if c.used[e.Name] {
			continue
		}
		c.used[e.Name] = true
		if _, known := ignored[e.Name]; known {
			c.warnIgnored(e.Name, c.env[e.Name])
		} else {
			c.warn(e.Name, "is not a kube-vip variable convert knows; it is not carried over")
		}
	}
}

func (c *converter) convert(opt Options) (*config.Config, error) {
	cfg := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind}

	// Which features kube-vip ran.
	cp, err := c.boolVar("cp_enable", false)
	if err != nil {
		return nil, err
	}
	svc, err := c.boolVar("svc_enable", false)
	if err != nil {
		return nil, err
	}
	if svc {
		c.warnWhy("svc_enable", whyServices)
	}
	bgp, err := c.boolVar("bgp_enable", false)
	if err != nil {
		return nil, err
	}
	if bgp {
		c.warnWhy("bgp_enable", whyBGP)
	}
	arp, err := c.boolVar("vip_arp", false)
	if err != nil {
		return nil, err
	}
	if !arp && !bgp {
		c.warn("vip_arp", "is not true: kube-vip did not announce the VIP; vipd always announces it (gratuitous ARP / unsolicited NA) when it takes it")
	}
	if rate, ok := c.get("vip_arpRate"); ok && rate != "" {
		ms, err := strconv.Atoi(rate)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("env vip_arpRate: %q is not a positive number of milliseconds", rate)
		}
		d := time.Duration(ms) * time.Millisecond
		if d < time.Second {
			c.warn("vip_arpRate", "%s is below vipd's 1s minimum re-announcement interval: announce.refresh is 1s", d)
			d = time.Second
		}
		d = min(d, time.Hour)
		cfg.Announce.Refresh = &d
	}
	ddns, err := c.boolVar("vip_ddns", false)
	if err != nil {
		return nil, err
	}

	// The VIP.
	group := config.Group{Name: "kube-vip"}
	if cp {
		group.Name = "apiserver"
	}
	addr, addrVar := c.get("address")
	old, oldVar := c.get("vip_address")
	switch {
	case addrVar && addr != "" && oldVar && old != "" && old != addr:
		c.warn("vip_address", "is ignored: address is also set, and kube-vip uses address")
	}
	name := "address"
	if !addrVar || addr == "" {
		addr, addrVar, name = old, oldVar, "vip_address"
	}
	if !addrVar || addr == "" {
		if svc && !cp {
			return nil, errors.New("no VIP to convert: kube-vip only load-balances Services here (svc_enable without cp_enable or address), which vipd does not do")
		}
		return nil, errors.New("env address (or vip_address) is not set: there is no VIP to convert")
	}
	if ddns {
		c.warn("vip_ddns", "%s", whyDHCP)
	}
	ifc, _ := c.get("vip_interface")
	if ifc == "lo" {
		return nil, errors.New("env vip_interface: lo: kube-vip announces VIPs on lo over BGP; vipd binds them on the interface that faces the clients, so convert cannot choose one (set vip_interface to it, or remove it to let vipd find the interface whose subnet holds the VIP)")
	}
	for _, a := range strings.Split(addr, ",") {
		a = strings.TrimSpace(a)
		ip, err := netip.ParseAddr(a)
		if err != nil {
			why := "is not an IP address"
			if ddns {
				why = "is a name kube-vip registers with DHCP/DDNS (vip_ddns)"
			}
			return nil, fmt.Errorf("env %s: %q %s: vipd needs the VIP's address; write the address the name resolves to", name, a, why)
		}
		group.VIPs = append(group.VIPs, config.VIP{Address: ip.String(), Interface: ifc})
	}
	if ifc == "" {
		c.note("vip_interface", "is not set: kube-vip used the interface of the default route; vipd uses the interface whose subnet holds the VIP (set vips[].interface if that is another)")
	}
	for _, v := range []string{"vip_subnet", "vip_cidr"} {
		s, ok := c.get(v)
		if !ok || s == "" || s == "32" || s == "128" || s == "/32" || s == "/128" || s == "32,128" || s == "auto" {
			continue
		}
		c.warn(v, "%q is not carried over: vipd always binds a VIP as a host address (/32 or /128), so it adds no subnet route and is never a source address", s)
	}
	lose, err := c.boolVar("vip_loseleadership", false)
	if err != nil {
		return nil, err
	}
	if lose {
		if ifc == "" {
			c.warn("vip_loseleadership", "is not carried over because vip_interface is not set: add an interface check on the VIP's interface and track it (docs/health.md)")
		} else {
			cfg.Checks = append(cfg.Checks, config.Check{Name: "link", Interface: &config.InterfaceCheck{Name: ifc}})
			group.Track = append(group.Track, config.Track{Check: "link"})
			c.note("vip_loseleadership", "became the check \"link\" (interface %s up with carrier), tracked as a gate", ifc)
		}
	}

	// The election.
	le, err := c.boolVar("vip_leaderelection", false)
	if err != nil {
		return nil, err
	}
	mode := opt.Mode
	if mode == "" {
		mode = config.ModeVRRP
		if le {
			mode = config.ModeLease
		}
	}
	switch {
	case !le && bgp:
		c.note("vip_leaderelection", "is not true: every kube-vip node announced the VIP over BGP and the routers spread the traffic; vipd elects one owner (mode %s) that takes all of it", mode)
	case !le:
		c.note("vip_leaderelection", "is not true: every kube-vip node held the VIP at once; vipd elects one owner (mode %s)", mode)
	}
	port, err := c.intVar("port", kvPort, 1, 65535)
	if err != nil {
		return nil, err
	}
	if len(opt.Peers) > 0 && mode != config.ModeVRRP && mode != config.ModeGossip {
		return nil, fmt.Errorf("--peers is for mode vrrp (unicast peers) or gossip, not %s", mode)
	}
	cfg.Mode = mode
	switch mode {
	case config.ModeLease:
		if err := c.lease(cfg, &group, port, le); err != nil {
			return nil, err
		}
	case config.ModeVRRP:
		c.vrrp(&group, opt)
		c.unusedLease(mode)
	case config.ModeGossip:
		c.gossip(cfg, opt)
		c.unusedLease(mode)
	default:
		return nil, fmt.Errorf("--mode %q: must be lease, vrrp or gossip", mode)
	}
	if cp {
		c.apiserverCheck(cfg, &group, port, mode)
	} else if arp && !svc {
		c.note("cp_enable", "is not true: the VIP is converted as group %q with no health check; add checks (docs/health.md) for what it fronts", group.Name)
	}
	cfg.Groups = []config.Group{group}
	return cfg, nil
}

// lease fills mode lease from kube-vip's leader-election settings.
func (c *converter) lease(cfg *config.Config, g *config.Group, port int, le bool) error {
	ns, _ := c.get("cp_namespace")
	if ns == "" {
		ns = kvNamespace
	}
	ld, err := c.intVar("vip_leaseduration", kvLeaseDuration, 1, 3600)
	if err != nil {
		return err
	}
	rd, err := c.intVar("vip_renewdeadline", kvRenewDeadline, 1, 600)
	if err != nil {
		return err
	}
	rp, err := c.intVar("vip_retryperiod", kvRetryPeriod, 1, 60)
	if err != nil {
		return err
	}
	l := &config.Lease{
		Namespace:     ns,
		LeaseDuration: time.Duration(ld) * time.Second,
		RenewDeadline: time.Duration(rd) * time.Second,
		RetryPeriod:   time.Duration(rp) * time.Second,
	}
	if !le {
		c.note("", "kube-vip did not use leader election; mode lease uses kube-vip's default timings (15s/10s/2s)")
	}
	// vipd's fencing rules (docs/lease.md) are stricter than client-go's:
	// raise what breaks them rather than emit a config vipd refuses.
	if l.RenewDeadline < 2*l.RetryPeriod {
		c.warn("vip_renewdeadline", "%s is raised to %s: vipd requires at least 2 × retryPeriod so one failed renewal does not drop the VIP", l.RenewDeadline, 2*l.RetryPeriod)
		l.RenewDeadline = 2 * l.RetryPeriod
	}
	need := max(config.LeaseMinDuration(l.RenewDeadline, l.RetryPeriod),
		config.DefaultLifetime+config.KernelLifetimeSlack+l.RetryPeriod)
	if r := need % time.Second; r != 0 {
		need += time.Second - r
	}
	if l.LeaseDuration < need {
		c.warn("vip_leaseduration", "%s is raised to %s: vipd's fencing rule needs renewDeadline + retryPeriod + 1.5s margins (and binding.lifetime + 1s + retryPeriod) so a cut-off owner has dropped the VIP before another node may take the Lease (docs/lease.md)", l.LeaseDuration, need)
		l.LeaseDuration = need
	}
	name, _ := c.get("vip_leasename")
	if name == "" {
		name = kvLeaseName
	}
	c.note("vip_leasename", "vipd uses its own Lease %s/%s%s, not kube-vip's %s: stop kube-vip on every node before starting vipd (one maintenance window), then delete the old Lease", ns, config.DefaultLeaseNamePrefix, g.Name, name)

	kubeconfig, _ := c.get("k8s_config_file")
	if kubeconfig == "" {
		kubeconfig = kvKubeconfigPath
	}
	if c.f.Static {
		host := c.hostPathOf(kubeconfig)
		if host == "" {
			c.note("k8s_config_file", "no hostPath volume is mounted at %s: set lease.kubeconfig to a kubeconfig on the node", kubeconfig)
		} else {
			l.Kubeconfig = host
			if path.Base(host) == "super-admin.conf" {
				c.warn("k8s_config_file", "kube-vip used %s (kubeadm 1.29+: admin.conf has no rights until `kubeadm init` has finished, kube-vip #684); vipd in mode lease has the same bootstrap problem: create the vipd identity (deploy/lease/rbac.yaml) and its kubeconfig, or use --mode vrrp or gossip, which need no kubeconfig", host)
			} else {
				c.note("k8s_config_file", "lease.kubeconfig is kube-vip's %s; better give vipd its own identity with only Lease rights (deploy/lease/rbac.yaml)", host)
			}
		}
		// kube-vip's static pod reaches its own node's API server as
		// kubernetes:port (a hostAlias to 127.0.0.1), never through the VIP.
		server := "https://kubernetes:" + strconv.Itoa(port)
		if a, _ := c.get("kubernetes_addr"); a != "" {
			server = a
			if !strings.Contains(a, "://") {
				server = "https://" + a
			}
		}
		l.Server = server
		c.note("", "lease.server %s: vipd's static pod needs the same hostAlias (kubernetes → 127.0.0.1) as kube-vip's, see deploy/lease/static-pod.yaml", server)
	} else {
		c.note("", "mode lease uses the pod's service account: deploy vipd with deploy/lease/rbac.yaml and deploy/lease/daemonset.yaml instead of kube-vip's ServiceAccount and ClusterRole")
	}
	cfg.Lease = l
	c.note("", "mode lease needs the API server to move the VIP; for the control-plane VIP vipd recommends --mode vrrp or --mode gossip, which need no kubeconfig and work before `kubeadm init` has finished")
	return nil
}

// hostPathOf is the node path of the hostPath volume mounted at p.
func (c *converter) hostPathOf(p string) string {
	for _, m := range c.f.Container.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(p) {
			continue
		}
		for _, v := range c.f.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				return path.Join(v.HostPath.Path, m.SubPath)
			}
		}
	}
	return ""
}

// unusedLease notes kube-vip's Lease timings, which mean nothing to vrrp
// and gossip.
func (c *converter) unusedLease(mode string) {
	var set []string
	for _, v := range []string{"vip_leasename", "vip_leaseduration", "vip_renewdeadline", "vip_retryperiod", "cp_namespace", "k8s_config_file", "kubernetes_addr"} {
		if _, ok := c.get(v); ok {
			set = append(set, v)
		}
	}
	if len(set) > 0 {
		c.note("", "%s: not used in mode %s, which elects without the API server", strings.Join(set, ", "), mode)
	}
}

func (c *converter) vrrp(g *config.Group, opt Options) {
	vrid := opt.VRID
	how := "from --vrid"
	if vrid == 0 {
		a := netip.MustParseAddr(g.VIPs[0].Address).AsSlice()
		vrid = int(a[len(a)-1])
		if vrid == 0 {
			vrid = 1
		}
		how = "derived from the VIP's last byte"
	}
	g.VRRP = &config.GroupVRRP{VRID: vrid, UnicastPeers: opt.Peers}
	c.note("", "groups[0].vrrp.vrid is %d (%s): it must be the same on every node and unused by other VRRP routers on the LAN (change it with --vrid)", vrid, how)
	c.note("", "every node gets priority 100, so the first node up keeps the VIP; set groups[0].priority per node (1..254) for a fixed order")
	if len(opt.Peers) == 0 {
		c.note("", "VRRP adverts are multicast (224.0.0.18 / ff02::12, IP protocol 112): allow them between the nodes, or list the other nodes with --peers for unicast")
	}
}

// gossipKeyFile is where the converted config expects the gossip key: vipd
// refuses gossip without one unless the config opts out by name.
const gossipKeyFile = "/etc/vipd/gossip.key"

func (c *converter) gossip(cfg *config.Config, opt Options) {
	cfg.Gossip = &config.Gossip{Peers: opt.Peers, KeyFile: gossipKeyFile}
	if len(opt.Peers) == 0 {
		c.note("", "gossip.peers is empty: list the control-plane nodes' addresses (--peers, or gossip.peers), or set gossip.dns")
	}
	c.note("", "create the gossip key before vipd validate or vipd run read it: head -c 32 /dev/urandom | base64 > "+gossipKeyFile+" once, then copy that file to every node; UDP and TCP 7946 must be open between the nodes")
}

// apiserverCheck makes the control-plane VIP follow a ready local API
// server, the check the health issue recommends (examples/vrrp-apiserver.yaml).
func (c *converter) apiserverCheck(cfg *config.Config, g *config.Group, port int, mode string) {
	ca := hostCA
	if !c.f.Static {
		ca = podCA
	}
	cfg.Checks = append(cfg.Checks, config.Check{
		Name: "apiserver",
		HTTP: &config.HTTPCheck{URL: "https://127.0.0.1:" + strconv.Itoa(port) + "/readyz", CAFile: ca},
	})
	g.Track = append(g.Track, config.Track{Check: "apiserver"})
	why := "kube-vip's election failed with the API server it talked to"
	if mode != config.ModeLease {
		why = "mode " + mode + " does not involve the API server"
	}
	c.note("cp_enable", "added the check \"apiserver\" (https://127.0.0.1:%d/readyz with the cluster CA %s), tracked as a gate, because %s; vipd must be able to read %s", port, ca, why, ca)
}

// anyHost accepts every interface: selfCheck catches what is wrong with the
// config itself, not with the machine convert happens to run on.
type anyHost struct{}

func (anyHost) InterfaceExists(string) bool            { return true }
func (anyHost) InterfaceFor(netip.Addr) (string, bool) { return "eth0", true }

// selfCheck reads the config back as vipd would and validates it.
func selfCheck(cfg *config.Config) error {
	data, err := config.Marshal(cfg)
	if err != nil {
		return err
	}
	back, err := config.Parse(data)
	if err != nil {
		return err
	}
	if back.Node == "" {
		back.Node = "convert" // the hostname could not be read here; irrelevant
	}
	if back.Gossip != nil && back.Gossip.KeyFile != "" {
		// The key is created on the nodes later (a note says how); a
		// stand-in lets everything else be checked here.
		f, err := os.CreateTemp("", "vipd-convert-key-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		back.Gossip.KeyFile = f.Name()
	}
	return back.Validate(anyHost{})
}
