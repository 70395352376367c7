package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

// These tests prove the image works, not just the source: the vipd they
// run is the one read out of the image tarball (or the image itself, run by
// podman), holding a VIP in the network lab.

const probePort = 7788

// checkVIPServed checks, from the lab's client, that node h answers for
// vip: UDP probes through the VIP reach h, ARP/NDP for it is answered with
// h's MAC, ping answers, and /healthz in h's namespace says ok.
func checkVIPServed(t *testing.T, l *lab.Lab, h *lab.Host, vips ...netip.Addr) {
	t.Helper()
	for _, vip := range vips {
		if err := h.WaitAddress(vip, true, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		probe, err := l.StartProbe(t.Context(), vip, probePort, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := probe.WaitOwner(h.Name, 5*time.Second); err != nil {
			probe.Stop()
			t.Fatalf("probe to %s: %v", vip, err)
		}
		testutil.WaitFor(t, "a neighbour answer for "+vip.String(), 5*time.Second, func() bool {
			for _, s := range probe.Snapshot().Neighbors {
				for _, mac := range s.MACs {
					if mac.String() == h.MAC.String() {
						return true
					}
				}
			}
			return false
		})
		probe.Stop()
		ping := []string{"-c", "1", "-W", "2", vip.String()}
		if vip.Is6() {
			ping = append([]string{"-6"}, ping...)
		}
		if _, err := l.Client.Run(t.Context(), "ping", ping...); err != nil {
			t.Fatal(err)
		}
	}
	body, code := get(t, h, "/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q, want 200 ok", code, body)
	}
}

func get(t *testing.T, h *lab.Host, path string) (string, int) {
	t.Helper()
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610" + path)
	if err != nil {
		t.Fatalf("GET %s in %s: %v", path, h.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// The binary read out of the image tarball holds a VIP (IPv4 and IPv6) in
// static mode, answers /healthz, and removes the VIPs on SIGTERM.
func TestLabImageBinaryHoldsVIP(t *testing.T) {
	lab.Require(t)
	lab.RequireTool(t, "ping")
	_, tarball := buildOnce(t)
	bin := extractBinary(t, tarball, t.TempDir())
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4, v6 := l.VIPv4(1), l.VIPv6(1)
	if err := l.StartResponders(probePort); err != nil {
		t.Fatal(err)
	}
	p, err := l.StartVipdConfig(n, bin, lab.StaticConfig(n.Name, v4, v6))
	if err != nil {
		t.Fatal(err)
	}
	checkVIPServed(t, l, n, v4, v6)

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Wait(10 * time.Second); !exited || err != nil {
		t.Fatalf("the image's vipd on SIGTERM: exited %v, %v", exited, err)
	}
	for _, vip := range []netip.Addr{v4, v6} {
		if ok, err := n.HasAddress(vip); err != nil || ok {
			t.Fatalf("%s still bound after SIGTERM (%v)", vip, err)
		}
	}
}

// PodmanEnv, set to 0, skips the podman test (it runs by default: podman
// and runc install in ~11 s and the test takes a few seconds).
const PodmanEnv = "VIPD_TEST_PODMAN"

// podman runs podman on a store of its own under dir, so the test never
// touches (or tags over) the machine's images; with runc, cgroupfs and
// explicit ulimits, as it works in this CI's containers
// (/work/shared/README.md).
type podman struct{ dir string }

func (p podman) args(args ...string) []string {
	return append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, args...)
}

func (p podman) run(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "podman", p.args(args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// syncBuffer is a bytes.Buffer safe for the podman process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The image itself, loaded by podman and run as the docs say (every
// capability dropped but NET_ADMIN and NET_RAW, a read-only root, the
// config mounted read-only at the default command's path) in a node's
// namespace, holds the VIP and answers /healthz; `podman stop` (SIGTERM)
// removes the VIP.
func TestLabImagePodman(t *testing.T) {
	if os.Getenv(PodmanEnv) == "0" {
		t.Skipf("%s=0", PodmanEnv)
	}
	lab.Require(t)
	lab.RequireTool(t, "podman")
	lab.RequireTool(t, "runc")
	lab.RequireTool(t, "ping")
	res, tarball := buildOnce(t)
	pm := podman{dir: t.TempDir()}
	t.Cleanup(func() {
		// Removes the store's containers, images and mounts, then the store.
		defer func(start time.Time) { t.Logf("podman system reset: %s", time.Since(start).Round(time.Millisecond)) }(time.Now())
		if out, err := pm.run(context.Background(), "system", "reset", "--force"); err != nil {
			t.Logf("podman system reset: %v\n%s", err, out)
		}
	})
	start := time.Now()
	out, err := pm.run(t.Context(), "load", "--input", tarball)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Loaded image: "+res.Meta.Ref) {
		t.Fatalf("podman load: %s\nwant the image named %s (from the archive's annotation)", out, res.Meta.Ref)
	}
	digest, err := pm.run(t.Context(), "image", "inspect", "--format", "{{.Digest}}", res.Meta.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(digest); got != res.Digest.String() {
		t.Errorf("podman sees digest %s, the build made %s", got, res.Digest)
	}
	t.Logf("podman load: %s", time.Since(start).Round(time.Millisecond))

	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	v4 := l.VIPv4(1)
	if err := l.StartResponders(probePort); err != nil {
		t.Fatal(err)
	}
	cfgYAML, err := config.Marshal(lab.StaticConfig(n.Name, v4))
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "vipd.yaml")
	if err := os.WriteFile(cfgFile, cfgYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	name := "vipd-test-" + l.ID
	cmd := exec.Command("podman", pm.args("run", "--rm", "--name", name,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--network", "ns:/run/netns/"+n.NetNS,
		"--cap-drop", "ALL", "--cap-add", "NET_ADMIN,NET_RAW", "--read-only",
		"--volume", cfgFile+":"+ConfigPath+":ro",
		res.Meta.Ref)...) // the image's own entrypoint and command
	var output syncBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	runStart := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// done is closed when podman run has returned, with its error in runErr.
	done := make(chan struct{})
	var runErr error
	go func() { runErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_, _ = pm.run(context.Background(), "rm", "--force", "--time", "0", name)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("--- podman run output ---\n%s", output.String())
		}
	})

	checkVIPServed(t, l, n, v4)
	t.Logf("podman run: VIP served %s after start", time.Since(runStart).Round(time.Millisecond))
	caps, err := pm.run(t.Context(), "inspect", "--format", "{{.EffectiveCaps}}", name)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(caps); got != "[CAP_NET_ADMIN CAP_NET_RAW]" {
		t.Errorf("the container's capabilities: %s, want NET_ADMIN and NET_RAW only", got)
	}

	stopStart := time.Now()
	if _, err := pm.run(t.Context(), "stop", "--time", "10", name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if runErr != nil {
			t.Fatalf("podman run after stop: %v", runErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("podman run did not return after podman stop")
	}
	t.Logf("podman stop: %s", time.Since(stopStart).Round(time.Millisecond))
	if ok, err := n.HasAddress(v4); err != nil || ok {
		t.Fatalf("%s still bound after the container stopped (%v)", v4, err)
	}
}
