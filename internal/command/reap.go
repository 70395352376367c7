package command

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reapOrphansIfInit reaps orphans only where they can become ours: when
// vipd is PID 1 (a container without an init) or a child subreaper.
func reapOrphansIfInit() {
	if os.Getpid() != 1 && !isSubreaper() {
		return
	}
	ReapOrphans()
}

func isSubreaper() bool {
	var v int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	return err == nil && v != 0
}

// ReapOrphans waits for the zombie children of this process that are
// orphans of the commands Run started, and returns how many it reaped.
//
// A general wait(-1) reaper would steal the exit status a pending
// exec.Cmd.Wait (ours or any other package's) is waiting for. So this
// reaps, one pid at a time, only zombies that are provably no one's direct
// child: a process Run starts leads its own group (pgid == pid), and any
// other child of vipd either does the same or stays in vipd's group. A
// zombie in a third group can only be a re-parented descendant: an orphan.
// (Orphans that made themselves group or session leaders, i.e. daemons,
// are left alone: telling them from a direct child is not possible.)
func ReapOrphans() int {
	self := os.Getpid()
	ownGroup := syscall.Getpgrp()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		state, ppid, pgrp, ok := procStat(pid)
		if !ok || state != 'Z' || ppid != self || pgrp == pid || pgrp == ownGroup {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	return n
}

// procStat reads state, ppid and pgrp from /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// "pid (comm) S ppid pgrp ...": comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return f[0][0], ppid, pgrp, true
}
