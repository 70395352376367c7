package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// Mode is one HA implementation under test on the lab's nodes: the VRRP
// modes (vipd-vrrp, keepalived) here, Lease in lease.go, gossip in gossip.go.
type Mode interface {
	Name() string
	// Settings is a one-line summary of the timing used, printed with the
	// results.
	Settings() string
	// Priorities are nodes 1..3's priorities; node 1 must win.
	Priorities() []int
	// Lifetime bounds how long a crashed node's VIP stays bound
	// (binding.lifetime); 0 = no bound (keepalived keeps it until cleaned).
	Lifetime() time.Duration
	// Setup prepares the lab once (e.g. an apiserver); may be a no-op.
	Setup(ctx context.Context, l *lab.Lab) error
	// Close undoes Setup.
	Close()
	// Reclaim makes node 1 the owner again after a scenario's Restore (and
	// after the first start). Modes whose node 1 preempts need nothing.
	Reclaim(ctx context.Context, l *lab.Lab, vip netip.Addr) error
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

// vipdMode runs vipd with a config from config. The Lease and gossip modes
// embed it.
type vipdMode struct {
	name     string
	bin      string
	settings string
	prios    []int
	lifetime time.Duration
	config   func(h *lab.Host, prio int) *config.Config
	procs    map[int]*lab.Process
	// checks, when set, adds the health checks to every node's config.
	checks *checkSettings
}

func newVipdMode(name, bin, settings string, prios []int, lifetime time.Duration, config func(h *lab.Host, prio int) *config.Config) *vipdMode {
	return &vipdMode{name: name, bin: bin, settings: settings, prios: prios, lifetime: lifetime, config: config, procs: map[int]*lab.Process{}}
}

func (m *vipdMode) Name() string                                        { return m.name }
func (m *vipdMode) Settings() string                                    { return m.settings }
func (m *vipdMode) Priorities() []int                                   { return m.prios }
func (m *vipdMode) Lifetime() time.Duration                             { return m.lifetime }
func (m *vipdMode) Setup(context.Context, *lab.Lab) error               { return nil }
func (m *vipdMode) Close()                                              {}
func (m *vipdMode) Reclaim(context.Context, *lab.Lab, netip.Addr) error { return nil }
func (m *vipdMode) AfterCrash(*lab.Lab, int)                            {}

func (m *vipdMode) setChecks(cs *checkSettings) { m.checks = cs }

func (m *vipdMode) Start(l *lab.Lab, i, prio int) error {
	c := m.config(l.Nodes[i], prio)
	if m.checks != nil {
		addChecks(c, *m.checks)
	}
	p, err := l.StartVipdConfig(l.Nodes[i], m.bin, c)
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
	if p == nil || p.Exited() {
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
	checks *checkSettings
}

func (m *keepalivedMode) setChecks(cs *checkSettings) { m.checks = cs }

func (m *keepalivedMode) Name() string { return "keepalived" }
func (m *keepalivedMode) Settings() string {
	s := fmt.Sprintf("VRRPv3 advert %s, priorities 150/100/50, preempt", m.router.Interval)
	if m.checks != nil {
		s += "; " + keepalivedCheckSettings(*m.checks)
	}
	return s
}
func (m *keepalivedMode) Priorities() []int       { return vrrpPrios }
func (m *keepalivedMode) Lifetime() time.Duration { return 0 }
func (m *keepalivedMode) Setup(context.Context, *lab.Lab) error {
	return vrrplab.KeepalivedAvailable()
}
func (m *keepalivedMode) Close()                                              {}
func (m *keepalivedMode) Reclaim(context.Context, *lab.Lab, netip.Addr) error { return nil }

func (m *keepalivedMode) Start(l *lab.Lab, i, prio int) error {
	h := l.Nodes[i]
	conf := vrrplab.KeepalivedConfig(h, prio, m.router, h.IPv4.Addr(), nil)
	if m.checks != nil {
		conf = keepalivedChecks(conf, *m.checks)
	}
	k, err := vrrplab.StartKeepalived(l, h, conf)
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
	if k == nil || k.Exited() {
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

// mem is a process set's memory, in bytes.
type mem struct {
	// RSS is VmRSS: every resident page, including the file-backed pages
	// of the binary and libraries (large for a client-go-linked Go binary,
	// and shared with every other process mapping the same file).
	RSS int64
	// Anon is Pss_Anon from smaps_rollup: the process's own heap, stacks
	// and other anonymous memory, with copy-on-write pages shared between
	// processes (keepalived's parent and VRRP child) counted once in total.
	// This is the memory the daemon itself costs.
	Anon int64
}

// usage is CPU time (user+system) and memory of pids.
func usage(pids []int) (cpu time.Duration, m mem) {
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	for _, pid := range pids {
		f := procStat(pid)
		if len(f) > 14 {
			u, _ := strconv.ParseInt(f[13], 10, 64)
			s, _ := strconv.ParseInt(f[14], 10, 64)
			cpu += time.Duration(u+s) * tick
		}
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		m.RSS += procKB(filepath.Join(dir, "status"), "VmRSS:")
		m.Anon += procKB(filepath.Join(dir, "smaps_rollup"), "Pss_Anon:")
	}
	return cpu, m
}

// procKB reads a "Key:  N kB" line of a /proc file, in bytes (0 if absent).
func procKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			if f := strings.Fields(line); len(f) > 1 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
