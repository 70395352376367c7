package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/hooks"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

// These tests run two real vipd processes in VRRP mode with notify hooks
// (docs/hooks.md): a script records each call, and a hanging hook must not
// delay a failover.

// hookCall is one recorded run of the recording script: its arguments and
// the VIPD_* variables it got.
type hookCall struct {
	argv []string
	env  map[string]string
}

func (c hookCall) String() string {
	return fmt.Sprintf("%q %v", c.argv, c.env)
}

// writeHookScript writes, into dir, a notify script that appends one line
// per call to a log: its arguments, then each VIPD_* variable, separated by
// tabs. It returns the script's and the log's paths.
func writeHookScript(t *testing.T, dir, name string) (script, log string) {
	t.Helper()
	script = filepath.Join(dir, name+".sh")
	log = filepath.Join(dir, name+".log")
	// One printf per call: the line is complete when it appears. PATH is
	// the hooks' minimal one, which has env, grep, sort and tr.
	body := fmt.Sprintf(`#!/bin/sh
vars=$(env | grep '^VIPD_' | sort | tr '\n' '\t')
printf '%%s\t%%s\n' "$*" "$vars" >> %q
`, log)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

// readHookCalls parses the recording script's log (missing: no call yet).
func readHookCalls(t *testing.T, log string) []hookCall {
	t.Helper()
	data, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []hookCall
	for line := range strings.Lines(string(data)) {
		fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		c := hookCall{argv: strings.Fields(fields[0]), env: map[string]string{}}
		for _, kv := range fields[1:] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				c.env[k] = v
			}
		}
		calls = append(calls, c)
	}
	return calls
}

// waitHookCalls waits until log holds at least n calls and returns them.
func waitHookCalls(t *testing.T, log string, n int, timeout time.Duration) []hookCall {
	t.Helper()
	var calls []hookCall
	if _, err := testutil.Poll(t.Context(), timeout, 10*time.Millisecond, func() bool {
		calls = readHookCalls(t, log)
		return len(calls) >= n
	}); err != nil {
		t.Fatalf("%s: %d hook calls within %s, want %d: %v", filepath.Base(log), len(calls), timeout, n, calls)
	}
	return calls
}

// hookStep is one expected hook call.
type hookStep struct {
	state, previous string
	priority        int
}

// checkHookCalls compares the recorded calls with want: keepalived's
// argument order exactly, and the documented environment.
func checkHookCalls(t *testing.T, who string, calls []hookCall, want []hookStep, vips []netip.Addr) {
	t.Helper()
	var states []string
	for _, c := range calls {
		states = append(states, c.env["VIPD_STATE"])
	}
	if len(calls) != len(want) {
		t.Errorf("%s: hook calls %v, want %d: %v", who, states, len(want), want)
		return
	}
	var wantVIPs []string
	for _, v := range vips {
		wantVIPs = append(wantVIPs, v.String())
	}
	for i, w := range want {
		c := calls[i]
		argv := []string{"GROUP", "web", w.state, strconv.Itoa(w.priority)}
		if !slices.Equal(c.argv, argv) {
			t.Errorf("%s: call %d: arguments %q, want %q", who, i, c.argv, argv)
		}
		for k, v := range map[string]string{
			"VIPD_GROUP": "web", "VIPD_STATE": w.state, "VIPD_PREVIOUS_STATE": w.previous,
			"VIPD_PRIORITY": strconv.Itoa(w.priority),
		} {
			if got, ok := c.env[k]; !ok || got != v {
				t.Errorf("%s: call %d (%s): %s=%q (set: %v), want %q", who, i, w.state, k, got, ok, v)
			}
		}
		if got := strings.Fields(c.env["VIPD_VIPS"]); !slices.Equal(got, wantVIPs) {
			t.Errorf("%s: call %d (%s): VIPD_VIPS %q, want %q", who, i, w.state, got, wantVIPs)
		}
		if c.env["VIPD_REASON"] == "" {
			t.Errorf("%s: call %d (%s): VIPD_REASON is empty", who, i, w.state)
		}
	}
}

// hookGroupStatus reads group web's hook record from h's /status.
func hookGroupStatus(h *lab.Host) (hooks.GroupStatus, bool) {
	var st struct {
		Groups []struct {
			Name  string             `json:"name"`
			Hooks *hooks.GroupStatus `json:"hooks"`
		} `json:"groups"`
	}
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/status")
	if err != nil {
		return hooks.GroupStatus{}, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return hooks.GroupStatus{}, false
	}
	for _, g := range st.Groups {
		if g.Name == "web" && g.Hooks != nil {
			return *g.Hooks, true
		}
	}
	return hooks.GroupStatus{}, false
}

// vrrpHookConfig is node h's VRRP config for router r with notify on group web.
func vrrpHookConfig(h *lab.Host, prio int, r vrrplab.Router, n *config.Notify) *config.Config {
	c := vrrplab.VipdConfig(h, prio, r, nil)
	c.Groups[0].Notify = n
	return c
}

// TestLabHooksRecordTransitions: the recording script sees each node's
// transitions in order, with keepalived's arguments (GROUP web STATE prio)
// and the VIPD_* environment: node1 BACKUP then MASTER (a VRRP router
// starts as backup), node2 BACKUP; on SIGTERM node1 STOP and node2 MASTER.
func TestLabHooksRecordTransitions(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	r := vrrplab.Router{VRID: 81, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(81), l.VIPv6(81)}}
	script1, log1 := writeHookScript(t, l.TempDir(), "hook-node1")
	script2, log2 := writeHookScript(t, l.TempDir(), "hook-node2")

	// node1 first, alone until it is master: node2 started at the same
	// time could become master before hearing node1 (its master-down timer
	// is 20 ms longer only), and the sequence would depend on the race.
	p1, err := l.StartVipdConfig(n1, bin, vrrpHookConfig(n1, 150, r, &config.Notify{Command: []string{script1}, Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	waitHookCalls(t, log1, 2, 10*time.Second)
	if _, err := l.StartVipdConfig(n2, bin, vrrpHookConfig(n2, 100, r, &config.Notify{Command: []string{script2}, Timeout: 5 * time.Second})); err != nil {
		t.Fatal(err)
	}
	waitHookCalls(t, log2, 1, 10*time.Second)
	testutil.WaitFor(t, "node2's hook run counted in /status", 5*time.Second, func() bool {
		st, ok := hookGroupStatus(n2)
		return ok && st.Runs == 1 && st.LastState == hooks.Backup && !st.Running
	})

	stopped := time.Now()
	if err := p1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exited, err := p1.Wait(15 * time.Second); !exited {
		t.Fatalf("node1 did not exit on SIGTERM: %v", err)
	}
	// vipd waits for its hooks before it exits: STOP is recorded by now.
	calls1 := readHookCalls(t, log1)
	calls2 := waitHookCalls(t, log2, 2, 5*time.Second)
	t.Logf("node2 recorded MASTER %s after node1's SIGTERM", time.Since(stopped).Round(time.Millisecond))
	for i, c := range calls1 {
		t.Logf("node1 call %d: %s", i, c)
	}
	for i, c := range calls2 {
		t.Logf("node2 call %d: %s", i, c)
	}
	checkHookCalls(t, "node1", calls1, []hookStep{
		{state: "BACKUP", previous: "", priority: 150},
		{state: "MASTER", previous: "BACKUP", priority: 150},
		{state: "STOP", previous: "MASTER", priority: 150},
	}, r.VIPs)
	checkHookCalls(t, "node2", calls2, []hookStep{
		{state: "BACKUP", previous: "", priority: 100},
		{state: "MASTER", previous: "BACKUP", priority: 100},
	}, r.VIPs)
	if p := calls2[1].env["VIPD_PEER"]; p != "" && p != "node2" {
		t.Errorf("node2's MASTER call: VIPD_PEER=%q, want node2 (the owner now) or unset", p)
	}
	if out := p1.Output(); !strings.Contains(out, "hook ran") {
		t.Errorf("node1 logged no hook run:\n%s", out)
	}
}

// TestLabHangingHookDoesNotDelayFailover: node2's master hook hangs (a
// shell waiting on a 30 s sleep) far past its 2 s timeout. node1 is killed
// (SIGKILL, no goodbye): node2 answers for the VIP within VRRP's own bound
// (Master_Down_Interval, 361 ms here), so the hook did not hold the
// takeover; then the hook is killed with its process group and counted as
// a timeout. (The timeout is longer than the failover bound on purpose: a
// takeover that waited for the hook would show as > 2 s, not hide in the
// slack of the bound.)
func TestLabHangingHookDoesNotDelayFailover(t *testing.T) {
	lab.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 2})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	vip := l.VIPv4(82)
	r := vrrplab.Router{VRID: 82, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip}}
	const port = 7182
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	script2, log2 := writeHookScript(t, l.TempDir(), "hook-node2")
	shPID := filepath.Join(l.TempDir(), "master-hook.pid")
	sleepPID := filepath.Join(l.TempDir(), "master-hook-sleep.pid")
	// No job control in sh -c: the background sleep stays in the hook's
	// process group, which the timeout must kill whole.
	hang := fmt.Sprintf("echo $$ > %s; sleep 30 & echo $! > %s; wait", shPID, sleepPID)
	const hookTimeout = 2 * time.Second

	p1, err := l.StartVipdConfig(n1, bin, vrrplab.VipdConfig(n1, 150, r, nil))
	if err != nil {
		t.Fatal(err)
	}
	probe, err := l.StartProbe(t.Context(), vip, port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.WaitOwner("node1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p2, err := l.StartVipdConfig(n2, bin, vrrpHookConfig(n2, 100, r, &config.Notify{
		Command: []string{script2}, Master: []string{"/bin/sh", "-c", hang}, Timeout: hookTimeout,
	}))
	if err != nil {
		t.Fatal(err)
	}
	waitHookCalls(t, log2, 1, 10*time.Second) // BACKUP

	killed := time.Now()
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	// VRRP's bound, as in vrrp's lab tests: Master_Down_Interval is
	// 3 × 100 ms + 61 ms; 1.5 s leaves room for a loaded machine and stays
	// below the hook's timeout.
	const bound = 1500 * time.Millisecond
	if err := probe.WaitOwner("node2", bound); err != nil {
		t.Fatalf("after killing the master: %v", err)
	}
	f, ok := probe.Snapshot().FailoverAfter(killed)
	if !ok {
		t.Fatal("no failover in the probe record")
	}
	took := f.FirstTo.Sub(killed)
	t.Logf("SIGKILL of node1 -> node2 answers: %s (%s)", took.Round(time.Millisecond), f)
	if took > bound {
		t.Errorf("node2 answered %s after node1 was killed, want at most %s", took, bound)
	}
	calls := waitHookCalls(t, log2, 2, 5*time.Second)
	if calls[1].env["VIPD_STATE"] != "MASTER" {
		t.Errorf("node2's second call: %s, want MASTER", calls[1])
	}

	// The master hook started (it wrote its PIDs), was killed at its
	// timeout and counted.
	var pids []int
	testutil.WaitFor(t, "the master hook's PID files", 5*time.Second, func() bool {
		pids = pids[:0]
		for _, f := range []string{shPID, sleepPID} {
			b, err := os.ReadFile(f)
			if err != nil {
				return false
			}
			pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
			if err != nil {
				return false
			}
			pids = append(pids, pid)
		}
		return true
	})
	var st hooks.GroupStatus
	took = testutil.WaitFor(t, "the hook's timeout in /status", hookTimeout+5*time.Second, func() bool {
		var ok bool
		st, ok = hookGroupStatus(n2)
		return ok && st.Timeouts >= 1 && !st.Running
	})
	t.Logf("node2 hook record after %s: %+v", took.Round(time.Millisecond), st)
	if st.Timeouts != 1 || st.Failures != 1 || st.Runs != 3 || st.LastState != hooks.Master || st.LastError == "" {
		t.Errorf("node2 hook record %+v, want runs 3 (command, command, master), failures 1, timeouts 1, lastState MASTER and an error", st)
	}
	for _, pid := range pids {
		testutil.WaitFor(t, fmt.Sprintf("hook process %d gone", pid), 2*time.Second, func() bool { return processGone(pid) })
	}
	if out := p2.Output(); !strings.Contains(out, "hook failed") {
		t.Errorf("node2 did not log the failed hook:\n%s", out)
	}
}

// processGone: no process pid, or only its zombie (killed, waiting for
// whoever adopted it to reap it).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
