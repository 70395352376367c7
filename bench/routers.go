package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
)

// The many-routers phase (-routers N, issue #15): N virtual routers on one
// interface (VRIDs 1..N, one IPv4 VIP each, the -advert interval), run by
// vipd-vrrp and by keepalived on two nodes (node1 150, node2 100), idle:
// CPU and memory of the master and the backup, as in the idle table, and
// false takeovers: adverts from node2 during the window, counted as
// episodes (separated by more than three intervals of silence), seen by the
// client. By default (-side-by-side) each implementation has a lab of its
// own and all idle in the same window, so a stall of the shared machine
// hits them alike; -side-by-side=false runs them one after the other in one
// lab. Only the VRRP implementations among -modes run; with -rounds 0 only
// this phase runs. With -routers 1 -advert 10ms -routers-idle 10m it is the
// 10-minute idle check of issue #15 (no false takeover at RFC 9568's
// fastest interval).

// routersResult is one implementation's idle figures with n routers.
type routersResult struct {
	name string
	id   idle
	// takeovers: episodes of node2 advertising; gap: the longest silence
	// of node1 (all its routers together) seen by the client.
	takeovers int
	early     int // takeovers less than Master_Down_Interval after the master's last advert (seen by the client)
	gap       time.Duration
	load      loadStats // the machine's 1-minute load average during the window
}

// runRouters measures n routers per implementation; the labs are gone when
// it returns. sideBySide: every implementation in a lab of its own, all
// idle in the same window (a stall of the shared machine hits them all);
// otherwise one lab, one implementation after the other.
func runRouters(ctx context.Context, out io.Writer, o options, n int, sideBySide bool) ([]routersResult, error) {
	if n < 1 || n > 99 {
		return nil, fmt.Errorf("-routers %d: want 1..99 (one lab VIP each)", n)
	}
	impls := routerImpls(o.modes)
	if len(impls) == 0 {
		return nil, nil
	}
	if slices.Contains(impls, "keepalived") {
		if err := vrrplab.KeepalivedAvailable(); err != nil {
			return nil, err
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return nil, err
	}
	nlabs := 1
	if sideBySide {
		nlabs = len(impls)
	}
	labs := make([]*lab.Lab, nlabs)
	for i := range labs {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		labs[i], err = lab.NewStandalone(lctx, lab.Options{Nodes: 2, KeepSignals: true})
		cancel()
		if err != nil {
			return nil, err
		}
		defer labs[i].Close()
	}
	routers := func(l *lab.Lab) []vrrplab.Router {
		rs := make([]vrrplab.Router, n)
		for i := range rs {
			rs[i] = vrrplab.Router{VRID: i + 1, Interval: o.advert, VIPs: []netip.Addr{l.VIPv4(i + 1)}}
		}
		return rs
	}
	if !sideBySide {
		l := labs[0]
		fmt.Fprintf(out, "\n== %d virtual routers on one interface, advert %s (lab %s, 2 nodes; one implementation after the other)\n", n, o.advert, l.ID)
		var res []routersResult
		for _, name := range impls {
			rr, err := func() (routersResult, error) {
				r, err := startRouters(ctx, l, name, bin, routers(l))
				defer r.stop()
				if err != nil {
					return routersResult{}, err
				}
				m, err := measureRouters(ctx, []*routersRun{r}, o.idleFor)
				if err != nil {
					return routersResult{}, err
				}
				return m[0], nil
			}()
			if err != nil {
				return res, fmt.Errorf("%d routers, %s: %w", n, name, err)
			}
			printRouters(out, rr)
			res = append(res, rr)
		}
		return res, nil
	}
	fmt.Fprintf(out, "\n== %d virtual routers on one interface, advert %s, side by side:", n, o.advert)
	for i, name := range impls {
		fmt.Fprintf(out, " %s in lab %s", name, labs[i].ID)
	}
	fmt.Fprintln(out, " (2 nodes each, the same idle window)")
	runs := make([]*routersRun, len(impls))
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()
	for i, name := range impls {
		if runs[i], err = startRouters(ctx, labs[i], name, bin, routers(labs[i])); err != nil {
			return nil, fmt.Errorf("%d routers, %s: %w", n, name, err)
		}
	}
	res, err := measureRouters(ctx, runs, o.idleFor)
	for _, rr := range res {
		printRouters(out, rr)
	}
	return res, err
}

// routerImpls lists the VRRP implementations among modes, once each.
func routerImpls(modes []string) []string {
	var impls []string
	for _, m := range modes {
		if m == "vipd" {
			m = "vipd-vrrp"
		}
		if (m == "vipd-vrrp" || m == "keepalived") && !slices.Contains(impls, m) {
			impls = append(impls, m)
		}
	}
	return impls
}

// routersRun is one implementation running routers on node1 (150) and
// node2 (100) of its lab.
type routersRun struct {
	name    string
	l       *lab.Lab
	routers []vrrplab.Router
	pids    [2][]int
	stops   []func()
}

// stop ends the daemons and removes leftover VIPs; safe on nil.
func (r *routersRun) stop() {
	if r == nil {
		return
	}
	for _, f := range r.stops {
		f()
	}
	r.stops = nil
	var vips []netip.Addr
	for _, rt := range r.routers {
		vips = append(vips, rt.VIPs...)
	}
	for _, h := range r.l.Nodes {
		vrrplab.CleanVIPs(h, vips)
	}
}

// startRouters starts name on both nodes of l with routers and waits until
// node1 holds the first and last VIP. The returned run is never nil: stop
// it also on error.
func startRouters(ctx context.Context, l *lab.Lab, name, bin string, routers []vrrplab.Router) (*routersRun, error) {
	r := &routersRun{name: name, l: l, routers: routers}
	for i, prio := range []int{150, 100} {
		h := l.Nodes[i]
		switch name {
		case "vipd-vrrp":
			c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeVRRP}
			for _, rt := range routers {
				g := vrrplab.VipdConfig(h, prio, rt, nil).Groups[0]
				g.Name = fmt.Sprintf("r%d", rt.VRID)
				c.Groups = append(c.Groups, g)
			}
			p, err := l.StartVipdConfig(h, bin, c)
			if err != nil {
				return r, err
			}
			r.stops = append(r.stops, func() { stopProcess(p) })
			r.pids[i] = []int{p.PID}
		case "keepalived":
			if err := vrrplab.KeepalivedAvailable(); err != nil {
				return r, err
			}
			k, err := vrrplab.StartKeepalived(l, h, keepalivedRouters(h, prio, routers))
			if err != nil {
				return r, err
			}
			r.stops = append(r.stops, func() { _ = k.Stop(15 * time.Second) })
			r.pids[i] = []int{k.PID}
		default:
			return r, fmt.Errorf("%s: not a VRRP implementation", name)
		}
	}
	last := routers[len(routers)-1].VIPs[0]
	for _, v := range []netip.Addr{routers[0].VIPs[0], last} {
		if err := l.Nodes[0].WaitAddress(v, true, 30*time.Second); err != nil {
			return r, fmt.Errorf("node1 never held %s: %w", v, err)
		}
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return r, err
	}
	if name == "keepalived" {
		// Its VRRP child exists by now.
		for k := range r.pids {
			r.pids[k] = processGroup(r.pids[k][0])
		}
	}
	return r, nil
}

// measureRouters watches every run over the same idle window: CPU, memory
// at the end, false takeovers and the master's longest silence. It fails
// if a backup holds the last VIP at the end.
func measureRouters(ctx context.Context, runs []*routersRun, idleFor time.Duration) ([]routersResult, error) {
	ws := make([]*vrrplab.Watcher, len(runs))
	for i, r := range runs {
		w, err := vrrplab.Watch(r.l.Client, 4)
		if err != nil {
			for _, w := range ws[:i] {
				w.Stop()
			}
			return nil, err
		}
		ws[i] = w
	}
	cpu0 := make([][2]time.Duration, len(runs))
	for i, r := range runs {
		for k := range 2 {
			cpu0[i][k], _ = usage(r.pids[k])
		}
	}
	load := startLoadSampler(10 * time.Second)
	from := time.Now()
	err := sleepCtx(ctx, idleFor)
	to := time.Now()
	lavg := load.stop()
	res := make([]routersResult, len(runs))
	for i, r := range runs {
		rr := &res[i]
		rr.name, rr.load = r.name, lavg
		for k := range 2 {
			c, mm := usage(r.pids[k])
			rr.id.mem[k] = mm
			rr.id.cpu[k] = 100 * float64(c-cpu0[i][k]) / float64(to.Sub(from))
		}
		seen := ws[i].Stop()
		iv := r.routers[0].Interval
		rr.takeovers, rr.early, rr.gap = falseTakeovers(seen, r.l.Nodes[0].IPv4.Addr(), r.l.Nodes[1].IPv4.Addr(), iv, masterDown(iv, 100), from, to)
	}
	if err != nil {
		return res, err
	}
	for _, r := range runs {
		last := r.routers[len(r.routers)-1].VIPs[0]
		if hs, _ := r.l.AddressHolders(last); len(hs) != 1 || hs[0] != r.l.Nodes[0].Name {
			return res, fmt.Errorf("%s: after the idle window %s is held by %v, want node1 alone", r.name, last, hs)
		}
	}
	return res, nil
}

func printRouters(out io.Writer, rr routersResult) {
	id := rr.id
	fmt.Fprintf(out, "%s: master RSS %.1f MiB anon %.1f MiB CPU %.2f%%, backup RSS %.1f MiB anon %.1f MiB CPU %.2f%%; false takeovers %d (%d early), master's longest silence %s; load average %s\n", rr.name,
		mib(id.mem[0].RSS), mib(id.mem[0].Anon), id.cpu[0], mib(id.mem[1].RSS), mib(id.mem[1].Anon), id.cpu[1], rr.takeovers, rr.early, rr.gap.Round(time.Millisecond), rr.load)
}

// falseTakeovers counts the episodes in which backup advertised between
// from and to (separated by more than three intervals without its adverts),
// early: those that began less than masterDown after the master's last
// advert (the backup misjudged; otherwise the master was silent on the wire
// for its Master_Down_Interval), and the longest silence of master.
func falseTakeovers(seen []vrrplab.Advert, master, backup netip.Addr, interval, masterDown time.Duration, from, to time.Time) (n, early int, gap time.Duration) {
	var lastB time.Time
	lastM := from
	for _, a := range seen {
		if a.At.Before(from) || a.At.After(to) {
			continue
		}
		switch {
		case a.Src == master:
			gap = max(gap, a.At.Sub(lastM))
			lastM = a.At
		case a.Src == backup && a.Priority > 0:
			if lastB.IsZero() || a.At.Sub(lastB) > 3*interval {
				n++
				if a.At.Sub(lastM) < masterDown {
					early++
				}
			}
			lastB = a.At
		}
	}
	return n, early, max(gap, to.Sub(lastM))
}

// masterDown is RFC 9568's Master_Down_Interval of a backup with priority
// prio when the master advertises every interval.
func masterDown(interval time.Duration, prio int) time.Duration {
	return 3*interval + time.Duration(256-prio)*interval/256
}

func stopProcess(p *lab.Process) {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	p.Wait(15 * time.Second)
}

// keepalivedRouters is one keepalived.conf with an instance per router.
func keepalivedRouters(h *lab.Host, prio int, routers []vrrplab.Router) string {
	var b strings.Builder
	for i, r := range routers {
		c := vrrplab.KeepalivedConfig(h, prio, r, h.IPv4.Addr(), nil)
		if i > 0 {
			c = c[strings.Index(c, "vrrp_instance"):] // one global_defs
		}
		b.WriteString(strings.Replace(c, "vrrp_instance web4 {", fmt.Sprintf("vrrp_instance r%d {", r.VRID), 1))
	}
	return b.String()
}

// reportRouters prints the many-routers table.
func reportRouters(out io.Writer, n int, advert, idleFor time.Duration, sideBySide bool, res []routersResult) {
	if len(res) == 0 {
		return
	}
	how := "one implementation after the other"
	if sideBySide {
		how = "side by side, the same window"
	}
	fmt.Fprintf(out, "\nIdle with %d virtual routers on one interface (advert %s, %s; memory at the end, CPU over %s;\n false takeovers: node2's advertising episodes, early: begun within Master_Down_Interval of node1's last advert; silence: node1's longest, seen by the client):\n", n, advert, how, idleFor)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tmaster RSS MiB\tmaster anon MiB\tmaster CPU %\tbackup RSS MiB\tbackup anon MiB\tbackup CPU %\tfalse takeovers (early)\tmaster's longest silence ms\tload average min/mean/max")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t%d (%d)\t%s\t%s\n", r.name,
			mib(r.id.mem[0].RSS), mib(r.id.mem[0].Anon), r.id.cpu[0], mib(r.id.mem[1].RSS), mib(r.id.mem[1].Anon), r.id.cpu[1], r.takeovers, r.early, ms(r.gap), r.load)
	}
	tw.Flush()
}
