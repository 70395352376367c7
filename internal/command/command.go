// Package command runs external programs (exec health checks, notify hooks)
// the way keepalived runs its scripts, so existing scripts work unchanged,
// while making sure a hung or misbehaving script can never hang vipd:
//
//   - argv only, no shell (unless argv names one); the program is found in
//     the child's PATH, not vipd's;
//   - a minimal environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin, as
//     keepalived) plus the caller's variables; stdin is /dev/null; the
//     working directory is /;
//   - its own process group: on timeout or cancellation the whole group
//     gets SIGKILL, so `sleep 1000 &` inside a check script dies with it;
//   - stdout and stderr go to one pipe; the first MaxOutput bytes are kept,
//     the rest is read and discarded so the child never blocks on a full
//     pipe;
//   - the child is always waited for (no zombie of ours).
//
// Background processes that outlive a script which exited on its own are
// NOT killed: keepalived does not kill them either, and notify scripts that
// start something with `&` rely on it. They may keep the output pipe open
// though; we stop reading PipeGrace after the script exits (exec.Cmd's
// WaitDelay) and close our end, so the call returns. Such a process that
// later writes to its inherited stdout/stderr gets EPIPE (or SIGPIPE); under
// keepalived it wrote to /dev/null. Redirect its output (`cmd >/dev/null
// 2>&1 &`), as any daemon started from a script should.
//
// vipd as PID 1 (a container without an init): orphans of our scripts (a
// background process whose script exited, or the members of a killed
// group) are re-parented to PID 1, i.e. to vipd, and nothing in Go reaps
// them: they would stay zombies and, with a check that times out every
// second, slowly use up the PID space. Run therefore reaps, after each
// command, the zombie children it can prove are not someone's pending Wait
// (ReapOrphans). Still, run vipd under an init (`docker run --init`, tini,
// or a pod's shared process namespace) where you can.
package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults.
const (
	// DefaultPath is the child's PATH, keepalived's.
	DefaultPath = "/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultMaxOutput is how much combined output Run keeps.
	DefaultMaxOutput = 4096
	// PipeGrace is how long Run keeps reading the output after the program
	// exited, for a background process of it that still holds the pipe.
	PipeGrace = 200 * time.Millisecond
)

// Options is one command to run.
type Options struct {
	// Argv is the program and its arguments. A program without '/' is
	// looked up in the child's PATH.
	Argv []string
	// Env is added to the minimal environment (KEY=VALUE; a later PATH
	// replaces the default one).
	Env []string
	// User runs the program as this user (a name or a numeric uid known to
	// the system), with its primary group and supplementary groups.
	// Empty: vipd's own user.
	User string
	// Timeout bounds the run (0: ctx only). On expiry the process group is
	// killed.
	Timeout time.Duration
	// MaxOutput is how many bytes of combined stdout+stderr to keep
	// (0: DefaultMaxOutput).
	MaxOutput int
}

// Result is what a run did.
type Result struct {
	// ExitCode is the program's exit status; -1 when it did not start or
	// was killed by a signal.
	ExitCode int
	// Output is the first MaxOutput bytes of stdout and stderr, interleaved
	// as written; Truncated says more was written (and discarded).
	Output    []byte
	Truncated bool
	// Duration from start until the program was reaped.
	Duration time.Duration
	// TimedOut: the timeout (Options.Timeout or ctx's deadline) expired
	// and the process group was killed.
	TimedOut bool
	// Err is nil exactly when the program exited 0. Otherwise it says why:
	// "exit status N", "killed by signal S", "timed out after D, process
	// group killed", "canceled after D, process group killed", or the
	// error that kept the program from starting.
	Err error
}

// Run runs o.Argv and waits for it. It never returns before the program is
// reaped, and returns at most about PipeGrace after the program exited or
// was killed, whatever its children do.
func Run(ctx context.Context, o Options) Result {
	res := Result{ExitCode: -1}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		res.Err = errors.New("no program given")
		return res
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	env := append([]string{"PATH=" + DefaultPath}, o.Env...)
	path, err := lookPath(o.Argv[0], envPath(env))
	if err != nil {
		res.Err = err
		return res
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if o.User != "" {
		cred, err := LookupUser(o.User)
		if err != nil {
			res.Err = err
			return res
		}
		attr.Credential = cred
	}
	max := o.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	out := &capWriter{max: max}
	// exec.CommandContext: its Cancel and WaitDelay machinery needs the
	// context. path contains '/', so it does no lookup of its own (in
	// vipd's PATH, which is not the child's).
	cc := exec.CommandContext(ctx, path)
	cc.Args = o.Argv
	cc.Env = env
	cc.Dir = "/"
	// The same writer for both: os/exec then gives the child one pipe for
	// stdout and stderr, so their order is kept. Stdin nil is /dev/null.
	cc.Stdout, cc.Stderr = out, out
	cc.SysProcAttr = attr
	// After the leader exits (or is killed), stop waiting this long for a
	// background process that holds the pipe. The grace kills nothing (see
	// the package comment).
	cc.WaitDelay = PipeGrace
	// Cancel runs only while the leader has not been reaped, so its pid is
	// still the group's id: kill the whole group, grandchildren included.
	cc.Cancel = func() error {
		err := syscall.Kill(-cc.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}

	start := time.Now()
	err = cc.Start()
	if err != nil {
		res.Err = fmt.Errorf("start %s: %w", path, unwrapPathErr(err))
		return res
	}
	waitErr := cc.Wait()
	res.Duration = time.Since(start)
	res.Output, res.Truncated = out.buf, out.dropped
	// No second group kill after the reap: the kernel already makes a
	// fork racing the group SIGKILL fail, and once the group is empty its
	// id may belong to someone else.
	reapOrphansIfInit()

	st := cc.ProcessState
	if st != nil {
		res.ExitCode = st.ExitCode()
	}
	switch {
	case ctx.Err() != nil && st != nil && !st.Exited():
		res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		what := "timed out"
		if !res.TimedOut {
			what = "canceled"
		}
		res.Err = fmt.Errorf("%s after %s, process group killed", what, res.Duration.Round(time.Millisecond))
	case st != nil && st.Exited() && st.ExitCode() == 0:
		// exec.ErrWaitDelay: a background process kept the pipe open past
		// the grace; the program itself succeeded.
		res.Err = nil
	case st != nil && st.Exited():
		res.Err = fmt.Errorf("exit status %d", st.ExitCode())
	case st != nil:
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Err = fmt.Errorf("killed by signal %s", ws.Signal())
		} else {
			res.Err = waitErr
		}
	default:
		res.Err = waitErr
	}
	return res
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// capWriter keeps the first max bytes and discards the rest, never
// failing, so the copying goroutine keeps draining the pipe. os/exec calls
// Write from one goroutine at a time (Stdout == Stderr) and is done before
// Wait returns.
type capWriter struct {
	max     int
	buf     []byte
	dropped bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		if len(p) > room {
			w.buf = append(w.buf, p[:room]...)
			w.dropped = true
		} else {
			w.buf = append(w.buf, p...)
		}
	} else if len(p) > 0 {
		w.dropped = true
	}
	return len(p), nil
}

func envPath(env []string) string {
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return path
}

// LookPath finds program as the child will: a name with '/' as is, any
// other in DefaultPath. The result is an executable regular file.
func LookPath(program string) (string, error) {
	return lookPath(program, DefaultPath)
}

func lookPath(program, path string) (string, error) {
	if program == "" {
		return "", errors.New("no program given")
	}
	if strings.Contains(program, "/") {
		if err := executable(program); err != nil {
			return "", fmt.Errorf("program %s: %w", program, err)
		}
		return program, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never the working directory
		}
		p := filepath.Join(dir, program)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in PATH %s", program, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrapPathErr(err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// LookupUser resolves a user name or numeric uid to the credential a child
// runs with: its uid, primary gid and supplementary groups. An unknown user
// (or uid) is an error.
func LookupUser(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, errors.New("no user given")
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.ParseUint(name, 10, 32); numErr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: unknown", name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: uid %q or gid %q is not numeric", name, u.Uid, u.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %q: supplementary groups: %w", name, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			continue
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return cred, nil
}

// Summary is output made fit for a log line or /status: whitespace runs
// (newlines included) become one space, control characters and invalid
// UTF-8 become '?', and the result is cut to at most max bytes on a
// character boundary.
func Summary(out []byte, max int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(string(out), "\uFFFD") {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r == utf8.RuneError || unicode.IsControl(r):
			r = '?'
		}
		n := utf8.RuneLen(r)
		if space {
			n++
		}
		if b.Len()+n > max {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
