package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/vrrp/vrrplab"
)

// Mode is one HA implementation under test on the lab's nodes. The VRRP
// modes (vipd, keepalived) are here; the Lease and gossip modes add theirs
// by implementing Mode (usually a vipdMode with another config function and
// a Setup that starts their infrastructure).
type Mode interface {
	Name() string
	// Setup prepares the lab once (e.g. an apiserver); may be a no-op.
	Setup(l *lab.Lab) error
	// Start starts the implementation on node i with priority prio.
	Start(l *lab.Lab, i, prio int) error
	// Crash kills node i without any goodbye (SIGKILL).
	Crash(i int) error
	// Stop stops node i gracefully (SIGTERM) and waits for it to exit.
	Stop(i int) error
	// PIDs lists node i's processes, for RSS and CPU.
	PIDs(i int) []int
	// AfterCrash cleans up what a crash of node i left behind once it has
	// been measured (keepalived's VIPs have no lifetime); may be a no-op.
	AfterCrash(l *lab.Lab, i int)
}

// vipdMode runs vipd with a config from Config.
type vipdMode struct {
	name   string
	bin    string
	config func(h *lab.Host, prio int) string
	procs  map[int]*lab.Process
}

func newVipdMode(name, bin string, config func(h *lab.Host, prio int) string) *vipdMode {
	return &vipdMode{name: name, bin: bin, config: config, procs: map[int]*lab.Process{}}
}

func (m *vipdMode) Name() string             { return m.name }
func (m *vipdMode) Setup(*lab.Lab) error     { return nil }
func (m *vipdMode) AfterCrash(*lab.Lab, int) {}

func (m *vipdMode) Start(l *lab.Lab, i, prio int) error {
	p, err := l.StartVipd(l.Nodes[i], m.bin, m.config(l.Nodes[i], prio))
	if err != nil {
		return err
	}
	m.procs[i] = p
	return nil
}

func (m *vipdMode) Crash(i int) error {
	p := m.procs[i]
	if err := p.Kill(); err != nil {
		return err
	}
	p.Wait(5 * time.Second)
	return nil
}

func (m *vipdMode) Stop(i int) error {
	p := m.procs[i]
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if exited, _ := p.Wait(15 * time.Second); !exited {
		return fmt.Errorf("%s on node %d did not stop", m.name, i+1)
	}
	return nil
}

func (m *vipdMode) PIDs(i int) []int { return []int{m.procs[i].PID} }

// keepalivedMode runs Debian's keepalived with the same VRRP parameters.
type keepalivedMode struct {
	router vrrplab.Router
	procs  map[int]*vrrplab.Keepalived
}

func (m *keepalivedMode) Name() string         { return "keepalived" }
func (m *keepalivedMode) Setup(*lab.Lab) error { return vrrplab.KeepalivedAvailable() }

func (m *keepalivedMode) Start(l *lab.Lab, i, prio int) error {
	h := l.Nodes[i]
	k, err := vrrplab.StartKeepalived(l, h, vrrplab.KeepalivedConfig(h, prio, m.router, h.IPv4.Addr(), nil))
	if err != nil {
		return err
	}
	m.procs[i] = k
	return nil
}

func (m *keepalivedMode) Crash(i int) error {
	k := m.procs[i]
	if err := k.Crash(); err != nil {
		return err
	}
	k.Wait(5 * time.Second)
	return nil
}

func (m *keepalivedMode) Stop(i int) error {
	k := m.procs[i]
	if k.Exited() {
		return nil
	}
	return k.Stop(15 * time.Second)
}

// PIDs: keepalived's parent and its VRRP child (same process group).
func (m *keepalivedMode) PIDs(i int) []int { return processGroup(m.procs[i].PID) }

func (m *keepalivedMode) AfterCrash(l *lab.Lab, i int) { vrrplab.CleanVIPs(l.Nodes[i], m.router.VIPs) }

// processGroup lists the live processes whose process group is pgid.
func processGroup(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) > 5 && f[4] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns the fields of /proc/PID/stat indexed so that f[i] is
// field i+1 of proc(5) (f[4] pgrp, f[13] utime, f[14] stime); f[0], f[1]
// (pid, comm) are left empty.
func procStat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	// comm may contain spaces: fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"", ""}, strings.Fields(s[i+1:])...)
}

// usage is CPU time (user+system) and resident memory of pids.
func usage(pids []int) (cpu time.Duration, rss int64) {
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	for _, pid := range pids {
		f := procStat(pid)
		if len(f) > 14 {
			u, _ := strconv.ParseInt(f[13], 10, 64)
			s, _ := strconv.ParseInt(f[14], 10, 64)
			cpu += time.Duration(u+s) * tick
		}
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				rss += kb * 1024
			}
		}
	}
	return cpu, rss
}
