package chaos

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/election/gossip"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/node"
)

// Options configures a run.
type Options struct {
	Mode   string
	Nodes  int
	Faults int
	Seed   uint64
	// Vipd is the vipd binary the nodes run.
	Vipd string
	// Out receives progress lines (nil: discarded).
	Out io.Writer
	// Timing overrides DefaultTiming(Mode, Nodes).
	Timing *Timing
}

const (
	probePort   = 7000
	servicePort = 7401
	checkName   = "service"
	groupName   = "web"
	vrid        = 51
	apiHost     = "api"
	// pollEvery: how often the settle check looks (kernel holders,
	// /status of every node, the client's last replies).
	pollEvery = 50 * time.Millisecond
	// giveUp: how long past a bound the runner still waits for the lab
	// to settle (the violation is already recorded) before it aborts.
	giveUp = 30 * time.Second
	// dwell between faults: the client probes a settled VIP for a while.
	dwell = 500 * time.Millisecond
)

// Run builds the lab, runs the planned faults and returns the report. An
// error means the run could not start (no lab, no control plane); a run
// that breaks off later returns its report with Aborted set.
func Run(ctx context.Context, o Options) (*Report, error) {
	if _, err := ParseMode(o.Mode); err != nil {
		return nil, err
	}
	if o.Nodes < 2 || o.Nodes > 6 {
		return nil, fmt.Errorf("nodes %d: must be 2..6", o.Nodes)
	}
	t := DefaultTiming(o.Mode, o.Nodes)
	if o.Timing != nil {
		t = *o.Timing
	}
	lo, hi := t.HoldRange()
	steps, err := Plan(PlanOptions{Seed: o.Seed, Faults: o.Faults, Nodes: o.Nodes, Kinds: Kinds(o.Mode), HoldMin: lo, HoldMax: hi})
	if err != nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	r := &runner{o: o, t: t, out: out, start: time.Now(), expected: map[*lab.Process]bool{}, reported: map[*lab.Process]bool{}}
	opts := lab.Options{Nodes: o.Nodes, KeepSignals: true}
	if o.Mode == ModeLease {
		opts.Extra = []string{apiHost}
	}
	buildCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	r.lab, err = lab.NewStandalone(buildCtx, opts)
	cancel()
	if err != nil {
		return nil, err
	}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	r.logf("lab %s: %d nodes in mode %s, client probing %s every 10ms; %d faults, seed %d", r.lab.ID, o.Nodes, o.Mode, r.vip, len(steps), o.Seed)
	r.logf("timings: %s", t)

	aborted := r.runAll(ctx, steps)
	end := time.Now()
	rec := r.probe.Stop()
	if err := r.watch.Err(); err != nil && aborted == "" {
		aborted = "address watch: " + err.Error()
	}
	macs := map[string]string{}
	for _, h := range r.lab.Hosts() {
		macs[h.MAC.String()] = h.Name
	}
	var yields []Yield
	for _, p := range r.all {
		yields = append(yields, Yields(p.Host.Name, p.Output())...)
	}
	rep := Analyze(Input{Mode: o.Mode, Nodes: o.Nodes, Seed: o.Seed, Planned: len(steps), Timing: t, VIP: r.vip,
		Start: r.start, End: end, Faults: r.faults, StartViolations: r.startViolations,
		Events: r.watch.Events(), Probe: rec, MACs: macs, Excuses: r.excuses, Yields: yields, Aborted: aborted})
	// Violations found afterwards (kernel, client) get the vipd log lines
	// around them: a finding must be reportable from the report alone.
	for i, v := range rep.Violations {
		if v.Invariant == InvKernelTwoOwners || v.Invariant == InvClientTwoAnswers {
			rep.Violations[i].Detail += r.logsAround(v.At)
		}
	}
	for fi := range rep.Faults {
		for i, v := range rep.Faults[fi].Violations {
			if v.Invariant == InvKernelTwoOwners || v.Invariant == InvClientTwoAnswers {
				rep.Faults[fi].Violations[i].Detail += r.logsAround(v.At)
			}
		}
	}
	return rep, nil
}

// logsAround returns every vipd's log lines from 1s before to 500ms after
// at (by their time= field).
func (r *runner) logsAround(at time.Time) string {
	var b strings.Builder
	for _, p := range r.all {
		for _, line := range strings.Split(p.Output(), "\n") {
			ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			if !ok || !strings.HasPrefix(line, "time=") {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || t.Before(at.Add(-time.Second)) || t.After(at.Add(500*time.Millisecond)) {
				continue
			}
			fmt.Fprintf(&b, "\n    | %s[%d] %s", p.Host.Name, p.PID, line)
		}
	}
	return b.String()
}

type runner struct {
	o     Options
	t     Timing
	out   io.Writer
	start time.Time

	lab   *lab.Lab
	cp    *kubetest.ControlPlane
	key   string
	peers []string
	vip   netip.Addr
	svcs  []*lab.Service
	watch *lab.AddrWatch
	probe *lab.Probe
	http  []*http.Client

	procs    []*lab.Process
	all      []*lab.Process        // every vipd started, for the logs of a violation
	expected map[*lab.Process]bool // told to exit (SIGKILL, SIGTERM)
	reported map[*lab.Process]bool // its unexpected exit or PID is reported
	hung     []bool                // SIGSTOPped

	owner           string
	excuses         []Excuse
	faults          []FaultRecord
	startViolations []Violation
	cur             *FaultRecord // the fault in progress (nil: start-up)
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "[%8.3fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *runner) close() {
	for i, p := range r.procs {
		if p != nil && r.hung[i] {
			_ = p.Signal(syscall.SIGCONT)
		}
	}
	if r.watch != nil {
		_ = r.watch.Close()
	}
	if r.cp != nil {
		r.cp.Stop()
	}
	_ = r.lab.Close()
}

func (r *runner) setup(ctx context.Context) error {
	l := r.lab
	r.vip = l.VIPv4(1)
	r.procs = make([]*lab.Process, len(l.Nodes))
	r.hung = make([]bool, len(l.Nodes))
	for _, h := range l.Nodes {
		r.peers = append(r.peers, h.IPv4.Addr().String())
		c := h.HTTPClient()
		// A hung vipd must not stall the checks: they skip it, and
		// anything else slower than this is "unreachable".
		c.Timeout = time.Second
		r.http = append(r.http, c)
		svc, err := h.StartService(servicePort)
		if err != nil {
			return err
		}
		r.svcs = append(r.svcs, svc)
	}
	switch r.o.Mode {
	case ModeLease:
		api := l.Extra[apiHost]
		start := time.Now()
		cp, err := kubetest.Start(ctx, kubetest.InLab(l, api))
		if err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
		r.cp = cp
		if err := cp.ApplyRBAC(ctx); err != nil {
			return fmt.Errorf("control plane RBAC: %w", err)
		}
		r.logf("control plane (etcd + kube-apiserver) in %s at %s ready in %s", api.NetNS, cp.URL, time.Since(start).Round(time.Millisecond))
	case ModeGossip:
		r.key = filepath.Join(l.TempDir(), "gossip.key")
		// A fixed 32-byte key (AES-256): only this lab's namespaces use it.
		if err := os.WriteFile(r.key, []byte(base64.StdEncoding.EncodeToString([]byte("vipd-chaos-key-0123456789abcdefg"))+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := l.StartResponders(probePort); err != nil {
		return err
	}
	var err error
	if r.watch, err = lab.StartAddrWatch(l.Nodes...); err != nil {
		return err
	}
	if r.probe, err = l.StartProbe(ctx, r.vip, probePort, 10*time.Millisecond); err != nil {
		return err
	}
	return nil
}

// config is node i's vipd config.
func (r *runner) config(i int) *config.Config {
	h := r.lab.Nodes[i]
	t := r.t
	zero := time.Duration(0)
	c := &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: r.o.Mode,
		Binding:  config.Binding{Lifetime: t.Lifetime, Refresh: t.Refresh},
		Announce: config.Announce{Count: 3, Interval: 100 * time.Millisecond},
		Checks: []config.Check{{Name: checkName, Interval: t.CheckInterval, Timeout: t.CheckTimeout, Fall: t.Fall, Rise: t.Rise,
			HTTP: &config.HTTPCheck{URL: r.svcs[i].URL()}}},
		// A recovered node may take its group back at once: the damping
		// has its own tests, and here a move 10s later would land in the
		// middle of the next fault.
		Health: config.HealthPolicy{MinMoveInterval: &zero},
		Groups: []config.Group{{Name: groupName, Priority: t.Priorities[i], Track: []config.Track{{Check: checkName}},
			VIPs: []config.VIP{{Address: r.vip.String(), Interface: h.Link}}}},
	}
	switch r.o.Mode {
	case ModeVRRP:
		c.Groups[0].VRRP = &config.GroupVRRP{VRID: vrid, AdvertInterval: t.Advert}
	case ModeLease:
		c.Lease = &config.Lease{Kubeconfig: r.cp.VipdKubeconfig, Namespace: "kube-system",
			LeaseDuration: t.LeaseDuration, RenewDeadline: t.RenewDeadline, RetryPeriod: t.RetryPeriod}
		c.Groups[0].Lease = &config.GroupLease{Name: "vipd-chaos-" + groupName}
	case ModeGossip:
		c.Gossip = &config.Gossip{Peers: r.peers, KeyFile: r.key, Profile: gossip.ProfileFast}
	}
	return c
}

func (r *runner) startNode(i int) error {
	p, err := r.lab.StartVipdConfig(r.lab.Nodes[i], r.o.Vipd, r.config(i))
	if err != nil {
		return err
	}
	r.procs[i] = p
	r.all = append(r.all, p)
	return nil
}

func (r *runner) name(i int) string { return r.lab.Nodes[i].Name }

func (r *runner) index(name string) int {
	for i, h := range r.lab.Nodes {
		if h.Name == name {
			return i
		}
	}
	return -1
}

// violate records a violation on the fault in progress.
func (r *runner) violate(inv, detail string) {
	v := Violation{Invariant: inv, At: time.Now(), Detail: detail}
	if r.cur != nil {
		v.Fault, v.Kind = r.cur.Index, r.cur.Kind
		r.cur.Violations = append(r.cur.Violations, v)
	} else {
		r.startViolations = append(r.startViolations, v)
	}
	r.logf("VIOLATION %s", v)
}

// tail is the end of node i's vipd output, for a violation's detail.
func (r *runner) tail(p *lab.Process) string {
	lines := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n    | " + strings.Join(lines, "\n    | ")
}

// checkProcs reports a vipd that exited without being told to, and
// starts it again so the run goes on (the restart is then expected).
func (r *runner) checkProcs() {
	for i, p := range r.procs {
		if p == nil || r.expected[p] || r.reported[p] || !p.Exited() {
			continue
		}
		r.reported[p] = true
		_, err := p.Wait(0)
		r.violate(InvSelfRestart, fmt.Sprintf("vipd on %s (pid %d) exited by itself: %v; its last output:%s", r.name(i), p.PID, err, r.tail(p)))
		if err := r.startNode(i); err != nil {
			r.logf("restarting %s: %v", r.name(i), err)
		}
	}
}

// status reads node i's /status.
func (r *runner) status(ctx context.Context, i int) NodeView {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9610/status", nil)
	resp, err := r.http[i].Do(req)
	if err != nil {
		return NodeView{}
	}
	defer resp.Body.Close()
	var st node.Status
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return NodeView{}
	}
	v := NodeView{Reachable: true, PID: st.PID}
	for _, g := range st.Groups {
		if g.Name == groupName {
			v.Owner = g.Owner
		}
	}
	return v
}

// snapshot looks at the lab once; ignored nodes' /status is not read.
func (r *runner) snapshot(ctx context.Context, ignore map[string]bool) Snapshot {
	s := Snapshot{Holders: r.watch.Holders(r.vip), Status: map[string]NodeView{}}
	for i := range r.lab.Nodes {
		if ignore[r.name(i)] || r.hung[i] {
			continue
		}
		v := r.status(ctx, i)
		s.Status[r.name(i)] = v
		if p := r.procs[i]; v.Reachable && p != nil && v.PID != p.PID && !r.reported[p] {
			r.reported[p] = true
			r.violate(InvSelfRestart, fmt.Sprintf("%s's /status shows pid %d, but the vipd started there is pid %d", r.name(i), v.PID, p.PID))
		}
	}
	s.Latest = r.probe.LatestN(latestAnswers)
	s.Now = time.Now()
	return s
}

// preferred is the highest-priority node not in out: the one every mode
// gives the VIP to once it can take part.
func (r *runner) preferred(out map[string]bool) string {
	best, prio := "", -1
	for i, h := range r.lab.Nodes {
		if !out[h.Name] && r.t.Priorities[i] > prio {
			best, prio = h.Name, r.t.Priorities[i]
		}
	}
	return best
}

func (r *runner) nodeNames() []string {
	var ns []string
	for _, h := range r.lab.Nodes {
		ns = append(ns, h.Name)
	}
	return ns
}

// settle waits until the lab has settled (see Settled), checked every
// pollEvery and confirmed by the next look. Past from+bound it records a
// violation naming what was not so; past that by giveUp it returns an
// error (the run cannot go on from an unknown state).
func (r *runner) settle(ctx context.Context, what string, from time.Time, bound time.Duration, ignore map[string]bool, want string, expectNone bool) (string, time.Time, error) {
	deadline := from.Add(bound)
	var candidate string
	var candidateAt time.Time
	late := false
	var inv, why string
	for {
		if err := ctx.Err(); err != nil {
			return "", time.Time{}, err
		}
		r.checkProcs()
		s := r.snapshot(ctx, ignore)
		owner, ok, i, w := Settled(s, r.nodeNames(), ignore, want, expectNone)
		switch {
		case ok && !candidateAt.IsZero() && owner == candidate:
			if late {
				r.logf("  %s: settled only %s after the bound", what, candidateAt.Sub(deadline).Round(time.Millisecond))
			}
			return owner, candidateAt, nil
		case ok:
			candidate, candidateAt = owner, s.Now
		default:
			candidate, candidateAt = "", time.Time{}
			inv, why = i, w
		}
		now := time.Now()
		if !late && candidateAt.IsZero() && now.After(deadline) {
			late = true
			r.violate(inv, fmt.Sprintf("%s: not settled within %s (bound): %s%s", what, bound, why, r.outputs()))
		}
		if now.After(deadline.Add(giveUp)) {
			return "", time.Time{}, fmt.Errorf("%s: not settled %s after the bound: %s", what, giveUp, why)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// outputs is the tail of every running vipd's output (for a violation
// that concerns the whole cluster).
func (r *runner) outputs() string {
	var b strings.Builder
	for i, p := range r.procs {
		if p != nil {
			fmt.Fprintf(&b, "\n  %s (pid %d):%s", r.name(i), p.PID, r.tail(p))
		}
	}
	return b.String()
}

// waitUntil sleeps until t (or ctx ends), still watching the processes.
func (r *runner) waitUntil(ctx context.Context, t time.Time) error {
	for {
		r.checkProcs()
		d := time.Until(t)
		if d <= 0 {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(d, 100*time.Millisecond)):
		}
	}
}

func (r *runner) runAll(ctx context.Context, steps []Step) string {
	// Start-up: node1 first, then the others once it owns the VIP, so
	// the run begins from one owner (a cold start of all nodes at once is
	// no fault, and in VRRP two masters may meet for a moment).
	started := time.Now()
	if err := r.startNode(0); err != nil {
		return err.Error()
	}
	first := r.name(0)
	others := map[string]bool{}
	for i := 1; i < len(r.lab.Nodes); i++ {
		others[r.name(i)] = true
	}
	if _, _, err := r.settle(ctx, "start-up of "+first, started, r.t.RepairBound(KindRestart)+10*time.Second, others, first, false); err != nil {
		return err.Error()
	}
	for i := 1; i < len(r.lab.Nodes); i++ {
		if err := r.startNode(i); err != nil {
			return err.Error()
		}
	}
	owner, at, err := r.settle(ctx, "start-up", time.Now(), r.t.RepairBound(KindRestart), nil, first, false)
	if err != nil {
		return err.Error()
	}
	r.owner = owner
	r.logf("%s owns %s (settled %s after the start)", owner, r.vip, at.Sub(started).Round(time.Millisecond))
	if err := r.waitUntil(ctx, time.Now().Add(dwell)); err != nil {
		return err.Error()
	}
	for n, s := range steps {
		if err := r.fault(ctx, n+1, len(steps), s); err != nil {
			r.logf("aborting: %v", err)
			return fmt.Sprintf("fault %d (%s): %v", n+1, s, err)
		}
		if err := r.waitUntil(ctx, time.Now().Add(dwell)); err != nil {
			return err.Error()
		}
	}
	return ""
}

// stop sends sig to node i's vipd and waits for it to exit; a graceful
// stop must exit 0 within 15s.
func (r *runner) stop(i int, sig syscall.Signal) error {
	p := r.procs[i]
	r.expected[p] = true
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	exited, err := p.Wait(15 * time.Second)
	switch {
	case !exited && sig == syscall.SIGTERM:
		r.violate(InvSelfRestart, fmt.Sprintf("vipd on %s did not exit within 15s of SIGTERM:%s", r.name(i), r.tail(p)))
		_ = p.Kill()
		p.Wait(5 * time.Second)
	case !exited:
		return fmt.Errorf("vipd on %s did not exit after %s", r.name(i), sig)
	case sig == syscall.SIGTERM && err != nil:
		r.violate(InvSelfRestart, fmt.Sprintf("vipd on %s exited with %v after SIGTERM (want 0):%s", r.name(i), err, r.tail(p)))
	}
	return nil
}

// fault applies one step, waits for the fault's settle, repairs, waits for
// the repair's settle.
func (r *runner) fault(ctx context.Context, n, total int, s Step) error {
	i := s.Node
	if i == TargetOwner {
		i = r.index(r.owner)
	}
	rec := &FaultRecord{Index: n, Kind: s.Kind, Step: s.String(), OwnerBefore: r.owner, Hold: Ms(s.Hold)}
	if s.Kind != KindAPIServer {
		rec.Target = r.name(i)
	}
	r.cur = rec
	defer func() {
		r.faults = append(r.faults, *rec)
		r.cur = nil
	}()
	what := rec.Target
	if what == r.owner {
		what += " (owner)"
	}
	if s.Kind == KindAPIServer {
		what = "the API server"
	}
	r.logf("fault %d/%d: %s %s", n, total, s.Kind, what)
	if s.Kind.hasHold() {
		r.logf("  for %s", s.Hold)
	}
	t := r.t
	fb, rb := t.FaultBound(s.Kind), t.RepairBound(s.Kind)
	name := rec.Target
	only := func(n string) map[string]bool { return map[string]bool{n: true} }
	strict := r.o.Mode == ModeLease // the Lease fences: no overlap excused, ever

	// afterFault: settle after the fault within fb; the owner then.
	// afterFault: the node hit (ignored, or alive but not eligible) is out.
	afterFault := func(ignore map[string]bool, expectNone bool) error {
		want := ""
		if !expectNone {
			want = r.preferred(only(name))
		}
		owner, at, err := r.settle(ctx, fmt.Sprintf("after %s of %s", s.Kind, what), rec.At, fb, ignore, want, expectNone)
		if err != nil {
			return err
		}
		rec.SettledAt = at
		if expectNone {
			r.logf("  nobody holds the VIP %s after the fault", at.Sub(rec.At).Round(time.Millisecond))
		} else {
			r.logf("  %s answers, settled %s after the fault", owner, at.Sub(rec.At).Round(time.Millisecond))
		}
		return nil
	}
	repaired := func(how string) error {
		rec.RepairAt = time.Now()
		r.logf("  %s", how)
		return nil
	}
	hold := func() error { return r.waitUntil(ctx, rec.At.Add(max(s.Hold, time.Duration(0)))) }

	var err error
	switch s.Kind {
	case KindSIGKILL:
		rec.At = time.Now()
		if !strict {
			r.excuses = append(r.excuses, Excuse{Node: name, From: rec.At, Until: rec.At.Add(t.DeadMan()), Why: "dead-man's switch of SIGKILLed " + name})
		}
		if err = r.stop(i, syscall.SIGKILL); err == nil {
			if err = afterFault(only(name), false); err == nil {
				if err = r.startNode(i); err == nil {
					err = repaired("restarted " + name)
				}
			}
		}
	case KindSIGTERM:
		rec.At = time.Now()
		if err = r.stop(i, syscall.SIGTERM); err == nil {
			if err = afterFault(only(name), false); err == nil {
				if err = r.startNode(i); err == nil {
					err = repaired("restarted " + name)
				}
			}
		}
	case KindRestart:
		rec.At = time.Now()
		if err = r.stop(i, syscall.SIGTERM); err == nil {
			if err = r.startNode(i); err == nil {
				err = repaired("restarted " + name)
			}
		}
	case KindLinkDown:
		h := r.lab.Nodes[i]
		rec.At = time.Now()
		if err = h.SetLinkUp(false); err == nil {
			// The node runs on: it must give the VIP up itself.
			if err = afterFault(nil, false); err == nil {
				if err = hold(); err == nil {
					if err = h.SetLinkUp(true); err == nil {
						err = repaired("link up on " + name)
					}
				}
			}
		}
	case KindPartition:
		h := r.lab.Nodes[i]
		var ignore map[string]bool
		ex := -1
		rec.At = time.Now()
		if !strict {
			// An island elects itself in VRRP and gossip (without quorum):
			// excused until the VIP has settled after the heal.
			ignore = only(name)
			r.excuses = append(r.excuses, Excuse{From: rec.At, Until: rec.At.Add(24 * time.Hour), Why: "partition of " + name})
			ex = len(r.excuses) - 1
		}
		if err = h.SetIsolated(true); err == nil {
			if err = afterFault(ignore, false); err == nil {
				if err = hold(); err == nil {
					if err = h.SetIsolated(false); err == nil {
						err = repaired("healed " + name)
					}
				}
			}
		}
		defer func() {
			if ex >= 0 {
				// Until the end of the repair's settle (or now, if it failed).
				r.excuses[ex].Until = later(rec.EndAt, rec.At)
			}
		}()
	case KindHealth:
		rec.At = r.svcs[i].SetHealthy(false)
		if err = afterFault(nil, false); err == nil {
			if err = hold(); err == nil {
				r.svcs[i].SetHealthy(true)
				err = repaired(name + "'s service healthy again")
			}
		}
	case KindSIGSTOP:
		p := r.procs[i]
		ex := -1
		rec.At = time.Now()
		if err = p.Signal(syscall.SIGSTOP); err == nil {
			r.hung[i] = true
			if !strict {
				// A hung vipd cannot know it was replaced: like an island,
				// until the VIP has settled after SIGCONT.
				r.excuses = append(r.excuses, Excuse{Node: name, From: rec.At, Until: rec.At.Add(24 * time.Hour), Why: "SIGSTOPped " + name})
				ex = len(r.excuses) - 1
			}
			// Settled before SIGCONT only if the hang outlasts the bound.
			if s.Hold >= fb {
				err = afterFault(only(name), false)
			}
			if err == nil {
				if err = hold(); err == nil {
					if err = p.Signal(syscall.SIGCONT); err == nil {
						r.hung[i] = false
						err = repaired("SIGCONT " + name)
					}
				}
			}
		}
		defer func() {
			if ex >= 0 {
				r.excuses[ex].Until = later(rec.EndAt, rec.At)
			}
		}()
	case KindAPIServer:
		rec.At = time.Now()
		r.cp.KillAPIServer()
		if err = afterFault(nil, true); err == nil {
			if err = hold(); err == nil {
				if err = r.cp.StartAPIServer(ctx); err == nil {
					err = repaired("API server ready again")
				}
			}
		}
	default:
		err = fmt.Errorf("unknown fault kind %q", s.Kind)
	}
	if err != nil {
		rec.EndAt = time.Now()
		return err
	}
	owner, at, err := r.settle(ctx, fmt.Sprintf("after the repair of %s of %s", s.Kind, what), rec.RepairAt, rb, nil, r.preferred(nil), false)
	rec.EndAt = time.Now()
	if err != nil {
		return err
	}
	rec.EndAt, rec.OwnerAfter, r.owner = at, owner, owner
	r.logf("  %s answers, settled %s after the repair", owner, at.Sub(rec.RepairAt).Round(time.Millisecond))
	return nil
}
