package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/internal/addr"
)

// Owner verification (docs/verify.md): every node asks the wire, now and
// then, who answers for each VIP, and judges what it hears against what the
// election says. The election stays the authority on who owns; verification
// finds what the election cannot see (a stray host answering, a backup that
// still holds a VIP, an owner nobody hears) and repairs what it can.

// Verification results.
const (
	// VerifyOK: exactly the owner answers (as far as this node can tell).
	VerifyOK = "ok"
	// VerifySplit: two or more MACs answer (split brain on the wire).
	VerifySplit = "split"
	// VerifyNone: nobody answers although an owner is elected (this node
	// owns, or this node is eligible and the mode ready, so another owns).
	VerifyNone = "none"
	// VerifyForeign: one MAC answers, and it is not the owner's: the owner
	// hears only another MAC, or a backup is the only one answering.
	VerifyForeign = "foreign"
	// VerifyUnowned: nobody answers and this node cannot own the group, so
	// it cannot tell whether anybody should (not a finding).
	VerifyUnowned = "unowned"
	// VerifyError: the probe could not be sent (not a finding).
	VerifyError = "error"
)

// Reactions to a confirmed finding.
const (
	ReactionNone       = "none"
	ReactionReannounce = "reannounce"
	ReactionStepdown   = "stepdown"
)

// VerifySpec configures owner verification (config key verify).
type VerifySpec struct {
	// Interval is the least time between two probes of one VIP (0: off).
	Interval time.Duration
	// Window is how long the answers to one probe are collected.
	Window time.Duration
	// MaxRate caps this node's probes per second over all VIPs: with more
	// VIPs than Interval × MaxRate, each VIP is probed less often.
	MaxRate int
	// Reaction is ReactionNone, ReactionReannounce or ReactionStepdown.
	Reaction string
}

// Prober asks the wire who answers for an address (arp.Prober).
type Prober interface {
	// ProbeAll returns, for each of ips, the MACs other than this node's
	// that answered within window (one window for all).
	ProbeAll(ctx context.Context, ips []netip.Addr, window time.Duration) (map[netip.Addr][]net.HardwareAddr, error)
	MAC() net.HardwareAddr
	Close() error
}

// VerifyStatus is one VIP's last verification, on /status.
type VerifyStatus struct {
	At     time.Time `json:"at"`
	Result string    `json:"result"`
	// MACs answered, this node's first ("self") when it holds the VIP.
	MACs  []string `json:"macs,omitempty"`
	Error string   `json:"error,omitempty"`
	// Wrong: this node is the one that is wrong (it raises /readyz).
	Wrong bool `json:"wrong,omitempty"`
	// Since is when the result last changed.
	Since time.Time `json:"since"`
	// Findings counts confirmed findings by result (split, none, foreign).
	Findings map[string]uint64 `json:"findings,omitempty"`
	// Reactions counts re-announcements and stray removals it caused.
	Reactions uint64 `json:"reactions,omitempty"`

	loggedAt  time.Time // last log line, for rate limiting
	reactedAt time.Time // last reaction, for rate limiting
}

// VerifySummary is the node-wide part of verification on /status.
type VerifySummary struct {
	Interval time.Duration `json:"interval"`
	// Period is how often each VIP is really probed (Interval, or longer
	// when MaxRate caps it).
	Period   time.Duration `json:"period"`
	Window   time.Duration `json:"window"`
	MaxRate  int           `json:"maxRate"`
	Reaction string        `json:"reaction"`
	Probes   uint64        `json:"probes"`
	Errors   uint64        `json:"errors,omitempty"`
}

// judge says what one observation means. owner: this node owns the group;
// canOwn: it is eligible and its mode ready (so if it does not own, another
// node does); self: this node holds the VIP (its kernel answers); others:
// how many other MACs answered. wrong: this node is the one at fault.
func judge(owner, canOwn, self bool, others int) (result string, wrong bool) {
	n := others
	if self {
		n++
	}
	switch {
	case n >= 2:
		// The owner answered by another MAC as well, or a backup that
		// still answers, is wrong; a bystander is not.
		return VerifySplit, owner || self
	case n == 1 && owner == self:
		return VerifyOK, false
	case n == 1:
		// The owner hears only another MAC, or this backup answers alone.
		return VerifyForeign, true
	case owner:
		return VerifyNone, true
	case canOwn:
		return VerifyNone, false
	}
	return VerifyUnowned, false
}

// isFinding: a result that is counted, logged and reacted to.
func isFinding(result string) bool {
	return result == VerifySplit || result == VerifyNone || result == VerifyForeign
}

type vipKey struct {
	group string
	ip    netip.Addr
}

// verifier runs owner verification for the daemon.
type verifier struct {
	spec    VerifySpec
	log     *slog.Logger
	manager *Manager
	// canOwn: this node is eligible for the group and its mode ready.
	canOwn func(group string) bool
	open   func(ifname string) (Prober, error)
	local  func(netip.Addr) bool
	now    func() time.Time

	wg sync.WaitGroup // probes in flight

	mu      sync.Mutex
	probers map[string]Prober
	state   map[vipKey]*VerifyStatus
	probes  uint64
	errs    uint64
	period  time.Duration
}

func newVerifier(spec VerifySpec, log *slog.Logger, m *Manager, canOwn func(string) bool,
	open func(string) (Prober, error), local func(netip.Addr) bool) *verifier {
	if spec.Window <= 0 {
		spec.Window = 200 * time.Millisecond
	}
	if spec.MaxRate <= 0 {
		spec.MaxRate = 20
	}
	if spec.Reaction == "" {
		spec.Reaction = ReactionReannounce
	}
	return &verifier{spec: spec, log: log.With("component", "verify"), manager: m, canOwn: canOwn, open: open, local: local,
		now: time.Now, probers: map[string]Prober{}, state: map[vipKey]*VerifyStatus{}, period: spec.Interval}
}

type verifyItem struct {
	group string
	vip   addr.VIP
}

// items lists every VIP of every group, in config order.
func (v *verifier) items() []verifyItem {
	var out []verifyItem
	for _, name := range v.manager.names() {
		st, ok := v.manager.group(name)
		if !ok {
			continue
		}
		v.manager.mu.Lock()
		for _, vip := range st.cfg.VIPs {
			out = append(out, verifyItem{group: name, vip: vip})
		}
		v.manager.mu.Unlock()
	}
	return out
}

// periodFor is how often each of n VIPs is probed: Interval, stretched so
// this node sends at most MaxRate probes a second.
func (s VerifySpec) periodFor(n int) time.Duration {
	return max(s.Interval, time.Duration(n)*time.Second/time.Duration(s.MaxRate))
}

// jitter spreads d by ±20 %, so nodes started together do not probe in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*4/5 + rand.N(d*2/5+1)
}

// run probes every VIP once per period, spread evenly over it, until ctx
// ends; it waits for the probes in flight.
func (v *verifier) run(ctx context.Context) {
	defer func() {
		v.wg.Wait()
		v.mu.Lock()
		for name, p := range v.probers {
			_ = p.Close()
			delete(v.probers, name)
		}
		v.mu.Unlock()
	}()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	// A random start: nodes (and restarts) do not probe in step.
	if !wait(rand.N(v.spec.Interval/2 + 1)) {
		return
	}
	for {
		items := v.items()
		if len(items) == 0 {
			if !wait(v.spec.Interval) {
				return
			}
			continue
		}
		period := v.spec.periodFor(len(items))
		v.mu.Lock()
		v.period = period
		known := map[vipKey]bool{}
		for _, it := range items {
			known[vipKey{it.group, it.vip.Addr}] = true
		}
		for k := range v.state {
			if !known[k] {
				delete(v.state, k) // a reload removed it
			}
		}
		v.mu.Unlock()
		// Probes go out in batches, one every verifyTick or so, each
		// batch sharing one window: a probe's cost is mostly the wake-ups
		// around it, and a batch shares them.
		ticks := max(1, int(period/verifyTick))
		per := (len(items) + ticks - 1) / ticks
		batches := (len(items) + per - 1) / per
		gap := period / time.Duration(batches)
		for i := 0; i < len(items); i += per {
			batch := items[i:min(i+per, len(items))]
			v.wg.Go(func() { v.checkBatch(ctx, batch) })
			if !wait(jitter(gap)) {
				return
			}
		}
	}
}

// verifyTick is about how often a batch of probes goes out.
const verifyTick = 250 * time.Millisecond

// prober returns the interface's prober, opening it on first use.
func (v *verifier) prober(ifname string) (Prober, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p, ok := v.probers[ifname]; ok {
		return p, nil
	}
	p, err := v.open(ifname)
	if err != nil {
		return nil, err
	}
	v.probers[ifname] = p
	return p, nil
}

// drop closes a prober whose socket failed; the next probe reopens it (the
// interface may have been deleted and created again).
func (v *verifier) drop(ifname string, p Prober) {
	v.mu.Lock()
	if v.probers[ifname] == p {
		delete(v.probers, ifname)
	}
	v.mu.Unlock()
	_ = p.Close()
}

type observation struct {
	result string
	wrong  bool
	macs   []string
	err    error
	// confirmed: a second probe right after found the same.
	confirmed bool
}

// observeAll probes items (all on ifname) in one batch and judges what it
// hears for each.
func (v *verifier) observeAll(ctx context.Context, ifname string, items []verifyItem) []observation {
	out := make([]observation, len(items))
	fail := func(err error) []observation {
		for i := range out {
			out[i] = observation{result: VerifyError, err: err}
		}
		return out
	}
	p, err := v.prober(ifname)
	if err != nil {
		return fail(err)
	}
	ips := make([]netip.Addr, len(items))
	for i, it := range items {
		ips[i] = it.vip.Addr
	}
	heard, err := p.ProbeAll(ctx, ips, v.spec.Window)
	v.mu.Lock()
	v.probes += uint64(len(items))
	v.mu.Unlock()
	if err != nil {
		if !errors.Is(err, arp.ErrBadAddr) && ctx.Err() == nil {
			v.drop(ifname, p)
		}
		return fail(err)
	}
	own := p.MAC().String()
	for i, it := range items {
		// Ownership and our own answer are read after the window: a
		// transition during it is judged by its outcome.
		owner := v.manager.Owner(it.group)
		self := v.local(it.vip.Addr)
		var macs []string
		if self {
			macs = append(macs, own)
		}
		for _, m := range heard[it.vip.Addr.Unmap()] {
			macs = append(macs, m.String())
		}
		res, wrong := judge(owner, !owner && v.canOwn(it.group), self, len(macs)-btoi(self))
		out[i] = observation{result: res, wrong: wrong, macs: macs}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkBatch verifies items: one batch per interface. A finding is probed
// again at once and counts only if the second probe agrees: a takeover in
// progress, or one lost answer, is not a finding.
func (v *verifier) checkBatch(ctx context.Context, items []verifyItem) {
	byIf := map[string][]verifyItem{}
	var order []string
	for _, it := range items {
		if _, ok := byIf[it.vip.Interface]; !ok {
			order = append(order, it.vip.Interface)
		}
		byIf[it.vip.Interface] = append(byIf[it.vip.Interface], it)
	}
	var wg sync.WaitGroup
	for _, ifname := range order {
		wg.Go(func() { v.checkInterface(ctx, ifname, byIf[ifname]) })
	}
	wg.Wait()
}

func (v *verifier) checkInterface(ctx context.Context, ifname string, items []verifyItem) {
	obs := v.observeAll(ctx, ifname, items)
	var again []verifyItem
	var idx []int
	for i, o := range obs {
		if isFinding(o.result) {
			again, idx = append(again, items[i]), append(idx, i)
		}
	}
	if len(again) > 0 && ctx.Err() == nil {
		for j, o := range v.observeAll(ctx, ifname, again) {
			o.confirmed = o.result == obs[idx[j]].result
			obs[idx[j]] = o
		}
	}
	if ctx.Err() != nil {
		return
	}
	for i, o := range obs {
		if isFinding(o.result) && !o.confirmed {
			// Shown, but neither counted nor acted on: the next round decides.
			o.wrong = false
		}
		v.record(items[i], o)
	}
}

// record stores o, counts and logs a finding (rate-limited) and reacts.
func (v *verifier) record(it verifyItem, o observation) {
	now := v.now()
	k := vipKey{it.group, it.vip.Addr}
	v.mu.Lock()
	st, ok := v.state[k]
	if !ok {
		st = &VerifyStatus{}
		v.state[k] = st
	}
	prev := st.Result
	st.At, st.MACs, st.Wrong, st.Error = now, o.macs, o.wrong, ""
	if o.err != nil {
		st.Error = o.err.Error()
		v.errs++
	}
	if o.result != prev {
		st.Since = now
	}
	st.Result = o.result
	finding := isFinding(o.result) && o.confirmed
	if finding {
		if st.Findings == nil {
			st.Findings = map[string]uint64{}
		}
		st.Findings[o.result]++
	}
	// One line when the result changes, then one a minute while it lasts.
	logIt := (o.result != prev && (finding || isFinding(prev) || o.result == VerifyError)) ||
		((finding || o.result == VerifyError) && now.Sub(st.loggedAt) >= time.Minute)
	if logIt {
		st.loggedAt = now
	}
	react := finding && v.spec.Reaction != ReactionNone && now.Sub(st.reactedAt) >= v.spec.Interval
	count := st.Findings[o.result]
	v.mu.Unlock()

	if logIt {
		attrs := []any{"group", it.group, "vip", it.vip.Addr, "result", o.result, "macs", o.macs}
		switch {
		case o.result == VerifyError:
			v.log.Warn("cannot verify a VIP", append(attrs, "err", o.err)...)
		case finding:
			v.log.Warn("VIP answered wrongly on the wire: "+describe(o.result, v.manager.Owner(it.group)),
				append(attrs, "thisNodeWrong", o.wrong, "findings", count)...)
		default:
			v.log.Info("VIP answered correctly on the wire again", attrs...)
		}
	}
	if react && v.react(it, o) {
		v.mu.Lock()
		st.reactedAt, st.Reactions = now, st.Reactions+1
		v.mu.Unlock()
	}
}

// describe words a finding for the log.
func describe(result string, owner bool) string {
	switch {
	case result == VerifySplit:
		return "two or more MACs answer"
	case result == VerifyNone:
		return "nobody answers while an owner is elected"
	case owner:
		return "another MAC answers, this owner does not"
	}
	return "this node answers but does not own the group"
}

// react repairs what it can: the owner re-announces (split, foreign, none);
// with stepdown, a backup that answers removes the VIP from its interface.
// Each runs under the group's transition lock and only if the ownership
// is still what was judged. It reports whether it did something.
func (v *verifier) react(it verifyItem, o observation) bool {
	st, ok := v.manager.group(it.group)
	if !ok {
		return false
	}
	st.tmu.Lock()
	defer st.tmu.Unlock()
	m := v.manager
	owner := m.Owner(it.group)
	switch {
	case owner:
		if !m.holds(st, it.vip) {
			return false
		}
		v.log.Warn("re-announcing a VIP after a failed verification", "group", it.group, "vip", it.vip.Addr, "result", o.result)
		if err := m.announcer.Start(m.ctx, it.vip.Interface, it.vip.Addr); err != nil {
			v.log.Warn("re-announcing VIP", "vip", it.vip, "err", err)
		}
		return true
	case v.spec.Reaction == ReactionStepdown && o.wrong && v.local(it.vip.Addr):
		// Not the owner, yet this node answers: a VIP left behind (a
		// failed removal, or added by hand). The election says another
		// node owns it (or nobody), so it goes.
		if err := m.binder.Unbind(it.vip); err != nil {
			v.log.Error("removing a VIP this node answers for but does not own", "group", it.group, "vip", it.vip, "err", err)
			return false
		}
		if v.local(it.vip.Addr) {
			v.log.Error("this node still answers for a VIP it does not own: it is not on the group's interface; remove it by hand",
				"group", it.group, "vip", it.vip)
			return false
		}
		v.log.Warn("removed a VIP this node answered for but does not own", "group", it.group, "vip", it.vip)
		return true
	}
	return false
}

// holds reports whether the owner of st has v bound (under st.tmu).
func (m *Manager) holds(st *groupState, v addr.VIP) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range st.cfg.VIPs {
		if c == v {
			return st.status.VIPs[i].Bound
		}
	}
	return false
}

// status returns one VIP's verification (nil: not verified yet).
func (v *verifier) status(group string, ip netip.Addr) *VerifyStatus {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st, ok := v.state[vipKey{group, ip}]
	if !ok {
		return nil
	}
	out := *st
	out.MACs = slices.Clone(st.MACs)
	if st.Findings != nil {
		out.Findings = make(map[string]uint64, len(st.Findings))
		for k, n := range st.Findings {
			out.Findings[k] = n
		}
	}
	return &out
}

// summary is the node-wide status (nil when verification is off).
func (v *verifier) summary() *VerifySummary {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return &VerifySummary{Interval: v.spec.Interval, Period: v.period, Window: v.spec.Window, MaxRate: v.spec.MaxRate,
		Reaction: v.spec.Reaction, Probes: v.probes, Errors: v.errs}
}

// Ready is false while this node is wrong about a VIP: an owner whose VIP
// another MAC answers too (or instead), or a backup that answers.
func (v *verifier) Ready() (bool, string) {
	if v == nil {
		return true, ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var why []string
	for k, st := range v.state {
		if st.Wrong {
			why = append(why, fmt.Sprintf("%s %s: %s (MACs %s)", k.group, k.ip, st.Result, strings.Join(st.MACs, ", ")))
		}
	}
	if len(why) == 0 {
		return true, ""
	}
	sort.Strings(why)
	return false, "verify: " + strings.Join(why, "; ")
}

// probeCounts is the node-wide probe counters, for metrics.
func (v *verifier) probeCounts() (probes, errs uint64) {
	if v == nil {
		return 0, 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.probes, v.errs
}

// OpenProber is the Prober of this host's interface ifname.
func OpenProber(ifname string) (Prober, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return arp.OpenProber(ifi)
}

// LocalAddr reports whether this host holds ip on any interface, i.e.
// whether its kernel answers ARP / neighbour solicitations for it: binding
// a socket to an address succeeds only for a local one. A few syscalls,
// no netlink dump, so it is cheap at 1,000 VIPs.
func LocalAddr(ip netip.Addr) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
