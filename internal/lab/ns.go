package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const nodadFlag = unix.IFA_F_NODAD

// doIn runs fn on a dedicated, locked OS thread switched into ns. The thread
// is returned to the runtime only if switching back succeeds; otherwise the
// goroutine exits still locked and Go discards the thread, so no other code
// can ever run in the wrong namespace. (Same approach as CNI's ns.Do.)
func doIn(ns netns.NsHandle, fn func() error) error {
	type result struct {
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter netns: %w", err)}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panic, r.stack = p, debug.Stack()
				}
			}()
			r.err = fn()
		}()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	if r.panic != nil {
		panic(fmt.Sprintf("%v\n(in lab namespace) %s", r.panic, r.stack))
	}
	return r.err
}

// setSysctls writes /proc/sys keys from inside ns (/proc/sys/net is per
// network namespace of the writing thread), never in the root namespace.
func setSysctls(ns netns.NsHandle, kv map[string]string) error {
	return doIn(ns, func() error {
		var errs []error
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(k, "/", "."), v, err))
			}
		}
		return errors.Join(errs...)
	})
}

// pidAlive reports whether pid exists and is not a zombie (a dead process
// not yet reaped by its new parent is dead for our purposes).
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// canUnshareNet tries to create a network namespace on a throw-away thread
// (never unlocked, so Go discards it): root alone is not enough in a
// container without CAP_SYS_ADMIN.
var canUnshareNet = sync.OnceValue(func() error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no unlock: this thread must never run other code
		done <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	return <-done
})

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Signal handling must be process-wide (signals are), so the set of open labs
// is the one piece of package-level state: a signal closes every lab of this
// process, then re-delivers the signal with the default action.
var registry = struct {
	sync.Mutex
	labs    map[*Lab]struct{}
	started bool
}{labs: map[*Lab]struct{}{}}

func register(l *Lab) {
	registry.Lock()
	defer registry.Unlock()
	registry.labs[l] = struct{}{}
	if registry.started {
		return
	}
	registry.started = true
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		registry.Lock()
		labs := make([]*Lab, 0, len(registry.labs))
		for l := range registry.labs {
			labs = append(labs, l)
		}
		registry.Unlock()
		var wg sync.WaitGroup
		for _, l := range labs {
			wg.Go(func() { _ = l.Close() })
		}
		wg.Wait()
		signal.Reset(syscall.SIGINT, syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
}

func unregister(l *Lab) {
	registry.Lock()
	defer registry.Unlock()
	delete(registry.labs, l)
}

// Temp directory prefixes; the creator PID follows so sweepStaleDirs can
// tell directories of dead processes from those of running ones.
const (
	buildDirPrefix = "vipd-lab-build-"
	tmpDirPrefix   = "vipd-lab-tmp-"
)

// sweepStaleDirs removes temp directories of dead lab processes.
func sweepStaleDirs() {
	var ents []string
	for _, p := range []string{buildDirPrefix, tmpDirPrefix} {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), p+"*"))
		ents = append(ents, m...)
	}
	for _, d := range ents {
		rest := strings.TrimPrefix(strings.TrimPrefix(filepath.Base(d), buildDirPrefix), tmpDirPrefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pidAlive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}
