package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vipd/vipd/internal/kubevip"
)

// convertKubeVIPCmd prints the vipd config for a kube-vip manifest on
// stdout and what differs on stderr.
func convertKubeVIPCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert kube-vip", stderr)
	mode := fs.String("mode", "", "election mode: lease (default when kube-vip used leader election), vrrp (default otherwise) or gossip")
	vrid := fs.Int("vrid", 0, "VRRP virtual router ID, 1..255 (default: the VIP's last byte)")
	peers := fs.String("peers", "", "comma-separated peer addresses: gossip.peers, or VRRP unicast peers")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vipd convert kube-vip [--mode lease|vrrp|gossip] [--vrid N] [--peers A,B] FILE")
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE.
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("convert kube-vip: FILE is required (a kube-vip static pod or DaemonSet manifest)")}
	}
	file := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil {
		return err
	}
	if *vrid < 0 || *vrid > 255 {
		return &exitError{code: 2, err: fmt.Errorf("--vrid %d: must be between 1 and 255", *vrid)}
	}
	opt := kubevip.Options{Mode: *mode, VRID: *vrid}
	for _, p := range strings.Split(*peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			opt.Peers = append(opt.Peers, p)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	r, err := kubevip.Convert(data, opt)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	out, err := r.YAML()
	if err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(stderr, "%s: %s\n", file, n)
	}
	_, err = stdout.Write(out)
	return err
}
