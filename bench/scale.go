package main

// The scale rows (issue #15, "cheap at scale"): one vipd in mode static
// holding N IPv6 VIPs on one interface, with the production defaults (a 3 s
// kernel lifetime renewed every second, announcements 5 x 200 ms then every
// 10 s). Per N it measures, from outside the process:
//
//   - the takeover: vipd binds all N VIPs and sends the first announcement
//     of each; bound = the last VIP's RTM_NEWADDR (a netlink listener in the
//     lab's switch namespace, stamped when read), announced = the last VIP's
//     first neighbour advertisement received on node2 (kernel receive
//     timestamp); both from the moment vipd decided to take the group (the
//     first NA's arrival minus the takeover= vipd logs: the time from that
//     decision to its first announcement);
//   - idle CPU (utime+stime from /proc/PID/stat over the idle window), RSS
//     and Pss_Anon at its end, and anon KiB per VIP against the smallest N;
//   - that every VIP is still bound after the window, and gone after SIGTERM
//     (with how long the stop took).
//
// IPv6 only: the documentation ranges hold 762 IPv4 addresses, not 1,000.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
)

// scaleOptions are the scale run's parameters.
type scaleOptions struct {
	counts  []int
	idleFor time.Duration
	out     io.Writer
}

// scaleRow is one N's figures.
type scaleRow struct {
	vips       int
	cpu        float64 // % of one core over the idle window
	sys        float64 // of which in the kernel (system time)
	rss, anon  int64
	bound      time.Duration // decision -> last VIP bound
	announced  time.Duration // decision -> last VIP's first NA received
	seen       int           // distinct VIPs announced on the wire
	stillBound int           // VIPs bound at the end of the idle window
	stop       time.Duration // SIGTERM -> exit
	left       int           // VIPs still bound after the exit
	vipdView   string        // vipd's own bound/announced figures, if it logs them
}

// parseCounts reads -scale's "10,100,1000".
func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("-scale: %q: want a comma-separated list of VIP counts, 1..65535", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// scaleVIP is the i-th (0-based) VIP of the scale rows: 2001:db8:5ca1::/64.
func scaleVIP(i int) netip.Addr {
	b := netip.MustParseAddr("2001:db8:5ca1::").As16()
	b[14], b[15] = byte((i+1)>>8), byte(i+1)
	return netip.AddrFrom16(b)
}

func scaleConfig(node string, n int) *config.Config {
	c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: node, Mode: config.ModeStatic,
		Groups: []config.Group{{Name: "scale"}}}
	for i := range n {
		c.Groups[0].VIPs = append(c.Groups[0].VIPs, config.VIP{Address: scaleVIP(i).String(), Interface: "eth0"})
	}
	return c
}

func runScale(ctx context.Context, o scaleOptions) error {
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	l, err := lab.NewStandalone(lctx, lab.Options{Nodes: 2, KeepSignals: true})
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()
	cpus, model := machine()
	fmt.Fprintf(o.out, "lab %s: vipd mode static on node1, IPv6 VIPs on eth0, binding 3s/1s, announce 5 x 200ms + every 10s; idle %s; %d CPUs (%s)\n",
		l.ID, o.idleFor, cpus, model)
	var rows []scaleRow
	for _, n := range o.counts {
		r, err := scaleOnce(ctx, l, bin, n, o.idleFor)
		if err != nil {
			return fmt.Errorf("%d VIPs: %w", n, err)
		}
		fmt.Fprintf(o.out, "%d VIPs: idle CPU %.2f%% (system %.2f%%), RSS %.1f MiB (anon %.1f), bound %s, announced %s (%d/%d seen), still bound %d, stop %s, left %d%s\n",
			n, r.cpu, r.sys, mib(r.rss), mib(r.anon), ms(r.bound), ms(r.announced), r.seen, n, r.stillBound, ms(r.stop), r.left, r.vipdView)
		rows = append(rows, r)
	}
	reportScale(o.out, rows, o.idleFor)
	return nil
}

func reportScale(out io.Writer, rows []scaleRow, idleFor time.Duration) {
	fmt.Fprintf(out, "\nScale (mode static, one node; CPU %% of one core over %s idle; KiB/VIP: anon growth per VIP against the first row; times in ms from vipd's decision):\n", idleFor)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIPs\tidle CPU %\tof which system %\tRSS MiB\tanon MiB\tKiB/VIP\tall bound ms\tall announced ms\tstop ms")
	for _, r := range rows {
		per := "-"
		if f := rows[0]; r.vips > f.vips {
			per = fmt.Sprintf("%.1f", float64(r.anon-f.anon)/1024/float64(r.vips-f.vips))
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\n", r.vips, r.cpu, r.sys, mib(r.rss), mib(r.anon), per, ms(r.bound), ms(r.announced), ms(r.stop))
	}
	tw.Flush()
}

var (
	takeoverRE = regexp.MustCompile(`msg=transition .*takeover=(\S+)`)
	vipdViewRE = regexp.MustCompile(`msg=transition .*bound=(\S+) announced=(\S+)`)
)

func scaleOnce(ctx context.Context, l *lab.Lab, bin string, n int, idleFor time.Duration) (scaleRow, error) {
	r := scaleRow{vips: n}
	h, obs := l.Nodes[0], l.Nodes[1]
	want := map[netip.Addr]bool{}
	for i := range n {
		want[scaleVIP(i)] = true
	}
	nas, err := listenNAs(obs)
	if err != nil {
		return r, err
	}
	defer nas.close()
	w, err := lab.StartAddrWatch(h)
	if err != nil {
		return r, err
	}
	defer w.Close()
	p, err := l.StartVipdConfig(h, bin, scaleConfig(h.Name, n))
	if err != nil {
		return r, err
	}
	defer func() {
		if !p.Exited() {
			_ = p.Kill()
			p.Wait(5 * time.Second)
		}
	}()
	// Takeover: every VIP bound and announced once.
	deadline := time.Now().Add(60 * time.Second)
	var lastBound time.Time
	for {
		bound := map[netip.Addr]bool{}
		for _, e := range w.Events() {
			if e.Added && !e.Tentative && want[e.Addr.Addr()] && !bound[e.Addr.Addr()] {
				bound[e.Addr.Addr()] = true
				lastBound = e.At
			}
		}
		first, last, seen := nas.span(want)
		if len(bound) == n && seen == n {
			r.seen = seen
			m := takeoverRE.FindStringSubmatch(p.Output())
			if m == nil {
				// The transition line follows the announcements.
				if time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				return r, fmt.Errorf("no transition line with takeover= in vipd's output:\n%s", tail(p.Output()))
			}
			took, err := time.ParseDuration(m[1])
			if err != nil {
				return r, fmt.Errorf("takeover=%s: %w", m[1], err)
			}
			decided := first.Add(-took)
			r.bound, r.announced = lastBound.Sub(decided), last.Sub(decided)
			if v := vipdViewRE.FindStringSubmatch(p.Output()); v != nil {
				r.vipdView = fmt.Sprintf(" (vipd's own view: bound %s, announced %s)", v[1], v[2])
			}
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			return r, fmt.Errorf("after %s: %d/%d VIPs bound, %d/%d announced; vipd:\n%s", time.Since(deadline.Add(-60*time.Second)).Round(time.Millisecond),
				len(bound), n, seen, n, tail(p.Output()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The watch would overrun on the refreshes' notifications; its work is done.
	w.Close()
	nas.close()

	// Idle: after the announcement bursts (1 s), CPU over the window.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return r, err
	}
	cpu0, _ := usage([]int{p.PID})
	sys0 := sysTime(p.PID)
	if err := sleepCtx(ctx, idleFor); err != nil {
		return r, err
	}
	cpu1, m := usage([]int{p.PID})
	r.cpu = 100 * float64(cpu1-cpu0) / float64(idleFor)
	r.sys = 100 * float64(sysTime(p.PID)-sys0) / float64(idleFor)
	r.rss, r.anon = m.RSS, m.Anon
	if r.stillBound, err = countBound(h, want); err != nil {
		return r, err
	}
	if p.Exited() {
		return r, fmt.Errorf("vipd exited during the idle window:\n%s", tail(p.Output()))
	}
	// Stop: every VIP removed.
	began := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return r, err
	}
	if exited, _ := p.Wait(30 * time.Second); !exited {
		return r, errors.New("vipd did not stop within 30s of SIGTERM")
	}
	r.stop = time.Since(began)
	if r.left, err = countBound(h, want); err != nil {
		return r, err
	}
	return r, nil
}

// sysTime is pid's system CPU time (stime).
func sysTime(pid int) time.Duration {
	f := procStat(pid)
	if len(f) <= 14 {
		return 0
	}
	st, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(st) * 10 * time.Millisecond
}

func countBound(h *lab.Host, want map[netip.Addr]bool) (int, error) {
	ps, err := h.Addrs()
	// A dump that runs while vipd renews lifetimes is interrupted; again.
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 20; try++ {
		ps, err = h.Addrs()
	}
	if err != nil {
		return 0, err
	}
	k := 0
	for _, p := range ps {
		if want[p.Addr()] {
			k++
		}
	}
	return k, nil
}

func tail(s string) string {
	if len(s) > 4<<10 {
		return "..." + s[len(s)-4<<10:]
	}
	return s
}

// naListener records the kernel arrival time of the first unsolicited
// neighbour advertisement for each target address seen on a host.
type naListener struct {
	c    *net.IPConn
	done chan struct{}

	mu    sync.Mutex
	first map[netip.Addr]time.Time
}

func listenNAs(h *lab.Host) (*naListener, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: ICMPv6 socket: %w", h.Name, err)
	}
	ic := c.(*net.IPConn)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	if err := ipv6.NewPacketConn(ic).SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, err
	}
	rc, err := ic.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	var serr error
	_ = rc.Control(func(fd uintptr) {
		// A 1,000-VIP burst must not overrun the socket while the bench
		// process is descheduled.
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
	})
	if serr != nil {
		c.Close()
		return nil, serr
	}
	nl := &naListener{c: ic, done: make(chan struct{}), first: map[netip.Addr]time.Time{}}
	go nl.read()
	return nl, nil
}

func (nl *naListener) read() {
	defer close(nl.done)
	buf := make([]byte, 1500)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := nl.c.ReadMsgIP(buf, oob)
		if err != nil {
			return
		}
		at := kernelRxTime(oob[:oobn])
		m, err := ndp.ParseMessage(buf[:n])
		if err != nil {
			continue
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok {
			continue
		}
		nl.mu.Lock()
		if _, ok := nl.first[na.TargetAddress]; !ok {
			nl.first[na.TargetAddress] = at
		}
		nl.mu.Unlock()
	}
}

// span returns the earliest and the latest first arrival among want, and how
// many of want were seen.
func (nl *naListener) span(want map[netip.Addr]bool) (first, last time.Time, seen int) {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	for a, t := range nl.first {
		if !want[a] {
			continue
		}
		seen++
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last, seen
}

func (nl *naListener) close() {
	nl.c.Close()
	<-nl.done
}

// kernelRxTime is the SO_TIMESTAMPNS arrival time in oob (time.Now if none).
func kernelRxTime(oob []byte) time.Time {
	if ms, err := unix.ParseSocketControlMessage(oob); err == nil {
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

// machine is the CPU count and model for the report.
func machine() (int, string) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return runtime.NumCPU(), model
}
