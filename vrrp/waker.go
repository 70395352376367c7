package vrrp

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waker wakes the runner at its next deadline. A wake-up may be early or
// spurious (the runner compares every deadline with the clock), never late.
type waker interface {
	Reset(d time.Duration)
	C() <-chan time.Time
	Stop()
}

// goWaker is a time.Timer: the waker for tests (fake networks, synctest).
type goWaker struct{ t *time.Timer }

func newGoWaker() *goWaker               { return &goWaker{time.NewTimer(time.Hour)} }
func (w *goWaker) Reset(d time.Duration) { w.t.Reset(d) }
func (w *goWaker) C() <-chan time.Time   { return w.t.C }
func (w *goWaker) Stop()                 { w.t.Stop() }

// timerfdWaker is a timerfd in Go's poller, the waker on real sockets. A
// runtime timer costs an idle daemon three or four thread wake-ups per
// expiry: the poller's epoll_wait takes whole milliseconds, so it wakes
// short of the deadline and sleeps another millisecond, and sysmon wakes
// at every timer (it sleeps until the next one). At 10ms adverts that was
// most of vipd's idle CPU (issue #15). A timerfd expires to the nanosecond
// and wakes only the poller, once; it is read and set with raw system calls
// (rawSyscall).
type timerfdWaker struct {
	f  *os.File
	fd int
	rc syscall.RawConn
	c  chan time.Time
}

func newTimerfdWaker() (*timerfdWaker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "vrrp-timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &timerfdWaker{f: f, fd: fd, rc: rc, c: make(chan time.Time, 1)}
	go w.loop()
	return w, nil
}

// loop turns expiries into (coalesced) values on c until Stop. It is one
// RawRead for the waker's life whose function never reports done: after an
// expiry is read the goroutine parks in the poller at once (the timerfd is
// edge-triggered there, and the next expiry is a new edge), instead of
// returning, re-arming and reading again only to get EAGAIN; one system
// call less per advert.
func (w *timerfdWaker) loop() {
	var buf [8]byte
	_ = w.rc.Read(func(fd uintptr) bool { // an error: closed by Stop
		for {
			_, err := rawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil {
				select {
				case w.c <- time.Time{}:
				default: // a wake-up is pending already
				}
			}
			return false // wait for the next expiry
		}
	})
}

// Reset arms the timer d from now (a due deadline fires at once). Only the
// runner calls it, before Stop.
func (w *timerfdWaker) Reset(d time.Duration) {
	// A zero value disarms a timerfd: a due deadline gets the smallest one.
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}
	if _, err := rawSyscall(unix.SYS_TIMERFD_SETTIME, uintptr(w.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); err != nil {
		// Cannot happen on a valid timerfd; never sleep past a deadline.
		select {
		case w.c <- time.Time{}:
		default:
		}
	}
}

func (w *timerfdWaker) C() <-chan time.Time { return w.c }
func (w *timerfdWaker) Stop()               { w.f.Close() }
