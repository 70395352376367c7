package lab

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The probe's and the observer's sockets ask the kernel to stamp every
// packet on arrival (SO_TIMESTAMPNS): a reply and an announcement are read by
// different goroutines, and under load either can run late, so stamping them
// with time.Now() after the read could put an announcement after the reply it
// caused (TestVIPFailoverByHand failed that way at load 25 on 2 cores).

// enableRxTimestamps turns SO_TIMESTAMPNS on for c.
func enableRxTimestamps(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// rxTime returns the kernel's arrival time carried in oob, or time.Now() if
// there is none. It is a wall-clock time (CLOCK_REALTIME, the clock
// time.Now reads too) without a monotonic reading, so comparisons with it
// use the wall clock.
func rxTime(oob []byte) time.Time {
	ms, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range ms {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
				len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix())
			}
		}
	}
	return time.Now()
}
