package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vipd/vipd/internal/manifest"
)

const manifestUsage = `Usage: vipd manifest static-pod|daemonset --config FILE [flags]

  static-pod   a Pod for /etc/kubernetes/manifests (the kube-apiserver VIP)
  daemonset    a DaemonSet with its ServiceAccount, RBAC, ConfigMap and Secret

The YAML goes to stdout; docs/manifest.md explains every setting.

Flags:
`

// manifestCmd prints the Kubernetes objects that run vipd with a config.
func manifestCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, manifestUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return &exitError{code: 2, err: errors.New("manifest: say static-pod or daemonset")}
	}
	kind, rest := args[0], args[1:]
	if kind != "static-pod" && kind != "daemonset" {
		fmt.Fprint(stderr, manifestUsage)
		return &exitError{code: 2, err: fmt.Errorf("manifest: unknown kind %q (static-pod or daemonset)", kind)}
	}
	fs := newFlagSet("manifest "+kind, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, manifestUsage)
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "vipd config file (validated as on a node, except for its interfaces)")
	image := fs.String("image", manifest.DefaultImage, "vipd container image")
	ns := fs.String("namespace", manifest.DefaultNamespace, "namespace of the objects")
	name := fs.String("name", manifest.DefaultName, "name of the Pod/DaemonSet and the objects beside it")
	key := fs.String("gossip-key", "", "daemonset: the gossip key file on this machine, when it is not at the config's gossip.keyFile here")
	sel := fs.String("node-selector", "", "daemonset: key=value[,key=value] the nodes must carry")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *path == "" {
		return &exitError{code: 2, err: errors.New("--config FILE is required")}
	}
	if kind == "static-pod" && (*key != "" || *sel != "") {
		return &exitError{code: 2, err: errors.New("--gossip-key and --node-selector are for daemonset: a static pod reads the node's files and runs where its file is")}
	}
	selector, err := parseSelector(*sel)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg, raw, err := manifest.Load(*path, *key)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	o := manifest.Options{Image: *image, Namespace: *ns, Name: *name, NodeSelector: selector, ConfigName: *path}
	var m *manifest.Manifest
	if kind == "static-pod" {
		m, err = manifest.StaticPod(cfg, o)
	} else {
		m, err = manifest.DaemonSet(cfg, raw, o)
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	out, err := m.YAML()
	if err != nil {
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(stderr, "vipd manifest: warning:", w)
	}
	_, err = stdout.Write(out)
	return err
}

func parseSelector(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-selector %q: want key=value[,key=value] (value may be empty: key=)", s)
		}
		m[k] = v
	}
	return m, nil
}
