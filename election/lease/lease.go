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
//   - eligibility and priority (election.Input) have no place in it.
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
	"sync"
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
}

// Elector implements election.Elector with one Lease per group.
type Elector struct {
	o      Options
	inputs *election.Inputs
	groups []*group
	events chan *corev1.Event

	// reportMu serialises calls to the Reporter across groups.
	reportMu sync.Mutex
}

var _ election.Elector = (*Elector)(nil)

type group struct {
	Group
	wake chan struct{} // input changed (coalesced)

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
	names := make([]string, len(o.Groups))
	e := &Elector{o: o, events: make(chan *corev1.Event, 32)}
	for i, g := range o.Groups {
		names[i] = g.Name
		e.groups = append(e.groups, &group{Group: g, wake: make(chan struct{}, 1),
			status: GroupStatus{Group: g.Name, Lease: g.Lease}})
	}
	e.inputs = election.NewInputs(names)
	return e, nil
}

// SetInput implements election.Elector.
func (e *Elector) SetInput(name string, in election.Input) {
	e.inputs.Set(name, in)
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
	drain := make(chan struct{})
	evDone := make(chan struct{})
	go func() { defer close(evDone); e.sendEvents(drain) }()

	var wg sync.WaitGroup
	for _, g := range e.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &campaign{e: e, g: g, report: report, log: e.o.Log.With("group", g.Name, "lease", g.Lease)}
			c.run(ctx)
		}()
	}
	wg.Wait()
	close(drain) // send what is queued (the shutdown events), briefly
	<-evDone
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
		in := c.e.inputs.Get(c.g.Name)
		elig := eligibility{Eligible: in.Eligible, Priority: in.Priority}
		now := c.now()

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
			next := nextRenewal(c.lastAttempt, deadline, c.timing())
			if !now.Before(next) {
				c.renew(ctx, deadline)
				continue
			}
			wakeAt = next
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
			if at, ok := acquireAt(c.view, c.e.o.Identity, elig, c.timing()); ok {
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
				c.stepDown("shutdown", "")
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
	c.cur = l
	c.view = view{exists: true, resourceVersion: l.ResourceVersion, holder: holderOf(l),
		duration: durationOf(l), observedAt: now}
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
	c.lastRead = c.now()
	rctx, cancel := withDeadline(ctx, c.e.o.Clock, attemptDeadline(c.now(), time.Time{}, c.timing()))
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
		c.apiFailed(err)
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
		got, err = c.leases().Create(rctx, l, metav1.CreateOptions{})
	} else {
		l := c.cur.DeepCopy()
		prev := holderOf(l)
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
		c.log.Info("lease acquired", "after", c.now().Sub(sent))
		if err := c.e.doReport(election.Transition{Group: c.g.Name, Owner: true, Reason: "lease-acquired", Peer: self, At: c.now()}, c.report); err != nil {
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
			c.apiFailed(err)
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
	got, err := c.leases().Update(rctx, l, metav1.UpdateOptions{})
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
			c.apiFailed(err)
		}
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
	typ := corev1.EventTypeNormal
	if reason != "shutdown" && reason != "ineligible" {
		typ = corev1.EventTypeWarning
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
		// (shutdown cancelled it): read the current version and retry.
		got, err = c.leases().Get(ctx, c.g.Lease, metav1.GetOptions{})
		if err != nil {
			c.log.Warn("releasing lease failed; it will expire", "err", err)
			return
		}
		c.cur = got
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

func (c *campaign) apiFailed(err error) {
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
