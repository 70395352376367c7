package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// demoCmd runs `vipd demo`: three vipd nodes in VRRP mode in a throw-away
// network-namespace lab, a client probing the VIP every 10ms, and the three
// ways a master goes away (crash, graceful stop, link down), with a timeline
// of who answered and how long each interruption was. Needs root.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	advert := fs.Duration("advert", 100*time.Millisecond, "VRRP advertisement interval (10ms steps)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return &exitError{code: 2, err: errors.New("demo builds network namespaces: run it as root")}
	}
	// A closed stdout (`vipd demo | head`) must not kill us before the lab
	// is torn down: make writes fail instead of raising SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the vipd binary: %w", err)
	}
	d := &demo{out: stdout, bin: bin, start: time.Now()}
	// KeepSignals: ctx (SIGINT/SIGTERM in main) is our signal path, so the
	// lab is torn down by the deferred Close, also on Ctrl-C.
	buildCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	d.lab, err = lab.NewStandalone(buildCtx, lab.Options{Nodes: 3, KeepSignals: true})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		d.logf("tearing down the lab")
		d.lab.Close()
	}()
	err = d.run(ctx, *advert)
	if ctx.Err() != nil {
		d.logf("interrupted")
		return nil
	}
	return err
}

type demo struct {
	out     io.Writer
	bin     string
	lab     *lab.Lab
	start   time.Time
	router  vrrplab.Router
	procs   [3]*lab.Process
	prios   [3]int
	probe4  *lab.Probe
	probe6  *lab.Probe
	results []demoResult
}

type demoResult struct {
	scenario string
	family   string
	f        lab.Failover
	gone     time.Duration // how long the old owner kept the VIP bound (crash)
}

func (d *demo) logf(format string, args ...any) {
	fmt.Fprintf(d.out, "[%7.3fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) startNode(i int) error {
	h := d.lab.Nodes[i]
	p, err := d.lab.StartVipdConfig(h, d.bin, vrrplab.VipdConfig(h, d.prios[i], d.router, nil))
	if err != nil {
		return err
	}
	d.procs[i] = p
	return nil
}

// waitOwner waits until both probes get answers from node.
func (d *demo) waitOwner(ctx context.Context, node string) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range []*lab.Probe{d.probe4, d.probe6} {
		for {
			if r, ok := p.Latest(); ok && r.Node == node {
				break
			}
			if time.Now().After(deadline) {
				return p.WaitOwner(node, 0) // its error names who answered last
			}
			if err := sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *demo) record(scenario string, at time.Time, gone time.Duration) {
	for _, fp := range []struct {
		fam string
		p   *lab.Probe
	}{{"IPv4", d.probe4}, {"IPv6", d.probe6}} {
		fam, p := fp.fam, fp.p
		f, ok := p.Snapshot().FailoverAfter(at)
		if !ok {
			continue
		}
		d.results = append(d.results, demoResult{scenario, fam, f, gone})
		d.logf("  %s: %s answers %s after the event; the client saw %s of silence, %d probes lost, overlap %s",
			fam, f.To, f.FirstTo.Sub(at).Round(time.Millisecond), f.Interruption.Round(time.Millisecond), f.Lost, f.Overlap.Round(time.Millisecond))
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (d *demo) restore(ctx context.Context) error {
	d.logf("restarting node1 (priority 150): it preempts")
	if err := d.startNode(0); err != nil {
		return err
	}
	if err := d.waitOwner(ctx, "node1"); err != nil {
		return err
	}
	d.logf("node1 answers again")
	return sleep(ctx, 2*time.Second)
}

func (d *demo) run(ctx context.Context, advert time.Duration) error {
	l := d.lab
	d.router = vrrplab.Router{VRID: 51, Interval: advert, VIPs: []netip.Addr{l.VIPv4(1), l.VIPv6(1)}}
	d.prios = [3]int{150, 100, 50}
	fmt.Fprint(d.out, l.Topology())
	d.logf("lab %s: node1..3 on one switch, client probing %s and %s every 10ms", l.ID, d.router.VIPs[0], d.router.VIPs[1])
	const port = 7000
	if err := l.StartResponders(port); err != nil {
		return err
	}
	var err error
	if d.probe4, err = l.StartProbe(ctx, d.router.VIPs[0], port, 10*time.Millisecond); err != nil {
		return err
	}
	if d.probe6, err = l.StartProbe(ctx, d.router.VIPs[1], port, 10*time.Millisecond); err != nil {
		return err
	}
	d.logf("starting vipd (mode vrrp, advert %s) on node1 (priority 150), node2 (100), node3 (50)", advert)
	for i := range 3 {
		if err := d.startNode(i); err != nil {
			return err
		}
	}
	if err := d.waitOwner(ctx, "node1"); err != nil {
		return err
	}
	d.logf("node1 is master and answers for the VIPs")
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}

	// 1. Crash.
	d.logf("SIGKILL node1 (a crash: no goodbye advert, VIPs left bound)")
	at := time.Now()
	d.procs[0].Kill()
	d.procs[0].Wait(5 * time.Second)
	if err := d.waitOwner(ctx, "node2"); err != nil {
		return err
	}
	gone := d.waitVIPGone(ctx, l.Nodes[0], 10*time.Second)
	d.record("SIGKILL", at, gone)
	if gone >= 0 {
		d.logf("  node1's VIPs were removed by the kernel %s after the crash (binding.lifetime 3s)", gone.Round(100*time.Millisecond))
	}
	if err := d.restore(ctx); err != nil {
		return err
	}

	// 2. Graceful stop.
	d.logf("SIGTERM node1 (graceful: VIPs removed, then a priority-0 advert)")
	at = time.Now()
	d.procs[0].Signal(syscall.SIGTERM)
	d.procs[0].Wait(10 * time.Second)
	if err := d.waitOwner(ctx, "node2"); err != nil {
		return err
	}
	d.record("SIGTERM", at, -1)
	if err := d.restore(ctx); err != nil {
		return err
	}

	// 3. Link down.
	d.logf("link down on node1 (eth0)")
	at = time.Now()
	if err := l.Nodes[0].SetLinkUp(false); err != nil {
		return err
	}
	if err := d.waitOwner(ctx, "node2"); err != nil {
		return err
	}
	d.record("link down", at, -1)
	d.logf("link up on node1: it preempts")
	if err := l.Nodes[0].SetLinkUp(true); err != nil {
		return err
	}
	if err := d.waitOwner(ctx, "node1"); err != nil {
		return err
	}
	d.logf("node1 answers again")
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	for i, p := range d.procs {
		if p != nil && !p.Exited() {
			p.Signal(syscall.SIGTERM)
			p.Wait(10 * time.Second)
			d.procs[i] = nil
		}
	}
	d.summary()
	return nil
}

// waitVIPGone polls until h no longer holds the IPv4 VIP; -1 if it still does.
func (d *demo) waitVIPGone(ctx context.Context, h *lab.Host, timeout time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if ok, err := h.HasAddress(d.router.VIPs[0]); err == nil && !ok {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

func (d *demo) summary() {
	fmt.Fprintf(d.out, "\nWho answered on %s (from the client's probe):\n", d.router.VIPs[0])
	for _, s := range d.probe4.Snapshot().Owners() {
		fmt.Fprintf(d.out, "  %8.3fs - %8.3fs  %-6s %5d replies\n", s.First.Sub(d.start).Seconds(), s.Last.Sub(d.start).Seconds(), s.Node, s.Count)
	}
	fmt.Fprintln(d.out, "\nFailovers:")
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  scenario\tfamily\tfrom\tto\tinterruption\tlost probes\toverlap")
	for _, r := range d.results {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.scenario, r.family, r.f.From, r.f.To,
			r.f.Interruption.Round(time.Millisecond), r.f.Lost, r.f.Overlap.Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintln(d.out, "\n(overlap: how long the old node still answered after the new one started;\n after SIGKILL the crashed node's VIPs live on until their kernel lifetime runs out)")
}
