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
// vipd-vrrp and by keepalived on two nodes of a lab of their own (node1
// 150, node2 100), idle: CPU and memory of the master and the backup, as
// in the idle table, and false takeovers: adverts from node2 during the
// window, counted as episodes (separated by more than three intervals of
// silence), seen by the client. Only the VRRP implementations among -modes
// run. With -routers 1 -advert 10ms -idle 10m it is the 10-minute idle
// check of issue #15 (no false takeover at RFC 9568's fastest interval).

// routersResult is one implementation's idle figures with n routers.
type routersResult struct {
	name string
	id   idle
	// takeovers: episodes of node2 advertising; gap: the longest silence
	// of node1 (all its routers together) seen by the client.
	takeovers int
	gap       time.Duration
}

// runRouters measures n routers per implementation; the lab is gone when
// it returns.
func runRouters(ctx context.Context, out io.Writer, o options, n int) ([]routersResult, error) {
	if n < 1 || n > 99 {
		return nil, fmt.Errorf("-routers %d: want 1..99 (one lab VIP each)", n)
	}
	var impls []string
	for _, m := range o.modes {
		if m == "vipd" {
			m = "vipd-vrrp"
		}
		if (m == "vipd-vrrp" || m == "keepalived") && !slices.Contains(impls, m) {
			impls = append(impls, m)
		}
	}
	if len(impls) == 0 {
		return nil, nil
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	l, err := lab.NewStandalone(lctx, lab.Options{Nodes: 2, KeepSignals: true})
	cancel()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	routers := make([]vrrplab.Router, n)
	var vips []netip.Addr
	for i := range routers {
		routers[i] = vrrplab.Router{VRID: i + 1, Interval: o.advert, VIPs: []netip.Addr{l.VIPv4(i + 1)}}
		vips = append(vips, l.VIPv4(i+1))
	}
	fmt.Fprintf(out, "\n== %d virtual routers on one interface, advert %s (lab %s, 2 nodes)\n", n, o.advert, l.ID)
	var res []routersResult
	for _, name := range impls {
		rr, err := idleRouters(ctx, out, l, name, bin, routers, o.idleFor)
		for _, h := range l.Nodes {
			vrrplab.CleanVIPs(h, vips)
		}
		if err != nil {
			return res, fmt.Errorf("%d routers, %s: %w", n, name, err)
		}
		rr.name = name
		res = append(res, rr)
	}
	return res, nil
}

// idleRouters starts name on both nodes with routers, waits until node1
// holds every VIP and node2 none, and measures idle usage.
func idleRouters(ctx context.Context, out io.Writer, l *lab.Lab, name, bin string, routers []vrrplab.Router, idleFor time.Duration) (routersResult, error) {
	var rr routersResult
	var pids [2][]int
	for i, prio := range []int{150, 100} {
		h := l.Nodes[i]
		switch name {
		case "vipd-vrrp":
			c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeVRRP}
			for _, r := range routers {
				g := vrrplab.VipdConfig(h, prio, r, nil).Groups[0]
				g.Name = fmt.Sprintf("r%d", r.VRID)
				c.Groups = append(c.Groups, g)
			}
			p, err := l.StartVipdConfig(h, bin, c)
			if err != nil {
				return rr, err
			}
			defer stopProcess(p)
			pids[i] = []int{p.PID}
		case "keepalived":
			if err := vrrplab.KeepalivedAvailable(); err != nil {
				return rr, err
			}
			k, err := vrrplab.StartKeepalived(l, h, keepalivedRouters(h, prio, routers))
			if err != nil {
				return rr, err
			}
			defer k.Stop(15 * time.Second)
			pids[i] = []int{k.PID}
		}
	}
	last := routers[len(routers)-1].VIPs[0]
	for _, v := range []netip.Addr{routers[0].VIPs[0], last} {
		if err := l.Nodes[0].WaitAddress(v, true, 30*time.Second); err != nil {
			return rr, fmt.Errorf("node1 never held %s: %w", v, err)
		}
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return rr, err
	}
	if name == "keepalived" {
		// Its VRRP child exists by now.
		for k := range pids {
			pids[k] = processGroup(pids[k][0])
		}
	}
	w, err := vrrplab.Watch(l.Client, 4)
	if err != nil {
		return rr, err
	}
	id := &rr.id
	var cpu0 [2]time.Duration
	for k := range 2 {
		cpu0[k], _ = usage(pids[k])
	}
	from := time.Now()
	err = sleepCtx(ctx, idleFor)
	to := time.Now()
	seen := w.Stop()
	if err != nil {
		return rr, err
	}
	for k := range 2 {
		c, mm := usage(pids[k])
		id.mem[k] = mm
		id.cpu[k] = 100 * float64(c-cpu0[k]) / float64(idleFor)
	}
	rr.takeovers, rr.gap = falseTakeovers(seen, l.Nodes[0].IPv4.Addr(), l.Nodes[1].IPv4.Addr(), routers[0].Interval, from, to)
	if hs, _ := l.AddressHolders(last); len(hs) != 1 || hs[0] != l.Nodes[0].Name {
		return rr, fmt.Errorf("after the idle window %s is held by %v, want node1 alone", last, hs)
	}
	fmt.Fprintf(out, "%s: master RSS %.1f MiB anon %.1f MiB CPU %.2f%%, backup RSS %.1f MiB anon %.1f MiB CPU %.2f%%; false takeovers %d, master's longest silence %s\n", name,
		mib(id.mem[0].RSS), mib(id.mem[0].Anon), id.cpu[0], mib(id.mem[1].RSS), mib(id.mem[1].Anon), id.cpu[1], rr.takeovers, rr.gap.Round(time.Millisecond))
	return rr, nil
}

// falseTakeovers counts the episodes in which backup advertised between
// from and to (separated by more than three intervals without its adverts)
// and the longest silence of master.
func falseTakeovers(seen []vrrplab.Advert, master, backup netip.Addr, interval time.Duration, from, to time.Time) (int, time.Duration) {
	n := 0
	var lastB time.Time
	lastM := from
	var gap time.Duration
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
			}
			lastB = a.At
		}
	}
	return n, max(gap, to.Sub(lastM))
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
func reportRouters(out io.Writer, n int, advert, idleFor time.Duration, res []routersResult) {
	if len(res) == 0 {
		return
	}
	fmt.Fprintf(out, "\nIdle with %d virtual routers on one interface (advert %s; memory at the end, CPU over %s):\n", n, advert, idleFor)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tmaster RSS MiB\tmaster anon MiB\tmaster CPU %\tbackup RSS MiB\tbackup anon MiB\tbackup CPU %\tfalse takeovers\tmaster's longest silence ms")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t%d\t%s\n", r.name,
			mib(r.id.mem[0].RSS), mib(r.id.mem[0].Anon), r.id.cpu[0], mib(r.id.mem[1].RSS), mib(r.id.mem[1].Anon), r.id.cpu[1], r.takeovers, ms(r.gap))
	}
	tw.Flush()
}
