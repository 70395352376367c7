// Package vrrplab runs vipd (VRRP mode) and Debian's keepalived side by side
// in an internal/lab network: config generation and process handling shared
// by the interop tests, `vipd demo` and the benchmark.
package vrrplab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/vrrp"
)

// Router describes the virtual router every node runs.
type Router struct {
	VRID     int
	Interval time.Duration // advert interval (10ms steps)
	VIPs     []netip.Addr  // one or both families: a v4+v6 group (sync group in keepalived)
	// Unicast lists each node's unicast peers by node (empty: multicast).
	Unicast bool
	// UnicastSource: vipd sends unicast adverts from the node's IPv4 and
	// global IPv6 address (unicastSource) instead of the primary IPv4 and
	// the link-local IPv6 address.
	UnicastSource bool
	// CheckUnicastSrc: keepalived accepts unicast adverts only from its
	// unicast_peer addresses (check_unicast_src).
	CheckUnicastSrc bool
}

// VipdConfig is a vrrp-mode vipd config for node h with priority prio.
// peers are used when r.Unicast.
func VipdConfig(h *lab.Host, prio int, r Router, peers []netip.Addr) *config.Config {
	g := config.Group{Name: "web", Priority: prio, VRRP: &config.GroupVRRP{VRID: r.VRID, AdvertInterval: r.Interval}}
	for _, v := range r.VIPs {
		g.VIPs = append(g.VIPs, config.VIP{Address: v.String()})
	}
	if r.Unicast {
		for _, p := range peers {
			g.VRRP.UnicastPeers = append(g.VRRP.UnicastPeers, p.String())
		}
		if r.UnicastSource {
			for _, fam := range families(r.VIPs) {
				a := h.IPv4.Addr()
				if fam == 6 {
					a = h.IPv6.Addr()
				}
				g.VRRP.UnicastSource = append(g.VRRP.UnicastSource, a.String())
			}
		}
	}
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeVRRP,
		Groups: []config.Group{g}}
}

// KeepalivedConfig is a keepalived.conf (VRRPv3) for node h: one instance
// per address family, joined in a sync group when there are two.
func KeepalivedConfig(h *lab.Host, prio int, r Router, src4 netip.Addr, peers []netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n  vrrp_version 3\n  vrrp_garp_master_repeat 5\n  vrrp_garp_master_delay 0\n  vrrp_garp_interval 0.2\n  vrrp_gna_interval 0.2\n}\n", h.Name)
	var insts []string
	for _, fam := range []int{4, 6} {
		var vips []netip.Addr
		for _, v := range r.VIPs {
			if v.Is4() == (fam == 4) {
				vips = append(vips, v)
			}
		}
		if len(vips) == 0 {
			continue
		}
		name := fmt.Sprintf("web%d", fam)
		insts = append(insts, name)
		fmt.Fprintf(&b, "vrrp_instance %s {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n",
			name, h.Link, r.VRID, prio, strings.TrimSuffix(fmt.Sprintf("%.2f", r.Interval.Seconds()), "0"))
		if fam == 6 {
			b.WriteString("  native_ipv6\n")
		}
		if r.Unicast {
			// keepalived binds its unicast socket to this address (by
			// default its link-local one for IPv6), so it must be the
			// address vipd's unicastPeers name.
			src := h.IPv4.Addr()
			if src4.IsValid() {
				src = src4
			}
			if fam == 6 {
				src = h.IPv6.Addr()
			}
			fmt.Fprintf(&b, "  unicast_src_ip %s\n", src)
			if r.CheckUnicastSrc {
				b.WriteString("  check_unicast_src\n")
			}
			b.WriteString("  unicast_peer {\n")
			for _, p := range peers {
				if p.Is4() == (fam == 4) {
					fmt.Fprintf(&b, "    %s\n", p)
				}
			}
			b.WriteString("  }\n")
		}
		b.WriteString("  virtual_ipaddress {\n")
		for _, v := range vips {
			bits := 32
			if v.Is6() {
				bits = 128
			}
			fmt.Fprintf(&b, "    %s/%d dev %s\n", v, bits, h.Link)
		}
		b.WriteString("  }\n}\n")
	}
	if len(insts) > 1 {
		fmt.Fprintf(&b, "vrrp_sync_group web {\n  group {\n    %s\n  }\n}\n", strings.Join(insts, "\n    "))
	}
	return b.String()
}

// families lists the address families (4, 6) of vips, in that order.
func families(vips []netip.Addr) []int {
	var fs []int
	for _, fam := range []int{4, 6} {
		for _, v := range vips {
			if v.Is4() == (fam == 4) {
				fs = append(fs, fam)
				break
			}
		}
	}
	return fs
}

// Keepalived is a keepalived started in a lab node.
type Keepalived struct {
	*lab.Process
	dir string
}

// KeepalivedAvailable reports whether keepalived is installed.
func KeepalivedAvailable() error {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return errors.New("keepalived not installed (apt-get install keepalived)")
	}
	return nil
}

// StartKeepalived runs `keepalived -P -n -l -D` with conf in h, with pid
// files in a directory of its own so nothing collides with other instances.
func StartKeepalived(l *lab.Lab, h *lab.Host, conf string) (*Keepalived, error) {
	dir, err := os.MkdirTemp(l.TempDir(), "keepalived-"+h.Name+"-")
	if err != nil {
		return nil, err
	}
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := l.Start(h, "keepalived", "-P", "-n", "-l", "-D", "-f", cf,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	if err != nil {
		return nil, err
	}
	return &Keepalived{Process: p, dir: dir}, nil
}

// ConfigFile is the keepalived.conf this keepalived runs (what `vipd
// convert keepalived` reads in the migration lab).
func (k *Keepalived) ConfigFile() string { return filepath.Join(k.dir, "keepalived.conf") }

// Crash kills keepalived and its VRRP child at once (SIGKILL to its process
// group, which the lab made its own): no priority-0 advert, VIPs left behind.
func (k *Keepalived) Crash() error {
	return syscall.Kill(-k.PID, syscall.SIGKILL)
}

// Stop is a graceful stop (SIGTERM): keepalived sends priority 0 and removes its VIPs.
func (k *Keepalived) Stop(timeout time.Duration) error {
	if err := k.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if exited, _ := k.Wait(timeout); !exited {
		return fmt.Errorf("keepalived on %s did not exit within %s", k.Host.Name, timeout)
	}
	return nil
}

// WaitLog waits until keepalived's output contains s.
func (k *Keepalived) WaitLog(s string, timeout time.Duration) error {
	if _, err := testutil.Poll(context.Background(), timeout, 20*time.Millisecond, func() bool {
		return strings.Contains(k.Output(), s)
	}); err != nil {
		return fmt.Errorf("keepalived on %s did not log %q within %s", k.Host.Name, s, timeout)
	}
	return nil
}

// CleanVIPs removes VIPs a crashed keepalived left on h (it has no kernel
// lifetime on them).
func CleanVIPs(h *lab.Host, vips []netip.Addr) {
	for _, v := range vips {
		bits := 32
		if v.Is6() {
			bits = 128
		}
		_ = h.DelAddress(netip.PrefixFrom(v, bits))
	}
}

// VipdStatus reads the VRRP part of vipd's /status in h.
func VipdStatus(h *lab.Host) (vrrp.Status, error) {
	var st struct {
		Election vrrp.Status `json:"election"`
	}
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/status")
	if err != nil {
		return st.Election, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st.Election, err
	}
	return st.Election, nil
}
