package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/command"
	"github.com/vipd/vipd/internal/testutil"
)

type ran struct {
	ev   Event
	argv []string
	res  command.Result
}

// newRunner returns a Runner whose every hook process is reported on the
// channel, closed by t.Cleanup (with a generous deadline).
func newRunner(t *testing.T) (*Runner, chan ran) {
	t.Helper()
	r := New(nil)
	ch := make(chan ran, 200)
	r.onRun = func(ev Event, argv []string, res command.Result) { ch <- ran{ev, argv, res} }
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r, ch
}

func next(t *testing.T, ch chan ran) ran {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(20 * time.Second):
		t.Fatal("no hook ran")
		return ran{}
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestArgumentsAndEnv(t *testing.T) {
	r, ch := newRunner(t)
	log := filepath.Join(t.TempDir(), "log")
	rec := script(t, `echo "args=$*|group=$VIPD_GROUP|state=$VIPD_STATE|prev=$VIPD_PREVIOUS_STATE|reason=$VIPD_REASON|vips=$VIPD_VIPS|peer=$VIPD_PEER|prio=$VIPD_PRIORITY|path=$PATH" >> "$1"; echo "output of $2"`)
	r.Set("web", &Spec{Command: []string{rec, log, "generic"}, Master: []string{rec, log, "master"}, Backup: []string{rec, log, "backup"}, Timeout: time.Minute})
	r.Notify(Event{Group: "web", State: Master, Previous: Backup, Reason: "check api failing on node-b", VIPs: []string{"198.51.100.10", "2001:db8::10"}, Peer: "node-b", Priority: 150, At: time.Now()})
	first, second := next(t, ch), next(t, ch)
	if first.res.Err != nil || second.res.Err != nil {
		t.Fatal(first.res.Err, second.res.Err)
	}
	env := "group=web|state=MASTER|prev=BACKUP|reason=check api failing on node-b|vips=198.51.100.10 2001:db8::10|peer=node-b|prio=150|path=" + command.DefaultPath
	want := []string{
		"args=" + log + " generic GROUP web MASTER 150|" + env,
		"args=" + log + " master|" + env,
	}
	if got := readLines(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recorded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// onRun reports a hook before its worker looks at the queue again and
	// clears Running: wait for that, or the status is read mid-step.
	testutil.WaitFor(t, "group web idle", 10*time.Second, func() bool { return !r.Status()["web"].Running })
	st := r.Status()["web"]
	if st.Runs != 2 || st.Failures != 0 || st.LastState != Master || st.LastOutput != "output of master" || st.Running || st.Pending != 0 {
		t.Errorf("status %+v", st)
	}

	// Only the generic command for a state without its own; a failing hook
	// is counted.
	r.Set("db", &Spec{Command: []string{"sh", "-c", `echo "$*"; exit 3`, "sh"}, Timeout: time.Minute})
	r.Notify(Event{Group: "db", State: Fault, Priority: 0})
	x := next(t, ch)
	if x.res.ExitCode != 3 || strings.TrimSpace(string(x.res.Output)) != "GROUP db FAULT 0" {
		t.Errorf("db: %+v %q", x.res, x.res.Output)
	}
	if st := r.Status()["db"]; st.Failures != 1 || st.LastError != "exit status 3" {
		t.Errorf("db status %+v", st)
	}
}

// A slow first hook: the next events wait, run in order, never overlap;
// another group is not held up.
func TestOrderPerGroup(t *testing.T) {
	r, ch := newRunner(t)
	dir := t.TempDir()
	log, lock, fifo := filepath.Join(dir, "log"), filepath.Join(dir, "lock"), filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// $1 log, $2 lock dir, $3 fifo, then GROUP name STATE priority.
	hook := script(t, `
mkdir "$2" 2>/dev/null || echo OVERLAP >> "$1"
echo "start $7" >> "$1"
if [ "$7" = 1 ]; then cat "$3" > /dev/null; fi
echo "end $7" >> "$1"
rmdir "$2"`)
	r.Set("a", &Spec{Command: []string{hook, log, lock, fifo}, Timeout: time.Minute})
	r.Set("b", &Spec{Command: []string{"true"}, Timeout: time.Minute})
	for p := 1; p <= 5; p++ {
		r.Notify(Event{Group: "a", State: Backup, Priority: p})
	}
	// Group a's first hook blocks on the fifo; b runs meanwhile.
	r.Notify(Event{Group: "b", State: Master})
	if x := next(t, ch); x.ev.Group != "b" {
		t.Fatalf("first to finish: group %q", x.ev.Group)
	}
	if st := r.Status()["a"]; !st.Running || st.Pending != 4 {
		t.Errorf("a while blocked: %+v", st)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	for p := 1; p <= 5; p++ {
		if x := next(t, ch); x.ev.Priority != p || x.res.Err != nil {
			t.Fatalf("run %d: priority %d err %v", p, x.ev.Priority, x.res.Err)
		}
	}
	want := "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\nstart 4\nend 4\nstart 5\nend 5"
	if got := strings.Join(readLines(t, log), "\n"); got != want {
		t.Errorf("log\n%s\nwant\n%s", got, want)
	}
}

func TestTimeoutKillsAndNextRuns(t *testing.T) {
	r, ch := newRunner(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	hook := script(t, `if [ "$VIPD_PRIORITY" = 1 ]; then sleep 1000 & echo $! > "$1"; sleep 1000; fi; echo ran`)
	r.Set("g", &Spec{Command: []string{hook, pidFile}, Timeout: 300 * time.Millisecond})
	start := time.Now()
	r.Notify(Event{Group: "g", State: Master, Priority: 1})
	r.Notify(Event{Group: "g", State: Backup, Priority: 2})
	first, second := next(t, ch), next(t, ch)
	if !first.res.TimedOut || !strings.Contains(first.res.Err.Error(), "process group killed") {
		t.Errorf("first: %+v", first.res)
	}
	if second.res.Err != nil || string(second.res.Output) != "ran\n" {
		t.Errorf("second: %+v", second.res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("both took %s", took)
	}
	st := r.Status()["g"]
	if st.Runs != 2 || st.Failures != 1 || st.Timeouts != 1 || !strings.Contains(st.LastError, "timed out") || st.LastState != Backup {
		t.Errorf("status %+v", st)
	}
	b, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q", b)
	}
	testutil.WaitFor(t, "the hook's background sleep killed", 5*time.Second, func() bool { return !alive(pid) })
}

// A hanging hook: Notify still returns at once; the queue keeps the newest
// QueueSize events and counts the dropped ones.
func TestNotifyNeverBlocksAndOverflow(t *testing.T) {
	r, ch := newRunner(t)
	dir := t.TempDir()
	log, fifo, started := filepath.Join(dir, "log"), filepath.Join(dir, "fifo"), filepath.Join(dir, "started")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hook := script(t, `if [ "$VIPD_PRIORITY" = 0 ]; then touch "$3"; cat "$2" > /dev/null; fi; echo "$VIPD_PRIORITY" >> "$1"`)
	r.Set("g", &Spec{Command: []string{hook, log, fifo, started}, Timeout: time.Hour})
	r.Notify(Event{Group: "g", State: Master, Priority: 0})
	testutil.WaitFor(t, "first hook running", 10*time.Second, func() bool { _, err := os.Stat(started); return err == nil })

	const extra = 8
	begin := time.Now()
	for p := 1; p <= QueueSize+extra; p++ {
		r.Notify(Event{Group: "g", State: Backup, Priority: p})
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("%d Notify calls took %s", QueueSize+extra, took)
	}
	st := r.Status()["g"]
	if st.Dropped != extra || st.Pending != QueueSize || !st.Running {
		t.Errorf("status %+v", st)
	}

	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	for range QueueSize + 1 {
		next(t, ch)
	}
	want := []string{"0"}
	for p := extra + 1; p <= QueueSize+extra; p++ {
		want = append(want, strconv.Itoa(p))
	}
	if got := readLines(t, log); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ran %v, want %v", got, want)
	}
}

func TestCloseWaitsForQueuedHooks(t *testing.T) {
	r := New(nil)
	log := filepath.Join(t.TempDir(), "log")
	hook := script(t, `sleep 0.2; echo "$VIPD_STATE" >> "$1"`)
	r.Set("g", &Spec{Command: []string{hook, log}, Timeout: time.Minute})
	r.Notify(Event{Group: "g", State: Master})
	r.Notify(Event{Group: "g", State: Stop})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(readLines(t, log), " "); got != "MASTER STOP" {
		t.Errorf("ran %q", got)
	}
	r.Notify(Event{Group: "g", State: Backup}) // ignored after Close
	if st := r.Status()["g"]; st.Runs != 2 || st.Pending != 0 || st.Running {
		t.Errorf("status %+v", st)
	}
}

func TestCloseKillsAfterDeadline(t *testing.T) {
	r := New(nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	hook := script(t, `sleep 1000 & echo $! > "$1"; sleep 1000`)
	r.Set("g", &Spec{Command: []string{hook, pidFile}, Timeout: time.Hour})
	r.Notify(Event{Group: "g", State: Master})
	r.Notify(Event{Group: "g", State: Backup})
	r.Notify(Event{Group: "g", State: Stop})
	testutil.WaitFor(t, "hook running", 10*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	testutil.WaitFor(t, "hook's process group killed", 5*time.Second, func() bool { return !alive(pid) })
	st := r.Status()["g"]
	if st.Runs != 1 || st.Failures != 1 || st.Dropped != 2 || st.Running || st.Pending != 0 {
		t.Errorf("status %+v", st)
	}
}

// Removing a group (Set nil) after notifying its STOP still runs the STOP
// with the hooks it was notified under; later events are ignored.
func TestSetNilAfterStop(t *testing.T) {
	r, ch := newRunner(t)
	r.Set("g", &Spec{Stop: []string{"sh", "-c", "echo stopped"}, Timeout: time.Minute})
	r.Notify(Event{Group: "g", State: Stop})
	r.Set("g", nil)
	r.Notify(Event{Group: "g", State: Master})
	if x := next(t, ch); x.ev.State != Stop || string(x.res.Output) != "stopped\n" {
		t.Errorf("ran %+v", x)
	}
	testutil.WaitFor(t, "group gone from status", 5*time.Second, func() bool { _, ok := r.Status()["g"]; return !ok })
	select {
	case x := <-ch:
		t.Errorf("ran after removal: %+v", x)
	default:
	}
	// No hooks for the state, no generic command: nothing runs, no error.
	r.Set("h", &Spec{Master: []string{"true"}, Timeout: time.Minute})
	r.Notify(Event{Group: "h", State: Backup})
	r.Notify(Event{Group: "h", State: Master})
	if x := next(t, ch); x.ev.State != Master {
		t.Errorf("ran %+v", x)
	}
}

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
