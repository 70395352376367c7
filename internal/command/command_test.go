package command

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/testutil"
)

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

// readPID waits for a pid file a script writes and returns its pid.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testutil.WaitFor(t, "pid file "+path, 5*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(l, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(s), "Z")
		}
	}
	return true
}

// zombieOrGone: no live process, and if still listed, not our zombie.
func reaped(pid int) bool {
	state, ppid, _, ok := procStat(pid)
	return !ok || !(state == 'Z' && ppid == os.Getpid())
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		argv    []string
		code    int
		wantErr string
	}{
		{"zero", sh("exit 0"), 0, ""},
		{"one", sh("exit 1"), 1, "exit status 1"},
		{"42", sh("exit 42"), 42, "exit status 42"},
		{"signal", sh("kill -TERM $$"), -1, "killed by signal terminated"},
		{"in path", []string{"true"}, 0, ""},
		{"missing", []string{"/nonexistent/prog"}, -1, "no such file"},
		{"not in path", []string{"vipd-no-such-program"}, -1, "not found in PATH"},
		{"empty", nil, -1, "no program"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), Options{Argv: tc.argv})
			if r.ExitCode != tc.code {
				t.Errorf("exit code %d, want %d (err %v)", r.ExitCode, tc.code, r.Err)
			}
			if tc.wantErr == "" && r.Err != nil || tc.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", r.Err, tc.wantErr)
			}
			if r.TimedOut {
				t.Error("TimedOut set")
			}
		})
	}
}

func TestRunOutputAndEnv(t *testing.T) {
	r := Run(context.Background(), Options{
		Argv: sh(`echo out; echo err >&2; echo "$PATH|$FOO|$HOME|$1"; read x; echo "stdin:$?"`, "arg"),
		Env:  []string{"FOO=bar"},
	})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	want := "out\nerr\n" + DefaultPath + "|bar||arg\nstdin:1\n"
	if string(r.Output) != want || r.Truncated {
		t.Errorf("output %q (truncated %v), want %q", r.Output, r.Truncated, want)
	}
}

func TestRunTruncates(t *testing.T) {
	// 1 MiB, far more than a pipe holds: the child must not block.
	r := Run(context.Background(), Options{Argv: sh("head -c 1048576 /dev/zero | tr '\\0' x; echo done >&2"), MaxOutput: 10, Timeout: 10 * time.Second})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if string(r.Output) != "xxxxxxxxxx" || !r.Truncated {
		t.Errorf("output %q truncated %v", r.Output, r.Truncated)
	}
	r = Run(context.Background(), Options{Argv: sh("head -c 5000 /dev/zero")})
	if len(r.Output) != DefaultMaxOutput || !r.Truncated {
		t.Errorf("default cap: %d bytes, truncated %v", len(r.Output), r.Truncated)
	}
	r = Run(context.Background(), Options{Argv: sh("head -c 4096 /dev/zero")})
	if len(r.Output) != 4096 || r.Truncated {
		t.Errorf("exactly the cap: %d bytes, truncated %v", len(r.Output), r.Truncated)
	}
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	leaderFile, childFile := filepath.Join(dir, "leader"), filepath.Join(dir, "child")
	start := time.Now()
	r := Run(context.Background(), Options{
		Argv:    sh(`echo $$ > "$1"; sleep 1000 & echo $! > "$2"; echo started; sleep 1000`, leaderFile, childFile),
		Timeout: 300 * time.Millisecond,
	})
	took := time.Since(start)
	if !r.TimedOut || r.Err == nil || !strings.Contains(r.Err.Error(), "timed out after") || !strings.Contains(r.Err.Error(), "process group killed") {
		t.Fatalf("result %+v", r)
	}
	if took > 300*time.Millisecond+PipeGrace+2*time.Second {
		t.Errorf("returned after %s", took)
	}
	if string(r.Output) != "started\n" {
		t.Errorf("output %q", r.Output)
	}
	leader, child := readPID(t, leaderFile), readPID(t, childFile)
	if !reaped(leader) {
		t.Errorf("leader %d is our zombie", leader)
	}
	// SIGKILL was sent to the group before Run returned; its delivery to
	// the grandchild may take a moment more.
	testutil.WaitFor(t, "grandchild gone", 5*time.Second, func() bool { return !alive(child) })
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	go func() {
		// Cancel once the script runs (gives up after a minute).
		_, _ = testutil.Poll(context.Background(), time.Minute, testutil.Interval, func() bool {
			_, err := os.Stat(filepath.Join(dir, "pid"))
			return err == nil
		})
		cancel()
	}()
	r := Run(ctx, Options{Argv: sh(`echo $$ > "$1"; sleep 1000`, filepath.Join(dir, "pid"))})
	if r.TimedOut || r.Err == nil || !strings.Contains(r.Err.Error(), "canceled after") {
		t.Fatalf("result %+v", r)
	}
}

func TestRunNoZombie(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := Run(context.Background(), Options{Argv: sh(`echo $$ > "$1"; exit 3`, pidFile)})
	if r.ExitCode != 3 {
		t.Fatalf("result %+v", r)
	}
	if pid := readPID(t, pidFile); !reaped(pid) {
		t.Errorf("%d is our zombie", pid)
	}
}

func TestRunPipeHoldingGrandchild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	// The background sleep inherits stdout and keeps the pipe open.
	r := Run(context.Background(), Options{Argv: sh(`sleep 1000 & echo $! > "$1"; echo done`, pidFile), Timeout: time.Minute})
	took := time.Since(start)
	child := readPID(t, pidFile)
	defer syscall.Kill(child, syscall.SIGKILL)
	if r.Err != nil || r.ExitCode != 0 || string(r.Output) != "done\n" {
		t.Fatalf("result %+v", r)
	}
	if took > PipeGrace+2*time.Second {
		t.Errorf("returned after %s", took)
	}
	// Like keepalived: a background process of a script that exited on its
	// own is left running.
	if !alive(child) {
		t.Error("background process was killed")
	}
}

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnlessRequired(t, "needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		skipUnlessRequired(t, "no user nobody")
	}
	for _, name := range []string{"nobody", nobody.Uid} {
		r := Run(context.Background(), Options{Argv: []string{"id", "-u"}, User: name})
		if r.Err != nil || strings.TrimSpace(string(r.Output)) != nobody.Uid {
			t.Errorf("User %q: %+v (%s)", name, r, r.Output)
		}
		r = Run(context.Background(), Options{Argv: []string{"id", "-g"}, User: name})
		if r.Err != nil || strings.TrimSpace(string(r.Output)) != nobody.Gid {
			t.Errorf("User %q gid: %+v (%s)", name, r, r.Output)
		}
	}
	r := Run(context.Background(), Options{Argv: []string{"true"}, User: "vipd-no-such-user"})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "vipd-no-such-user") {
		t.Errorf("unknown user: %+v", r)
	}
}

func TestLookupUser(t *testing.T) {
	c, err := LookupUser("root")
	if err != nil || c.Uid != 0 || c.Gid != 0 {
		t.Fatalf("root: %+v %v", c, err)
	}
	if c, err = LookupUser("0"); err != nil || c.Uid != 0 {
		t.Fatalf("0: %+v %v", c, err)
	}
	for _, bad := range []string{"", "vipd-no-such-user", "4000000000"} {
		if _, err := LookupUser(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLookPath(t *testing.T) {
	if p, err := LookPath("sh"); err != nil || !filepath.IsAbs(p) {
		t.Errorf("sh: %q %v", p, err)
	}
	for _, bad := range []string{"", "vipd-no-such-program", "/nonexistent", "/etc/passwd", "/tmp"} {
		if _, err := LookPath(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// As a subreaper (what vipd is as PID 1), orphans of our scripts are
// re-parented to us; Run reaps them.
func TestReapOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		skipUnlessRequired(t, "PR_SET_CHILD_SUBREAPER: "+err.Error())
	}
	t.Cleanup(func() {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		ReapOrphans()
	})
	var v int32
	_ = unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	if v == 0 || !isSubreaper() {
		skipUnlessRequired(t, "subreaper not set")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The orphan closes its output at once so Run does not wait for it.
	r := Run(context.Background(), Options{Argv: sh(`sleep 0.05 >/dev/null 2>&1 & echo $! > "$1"`, pidFile)})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	orphan := readPID(t, pidFile)
	testutil.WaitFor(t, "orphan reaped by the next Run", 10*time.Second, func() bool {
		Run(context.Background(), Options{Argv: []string{"true"}})
		_, err := os.Stat("/proc/" + strconv.Itoa(orphan))
		return err != nil
	})
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"  ok \n", 10, "ok"},
		{"line one\nline two\r\n\tthree\n", 100, "line one line two three"},
		{"abcdefghij", 4, "abcd"},
		{"ab cdef", 3, "ab"},
		{"ab cdef", 4, "ab c"},
		{"héllo", 2, "h"},
		{"a\x00b\xffc", 10, "a?b?c"},
	} {
		if got := Summary([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("Summary(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// skipUnlessRequired skips on a laptop, but fails where CI requires every
// privileged test to run (VIPD_REQUIRE_LAB=1, as for the lab tests).
func skipUnlessRequired(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
		t.Fatal(why + " (VIPD_REQUIRE_LAB=1: this test must run)")
	}
	t.Skip(why)
}
