// Package lease elects one owner per VIP group with a coordination.k8s.io/v1
// Lease per group: the holder owns the group's VIPs.
//
// It does not use client-go's leaderelection package, on purpose:
//   - fencing: leaderelection reports loss (OnStoppedLeading) only after it
//     has given up, checks its deadline only once per RetryPeriod, and its
//     followers judge expiry from the LeaseLock's whole-second renewTime, so an
//     owner cut off from the API server can still hold the VIPs when a
//     follower acquires. Here the owner arms a timer at its renew deadline,
//     counted from SENDING its last good renewal, and followers count from
//     first SEEING a resourceVersion (see Timing);
//   - lifecycle: a LeaderElector is single-use and Run returns on lost
//     leadership; vipd must stay a candidate for the life of the process;
//   - takeover: followers here watch the Lease instead of polling, so a
//     released Lease is taken within tens of milliseconds;
//   - eligibility, health and priority (election.Input) have no place in it;
//     here they travel in the Lease's annotations and move a held Lease by
//     a handover in which the old holder fences itself before it names the
//     new one (handover.go).
//
// The loop is small because the API server does the hard part: every write
// is an update conditional on the resourceVersion the writer last saw.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/vipd/vipd/election"
)

// Group is one VIP group and the name of its Lease.
type Group struct {
	Name  string
	Lease string
}

// Options configures an Elector.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Identity is the holderIdentity written into Leases: the node name.
	Identity string
	Groups   []Group
	Timing   Timing
	Log      *slog.Logger
	// Clock is where every reading, timer and request deadline comes from
	// (RealClock when nil). Its monotonic reading is what every deadline is
	// measured with.
	Clock Clock
	// Unanswered, when set, is called (on a campaign's goroutine: it must
	// not block) after a request to the API server went unanswered until
	// its deadline, with how long it waited. The daemon closes the client's
	// connections that received nothing for that long
	// (internal/kube.Dialer.CloseSilent), so that the next request dials
	// afresh instead of queueing behind a connection a silent network
	// partition left in TCP's retransmission backoff: after the heal that
	// one resumes only at the kernel's next retransmission, up to as long
	// again as the partition lasted (docs/chaos.md, finding 7).
	Unanswered func(waited time.Duration)
	// Kubeconfig and Server say what Client was built from (the config's
	// lease.kubeconfig and lease.server); the elector only compares them in
	// Reconfigure, where a change needs a restart.
	Kubeconfig, Server string
}

// Elector implements election.Elector with one Lease per group.
type Elector struct {
	o      Options // immutable after New (Reconfigure keeps its own list)
	inputs *election.Inputs
	events chan *corev1.Event

	// reportMu serialises calls to the Reporter across groups.
	reportMu sync.Mutex
	// reconfMu serialises Reconfigure calls.
	reconfMu sync.Mutex

	mu     sync.Mutex
	groups []*group
	run    *running // non-nil while Run runs

	// renewObs, when set, is told of every renewal (ObserveRenewals).
	renewObs atomic.Pointer[func(group string, took time.Duration, errKind string)]
}

// ObserveRenewals makes the elector call f after every renewal request of
// a held Lease with its duration and, if it failed, a short kind
// ("conflict", "not-found", "timeout", "api"; "" for success). f must not
// block; the daemon uses it for metrics.
func (e *Elector) ObserveRenewals(f func(group string, took time.Duration, errKind string)) {
	e.renewObs.Store(&f)
}

// renewErrKind classifies a renewal's error for ObserveRenewals.
func renewErrKind(err error) string {
	switch {
	case err == nil:
		return ""
	case apierrors.IsConflict(err):
		return "conflict"
	case apierrors.IsNotFound(err):
		return "not-found"
	case errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err):
		return "timeout"
	}
	return "api"
}

// running is what Run shares with Reconfigure to start and stop campaigns.
type running struct {
	ctx    context.Context
	report election.Reporter
	wg     sync.WaitGroup
}

// errRemoved ends the campaign of a group a reload removed.
var errRemoved = errors.New("group removed")

var _ election.Elector = (*Elector)(nil)

type group struct {
	Group
	wake chan struct{} // input changed (coalesced)
	// stop ends its campaign; done is closed once it has ended (nil: not
	// started). Both are set under Elector.mu.
	stop context.CancelCauseFunc
	done chan struct{}

	mu     sync.Mutex
	status GroupStatus
}

// GroupStatus is one group's state for /status and /readyz.
type GroupStatus struct {
	Group     string    `json:"group"`
	Lease     string    `json:"lease"`
	Owner     bool      `json:"owner"`
	Holder    string    `json:"holder"`
	LastRenew time.Time `json:"lastRenew,omitzero"`
	// APIError is the last error talking to the API server, empty once a
	// request succeeds again; APIErrorSince is when the failures started.
	APIError      string    `json:"apiError,omitempty"`
	APIErrorSince time.Time `json:"apiErrorSince,omitzero"`
}

// New validates o and returns an Elector. Every group is ineligible until
// the daemon's first SetInput.
func New(o Options) (*Elector, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("lease: no Kubernetes client")
	case o.Namespace == "" || o.Identity == "":
		return nil, errors.New("lease: namespace and identity are required")
	case o.Timing.RetryPeriod <= 0 || o.Timing.RenewDeadline <= 0 || o.Timing.LeaseDuration <= o.Timing.RenewDeadline:
		return nil, fmt.Errorf("lease: invalid timing %+v", o.Timing)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if err := checkGroups(o.Groups); err != nil {
		return nil, err
	}
	names := make([]string, len(o.Groups))
	e := &Elector{o: o, events: make(chan *corev1.Event, 32)}
	for i, g := range o.Groups {
		names[i] = g.Name
		e.groups = append(e.groups, newGroup(g))
	}
	e.inputs = election.NewInputs(names)
	return e, nil
}

func newGroup(g Group) *group {
	return &group{Group: g, wake: make(chan struct{}, 1), status: GroupStatus{Group: g.Name, Lease: g.Lease}}
}

func checkGroups(gs []Group) error {
	seen := map[string]bool{}
	for _, g := range gs {
		switch {
		case g.Name == "" || g.Lease == "":
			return fmt.Errorf("lease: group %q: name and Lease name are required", g.Name)
		case seen["g:"+g.Name]:
			return fmt.Errorf("lease: group %q listed twice", g.Name)
		case seen["l:"+g.Lease]:
			return fmt.Errorf("lease: Lease %q used by two groups", g.Lease)
		}
		seen["g:"+g.Name], seen["l:"+g.Lease] = true, true
	}
	return nil
}

// SetInput implements election.Elector.
func (e *Elector) SetInput(name string, in election.Input) {
	e.inputs.Set(name, in)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.groups {
		if g.Name == name {
			select {
			case g.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Status returns GroupStatuses for the daemon's /status ("election" field).
func (e *Elector) Status() any { return e.GroupStatuses() }

// Ready reports false, naming the group and the error, while any group has
// been unable to reach the API server for longer than LeaseDuration: such a
// node cannot own anything (an owner has fenced by then) and its election
// view is stale. Shorter blips are normal (restarts, leader changes in etcd).
func (e *Elector) Ready() (bool, string) {
	now := e.o.Clock.Now()
	for _, g := range e.GroupStatuses() {
		if !g.APIErrorSince.IsZero() && now.Sub(g.APIErrorSince) > e.o.Timing.LeaseDuration {
			return false, fmt.Sprintf("group %s: Kubernetes API unreachable for %s: %s",
				g.Group, now.Sub(g.APIErrorSince).Round(time.Second), g.APIError)
		}
	}
	return true, ""
}

// GroupStatuses returns every group's state.
func (e *Elector) GroupStatuses() []GroupStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]GroupStatus, len(e.groups))
	for i, g := range e.groups {
		g.mu.Lock()
		out[i] = g.status
		g.mu.Unlock()
	}
	return out
}

// Run implements election.Elector: one campaign per group until ctx is done.
// It never returns because of the API server (slow or gone is a state shown
// in Status) or because a Lease was lost.
func (e *Elector) Run(ctx context.Context, report election.Reporter) error {
	r := &running{ctx: ctx, report: report}
	e.mu.Lock()
	if e.run != nil {
		e.mu.Unlock()
		return errors.New("lease: Run is already running")
	}
	e.run = r
	for _, g := range e.groups {
		e.start(g)
	}
	e.mu.Unlock()

	drain := make(chan struct{})
	evDone := make(chan struct{})
	go func() { defer close(evDone); e.sendEvents(drain) }()

	<-ctx.Done()
	e.mu.Lock()
	e.run = nil // Reconfigure starts no campaign from now on
	e.mu.Unlock()
	r.wg.Wait()
	close(drain) // send what is queued (the shutdown events), briefly
	<-evDone
	return nil
}

// start runs g's campaign under the running Run; e.mu is held.
func (e *Elector) start(g *group) {
	r := e.run
	ctx, stop := context.WithCancelCause(r.ctx)
	g.stop, g.done = stop, make(chan struct{})
	done := g.done
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		defer stop(nil)
		c := &campaign{e: e, g: g, report: r.report, log: e.o.Log.With("group", g.Name, "lease", g.Lease)}
		c.run(ctx)
	}()
}

// Reconfigure applies a reload (internal/modes' Mode.Reload contract): o
// holds the same translated values New takes. Groups added start a campaign;
// groups removed (or whose Lease name changed, which is a remove and an
// add) step down if they are owned — reported Owner=false with reason
// "removed", VIPs gone — and release their Lease, before Reconfigure
// returns; groups unchanged are not touched. A changed namespace, identity,
// timing or API endpoint needs a restart: the error names the setting and
// nothing changes. o.Client, Log, Clock and Unanswered are ignored (the
// running ones stay). Before Run starts, or after it ended, only the group
// list changes.
func (e *Elector) Reconfigure(o Options) error {
	if err := e.restartNeeded(o); err != nil {
		return err
	}
	if err := checkGroups(o.Groups); err != nil {
		return err
	}
	e.reconfMu.Lock()
	defer e.reconfMu.Unlock()

	e.mu.Lock()
	old := map[string]*group{}
	for _, g := range e.groups {
		old[g.Name] = g
	}
	var next, added, removed []*group
	for _, want := range o.Groups {
		if g := old[want.Name]; g != nil && g.Group == want {
			next = append(next, g)
			delete(old, want.Name)
			continue
		}
		g := newGroup(want)
		next = append(next, g)
		added = append(added, g)
	}
	for _, g := range e.groups {
		if old[g.Name] == g {
			removed = append(removed, g)
			if g.stop != nil {
				g.stop(errRemoved)
			}
		}
	}
	e.groups = next
	e.mu.Unlock()

	// The removed campaigns step down and release before any added one
	// starts: a group whose Lease was renamed must be reported Owner=false
	// under its old Lease before it can be reported Owner=true again.
	for _, g := range removed {
		if g.done != nil {
			<-g.done
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil {
		for _, g := range added {
			e.start(g)
		}
	}
	return nil
}

// restartNeeded names the first setting of o that differs from the running
// one and cannot change in place.
func (e *Elector) restartNeeded(o Options) error {
	cur := e.o
	for _, d := range []struct {
		key      string
		old, new any
	}{
		{"node", cur.Identity, o.Identity},
		{"lease.namespace", cur.Namespace, o.Namespace},
		{"lease.kubeconfig", cur.Kubeconfig, o.Kubeconfig},
		{"lease.server", cur.Server, o.Server},
		// The fencing rule ties the three together and to binding.lifetime,
		// and the other nodes' campaigns: no in-place change is simple and
		// obviously safe, so none is attempted.
		{"lease.leaseDuration", cur.Timing.LeaseDuration, o.Timing.LeaseDuration},
		{"lease.renewDeadline", cur.Timing.RenewDeadline, o.Timing.RenewDeadline},
		{"lease.retryPeriod", cur.Timing.RetryPeriod, o.Timing.RetryPeriod},
	} {
		if d.old != d.new {
			return fmt.Errorf("%s: changed from %q to %q: this setting needs a restart of vipd", d.key, fmt.Sprint(d.old), fmt.Sprint(d.new))
		}
	}
	return nil
}

func (e *Elector) doReport(t election.Transition, report election.Reporter) error {
	e.reportMu.Lock()
	defer e.reportMu.Unlock()
	return report(t)
}

// campaign is one group's state machine, driven by one goroutine.
type campaign struct {
	e      *Elector
	g      *group
	report election.Reporter
	log    *slog.Logger

	view view
	cur  *coordinationv1.Lease // last Lease object seen (nil: none)

	owner       bool
	sentAt      time.Time // when the last successful renewal/acquisition was sent
	lastAttempt time.Time // when the last write attempt started
	retryAt     time.Time // a follower's next attempt after an API error
	lastRead    time.Time // a follower's last Get (resync)
	apiErrSince time.Time
	lastRequest time.Time // a candidate's last handover request (or withdrawal)
	// nextHandover: a named holder that is not the owner retries handing
	// over or releasing no sooner than this.
	nextHandover time.Time
}

// input is this node's current candidacy for the group.
func (c *campaign) input() eligibility {
	in := c.e.inputs.Get(c.g.Name)
	return eligibility{Eligible: in.Eligible, Degraded: in.Eligible && in.Degraded, Priority: in.Priority}
}

func (c *campaign) now() time.Time { return c.e.o.Clock.Now() }

func (c *campaign) timing() Timing { return c.e.o.Timing }

func (c *campaign) leases() leaseClient {
	return c.e.o.Client.CoordinationV1().Leases(c.e.o.Namespace)
}

type leaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

func (c *campaign) run(ctx context.Context) {
	updates := newMailbox()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go c.watch(wctx, updates)

	c.view = view{observedAt: c.now(), unknown: true}
	c.refresh(ctx)

	timer := c.e.o.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in := c.input()
		now := c.now()
		self := c.e.o.Identity

		// Decide what to do now and when to wake next.
		var wakeAt time.Time
		if c.owner {
			deadline := ownerDeadline(c.sentAt, c.timing())
			switch {
			case !in.Eligible:
				c.stepDown("ineligible", "")
				c.release()
				continue
			case !now.Before(deadline):
				// Fencing: drop the VIPs now; nobody can have acquired yet.
				c.stepDown("renew-deadline", "")
				continue
			}
			to, prio, asked := requestOf(c.cur)
			if asked && shouldYield(self, in, to, prio) {
				c.handOver(ctx, to)
				continue
			}
			if (asked || !publishedMatches(c.cur, in)) && c.sentAt.Equal(c.lastAttempt) {
				// Renew now: a request we do not honour is cleared at
				// once so its candidate sees our answer, and a changed
				// input is published at once. (After a failed attempt
				// the retry schedule applies instead.)
				c.lastAttempt = time.Time{}
			}
			next := nextRenewal(c.lastAttempt, deadline, c.timing())
			if !now.Before(next) {
				c.renew(ctx, deadline)
				continue
			}
			wakeAt = next
		} else if c.view.holder == self && c.cur != nil && (!in.Eligible || c.pendingHandover(in)) {
			// Named holder but not owner: we stepped down for a handover
			// whose write failed, or a handover named us after we turned
			// ineligible. Hand over (again) or release, at most once per
			// RetryPeriod.
			if !now.Before(c.nextHandover) {
				c.nextHandover = now.Add(c.timing().RetryPeriod)
				if to, _, ok := requestOf(c.cur); ok && in.Eligible {
					c.writeHandover(ctx, to)
				} else {
					c.release()
				}
				continue
			}
			wakeAt = c.nextHandover
		} else {
			// A follower re-reads the Lease every LeaseDuration even though
			// it watches: a watch stuck on a dead connection would otherwise
			// go unnoticed, and the read keeps Status' API health current.
			resync := c.lastRead.Add(c.timing().LeaseDuration)
			if c.retryAt.After(resync) {
				resync = c.retryAt
			}
			if !now.Before(resync) {
				c.refresh(ctx)
				continue
			}
			wakeAt = resync
			if write, ask := c.requestWrite(in); write {
				at := c.lastRequest.Add(c.timing().RetryPeriod)
				if !now.Before(at) {
					c.request(ctx, ask, in)
					continue
				}
				wakeAt = minTime(wakeAt, at)
			}
			if at, ok := acquireAt(c.view, c.e.o.Identity, in, c.timing()); ok {
				if c.retryAt.After(at) {
					at = c.retryAt
				}
				if !now.Before(at) && ctx.Err() == nil {
					c.acquire(ctx)
					continue
				}
				wakeAt = minTime(wakeAt, at)
			}
		}

		var timerC <-chan time.Time
		if !wakeAt.IsZero() {
			timer.Reset(wakeAt.Sub(now))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
			if c.owner {
				reason := "shutdown"
				if errors.Is(context.Cause(ctx), errRemoved) {
					reason = "removed"
				}
				c.stepDown(reason, "")
				c.release()
			}
			return
		case <-timerC:
		case <-c.g.wake:
		case <-updates.ready:
			if l, deleted, ok := updates.take(); ok {
				c.observe(l, deleted)
			}
		}
		timer.Stop()
	}
}

// observe folds a Lease read from the API (nil+deleted for a deletion) into
// the view, and reacts if it shows we lost the Lease.
func (c *campaign) observe(l *coordinationv1.Lease, deleted bool) {
	now := c.now()
	if deleted {
		c.cur = nil
		c.view = view{deleted: true, observedAt: now}
		if c.owner {
			c.stepDown("lease-deleted", "")
		}
		c.setStatus()
		return
	}
	if c.cur != nil && !c.view.unknown && !newer(l.ResourceVersion, c.cur.ResourceVersion) {
		return
	}
	prev, prevView := c.cur, c.view
	c.cur = l
	c.view = view{exists: true, resourceVersion: l.ResourceVersion, holder: holderOf(l),
		duration: durationOf(l), observedAt: now}
	if prev != nil && prevView.exists && !prevView.unknown && sameRenewal(prev, l) {
		// A candidate's request, not a write of the holder: the holder's
		// time is still counted from its last write.
		c.view.observedAt = prevView.observedAt
	}
	c.log.Debug("lease observed", "rv", l.ResourceVersion, "holder", c.view.holder)
	if c.owner && c.view.holder != c.e.o.Identity {
		c.stepDown("lease-lost", c.view.holder)
	}
	c.setStatus()
}

// newer reports whether resourceVersion a is newer than b. Resource versions
// are opaque, but etcd-backed servers use increasing integers; comparing them
// when both parse keeps a late watch event from rolling the view back (which
// would only restart a follower's wait, never break fencing: writes are
// conditional). Different unparseable versions count as newer.
func newer(a, b string) bool {
	if a == b {
		return false
	}
	ai, errA := strconv.ParseUint(a, 10, 64)
	bi, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return ai > bi
	}
	return true
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func durationOf(l *coordinationv1.Lease) time.Duration {
	if l.Spec.LeaseDurationSeconds == nil {
		return 0
	}
	return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// refresh reads the Lease (at start, after a conflict, periodically).
func (c *campaign) refresh(ctx context.Context) {
	sent := c.now()
	c.lastRead = sent
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(sent, time.Time{}, c.timing()))
	defer cancel()
	l, err := c.leases().Get(rctx, c.g.Lease, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.apiOK()
		if c.view.unknown {
			// Never existed as far as we know: creating it is safe at once.
			c.view = view{observedAt: c.now()}
		} else if c.view.exists {
			c.observe(nil, true)
		}
	case err != nil:
		c.apiFailed(err, sent)
		c.retryAt = c.now().Add(c.timing().RetryPeriod)
	default:
		c.apiOK()
		c.observe(l, false)
	}
}

// acquire tries to take the Lease with a write conditional on what we saw.
func (c *campaign) acquire(ctx context.Context) {
	t := c.timing()
	sent := c.now()
	c.lastAttempt = sent
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(sent, time.Time{}, t))
	defer cancel()
	self := c.e.o.Identity
	dur := int32(t.LeaseDuration / time.Second)
	at := metav1.NewMicroTime(sent)
	in := c.input()
	reason := "lease-acquired"
	var (
		got *coordinationv1.Lease
		err error
	)
	if c.cur == nil {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: c.g.Lease, Namespace: c.e.o.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "vipd", "vipd.io/group": c.g.Name}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &self, LeaseDurationSeconds: &dur,
				AcquireTime: &at, RenewTime: &at, LeaseTransitions: new(int32)},
		}
		setCandidacy(l, in)
		got, err = c.leases().Create(rctx, l, metav1.CreateOptions{})
	} else {
		l := c.cur.DeepCopy()
		prev := holderOf(l)
		if by := l.Annotations[annHandedOverBy]; prev == self && by != "" {
			reason = "handed-over-by:" + by
		}
		setCandidacy(l, in)
		l.Spec.HolderIdentity = &self
		l.Spec.LeaseDurationSeconds = &dur
		l.Spec.RenewTime = &at
		if prev != self {
			l.Spec.AcquireTime = &at
			n := int32(1)
			if l.Spec.LeaseTransitions != nil {
				n = *l.Spec.LeaseTransitions + 1
			}
			l.Spec.LeaseTransitions = &n
		}
		got, err = c.leases().Update(rctx, l, metav1.UpdateOptions{})
	}
	switch {
	case err == nil:
		c.apiOK()
		c.cur = got
		c.view = view{exists: true, resourceVersion: got.ResourceVersion, holder: self, duration: durationOf(got), observedAt: c.now()}
		c.owner = true
		c.sentAt = sent
		c.retryAt = time.Time{}
		c.setStatus()
		c.log.Info("lease acquired", "reason", reason, "after", c.now().Sub(sent))
		if err := c.e.doReport(election.Transition{Group: c.g.Name, Owner: true, Reason: reason, Peer: self, At: c.now()}, c.report); err != nil {
			// The node could not bind (and made the group ineligible):
			// hand the Lease straight back so a node that can takes it.
			c.owner = false
			c.setStatus()
			c.log.Warn("could not take the VIPs; releasing the Lease", "err", err)
			c.event(corev1.EventTypeWarning, "BindFailed", fmt.Sprintf("%s took the Lease but could not bind the VIPs of group %s: %v", self, c.g.Name, err))
			c.release()
			return
		}
		c.event(corev1.EventTypeNormal, "Acquired", fmt.Sprintf("%s took the Lease and holds the VIPs of group %s", self, c.g.Name))
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
		// Someone wrote it after we looked: see what they wrote.
		c.apiOK()
		c.refresh(ctx)
	default:
		if ctx.Err() == nil {
			c.apiFailed(err, sent)
		}
		c.log.Debug("acquire failed", "err", err)
		c.retryAt = c.now().Add(t.RetryPeriod)
	}
}

// renew extends our hold; the request may not outlive the fencing deadline.
func (c *campaign) renew(ctx context.Context, deadline time.Time) {
	sent := c.now()
	c.lastAttempt = sent
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(sent, deadline, c.timing()))
	defer cancel()
	l := c.cur.DeepCopy()
	at := metav1.NewMicroTime(sent)
	dur := int32(c.timing().LeaseDuration / time.Second)
	self := c.e.o.Identity
	l.Spec.HolderIdentity = &self
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.RenewTime = &at
	setCandidacy(l, c.input())
	got, err := c.leases().Update(rctx, l, metav1.UpdateOptions{})
	if f := c.e.renewObs.Load(); f != nil && (err == nil || ctx.Err() == nil) {
		(*f)(c.g.Name, c.now().Sub(sent), renewErrKind(err))
	}
	switch {
	case err == nil:
		c.apiOK()
		c.cur = got
		c.view = view{exists: true, resourceVersion: got.ResourceVersion, holder: self, duration: durationOf(got), observedAt: c.now()}
		c.sentAt = sent
		c.setStatus()
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		// Changed behind our back: if it still names us (someone edited a
		// label) the next renewal uses the new version; otherwise observe
		// steps down.
		c.apiOK()
		c.refresh(ctx)
		c.lastAttempt = time.Time{}
	default:
		if ctx.Err() == nil {
			c.apiFailed(err, sent)
		}
	}
}

// pendingHandover: the Lease carries a request we (as its holder) honour.
func (c *campaign) pendingHandover(in eligibility) bool {
	to, prio, ok := requestOf(c.cur)
	return ok && shouldYield(c.e.o.Identity, in, to, prio)
}

// requestWrite decides whether a candidate writes a handover request (ask)
// or withdraws its own (!ask): only while another node holds the Lease.
func (c *campaign) requestWrite(in eligibility) (write, ask bool) {
	self := c.e.o.Identity
	if c.cur == nil || !c.view.exists || c.view.holder == "" || c.view.holder == self {
		return false, false
	}
	return wantsRequestWrite(c.cur, self, shouldRequest(publishedOf(c.cur), in), in)
}

// request asks the holder for the group (or withdraws our request) with an
// update conditional on the version we saw, leaving holderIdentity alone.
// On conflict we re-read and decide again.
func (c *campaign) request(ctx context.Context, ask bool, in eligibility) {
	sent := c.now()
	c.lastRequest = sent
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(sent, time.Time{}, c.timing()))
	defer cancel()
	l := c.cur.DeepCopy()
	if ask {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[annHandoverTo] = c.e.o.Identity
		l.Annotations[annHandoverPriority] = strconv.Itoa(clampPriority(in.Priority))
	} else {
		delete(l.Annotations, annHandoverTo)
		delete(l.Annotations, annHandoverPriority)
	}
	got, err := c.leases().Update(rctx, l, metav1.UpdateOptions{})
	switch {
	case err == nil:
		c.apiOK()
		c.observe(got, false)
		if ask {
			p := publishedOf(got)
			c.log.Info("asked the holder to hand the group over", "holder", holderOf(got),
				"holderPriority", p.priority, "holderDegraded", p.degraded, "priority", clampPriority(in.Priority))
		} else {
			c.log.Info("withdrew the handover request", "holder", holderOf(got))
		}
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		c.apiOK()
		seen := l.ResourceVersion
		c.refresh(ctx)
		// Nothing was written, and the re-read brought what beat us: most
		// often the holder's re-publish of the very change that made us
		// ask (a check that fails on it as it passes here, e.g. an
		// endpoint moving). Decide again at once on that news, not a
		// RetryPeriod later: that retry would fall in phase with the
		// holder's next renewal and conflict again. Without news the rate
		// limit stands.
		if c.cur != nil && c.cur.ResourceVersion != seen {
			c.lastRequest = time.Time{}
		}
	default:
		if ctx.Err() == nil {
			c.apiFailed(err, sent)
		}
		c.log.Debug("handover request failed", "err", err)
	}
}

// handOver gives the group to the candidate that asked: VIPs first (the
// report returns once they are gone), then the Lease.
func (c *campaign) handOver(ctx context.Context, to string) {
	c.stepDown("handover:"+to, to)
	c.writeHandover(ctx, to)
}

// writeHandover names to as the holder (a new acquisition: acquireTime,
// renewTime, leaseTransitions+1), clears the request and marks who handed
// over. The new holder confirms with a write of its own before it binds. If
// to died meanwhile, the Lease expires as any other; if this write fails,
// the Lease still names us and the loop tries again or takes it back.
func (c *campaign) writeHandover(ctx context.Context, to string) {
	self := c.e.o.Identity
	if c.cur == nil || holderOf(c.cur) != self {
		return
	}
	sent := c.now()
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(sent, time.Time{}, c.timing()))
	defer cancel()
	l := c.cur.DeepCopy()
	at := metav1.NewMicroTime(sent)
	n := int32(1)
	if l.Spec.LeaseTransitions != nil {
		n = *l.Spec.LeaseTransitions + 1
	}
	l.Spec.HolderIdentity = &to
	l.Spec.AcquireTime, l.Spec.RenewTime, l.Spec.LeaseTransitions = &at, &at, &n
	clearCandidacy(l)
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[annHandedOverBy] = self
	got, err := c.leases().Update(rctx, l, metav1.UpdateOptions{})
	switch {
	case err == nil:
		c.apiOK()
		c.observe(got, false)
		c.log.Info("lease handed over", "to", to)
		c.event(corev1.EventTypeNormal, "HandedOver", fmt.Sprintf("%s handed the Lease of group %s over to %s", self, c.g.Name, to))
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		c.apiOK()
		c.refresh(ctx)
	default:
		if ctx.Err() == nil {
			c.apiFailed(err, sent)
		}
		c.log.Warn("handing the Lease over failed; retrying", "to", to, "err", err)
	}
}

// stepDown reports Owner=false and returns once the VIPs are gone.
func (c *campaign) stepDown(reason, peer string) {
	if !c.owner {
		return
	}
	c.owner = false
	c.setStatus()
	held := c.now().Sub(c.sentAt)
	_ = c.e.doReport(election.Transition{Group: c.g.Name, Owner: false, Reason: reason, Peer: peer, At: c.now()}, c.report)
	c.log.Info("lease given up, VIPs dropped", "reason", reason, "peer", peer, "sinceLastRenewal", held,
		"dropped", c.now().Sub(c.sentAt))
	typ := corev1.EventTypeWarning
	switch {
	case reason == "shutdown", reason == "ineligible", reason == "removed", strings.HasPrefix(reason, "handover:"):
		typ = corev1.EventTypeNormal
	}
	c.event(typ, "Released", fmt.Sprintf("%s dropped the VIPs of group %s (%s)", c.e.o.Identity, c.g.Name, reason))
}

// release hands the Lease back at once (after stepDown removed the VIPs):
// holder cleared and leaseDurationSeconds=1, as client-go does, so a
// follower watching takes over within milliseconds. Best effort: if it fails
// the Lease simply expires.
func (c *campaign) release() {
	ctx, cancel := withDeadline(context.Background(), c.e.o.Clock, attemptDeadline(c.now(), time.Time{}, c.timing()))
	defer cancel()
	for range 3 {
		if c.cur == nil || holderOf(c.cur) != c.e.o.Identity {
			return
		}
		l := c.cur.DeepCopy()
		one := int32(1)
		at := metav1.NewMicroTime(c.now())
		l.Spec.HolderIdentity = nil
		l.Spec.LeaseDurationSeconds = &one
		l.Spec.RenewTime = &at
		clearCandidacy(l)
		got, err := c.leases().Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			c.cur = got
			c.view = view{exists: true, resourceVersion: got.ResourceVersion, observedAt: c.now()}
			c.setStatus()
			return
		}
		if !apierrors.IsConflict(err) {
			c.log.Warn("releasing lease failed; it will expire", "err", err)
			return
		}
		// Our last renewal was applied after its request was abandoned
		// (shutdown cancelled it), or someone else holds it by now (our
		// view is stale: we were stopped, or the watch lags): read the
		// current version and retry if it is still ours. The read becomes
		// the view, not only c.cur: a view still saying "ours" beside
		// another holder's object would let acquire take that valid
		// Lease "back" at once.
		got, err = c.leases().Get(ctx, c.g.Lease, metav1.GetOptions{})
		if err != nil {
			c.log.Warn("releasing lease failed; it will expire", "err", err)
			return
		}
		c.observe(got, false)
	}
}

func (c *campaign) apiOK() {
	if !c.apiErrSince.IsZero() {
		c.log.Info("API server reachable again", "after", c.now().Sub(c.apiErrSince))
	}
	c.apiErrSince = time.Time{}
	c.g.mu.Lock()
	c.g.status.APIError, c.g.status.APIErrorSince = "", time.Time{}
	c.g.mu.Unlock()
}

// apiFailed records a failed request, sent at sent. One that went
// unanswered until its deadline is reported to Options.Unanswered.
func (c *campaign) apiFailed(err error, sent time.Time) {
	if f := c.e.o.Unanswered; f != nil && errors.Is(err, context.DeadlineExceeded) {
		f(c.now().Sub(sent))
	}
	if c.apiErrSince.IsZero() {
		c.apiErrSince = c.now()
		c.log.Warn("API server request failed", "err", err, "owner", c.owner)
	}
	c.g.mu.Lock()
	c.g.status.APIError, c.g.status.APIErrorSince = err.Error(), c.apiErrSince
	c.g.mu.Unlock()
}

func (c *campaign) setStatus() {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	c.g.status.Owner = c.owner
	c.g.status.Holder = c.view.holder
	if c.owner {
		c.g.status.LastRenew = c.sentAt
	}
}

// watch feeds the campaign every change of the Lease. It reconnects forever;
// a broken watch only slows takeover down to a conflict-driven poll, since
// a follower's acquisition attempt re-reads the Lease on conflict.
func (c *campaign) watch(ctx context.Context, out *mailbox) {
	rv := ""
	warned := false
	for ctx.Err() == nil {
		w, err := c.leases().Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", c.g.Lease).String(),
			ResourceVersion: rv,
		})
		if err != nil {
			if apierrors.IsForbidden(err) && !warned {
				// Works without the watch (slower takeover), but say why.
				c.log.Warn("cannot watch the Lease; takeover falls back to polling: grant 'watch' on leases (deploy/lease/rbac.yaml)", "err", err)
				warned = true
			}
			c.log.Debug("watch failed", "err", err)
			sleep(ctx, c.e.o.Clock, c.timing().RetryPeriod)
			continue
		}
		rv = c.consume(ctx, w, out, rv)
		w.Stop()
		sleep(ctx, c.e.o.Clock, c.timing().RetryPeriod/4)
	}
}

func (c *campaign) consume(ctx context.Context, w watch.Interface, out *mailbox, rv string) string {
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok || l.Name != c.g.Lease {
					continue
				}
				rv = l.ResourceVersion
				out.put(l, ev.Type == watch.Deleted)
			case watch.Error:
				// Typically 410 Gone: start over from the current state.
				c.log.Debug("watch error event", "object", ev.Object)
				return ""
			}
		}
	}
}

// mailbox hands the newest Lease from the watcher to the campaign without
// ever blocking the watcher (the campaign may be inside a slow Reporter).
type mailbox struct {
	mu      sync.Mutex
	l       *coordinationv1.Lease
	deleted bool
	full    bool
	ready   chan struct{}
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

func (m *mailbox) put(l *coordinationv1.Lease, deleted bool) {
	m.mu.Lock()
	m.l, m.deleted, m.full = l, deleted, true
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() (*coordinationv1.Lease, bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.full {
		return nil, false, false
	}
	m.full = false
	return m.l, m.deleted, true
}

// event records a Kubernetes Event about the Lease, best effort: queued for a
// separate goroutine and dropped when the queue is full, so it can never
// delay fencing or a takeover.
func (c *campaign) event(typ, reason, msg string) {
	now := metav1.NewTime(c.now())
	ev := &corev1.Event{
		// Named like client-go's recorder does (object.<hex nanos>).
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", c.g.Lease, now.UnixNano()), Namespace: c.e.o.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease",
			Namespace: c.e.o.Namespace, Name: c.g.Lease},
		Type: typ, Reason: reason, Message: msg,
		Source:         corev1.EventSource{Component: "vipd", Host: c.e.o.Identity},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if c.cur != nil {
		ev.InvolvedObject.UID = c.cur.UID
	}
	select {
	case c.e.events <- ev:
	default:
		c.log.Debug("event queue full, dropping event", "reason", reason)
	}
}

func (e *Elector) sendEvents(drain <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := e.o.Clock
	send := func(ev *corev1.Event) {
		rctx, cancel := withDeadline(ctx, clk, clk.Now().Add(5*time.Second))
		defer cancel()
		if _, err := e.o.Client.CoreV1().Events(ev.Namespace).Create(rctx, ev, metav1.CreateOptions{}); err != nil {
			e.o.Log.Debug("recording event failed", "reason", ev.Reason, "err", err)
		}
	}
	for {
		select {
		case ev := <-e.events:
			send(ev)
		case <-drain:
			// Shutting down: what is queued gets at most a second in total.
			var stop context.CancelFunc
			ctx, stop = withDeadline(ctx, clk, clk.Now().Add(time.Second))
			defer stop()
			for {
				select {
				case ev := <-e.events:
					send(ev)
				default:
					return
				}
			}
		}
	}
}
