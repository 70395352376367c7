package node

import (
	"context"
	"strings"
	"sync"

	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
)

// HealthRunner runs the health checks (internal/health.Runner).
type HealthRunner interface {
	// Run runs every check until ctx is done; onChange is called serially
	// on every state change.
	Run(ctx context.Context, onChange func(health.Result)) error
	// Results is a snapshot of every check, in config order.
	Results() []health.Result
	// Update replaces the checks (a reload): unchanged ones keep their
	// state; an error changes nothing.
	Update(specs []health.Spec) error
}

// HookRunner runs the groups' notify hooks (internal/hooks.Runner).
type HookRunner interface {
	Set(group string, spec *hooks.Spec)
	// Notify queues a hook run and never blocks.
	Notify(ev hooks.Event)
	// Close lets queued hooks finish until ctx is done, then kills the rest.
	Close(ctx context.Context)
	// Status is one group's hook record for /status (nil: none).
	Status(group string) any
}

// noChecks is the HealthRunner of a config without checks.
type noChecks struct{}

func (noChecks) Run(ctx context.Context, _ func(health.Result)) error { <-ctx.Done(); return nil }
func (noChecks) Results() []health.Result                             { return nil }
func (noChecks) Update(specs []health.Spec) error {
	if len(specs) > 0 {
		return errNoHealth
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoHealth = errString("this daemon was started without a health runner")

// noHooks is the HookRunner when none is wired (unit tests).
type noHooks struct{}

func (noHooks) Set(string, *hooks.Spec) {}
func (noHooks) Notify(hooks.Event)      {}
func (noHooks) Close(context.Context)   {}
func (noHooks) Status(string) any       { return nil }

// notifier turns a group's ownership and eligibility into hook states
// (MASTER when owning, FAULT when not eligible, BACKUP otherwise) and
// notifies each change once.
type notifier struct {
	hooks   HookRunner
	manager *Manager

	mu   sync.Mutex
	last map[string]hooks.State
}

// pendingReason: a group that is not eligible only because nothing is known
// yet (start-up, a check just added) has no state worth a hook.
func pendingReason(why string) bool {
	if why == LinksUnknown || strings.HasPrefix(why, "awaiting") {
		return true
	}
	for _, part := range strings.Split(why, ", ") {
		if !strings.HasSuffix(part, "not known yet") {
			return false
		}
	}
	return why != ""
}

// changed is called after every transition and eligibility change of group.
func (n *notifier) changed(group string) {
	st, ok := n.manager.status(group)
	if !ok {
		return
	}
	var state hooks.State
	reason := st.Reason
	switch {
	case st.Owner:
		state = hooks.Master
	case st.Reason == "shutdown" || st.Reason == "removed":
		// The elector's release before vipd stops managing the group
		// (election.Elector's contract): STOP follows, and a BACKUP
		// before it would run backup hooks on a node that is going away.
		return
	case !st.Eligible && pendingReason(st.Why):
		return
	case !st.Eligible:
		state, reason = hooks.Fault, st.Why
	default:
		state = hooks.Backup
	}
	n.emit(group, state, reason, st)
}

// stop notifies STOP for group (shutdown or removal).
func (n *notifier) stop(group, reason string) {
	st, ok := n.manager.status(group)
	if !ok {
		return
	}
	n.emit(group, hooks.Stop, reason, st)
}

func (n *notifier) emit(group string, state hooks.State, reason string, st GroupStatus) {
	n.mu.Lock()
	prev := n.last[group]
	if prev == state {
		n.mu.Unlock()
		return
	}
	n.last[group] = state
	// Queued under mu: two changes of one group reach the runner in order.
	var vips []string
	for _, v := range st.VIPs {
		vips = append(vips, v.Address)
	}
	n.hooks.Notify(hooks.Event{Group: group, State: state, Previous: prev, Reason: reason,
		VIPs: vips, Peer: st.Peer, Priority: st.Priority, At: st.Since})
	n.mu.Unlock()
}
