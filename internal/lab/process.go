package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// spawner forks lab processes from one dedicated, locked OS thread. Pdeathsig
// fires when the *thread* that forked a child exits (golang/go#27505), not the
// process, so forking from arbitrary goroutines could kill a child whenever
// the runtime discards that thread. This thread lives until Lab.Close.
type spawner struct {
	reqs chan func()
	once sync.Once
	done chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		defer close(s.done)
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

// run executes f on the spawner thread. Callers hold Lab.mu and have checked
// the lab is open; Close marks it closed under Lab.mu before stop, so run
// never races with stop.
func (s *spawner) run(f func()) {
	done := make(chan struct{})
	s.reqs <- func() { f(); close(done) }
	<-done
}

func (s *spawner) stop() {
	s.once.Do(func() { close(s.reqs) })
	<-s.done
}

// Process is a process started in a lab namespace. It runs in its own process
// group, gets SIGKILL if the test process dies (Pdeathsig) and is killed on
// Lab.Close.
type Process struct {
	PID  int
	Host *Host // nil for the switch (Capture)

	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // valid after done is closed
}

// Start runs name with args inside h's namespace, owned by the lab.
func (l *Lab) Start(h *Host, name string, args ...string) (*Process, error) {
	return l.startIn(h.NetNS, h, name, args...)
}

// Capture runs `tcpdump -i br0 -e -nn -l [filter]` in the switch namespace:
// every frame between all hosts, with MACs. Its output is logged when a
// test using New fails, like that of any lab process.
func (l *Lab) Capture(filter ...string) (*Process, error) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, errors.New("lab Capture: tcpdump not installed (apt-get install tcpdump)")
	}
	return l.startIn(l.Switch, nil, "tcpdump", append([]string{"-i", bridgeName, "-e", "-nn", "-l", "-tt"}, filter...)...)
}

func (l *Lab) startIn(nsName string, h *Host, name string, args ...string) (*Process, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", nsName, name}, args...)...)
	p := &Process{Host: h, name: name, cmd: cmd, out: newTailBuffer(4 << 20), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		return nil, fmt.Errorf("lab %s closed", l.ID)
	}
	var startErr error
	l.spawner.run(func() { startErr = cmd.Start() })
	if startErr != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, nsName, startErr)
	}
	p.PID = cmd.Process.Pid
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL to the process.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

func (p *Process) killGroup() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	}
}

// Wait waits up to timeout for the process to exit. err is its exit error
// (nil for status 0) when exited.
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		return false, nil
	}
}

// Exited reports whether the process has exited (without waiting).
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the combined stdout/stderr so far (last 4 MiB).
func (p *Process) Output() string { return p.out.String() }

func (p *Process) String() string {
	where := "switch"
	if p.Host != nil {
		where = p.Host.Name
	}
	return fmt.Sprintf("%s@%s[%d]", p.name, where, p.PID)
}

func (l *Lab) logOutputs(t TB) {
	l.mu.Lock()
	procs := append([]*Process(nil), l.procs...)
	l.mu.Unlock()
	for _, p := range procs {
		out := p.Output()
		if len(out) > 16<<10 {
			out = "...\n" + out[len(out)-16<<10:]
		}
		t.Logf("--- output of %s ---\n%s", p, out)
	}
}

// tailBuffer keeps the last max bytes written; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// The vipd binary is built at most once per test binary: a package-level
// cache because "once per process" is the point.
var vipdBuild struct {
	sync.Mutex
	done bool
	path string
	err  error
}

// BuildVipd builds ./cmd/vipd of the current module once per test binary
// (into a temp dir, swept after the process is gone) and returns its path.
func BuildVipd(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := BuildVipdContext(ctx)
	if err != nil {
		t.Fatalf("build vipd: %v", err)
	}
	return p
}

// BuildVipdContext is BuildVipd without TB (benchmarks, tools).
func BuildVipdContext(ctx context.Context) (string, error) {
	vipdBuild.Lock()
	defer vipdBuild.Unlock()
	if !vipdBuild.done {
		vipdBuild.path, vipdBuild.err = buildVipd(ctx)
		vipdBuild.done = true
	}
	return vipdBuild.path, vipdBuild.err
}

func buildVipd(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err2 := os.Stat(goBin); err2 != nil {
			return "", fmt.Errorf("go tool not found in PATH or $GOROOT/bin: %v", err)
		}
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module (go env GOMOD is empty)")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "cmd", "vipd")); err != nil {
		return "", fmt.Errorf("no cmd/vipd in module root %s: %w", root, err)
	}
	sweepStaleDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", buildDirPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vipd")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/vipd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/vipd: %v\n%s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// StartVipd writes configYAML to a file in the lab's temp dir and starts
// `vipd run --config FILE` in h.
func (l *Lab) StartVipd(h *Host, vipdPath, configYAML string) (*Process, error) {
	f, err := os.CreateTemp(l.tmpDir, "vipd-"+h.Name+"-*.yaml")
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(configYAML); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return l.Start(h, vipdPath, "run", "--config", f.Name())
}

// StartVipdConfig is StartVipd with a typed config, written by
// config.Marshal: what tests and tooling should use, so a schema change
// breaks them when they compile. (StartVipd takes raw YAML, for configs
// that are meant to be wrong.)
func (l *Lab) StartVipdConfig(h *Host, vipdPath string, c *config.Config) (*Process, error) {
	data, err := config.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config for %s: %w", h.Name, err)
	}
	return l.StartVipd(h, vipdPath, string(data))
}

// WaitOutput waits until the process output contains substr (e.g. a log
// line saying it is ready); it fails early if the process exits first.
func (p *Process) WaitOutput(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.Output(), substr) {
			return nil
		}
		if p.Exited() {
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before printing %q", p, p.err, substr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %s", p, substr, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
