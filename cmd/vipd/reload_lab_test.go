package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/vipd/vipd/internal/modes"
	"github.com/vipd/vipd/internal/node"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

// These tests reload a running vipd (docs/reload.md) while a probe sends a
// request to each VIP every 10 ms: a reload that keeps a VIP's owner must
// not lose a single one of them, nor remove or re-add the address.

// writeConfigFile writes c to path (the file vipd was started with).
func writeConfigFile(t *testing.T, path string, c *config.Config) {
	t.Helper()
	data, err := config.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reloadStatus reads /status on h (ok false while it does not answer).
func reloadStatus(t *testing.T, h *lab.Host) (node.Status, bool) {
	t.Helper()
	st, code := getStatus(t, h)
	return st, code != 0
}

// waitReloads waits until h's /status counts applied and failed reloads.
func waitReloads(t *testing.T, h *lab.Host, applied, failed uint64) node.Status {
	t.Helper()
	var st node.Status
	testutil.WaitFor(t, fmt.Sprintf("reloads applied=%d failed=%d", applied, failed), 10*time.Second, func() bool {
		var ok bool
		st, ok = reloadStatus(t, h)
		return ok && st.Reloads.Applied == applied && st.Reloads.Failed == failed
	})
	return st
}

// unanswered counts the requests a probe sent in [from, to] that node did
// not answer, and the replies from other nodes to requests of that window.
func unanswered(rec lab.Record, from, to time.Time, node string) (lost, total int, others map[string]int) {
	answered := map[int]bool{}
	others = map[string]int{}
	for _, rp := range rec.Replies {
		if rp.Node == node {
			answered[rp.Seq] = true
		} else if !rp.SentAt.Before(from) && !rp.SentAt.After(to) {
			others[rp.Node]++
		}
	}
	for seq, at := range rec.SentAt {
		if at.Before(from) || at.After(to) {
			continue
		}
		total++
		if !answered[seq] {
			lost++
		}
	}
	return lost, total, others
}

// noLoss waits until every probe got an answer to a request sent after
// to, then fails the test unless node answered each request sent in
// [from, to]. It returns the total lost (for the report).
func noLoss(t *testing.T, what string, probes []*lab.Probe, from, to time.Time, node string) {
	t.Helper()
	for _, p := range probes {
		testutil.WaitFor(t, "a probe reply past the window", time.Until(to)+5*time.Second, func() bool {
			r, ok := p.Latest()
			return ok && r.SentAt.After(to)
		})
		rec := p.Snapshot()
		lost, total, others := unanswered(rec, from, to, node)
		t.Logf("%s: %s: %d of %d probes (every %s) unanswered over %s; other nodes answering: %v",
			what, rec.VIP, lost, total, rec.Interval, to.Sub(from).Round(time.Millisecond), others)
		if lost > 0 || len(others) > 0 || total == 0 {
			t.Errorf("%s: %s: %d of %d probes lost, answered by others %v", what, rec.VIP, lost, total, others)
		}
	}
}

// noRemoval fails the test if any of vips disappeared from the node since
// the address watch started (a re-bind is a removal and an add).
func noRemoval(t *testing.T, what string, ev *addrEvents, vips ...netip.Addr) {
	t.Helper()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, v := range vips {
		if g := ev.gone[v]; len(g) > 0 {
			t.Errorf("%s: %s was removed from the interface at %v", what, v, g)
		}
	}
}

func groupPriority(st node.Status) int {
	if len(st.Groups) == 0 {
		return 0
	}
	return st.Groups[0].Priority
}

// vipdReload runs `vipd reload args...` in h, as an operator would.
func vipdReload(h *lab.Host, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := h.Command(ctx, bin, append([]string{"reload"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestLabReloadStatic: vipd in static mode holds A and B, probed every
// 10 ms. A reload by SIGHUP changes the priority and adds C; a second by
// `vipd reload` changes the priority again: no probe to A or B is lost, A
// and B are never removed, C answers within 1 s. Broken files (YAML
// error, invalid value, a changed http.listen) are refused: nothing
// changes, and the error is in the log, on /status and from `vipd reload`
// (exit 1). A reload removing C removes only C.
func TestLabReloadStatic(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	a, b, c := l.VIPv4(31), l.VIPv6(31), l.VIPv4(32)
	const port = 7231
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(l.TempDir(), "vipd-reload.yaml")
	cfg := lab.StaticConfig(n.Name, a, b)
	writeConfigFile(t, path, cfg)
	events := watchAddrs(t, n)
	p, err := l.Start(n, bin, "run", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	var probes []*lab.Probe
	for _, vip := range []netip.Addr{a, b} {
		pr, err := l.StartProbe(t.Context(), vip, port, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.WaitOwner(n.Name, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		probes = append(probes, pr)
	}
	if st := waitReloads(t, n, 0, 0); groupPriority(st) != 100 || st.PID != p.PID {
		// PID: the process vipd reload signals. lab.Start runs vipd via
		// `ip netns exec`, which execs it: same PID.
		t.Fatalf("before any reload: priority %d (want the default 100), pid %d (want %d)", groupPriority(st), st.PID, p.PID)
	}

	// 1. SIGHUP: priority 100 -> 150, C added.
	probeC, err := l.StartProbe(t.Context(), c, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	cfg = lab.StaticConfig(n.Name, a, b, c)
	cfg.Groups[0].Priority = 150
	writeConfigFile(t, path, cfg)
	hup := time.Now()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := probeC.WaitOwner(n.Name, time.Second); err != nil {
		t.Fatalf("the added VIP: %v", err)
	}
	st := waitReloads(t, n, 1, 0)
	if replies := probeC.Snapshot().Replies; len(replies) > 0 {
		rp := replies[0]
		t.Logf("SIGHUP -> the added VIP %s answers: %s", c, rp.At.Sub(hup).Round(time.Millisecond))
		if d := rp.At.Sub(hup); d > time.Second {
			t.Errorf("the added VIP answered %s after SIGHUP, want within 1s", d)
		}
	}
	if groupPriority(st) != 150 || len(st.Groups[0].VIPs) != 3 || !st.Groups[0].Owner {
		t.Errorf("after the reload: %+v, want owner, priority 150 and 3 VIPs", st.Groups)
	}
	noLoss(t, "SIGHUP reload", probes, hup, time.Now().Add(time.Second), n.Name)
	noRemoval(t, "SIGHUP reload", events, a, b)

	// 2. `vipd reload --config FILE` in the node's namespace (it talks to
	// vipd's loopback endpoint there): priority 150 -> 120.
	cfg.Groups[0].Priority = 120
	writeConfigFile(t, path, cfg)
	from := time.Now()
	out, err := vipdReload(n, bin, "--config", path)
	if err != nil || !strings.Contains(out, "reload applied") {
		t.Fatalf("vipd reload: %v: %s", err, out)
	}
	st = waitReloads(t, n, 2, 0)
	if groupPriority(st) != 120 {
		t.Errorf("after vipd reload: priority %d, want 120", groupPriority(st))
	}
	noLoss(t, "vipd reload", append(probes, probeC), from, time.Now().Add(time.Second), n.Name)
	noRemoval(t, "vipd reload", events, a, b, c)

	// 3. Broken files: each refused, nothing changes.
	good, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	invalid := *cfg
	invalid.Groups = []config.Group{cfg.Groups[0]}
	invalid.Groups[0].Priority = 300
	invalid.Groups[0].VIPs = append(invalid.Groups[0].VIPs, config.VIP{Address: l.VIPv4(33).String(), Interface: "eth0"})
	// Well-formed YAML that only validation refuses.
	invalidYAML, err := config.Marshal(&invalid)
	if err != nil {
		t.Fatal(err)
	}
	moved := *cfg
	moved.HTTP.Listen = "127.0.0.1:9611"
	listen, err := config.Marshal(&moved)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file string
		args       []string
		want       string // in the refusal on /status, the log and vipd reload's output
	}{
		{"YAML error", string(good) + "groups: [\n  {name: web\n", []string{"--config", path}, "decoding: line"},
		{"invalid value", string(invalidYAML), []string{"--config", path}, "groups[0].priority: 300: must be between 1 and 254"},
		// vipd reload reads http.listen from the (new) file: point it at
		// the running daemon with --addr.
		{"http.listen changed", string(listen), []string{"--addr", "127.0.0.1:9610", "--config", path}, "[http.listen] changed: that needs a restart"},
	}
	// Without --addr, vipd reload goes where the new file says and finds
	// nothing there: it must say why, not just "is vipd running?".
	if err := os.WriteFile(path, listen, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = vipdReload(n, bin, "--config", path)
	if err == nil || !strings.Contains(out, "127.0.0.1:9611") || !strings.Contains(out, "http.listen") || !strings.Contains(out, "--addr") {
		t.Errorf("vipd reload with a changed http.listen and no --addr: %v: %q, want a failure naming the address, http.listen and --addr", err, out)
	}
	failed := uint64(0)
	for _, tc := range cases {
		before, err := n.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		from := time.Now()
		out, err := vipdReload(n, bin, tc.args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: vipd reload: %v, want exit status 1; output: %s", tc.name, err, out)
		}
		if !strings.Contains(out, "reload refused") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: vipd reload printed %q, want the refusal naming %q", tc.name, out, tc.want)
		}
		failed++
		st := waitReloads(t, n, 2, failed)
		if !strings.Contains(st.Reloads.LastError, tc.want) {
			t.Errorf("%s: /status reloads.lastError %q, want it to name %q", tc.name, st.Reloads.LastError, tc.want)
		}
		if groupPriority(st) != 120 || len(st.Groups[0].VIPs) != 3 || !st.Groups[0].Owner {
			t.Errorf("%s: after the refused reload: %+v, want the previous config (priority 120, 3 VIPs, owner)", tc.name, st.Groups)
		}
		logged := false
		for line := range strings.Lines(p.Output()) {
			if strings.Contains(line, "reload refused: still running the previous config") && strings.Contains(line, tc.want) {
				logged = true
			}
		}
		if !logged {
			t.Errorf("%s: vipd did not log the refusal naming %q:\n%s", tc.name, tc.want, p.Output())
		}
		after, err := n.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("%s: addresses changed by a refused reload:\nbefore %v\nafter  %v", tc.name, before, after)
		}
		noLoss(t, tc.name, append(probes, probeC), from, time.Now().Add(300*time.Millisecond), n.Name)
	}
	noRemoval(t, "refused reloads", events, a, b, c)

	// 4. C removed by a reload: C goes, A and B stay.
	cfg = lab.StaticConfig(n.Name, a, b)
	cfg.Groups[0].Priority = 120
	writeConfigFile(t, path, cfg)
	from = time.Now()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitAddress(c, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st = waitReloads(t, n, 3, failed)
	if len(st.Groups[0].VIPs) != 2 {
		t.Errorf("after removing C: VIPs %+v, want A and B", st.Groups[0].VIPs)
	}
	noLoss(t, "reload removing C", probes, from, time.Now().Add(time.Second), n.Name)
	noRemoval(t, "the whole test", events, a, b)
	// The watch works: it saw the binds, and C's removal.
	events.mu.Lock()
	seen := len(events.added[a]) > 0 && len(events.added[b]) > 0 && len(events.gone[c]) > 0
	events.mu.Unlock()
	if !seen {
		t.Errorf("the address watch missed the binds of A and B or the removal of C")
	}
	if !strings.Contains(p.Output(), "reload applied") {
		t.Errorf("vipd did not log the applied reloads:\n%s", p.Output())
	}
}

// TestLabReloadVRRP: the same reload in VRRP mode, node by node as an
// operator rolls a config out: the backup first, then the master, each a
// new priority and an added VIP C. A and B never move or lose a probe, C
// answers on the master within 1 s of its reload, and the backup sees the
// master's new priority in its adverts.
//
// Until mode vrrp can reload (modes.Mode.Reload), the reload must be
// refused with nothing changed; the hitless part is then skipped.
func TestLabReloadVRRP(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	a, b, c := l.VIPv4(84), l.VIPv6(84), l.VIPv4(85)
	const port = 7284
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	r := vrrplab.Router{VRID: 84, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{a, b}}
	rc := r
	rc.VIPs = []netip.Addr{a, b, c}
	paths := [2]string{filepath.Join(l.TempDir(), "vipd-node1.yaml"), filepath.Join(l.TempDir(), "vipd-node2.yaml")}
	ev1, ev2 := watchAddrs(t, n1), watchAddrs(t, n2)
	var procs [2]*lab.Process
	for i, prio := range []int{150, 100} {
		h := l.Nodes[i]
		writeConfigFile(t, paths[i], vrrplab.VipdConfig(h, prio, r, nil))
		p, err := l.Start(h, bin, "run", "--config", paths[i])
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
		if i == 0 {
			// node1 alone first, so it is the master without a race.
			testutil.WaitFor(t, "node1 master", 10*time.Second, func() bool { return hasAddr(t, n1, a) && hasAddr(t, n1, b) })
		}
	}
	var probes []*lab.Probe
	for _, vip := range []netip.Addr{a, b} {
		pr, err := l.StartProbe(t.Context(), vip, port, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.WaitOwner(n1.Name, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		probes = append(probes, pr)
	}
	backupSees := func(prio uint8) func() bool {
		return func() bool {
			st, err := vrrplab.VipdStatus(n2)
			if err != nil || len(st.Routers) != 2 {
				return false
			}
			for _, vr := range st.Routers {
				if vr.State != "backup" || vr.MasterPriority != prio {
					return false
				}
			}
			return true
		}
	}
	testutil.WaitFor(t, "node2 backup of node1 at 150", 10*time.Second, backupSees(150))

	// The rollout below needs the mode to reload in place.
	if m, _ := modes.Lookup(config.ModeVRRP); m.Reload == nil {
		t.Fatal("mode vrrp registers no Reload")
	}

	// 1. The backup: 100 -> 110, C added. It stays backup.
	from := time.Now()
	writeConfigFile(t, paths[1], vrrplab.VipdConfig(n2, 110, rc, nil))
	if err := procs[1].Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if st := waitReloads(t, n2, 1, 0); groupPriority(st) != 110 {
		t.Errorf("node2 after its reload: priority %d, want 110", groupPriority(st))
	}
	// Until the master's reload, node2 hears adverts listing {A, B} while
	// it has {A, B, C}: it must stay backup for longer than its
	// Master_Down_Interval (361 ms), not take them for another router's.
	adverts := func() uint64 {
		st, err := vrrplab.VipdStatus(n2)
		if err != nil {
			return 0
		}
		n := st.Received
		for _, d := range st.Dropped {
			n += d
		}
		return n
	}
	heard := adverts()
	testutil.WaitFor(t, "node2 hears 10 adverts (~500 ms) after its reload", 5*time.Second, func() bool { return adverts() >= heard+10 })
	if !backupSees(150)() {
		st, _ := vrrplab.VipdStatus(n2)
		t.Fatalf("node2 after its reload, hearing node1's old address list: %+v", st)
	}

	// 2. The master: 150 -> 160, C added; C answers within 1 s.
	probeC, err := l.StartProbe(t.Context(), c, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	writeConfigFile(t, paths[0], vrrplab.VipdConfig(n1, 160, rc, nil))
	hup := time.Now()
	if err := procs[0].Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := probeC.WaitOwner(n1.Name, time.Second); err != nil {
		t.Fatalf("the added VIP: %v", err)
	}
	if rs := probeC.Snapshot().Replies; len(rs) > 0 {
		t.Logf("SIGHUP -> the added VIP %s answers: %s", c, rs[0].At.Sub(hup).Round(time.Millisecond))
	}
	if st := waitReloads(t, n1, 1, 0); groupPriority(st) != 160 || len(st.Groups[0].VIPs) != 3 {
		t.Errorf("node1 after its reload: %+v, want priority 160 and 3 VIPs", st.Groups)
	}
	testutil.WaitFor(t, "node2 sees node1's adverts at 160", 5*time.Second, backupSees(160))
	noLoss(t, "vrrp rolling reload", probes, from, time.Now().Add(time.Second), n1.Name)
	noRemoval(t, "vrrp rolling reload", ev1, a, b)
	ev2.mu.Lock()
	defer ev2.mu.Unlock()
	for _, v := range rc.VIPs {
		if len(ev2.added[v]) > 0 {
			t.Errorf("node2 bound %s during the reloads", v)
		}
	}
}
