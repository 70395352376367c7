// Command bench measures failover of vipd's three election modes (VRRP,
// Lease, gossip) and of keepalived in one network-namespace lab
// (internal/lab): same nodes, same client probe (UDP every 10ms), same
// scenarios on the owner (SIGKILL, SIGTERM, link down), several rounds each;
// then idle memory and CPU per node. Run as root:
//
//	go run ./bench [-rounds 5] [-advert 100ms] [-idle 10s] [-modes vipd-vrrp,keepalived,vipd-lease,vipd-gossip]
//	    [-scenarios sigkill,sigterm,link-down,check-gate,check-weight] [-check-interval 100ms] [-check-fall 2]
//
// The check scenarios (issue #12) turn an HTTP service on the owner 503; see
// check.go.
//
// See docs/benchmark.md. bench_test.go runs one round of everything as a
// correctness check.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/chaos"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Scenario is one way the master goes away, and how to bring it back.
type Scenario struct {
	// Key selects it in -scenarios.
	Key  string
	Name string
	// Skip, if set and non-empty for m, says why the scenario does not
	// apply to m.
	Skip func(m Mode) string
	// Do takes node 0 (the master) away and returns when the event
	// happened (zero: just before Do was called).
	Do func(l *lab.Lab, m Mode) (time.Time, error)
	// Restore brings node 0 back (Mode.Reclaim then makes it the owner
	// again where it does not preempt).
	Restore func(l *lab.Lab, m Mode) error
}

// nodeScenarios take the whole owner node away.
var nodeScenarios = []Scenario{
	{
		Key:     "sigkill",
		Name:    "SIGKILL",
		Do:      func(l *lab.Lab, m Mode) (time.Time, error) { return time.Time{}, m.Crash(0) },
		Restore: func(l *lab.Lab, m Mode) error { m.AfterCrash(l, 0); return m.Start(l, 0, m.Priorities()[0]) },
	},
	{
		Key:     "sigterm",
		Name:    "SIGTERM",
		Do:      func(l *lab.Lab, m Mode) (time.Time, error) { return time.Time{}, m.Stop(0) },
		Restore: func(l *lab.Lab, m Mode) error { return m.Start(l, 0, m.Priorities()[0]) },
	},
	{
		Key:     "link-down",
		Name:    "link down",
		Do:      func(l *lab.Lab, m Mode) (time.Time, error) { return time.Time{}, l.Nodes[0].SetLinkUp(false) },
		Restore: func(l *lab.Lab, m Mode) error { return l.Nodes[0].SetLinkUp(true) },
	},
}

// result is one round of one scenario.
type result struct {
	f lab.Failover
	// takeover is event -> first reply from the new owner.
	takeover time.Duration
	// left is how long after the event the old master still held the VIP
	// (capped: -1 = still there at the cap; polled every 20ms).
	left time.Duration
	// holders hold the VIP once the old master's is gone (or at the cap);
	// restored hold it when the round has ended with node1 as owner again.
	holders, restored []string
	// pic is the round as a timeline (svg.go).
	pic picture
}

type idle struct {
	mem [2]mem     // master, backup
	cpu [2]float64 // % of one core
}

// vrrpPrios are the VRRP and gossip priorities of nodes 1..3.
var vrrpPrios = []int{150, 100, 50}

// allModes are the implementations, in the order they run and print.
var allModes = []string{"vipd-vrrp", "keepalived", "vipd-lease", "vipd-gossip"}

// options are a benchmark run's parameters.
type options struct {
	rounds  int
	advert  time.Duration // VRRP advert interval (vipd-vrrp, keepalived)
	idleFor time.Duration
	leftCap time.Duration
	modes   []string
	out     io.Writer
	// floodFor is the flood phase's length (0: none), floodRate its
	// adverts per second (VRRP implementations only).
	floodFor  time.Duration
	floodRate int
	// scenarios are the selected Scenario keys (empty: all).
	scenarios []string
	checks    checkSettings
	svgDir    string // -svg: where the timelines go ("": none)
}

// allScenarioKeys lists every Scenario key, in the order they run.
var allScenarioKeys = []string{"sigkill", "sigterm", "link-down", "check-gate", "check-weight"}

// outcome is what a run measured, per mode.
type outcome struct {
	modes   []Mode
	results map[string]map[string][]result
	idles   map[string]idle
	floods  map[string]*floodResult
	// scenarios ran in this order; spent is the wall time of each over
	// all modes and rounds (restore included), by Name.
	scenarios []Scenario
	spent     map[string]time.Duration
	// skipped says, by mode and scenario Name, why it did not run.
	skipped map[string]map[string]string
	// checks describes the check scenarios' settings ("" if none ran).
	checks string
}

func run() error {
	o := options{out: os.Stdout}
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per scenario")
	flag.DurationVar(&o.advert, "advert", 100*time.Millisecond, "VRRP advertisement interval")
	flag.DurationVar(&o.idleFor, "idle", 10*time.Second, "idle measurement window for memory/CPU")
	flag.DurationVar(&o.leftCap, "left-cap", 5*time.Second, "how long to watch the old master for a leftover VIP")
	flag.DurationVar(&o.floodFor, "flood", 10*time.Second, "flood phase of the VRRP implementations (0: skip)")
	flag.IntVar(&o.floodRate, "flood-rate", 20000, "flood: valid lower-priority adverts per second from the client")
	flag.DurationVar(&o.checks.interval, "check-interval", 100*time.Millisecond, "check scenarios: health-check interval (timeout: the same)")
	flag.IntVar(&o.checks.fall, "check-fall", 2, "check scenarios: failures in a row that fail the check")
	flag.IntVar(&o.checks.rise, "check-rise", 2, "check scenarios: passes in a row that pass the check")
	flag.StringVar(&o.checks.policy, "check-policy", config.PolicyKeep, "check scenarios: vipd groups' whenNoneHealthy (release: a failing gate is ineligible; keep: degraded)")
	flag.StringVar(&o.svgDir, "svg", "", "write an SVG timeline per implementation and scenario (its median round) into this directory")
	scFlag := flag.String("scenarios", strings.Join(allScenarioKeys, ","), "scenarios to run: "+strings.Join(allScenarioKeys, ", "))
	scaleFlag := flag.String("scale", "", "run only the scale rows instead: VIP counts, e.g. 10,100,1000 (see scale.go)")
	routers := flag.Int("routers", 0, "then idle with this many virtual routers on one interface (vipd-vrrp, keepalived; routers.go); 0: skip")
	routersIdle := flag.Duration("routers-idle", 0, "-routers: idle window (0: -idle)")
	chaosFaults := flag.Int("chaos", 0, "run only the chaos summary instead: this many seeded faults per vipd mode (internal/chaos, as `vipd chaos`)")
	chaosSeed := flag.Uint64("chaos-seed", 1, "-chaos: the fault plan's seed")
	chaosModes := flag.String("chaos-modes", strings.Join(chaos.Modes, ","), "-chaos: the modes to run")
	chaosJSON := flag.String("chaos-json", "", "-chaos: also write the full reports as JSON to this file")
	sideBySide := flag.Bool("side-by-side", true, "-routers: run the implementations at the same moment, each in a lab of its own (false: one after the other in one lab)")
	modesFlag := flag.String("modes", strings.Join(allModes, ","), "implementations to compare: "+strings.Join(allModes, ", ")+" (vipd = vipd-vrrp)")
	flag.Parse()
	for _, n := range strings.Split(*modesFlag, ",") {
		o.modes = append(o.modes, strings.TrimSpace(n))
	}
	for _, n := range strings.Split(*scFlag, ",") {
		o.scenarios = append(o.scenarios, strings.TrimSpace(n))
	}
	o.checks.timeout = o.checks.interval
	if os.Geteuid() != 0 {
		return errors.New("run as root: the benchmark builds network namespaces")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGPIPE) // `| head` must not skip the lab teardown
	if *chaosFaults > 0 {
		return runChaos(ctx, chaosOptions{faults: *chaosFaults, seed: *chaosSeed, modes: splitList(*chaosModes), json: *chaosJSON, out: o.out})
	}
	if *scaleFlag != "" {
		counts, err := parseCounts(*scaleFlag)
		if err != nil {
			return err
		}
		return runScale(ctx, scaleOptions{counts: counts, idleFor: o.idleFor, out: o.out})
	}
	// -rounds 0 with -routers: only the routers phase.
	if o.rounds > 0 || *routers == 0 {
		res, err := runBench(ctx, o)
		if err != nil {
			return err
		}
		report(o.out, res, o.idleFor)
		reportFlood(o.out, res, o)
		if o.svgDir != "" {
			if err := writePictures(o.out, o.svgDir, res); err != nil {
				return err
			}
		}
	}
	if *routers > 0 {
		ro := o
		if *routersIdle > 0 {
			ro.idleFor = *routersIdle
		}
		rr, err := runRouters(ctx, o.out, ro, *routers, *sideBySide)
		reportRouters(o.out, *routers, o.advert, ro.idleFor, *sideBySide, rr)
		return err
	}
	return nil
}

// runBench builds vipd and a lab and runs every selected mode through every
// scenario; the lab is gone when it returns.
func runBench(ctx context.Context, o options) (*outcome, error) {
	out := o.out
	var lease bool
	for i, n := range o.modes {
		if n == "vipd" {
			o.modes[i] = "vipd-vrrp"
		}
		if !slices.Contains(allModes, o.modes[i]) {
			return nil, fmt.Errorf("-modes: unknown mode %q (want %s)", n, strings.Join(allModes, ", "))
		}
		lease = lease || o.modes[i] == "vipd-lease"
	}
	if len(o.scenarios) == 0 {
		o.scenarios = allScenarioKeys
	}
	var withChecks bool
	for _, k := range o.scenarios {
		if !slices.Contains(allScenarioKeys, k) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (want %s)", k, strings.Join(allScenarioKeys, ", "))
		}
		withChecks = withChecks || strings.HasPrefix(k, "check-")
	}
	if withChecks {
		if o.checks.timeout == 0 {
			o.checks.timeout = o.checks.interval
		}
		if o.checks.interval < config.MinCheckInterval || o.checks.fall < 1 || o.checks.rise < 1 ||
			(o.checks.policy != config.PolicyKeep && o.checks.policy != config.PolicyRelease) {
			return nil, fmt.Errorf("check settings %s: want an interval of at least %s, fall and rise of at least 1, policy keep or release",
				o.checks, config.MinCheckInterval)
		}
	}
	if lease {
		// Fail before minutes of work, saying how to get the binaries.
		if _, _, err := kubetest.Binaries(); err != nil {
			return nil, fmt.Errorf("vipd-lease: %w", err)
		}
	}

	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	bin, err := lab.BuildVipdContext(bctx)
	cancel()
	if err != nil {
		return nil, err
	}
	lo := lab.Options{Nodes: 3, KeepSignals: true}
	if lease {
		lo.Extra = []string{apiHost}
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	l, err := lab.NewStandalone(lctx, lo)
	cancel()
	if err != nil {
		return nil, err
	}
	defer l.Close()

	vip := l.VIPv4(1)
	router := vrrplab.Router{VRID: 51, Interval: o.advert, VIPs: []netip.Addr{vip}}
	build := map[string]func() Mode{
		"vipd-vrrp": func() Mode {
			return newVipdMode("vipd-vrrp", bin,
				fmt.Sprintf("VRRPv3 advert %s, priorities 150/100/50, preempt, binding.lifetime 3s (default)", o.advert),
				vrrpPrios, 3*time.Second,
				func(h *lab.Host, prio int) *config.Config { return vrrplab.VipdConfig(h, prio, router, nil) })
		},
		"keepalived":  func() Mode { return &keepalivedMode{router: router, procs: map[int]*vrrplab.Keepalived{}} },
		"vipd-lease":  func() Mode { return newLeaseMode(bin, vip) },
		"vipd-gossip": func() Mode { return newGossipMode(bin, vip) },
	}
	const port = 7300
	if err := l.StartResponders(port); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "lab %s: 3 nodes, VIP %s, probe every 10ms, %d rounds\n", l.ID, vip, o.rounds)

	res := &outcome{results: map[string]map[string][]result{}, idles: map[string]idle{}, floods: map[string]*floodResult{},
		spent: map[string]time.Duration{}, skipped: map[string]map[string]string{}}
	var svc *checkServices
	if withChecks {
		if svc, err = startCheckServices(l); err != nil {
			return nil, err
		}
		res.checks = o.checks.String()
		fmt.Fprintf(out, "checks: %s\n", res.checks)
	}
	for _, sc := range append(slices.Clone(nodeScenarios), checkScenarios(o.checks, svc)...) {
		if slices.Contains(o.scenarios, sc.Key) {
			res.scenarios = append(res.scenarios, sc)
		}
	}
	for _, name := range o.modes {
		m := build[name]()
		if withChecks {
			m.(interface{ setChecks(*checkSettings) }).setChecks(&o.checks)
			svc.healthy()
		}
		res.modes = append(res.modes, m)
		err := func() error {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			defer m.Close()
			if err := m.Setup(sctx, l); err != nil {
				return err
			}
			vr := &router
			if name != "vipd-vrrp" && name != "keepalived" {
				vr = nil
			}
			r, id, fl, err := runMode(ctx, out, l, m, vip, port, o, vr, res)
			res.results[name], res.idles[name] = r, id
			if fl != nil {
				res.floods[name] = fl
			}
			return err
		}()
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}
	return res, nil
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

// waitNewOwner waits until a node other than old answers after at.
func waitNewOwner(ctx context.Context, p *lab.Probe, old string, at time.Time, timeout time.Duration) error {
	_, err := testutil.Until(ctx, "a reply from a node other than "+old, timeout, 50*time.Millisecond, func() bool {
		r, ok := p.Latest()
		return ok && r.Node != old && r.At.After(at)
	})
	return err
}

// runMode starts the mode on all nodes, measures idle usage, then runs every
// scenario for the given rounds; it stops all nodes at the end.
func runMode(ctx context.Context, out io.Writer, l *lab.Lab, m Mode, vip netip.Addr, port int, o options, vr *vrrplab.Router, all *outcome) (res map[string][]result, id idle, fl *floodResult, err error) {
	res, id, err = runScenarios(ctx, out, l, m, vip, port, o, vr, &fl, all)
	return res, id, fl, err
}

// runScenarios is runMode; with vr (a VRRP implementation) and o.floodFor it
// runs the flood phase after the idle measurement, into *fl.
// The scenarios are all.scenarios; their time is added to all.spent.
func runScenarios(ctx context.Context, out io.Writer, l *lab.Lab, m Mode, vip netip.Addr, port int, o options, vr *vrrplab.Router, fl **floodResult, all *outcome) (map[string][]result, idle, error) {
	fmt.Fprintf(out, "\n== %s: %s\n", m.Name(), m.Settings())
	prios := m.Priorities()
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
	if err := m.Reclaim(ctx, l, vip); err != nil {
		return nil, idle{}, err
	}
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
	if err := sleepCtx(ctx, o.idleFor); err != nil {
		return nil, idle{}, err
	}
	for k := range 2 {
		c, mm := usage(m.PIDs(k))
		id.mem[k] = mm
		id.cpu[k] = 100 * float64(c-cpu0[k]) / float64(o.idleFor)
	}
	fmt.Fprintf(out, "idle: master RSS %.1f MiB anon %.1f MiB CPU %.2f%%, backup RSS %.1f MiB anon %.1f MiB CPU %.2f%%\n",
		mib(id.mem[0].RSS), mib(id.mem[0].Anon), id.cpu[0], mib(id.mem[1].RSS), mib(id.mem[1].Anon), id.cpu[1])
	if vr != nil && o.floodFor > 0 {
		f, err := runFlood(ctx, out, l, m, *vr, o)
		*fl = f
		if err != nil {
			return nil, idle{}, fmt.Errorf("flood: %w", err)
		}
		// Whatever the flood did (keepalived's backups took over during
		// it), node1 must be the only owner again before the rounds.
		if err := waitOwner(ctx, probe, "node1", 30*time.Second); err != nil {
			return nil, idle{}, fmt.Errorf("after the flood: %w", err)
		}
		if _, err := testutil.Until(ctx, "node1 the only holder after the flood", 10*time.Second, 50*time.Millisecond, func() bool {
			hs, _ := l.AddressHolders(vip)
			return len(hs) == 1 && hs[0] == l.Nodes[0].Name
		}); err != nil {
			return nil, idle{}, err
		}
	}

	res := map[string][]result{}
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range all.scenarios {
			if sc.Skip != nil {
				if why := sc.Skip(m); why != "" {
					if all.skipped[m.Name()] == nil {
						all.skipped[m.Name()] = map[string]string{}
					}
					all.skipped[m.Name()][sc.Name] = why
					continue
				}
			}
			began := time.Now()
			// Random phase against the advert timer.
			if err := sleepCtx(ctx, time.Second+time.Duration(rand.IntN(100))*time.Millisecond); err != nil {
				return nil, idle{}, err
			}
			at := time.Now()
			if t, err := sc.Do(l, m); err != nil {
				return nil, idle{}, fmt.Errorf("%s: %w", sc.Name, err)
			} else if !t.IsZero() {
				at = t
			}
			// Watch the old master's VIP from the event on, alongside the
			// takeover (the only user of node1's netlink handle meanwhile).
			gone := make(chan time.Duration, 1)
			go func() { gone <- waitGone(ctx, l.Nodes[0], vip, at, o.leftCap) }()
			if err := waitNewOwner(ctx, probe, l.Nodes[0].Name, at, 20*time.Second); err != nil {
				<-gone
				return nil, idle{}, fmt.Errorf("round %d %s: %w", round, sc.Name, err)
			}
			left := <-gone
			holders, _ := l.AddressHolders(vip)
			// Let late replies from the old node show up in the record.
			time.Sleep(300 * time.Millisecond)
			rec := probe.Snapshot()
			f, ok := rec.FailoverAfter(at)
			if !ok {
				return nil, idle{}, fmt.Errorf("round %d %s: no failover recorded", round, sc.Name)
			}
			r := result{f: f, takeover: f.FirstTo.Sub(at), left: left, holders: holders}
			r.pic = roundPicture(rec, at, r, nodeNames(l), m.Name(), sc)
			fmt.Fprintf(out, "round %d %-9s %s; new owner answers %s after the event; old master's VIP gone %s\n",
				round, sc.Name, f, r.takeover.Round(time.Millisecond), fmtLeft(left, o.leftCap))
			if err := sc.Restore(l, m); err != nil {
				return nil, idle{}, err
			}
			if err := m.Reclaim(ctx, l, vip); err != nil {
				return nil, idle{}, fmt.Errorf("round %d %s restore: %w", round, sc.Name, err)
			}
			if err := waitOwner(ctx, probe, "node1", 30*time.Second); err != nil {
				return nil, idle{}, fmt.Errorf("round %d %s restore: %w", round, sc.Name, err)
			}
			// Preemption: the previous owner may let go a moment after
			// node1 answers.
			_, _ = testutil.Until(ctx, "one owner", 5*time.Second, 50*time.Millisecond, func() bool {
				r.restored, _ = l.AddressHolders(vip)
				return len(r.restored) == 1
			})
			res[sc.Name] = append(res[sc.Name], r)
			all.spent[sc.Name] += time.Since(began)
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

// waitGone polls until h no longer holds vip and returns how long after at
// that was; -1 if it still does limit after at.
func waitGone(ctx context.Context, h *lab.Host, vip netip.Addr, at time.Time, limit time.Duration) time.Duration {
	for time.Since(at) < limit && ctx.Err() == nil {
		if ok, err := h.HasAddress(vip); err == nil && !ok {
			return time.Since(at)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func fmtLeft(d, limit time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("never (still bound %s after the event)", limit)
	}
	return d.Round(10*time.Millisecond).String() + " after it"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds()) }

func stats(ds []time.Duration) (lo, med, hi time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func report(out io.Writer, res *outcome, idleFor time.Duration) {
	fmt.Fprintln(out, "\nSettings:")
	for _, m := range res.modes {
		fmt.Fprintf(out, "  %-11s %s\n", m.Name(), m.Settings())
	}
	if res.checks != "" {
		fmt.Fprintf(out, "  %-11s %s; tracked as a gate (port %d) and with weight %d (port %d)\n", "checks", res.checks, gatePort, checkWeight, weightPort)
	}
	fmt.Fprintf(out, "\nFailover of the owner node1 (client probe every 10ms; times in ms; n = rounds):\n")
	fmt.Fprintln(out, "(interruption: silence seen by the client; after SIGKILL the crashed node's service still answers\n until the new owner's announcement moves the client, so the new owner's start is the telling figure)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\timplementation\tn\tinterruption min/median/max\tnew owner answers after min/median/max\tlost probes (median)\toverlap median/max\tVIP gone from old master after (median)")
	for _, sc := range res.scenarios {
		for _, m := range res.modes {
			rs := res.results[m.Name()][sc.Name]
			if why := res.skipped[m.Name()][sc.Name]; why != "" {
				fmt.Fprintf(tw, "%s\t%s\t0\tn/a (below)\t\t\t\t\n", sc.Name, m.Name())
				continue
			}
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
			ta, tm, tx := stats(tk)
			leftS := ms(lm)
			if lm == time.Duration(1<<62) {
				leftS = "never (still bound at the cap)"
			}
			if stuck > 0 {
				leftS += fmt.Sprintf(" [%d/%d rounds still bound]", stuck, len(rs))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s / %s / %s\t%s / %s / %s\t%d\t%s / %s\t%s\n", sc.Name, m.Name(), len(rs),
				ms(a), ms(b), ms(c), ms(ta), ms(tm), ms(tx), lost[len(lost)/2], ms(om), ms(ox), leftS)
		}
	}
	tw.Flush()
	for _, sc := range res.scenarios {
		for _, m := range res.modes {
			if why := res.skipped[m.Name()][sc.Name]; why != "" {
				fmt.Fprintf(out, "(n/a: %s %s: %s)\n", sc.Name, m.Name(), why)
			}
		}
	}
	for _, sc := range res.scenarios {
		if strings.HasPrefix(sc.Key, "check-") {
			fmt.Fprintln(out, "(check rows: the event is the service on node1 turning 503; see Settings for the checks)")
			break
		}
	}
	fmt.Fprintf(out, "\nIdle per node (memory at the end, CPU over %s; RSS includes the binary's file-backed pages, anon = Pss_Anon: the daemon's own heap/stacks):\n", idleFor)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tmaster RSS MiB\tmaster anon MiB\tmaster CPU %\tbackup RSS MiB\tbackup anon MiB\tbackup CPU %")
	for _, m := range res.modes {
		id, ok := res.idles[m.Name()]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\n", m.Name(),
			mib(id.mem[0].RSS), mib(id.mem[0].Anon), id.cpu[0], mib(id.mem[1].RSS), mib(id.mem[1].Anon), id.cpu[1])
	}
	tw.Flush()
}
