package doctor_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

// runDoctor runs the real binary's `vipd doctor` in h's namespace and
// returns its stdout lines and exit status.
func runDoctor(t *testing.T, l *lab.Lab, h *lab.Host, bin string, c *config.Config, args ...string) ([]string, int) {
	t.Helper()
	data, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(l.TempDir(), "doctor-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := h.Command(ctx, bin, append([]string{"doctor", "--config", f.Name()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("vipd doctor: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("vipd doctor on %s: exit %d\n%s\nstderr: %s", h.Name, code, out, stderr.String())
	return lines, code
}

// expect fails t unless some line starts with verdict and check and
// contains every one of says.
func expect(t *testing.T, lines []string, verdict, check string, says ...string) {
	t.Helper()
	prefix := verdict + strings.Repeat(" ", 6-len(verdict)) + check
outer:
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		for _, s := range says {
			if !strings.Contains(l, s) {
				continue outer
			}
		}
		return
	}
	t.Errorf("no line %q containing %q", prefix, says)
}

// onlyWarnings fails t if any line is not OK except those whose check is
// in allowed (as WARN).
func onlyWarnings(t *testing.T, lines []string, allowed ...string) {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, "OK    ") {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(l, "WARN  "+a)
		}
		if !ok {
			t.Errorf("unexpected line: %s", l)
		}
	}
}

func vrrpConfig(h *lab.Host, vrid int, vips ...netip.Addr) *config.Config {
	return vrrplab.VipdConfig(h, 100, vrrplab.Router{VRID: vrid, Interval: 100 * time.Millisecond, VIPs: vips}, nil)
}

func staticConfig(h *lab.Host, vips ...netip.Addr) *config.Config {
	g := config.Group{Name: "web"}
	for _, v := range vips {
		g.VIPs = append(g.VIPs, config.VIP{Address: v.String()})
	}
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeStatic, Groups: []config.Group{g}}
}

func setSysctl(t *testing.T, h *lab.Host, key, value string) {
	t.Helper()
	if err := h.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorLab runs `vipd doctor` on node1 of a namespace lab: a clean
// node, then a planted VRID collision (keepalived on node2 with our VRID
// and another VIP, next to a vipd of our own group on node3), a config
// naming a missing interface, and arp_ignore=2.
func TestDoctorLab(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 3})
	bin := lab.BuildVipd(t)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	ourVIP, otherVIP := l.VIPv4(1), l.VIPv4(2)

	t.Run("clean static node with vipd running", func(t *testing.T) {
		c := staticConfig(n1, ourVIP)
		p, err := l.StartVipdConfig(n1, bin, c)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "vipd /healthz on node1", 15*time.Second, func() bool {
			resp, err := n1.HTTPClient().Get("http://127.0.0.1:9610/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		lines, code := runDoctor(t, l, n1, bin, c)
		if code != 0 {
			t.Errorf("exit %d on a clean node, want 0", code)
		}
		onlyWarnings(t, lines)
		expect(t, lines, "OK", "interface eth0", "present and up")
		expect(t, lines, "OK", "vip "+ourVIP.String(), "198.51.100.0/24")
		expect(t, lines, "OK", "sysctl eth0 arp_ignore", "0 (max of all=0, eth0=0)")
		expect(t, lines, "OK", "capabilities")
		expect(t, lines, "OK", "http 127.0.0.1:9610", "healthy")
		_ = p.Signal(syscall.SIGTERM)
		if exited, _ := p.Wait(10 * time.Second); !exited {
			t.Fatal("vipd did not stop")
		}
	})

	t.Run("clean VRRP node", func(t *testing.T) {
		lines, code := runDoctor(t, l, n1, bin, vrrpConfig(n1, 51, ourVIP))
		if code != 1 {
			t.Errorf("exit %d, want 1 (VRRP's unauthenticated adverts are a warning)", code)
		}
		onlyWarnings(t, lines, "unauthenticated")
		expect(t, lines, "OK", "vrrp vrid 51 IPv4 on eth0 (group web)", "no other router heard in 3s")
		expect(t, lines, "OK", "http", "not running")
	})

	t.Run("VRID collision", func(t *testing.T) {
		if err := vrrplab.KeepalivedAvailable(); err != nil {
			lab.Unavailable(t, err)
		}
		// keepalived (priority 150) claims VRID 51 for another VIP. It runs
		// alone: beside a master of the other router (as in a real
		// collision, where each drops the other's adverts), keepalived
		// 2.2.7 sent only 0–3 adverts a second here, too few for a 3 s
		// listen to be sure to hear one.
		ka, err := vrrplab.StartKeepalived(l, n2, vrrplab.KeepalivedConfig(n2, 150,
			vrrplab.Router{VRID: 51, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{otherVIP}}, netip.Addr{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = ka.Stop(10 * time.Second)
			vrrplab.CleanVIPs(n2, []netip.Addr{otherVIP})
		}()
		if err := ka.WaitLog("Entering MASTER STATE", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		lines, code := runDoctor(t, l, n1, bin, vrrpConfig(n1, 51, ourVIP), "--listen", "3s")
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		expect(t, lines, "FAIL", "vrrp vrid 51 IPv4 on eth0 (group web)", n2.IPv4.Addr().String()+" priority 150", "advertises "+otherVIP.String(), "VRID collision")
	})

	t.Run("another node of our group", func(t *testing.T) {
		peer, err := l.StartVipdConfig(n3, bin, vrrpConfig(n3, 51, ourVIP))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = peer.Signal(syscall.SIGTERM)
			peer.Wait(10 * time.Second)
		}()
		if err := n3.WaitAddress(ourVIP, true, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		lines, code := runDoctor(t, l, n1, bin, vrrpConfig(n1, 51, ourVIP), "--listen", "3s")
		if code != 1 {
			t.Errorf("exit %d, want 1 (only the unauthenticated warning)", code)
		}
		onlyWarnings(t, lines, "unauthenticated")
		expect(t, lines, "OK", "vrrp vrid 51 IPv4 on eth0 (group web)", n3.IPv4.Addr().String()+" priority 100", "advertises "+ourVIP.String(), "another node of this group")
	})

	t.Run("missing interface", func(t *testing.T) {
		c := staticConfig(n1, ourVIP)
		c.Groups[0].VIPs[0].Interface = "nosuch0"
		lines, code := runDoctor(t, l, n1, bin, c)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		expect(t, lines, "OK", "config")
		expect(t, lines, "FAIL", "interface nosuch0", "not present on this node (group web)")
	})

	t.Run("arp_ignore=2", func(t *testing.T) {
		setSysctl(t, n1, "net.ipv4.conf.eth0.arp_ignore", "2")
		defer setSysctl(t, n1, "net.ipv4.conf.eth0.arp_ignore", "0")
		lines, code := runDoctor(t, l, n1, bin, staticConfig(n1, ourVIP))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		onlyWarnings(t, lines, "sysctl eth0 arp_ignore")
		expect(t, lines, "WARN", "sysctl eth0 arp_ignore", "2 (max of all=0, eth0=2)", "net.ipv4.conf.eth0.arp_ignore=1")
		// A VIP outside the interface's subnets gets no ARP answer at all.
		outside := netip.MustParseAddr("203.0.113.10")
		c := staticConfig(n1, outside)
		c.Groups[0].VIPs[0].Interface = "eth0"
		lines, code = runDoctor(t, l, n1, bin, c)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		expect(t, lines, "WARN", "vip 203.0.113.10", "in no subnet of eth0")
		expect(t, lines, "FAIL", "sysctl eth0 arp_ignore", "203.0.113.10 lie in none")
	})
}
