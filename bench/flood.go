package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrplab"
	"github.com/vipd/vipd/vrrp"
)

// floodPriority is the flood's advert priority: below every node's
// (150/100/50), so the backups ignore the flood and rely on the master's
// adverts reaching them through it (issue #11, 5).
const floodPriority = 20

// floodResult is the "flood" row of one VRRP implementation.
type floodResult struct {
	sent     int
	for_     time.Duration
	stats    vrrplab.FloodStats
	cpu      [2]float64 // master, backup: % of one core over the flood
	drops    [2]uint64  // kernel receive-buffer drops on the VRRP socket read (the least-dropping one)
	lostVIP  bool       // node1 did not hold the VIP at the end
	backupVI []string   // backups holding the VIP at the end
}

// runFlood sends valid lower-priority adverts for the mode's virtual router
// from the client namespace at o.floodRate for o.floodFor, while watching
// the adverts on the wire and the nodes' CPU and kernel drops.
func runFlood(ctx context.Context, out io.Writer, l *lab.Lab, m Mode, r vrrplab.Router, o options) (*floodResult, error) {
	w, err := vrrplab.Watch(l.Client, 4)
	if err != nil {
		return nil, err
	}
	s, err := vrrplab.NewSender(l.Client, 4, netip.Addr{})
	if err != nil {
		w.Stop()
		return nil, err
	}
	defer s.Close()
	res := &floodResult{}
	var cpu0 [2]time.Duration
	var drops0 [2]map[string]uint64
	for k := range 2 {
		cpu0[k] = cpuTime(m.PIDs(k))
		drops0[k], _ = vrrplab.RawDropsBySocket(m.PIDs(k)[0])
	}
	flooder := l.Client.IPv4.Addr()
	a := vrrp.Advert{VRID: uint8(r.VRID), Priority: floodPriority, Interval: r.Interval, Addrs: r.VIPs}
	start := time.Now()
	res.sent, err = s.Flood(ctx, a, flooder, vrrp.GroupV4, o.floodRate, o.floodFor)
	end := time.Now()
	res.for_ = end.Sub(start)
	for k := range 2 {
		c := cpuTime(m.PIDs(k))
		res.cpu[k] = 100 * float64(c-cpu0[k]) / float64(res.for_)
		d, _ := vrrplab.RawDropsBySocket(m.PIDs(k)[0])
		res.drops[k] = vrrplab.LeastDrops(drops0[k], d)
	}
	// A takeover still in flight at the end shows within Master_Down_Interval.
	_ = sleepCtx(ctx, 4*r.Interval)
	res.stats = vrrplab.Summarise(w.Stop(), l.Nodes[0].IPv4.Addr(), flooder, start, end.Add(4*r.Interval))
	holders, _ := l.AddressHolders(r.VIPs[0])
	res.lostVIP = true
	for _, h := range holders {
		if h == l.Nodes[0].Name {
			res.lostVIP = false
		} else {
			res.backupVI = append(res.backupVI, h)
		}
	}
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "flood: %d adverts (priority %d) in %s; takeovers %d %v; master adverts %d, longest gap %s; CPU master %.1f%% backup %.1f%%; kernel drops master %d backup %d\n",
		res.sent, floodPriority, res.for_.Round(time.Millisecond), res.stats.Takeovers, res.stats.Takers, res.stats.MasterAdverts,
		res.stats.MaxGap.Round(time.Millisecond), res.cpu[0], res.cpu[1], res.drops[0], res.drops[1])
	return res, nil
}

// cpuTime is the exact CPU time of pids (vrrplab.CPUTime: scheduler
// accounting, not the tick-sampled figure of the idle table).
func cpuTime(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		c, _ := vrrplab.CPUTime(p)
		sum += c
	}
	return sum
}

func reportFlood(out io.Writer, res *outcome, o options) {
	if len(res.floods) == 0 {
		return
	}
	fmt.Fprintf(out, "\nFlood: valid adverts for the VRID with priority %d from the client at %d/s for %s (node1 master, 150; node2 backup, 100):\n",
		floodPriority, o.floodRate, o.floodFor)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tsent\ttakeovers\tmaster CPU % (exact)\tbackup CPU % (exact)\tmaster adverts seen\tlongest master advert gap ms\tkernel drops master / backup (socket read)\tVIP at the end")
	for _, m := range res.modes {
		f, ok := res.floods[m.Name()]
		if !ok {
			continue
		}
		at := "node1"
		if f.lostVIP {
			at = "not on node1"
		}
		if len(f.backupVI) > 0 {
			at += fmt.Sprintf(" + %v", f.backupVI)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%d\t%s\t%d / %d\t%s\n", m.Name(), f.sent, f.stats.Takeovers, f.cpu[0], f.cpu[1],
			f.stats.MasterAdverts, ms(f.stats.MaxGap), f.drops[0], f.drops[1], at)
	}
	tw.Flush()
}
