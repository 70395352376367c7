// Command bench measures failover of vipd against keepalived in one
// network-namespace lab (internal/lab): same nodes, same client probe (UDP
// every 10ms), same scenarios on the master (SIGKILL, SIGTERM, link down),
// several rounds each; then idle RSS and CPU per node. Run as root:
//
//	go run ./bench [-rounds 5] [-advert 100ms] [-idle 10s] [-modes vipd,keepalived]
//
// Lease and gossip modes plug in as further Mode implementations (modes.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/vrrp/vrrplab"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Scenario is one way the master goes away, and how to bring it back.
type Scenario struct {
	Name string
	// Do takes node 0 (the master) away.
	Do func(l *lab.Lab, m Mode) error
	// Restore brings node 0 back (it preempts).
	Restore func(l *lab.Lab, m Mode, prio int) error
}

var scenarios = []Scenario{
	{
		Name:    "SIGKILL",
		Do:      func(l *lab.Lab, m Mode) error { return m.Crash(0) },
		Restore: func(l *lab.Lab, m Mode, prio int) error { m.AfterCrash(l, 0); return m.Start(l, 0, prio) },
	},
	{
		Name:    "SIGTERM",
		Do:      func(l *lab.Lab, m Mode) error { return m.Stop(0) },
		Restore: func(l *lab.Lab, m Mode, prio int) error { return m.Start(l, 0, prio) },
	},
	{
		Name:    "link down",
		Do:      func(l *lab.Lab, m Mode) error { return l.Nodes[0].SetLinkUp(false) },
		Restore: func(l *lab.Lab, m Mode, prio int) error { return l.Nodes[0].SetLinkUp(true) },
	},
}

// result is one round of one scenario.
type result struct {
	f lab.Failover
	// takeover is event -> first reply from the new owner.
	takeover time.Duration
	// left is how long the old master still held the VIP after the event
	// (capped: -1 = still there at the cap).
	left time.Duration
}

type idle struct {
	rss [2]int64   // master, backup
	cpu [2]float64 // % of one core
}

var prios = []int{150, 100, 50}

func run() error {
	rounds := flag.Int("rounds", 5, "rounds per scenario")
	advert := flag.Duration("advert", 100*time.Millisecond, "VRRP advertisement interval")
	idleFor := flag.Duration("idle", 10*time.Second, "idle measurement window for RSS/CPU")
	leftCap := flag.Duration("left-cap", 5*time.Second, "how long to watch the old master for a leftover VIP")
	modesFlag := flag.String("modes", "vipd,keepalived", "implementations to compare")
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("run as root: the benchmark builds network namespaces")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGPIPE) // `| head` must not skip the lab teardown

	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	l, err := lab.NewStandalone(lctx, lab.Options{Nodes: 3, KeepSignals: true})
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()

	vip := l.VIPv4(1)
	router := vrrplab.Router{VRID: 51, Interval: *advert, VIPs: []netip.Addr{vip}}
	all := map[string]Mode{
		"vipd": newVipdMode("vipd", bin, func(h *lab.Host, prio int) string {
			return vrrplab.VipdConfig(h, prio, router, nil)
		}),
		"keepalived": &keepalivedMode{router: router, procs: map[int]*vrrplab.Keepalived{}},
	}
	var modes []Mode
	for _, n := range strings.Split(*modesFlag, ",") {
		m, ok := all[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("-modes: unknown mode %q", n)
		}
		modes = append(modes, m)
	}
	const port = 7300
	if err := l.StartResponders(port); err != nil {
		return err
	}
	fmt.Printf("lab %s: 3 nodes, VIP %s, advert %s, probe every 10ms, %d rounds\n", l.ID, vip, *advert, *rounds)

	results := map[string]map[string][]result{}
	idles := map[string]idle{}
	for _, m := range modes {
		if err := m.Setup(l); err != nil {
			return fmt.Errorf("%s: %w", m.Name(), err)
		}
		res, id, err := runMode(ctx, l, m, vip, port, *rounds, *idleFor, *leftCap)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name(), err)
		}
		results[m.Name()], idles[m.Name()] = res, id
	}
	report(modes, results, idles, *advert, *idleFor)
	return nil
}

func waitOwner(ctx context.Context, p *lab.Probe, node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if r, ok := p.Latest(); ok && r.Node == node {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return p.WaitOwner(node, 0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runMode starts the mode on all nodes, measures idle usage, then runs every
// scenario for the given rounds; it stops all nodes at the end.
func runMode(ctx context.Context, l *lab.Lab, m Mode, vip netip.Addr, port, rounds int, idleFor, leftCap time.Duration) (map[string][]result, idle, error) {
	fmt.Printf("\n== %s\n", m.Name())
	for i, p := range prios {
		if err := m.Start(l, i, p); err != nil {
			return nil, idle{}, err
		}
	}
	defer func() {
		for i := range prios {
			m.Stop(i)
		}
		// Whatever a mode left bound must not leak into the next one.
		for _, h := range l.Nodes {
			vrrplab.CleanVIPs(h, []netip.Addr{vip})
		}
	}()
	probe, err := l.StartProbe(ctx, vip, port, 10*time.Millisecond)
	if err != nil {
		return nil, idle{}, err
	}
	defer probe.Stop()
	if err := waitOwner(ctx, probe, "node1", 30*time.Second); err != nil {
		return nil, idle{}, err
	}

	// Idle: settle, then CPU over the window and RSS at its end.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, idle{}, err
	}
	var id idle
	var cpu0 [2]time.Duration
	for k := range 2 {
		cpu0[k], _ = usage(m.PIDs(k))
	}
	if err := sleepCtx(ctx, idleFor); err != nil {
		return nil, idle{}, err
	}
	for k := range 2 {
		c, rss := usage(m.PIDs(k))
		id.rss[k] = rss
		id.cpu[k] = 100 * float64(c-cpu0[k]) / float64(idleFor)
	}
	fmt.Printf("idle: master RSS %.1f MiB CPU %.2f%%, backup RSS %.1f MiB CPU %.2f%%\n",
		mib(id.rss[0]), id.cpu[0], mib(id.rss[1]), id.cpu[1])

	res := map[string][]result{}
	for round := 1; round <= rounds; round++ {
		for _, sc := range scenarios {
			// Random phase against the advert timer.
			if err := sleepCtx(ctx, time.Second+time.Duration(rand.IntN(100))*time.Millisecond); err != nil {
				return nil, idle{}, err
			}
			at := time.Now()
			if err := sc.Do(l, m); err != nil {
				return nil, idle{}, fmt.Errorf("%s: %w", sc.Name, err)
			}
			if err := waitOwner(ctx, probe, "node2", 20*time.Second); err != nil {
				return nil, idle{}, fmt.Errorf("round %d %s: %w", round, sc.Name, err)
			}
			left := waitGone(ctx, l.Nodes[0], vip, leftCap)
			// Let late replies from the old node show up in the record.
			time.Sleep(300 * time.Millisecond)
			f, ok := probe.Snapshot().FailoverAfter(at)
			if !ok {
				return nil, idle{}, fmt.Errorf("round %d %s: no failover recorded", round, sc.Name)
			}
			r := result{f: f, takeover: f.FirstTo.Sub(at), left: left}
			res[sc.Name] = append(res[sc.Name], r)
			fmt.Printf("round %d %-9s %s; new owner answers %s after the event; VIP left on old master %s\n",
				round, sc.Name, f, r.takeover.Round(time.Millisecond), fmtLeft(left, leftCap))
			if err := sc.Restore(l, m, prios[0]); err != nil {
				return nil, idle{}, err
			}
			if err := waitOwner(ctx, probe, "node1", 30*time.Second); err != nil {
				return nil, idle{}, fmt.Errorf("round %d %s restore: %w", round, sc.Name, err)
			}
		}
	}
	return res, id, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitGone polls until h no longer holds vip; -1 if it still does after limit.
func waitGone(ctx context.Context, h *lab.Host, vip netip.Addr, limit time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < limit && ctx.Err() == nil {
		if ok, err := h.HasAddress(vip); err == nil && !ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func fmtLeft(d, limit time.Duration) string {
	if d < 0 {
		return fmt.Sprintf(">%s (still bound)", limit)
	}
	return d.Round(10 * time.Millisecond).String()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds()) }

func stats(ds []time.Duration) (lo, med, hi time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func report(modes []Mode, results map[string]map[string][]result, idles map[string]idle, advert, idleFor time.Duration) {
	fmt.Printf("\nFailover of the master (advert %s; client probe every 10ms; times in ms):\n", advert)
	fmt.Println("(interruption: silence seen by the client; after SIGKILL the crashed node's service still answers\n until the new owner's announcement moves the client, so the new owner's start is the telling figure)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\timplementation\tinterruption min/median/max\tnew owner answers after (median)\tlost probes (median)\toverlap median/max\tVIP left on old master (median)")
	for _, sc := range scenarios {
		for _, m := range modes {
			rs := results[m.Name()][sc.Name]
			if len(rs) == 0 {
				continue
			}
			var in, ov, left, tk []time.Duration
			var lost []int
			stuck := 0
			for _, r := range rs {
				in = append(in, r.f.Interruption)
				tk = append(tk, r.takeover)
				ov = append(ov, r.f.Overlap)
				lost = append(lost, r.f.Lost)
				if r.left < 0 {
					stuck++
					left = append(left, time.Duration(1<<62))
				} else {
					left = append(left, r.left)
				}
			}
			a, b, c := stats(in)
			_, om, ox := stats(ov)
			slices.Sort(lost)
			_, lm, _ := stats(left)
			_, tm, _ := stats(tk)
			leftS := ms(lm)
			if lm == time.Duration(1<<62) {
				leftS = "never (still bound)"
			}
			if stuck > 0 {
				leftS += fmt.Sprintf(" [%d/%d rounds still bound]", stuck, len(rs))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s / %s / %s\t%s\t%d\t%s / %s\t%s\n", sc.Name, m.Name(), ms(a), ms(b), ms(c), ms(tm), lost[len(lost)/2], ms(om), ms(ox), leftS)
		}
	}
	tw.Flush()
	fmt.Printf("\nIdle resources per node (RSS at the end, CPU over %s):\n", idleFor)
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tmaster RSS MiB\tmaster CPU %\tbackup RSS MiB\tbackup CPU %")
	for _, m := range modes {
		id := idles[m.Name()]
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.1f\t%.2f\n", m.Name(), mib(id.rss[0]), id.cpu[0], mib(id.rss[1]), id.cpu[1])
	}
	tw.Flush()
}
