package gossip

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vipd/vipd/election"
)

// Isolation. A node whose link was down (or that was cut off) declared the
// others dead: its view says it is alone, so Assign makes it the owner of
// every group. When its link comes back and it bids again, that view is
// stale until memberlist has merged the others' state again (a join, then
// both sides refuting their deaths): a node that took a group on it bound
// the VIP beside the live owner (docs/chaos.md, finding 2). So a node that
// may have been the one cut off takes no group until it has re-joined:
//
//   - isolated: a member failed and none is left alive (the last ones did
//     not leave gracefully), or members failed while it bid for no group
//     (its link down makes every group ineligible: it cannot tell "they
//     died" from "I was cut off");
//   - it then takes nothing (releases are never held) until a re-sync: a
//     join (push/pull) with the configured peers, the DNS name's addresses
//     and every member it declared dead, all at once; on the first peer that
//     answers, a second push/pull with every address (it brings the peers'
//     refuted incarnations, so our view has them alive with their claims),
//     then elections on that view, with the usual gates (claims, tables);
//   - if no peer answers within resyncBound, or every address refuses the
//     connection (the hosts are up, no vipd listens: they are really gone),
//     it is genuinely alone and the next election may take.
//
// Owners re-announce: when a member it declared failed comes back, or a
// peer that claimed one of its groups stops claiming it, an owner announces
// the group's VIPs again (docs/chaos.md, finding 1): the member may have
// held them on its side of a partition, and hosts there learnt its MAC.

// resyncBound is how long a node back from isolation tries to reach a peer
// before it counts as alone: memberlist's own limit for one push/pull
// (TCPTimeout: fast 1 s, lan 10 s, wan 30 s). Every address is tried at
// once, and an attempt that fails at once (the link's routes not back yet)
// is repeated every probe interval within the bound, so a peer that is
// alive and reachable answers within it; one that has not answered by then
// is what memberlist itself counts as unreachable.
func resyncBound(cfg *memberlist.Config) time.Duration { return cfg.TCPTimeout }

// reannounceGap: an owned group's VIPs are announced again at most this
// often; a request within it is carried out when it ends.
const reannounceGap = time.Second

// checkIsolation latches ev.isolated when this node may have been the one
// cut off. alive: peers alive now; bidding: this node bids for a group.
func (e *Elector) checkIsolation(ev *evaluator, alive int, gone map[string]string, bidding bool) {
	// newlyFailed: a member alive at the last election failed since. (Not
	// any failure on record: with the last peer leaving gracefully, a
	// member that failed long ago must not make a handover wait.)
	newlyFailed := false
	for name, why := range gone {
		if ev.prevMembers[name] && strings.HasPrefix(why, "member-failed:") {
			newlyFailed = true
			break
		}
	}
	switch {
	case ev.isolated:
	case alive == 0 && newlyFailed:
		ev.isolated = true
		e.log.Warn("gossip: every other member failed: this node may be the one cut off; it takes no group until it has re-joined them")
	case newlyFailed && !bidding:
		ev.isolated = true
		e.log.Warn("gossip: a member failed while this node bid for no group (its link down?): it takes no group until it has re-joined the members")
	}
	if ev.isolated && alive > 0 {
		// Members are coming back: re-sync now (it clears the latch), not
		// only when a take is wanted; the verdict "alone" is out of date.
		ev.needResync, ev.aloneOK = true, false
	}
	e.mu.Lock()
	e.isolated = ev.isolated
	e.mu.Unlock()
}

// resynced ends a re-sync: synced, a peer answered (elections run on the
// merged view). Otherwise nobody did within the bound: with no member
// alive the next election may take alone; with some back (by gossip) the
// ones that did not answer are unreachable from here, and the view is as
// good as it gets.
func (ev *evaluator) resynced(synced bool, alive int) {
	if synced || alive > 0 {
		ev.isolated, ev.aloneOK = false, false
		return
	}
	ev.aloneOK = true
}

// joiner is what a re-sync needs of memberlist (tests fake it).
type joiner interface {
	Join(addrs []string) (int, error)
}

// resync joins every address it can find (configured peers, the DNS name,
// members we know) until one answers or bound passes, then reports on done
// whether a peer answered. retry: the pause between attempts that all
// failed at once; settle: the pause before the second push/pull.
func (e *Elector) resync(ctx context.Context, wg *sync.WaitGroup, ml joiner, done chan<- bool, bound, retry, settle time.Duration) {
	wg.Go(func() {
		synced := false
		defer func() { done <- synced }() // buffered; one re-sync at a time
		deadline := time.NewTimer(bound)
		defer deadline.Stop()
		for ctx.Err() == nil {
			addrs := e.knownAddrs(ctx)
			if len(addrs) == 0 {
				return
			}
			// One push/pull per address at once: an unreachable peer costs
			// a TCP timeout, which must not delay reaching a live one.
			results := make(chan error, len(addrs))
			for _, a := range addrs {
				wg.Go(func() {
					_, err := ml.Join([]string{a})
					results <- err
				})
			}
			ok, refused := false, 0
		wait:
			for range addrs {
				select {
				case err := <-results:
					if err == nil {
						ok = true
						break wait
					}
					if strings.Contains(err.Error(), "connection refused") {
						refused++
					}
				case <-deadline.C:
					return
				case <-ctx.Done():
					return
				}
			}
			if ok {
				// The peers refuted the death our state reported when they
				// merged it; a second push/pull brings their new
				// incarnations (and claims) into our view.
				select {
				case <-time.After(settle):
				case <-ctx.Done():
					return
				}
				if _, err := ml.Join(e.knownAddrs(ctx)); err != nil {
					e.log.Debug("gossip: re-sync after isolation", "err", err)
				}
				synced = true
				return
			}
			if refused == len(addrs) {
				return // hosts up, no vipd listening: really gone
			}
			select {
			case <-time.After(retry):
			case <-deadline.C:
				return
			case <-ctx.Done():
				return
			}
		}
	})
}

// knownAddrs: configured peers and the DNS name's addresses, and every
// member's last address (alive or not).
func (e *Elector) knownAddrs(ctx context.Context) []string {
	out := e.resolvePeers(ctx)
	e.mu.Lock()
	self := e.selfAddr
	for _, a := range e.addrs {
		if a != self && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	e.mu.Unlock()
	return out
}

// reannounce asks the node to announce owned groups' VIPs again (the same
// Owner=true report: the VIPs are bound already, their announcements start
// over; reason and peer unchanged, so no transition) when a member we had
// declared failed is back, or a peer stopped claiming a group we own:
// either may have held the VIPs and answered for them. At most once per
// reannounceGap per group; a request within it waits for its end
// (ev.nextReannounce).
func (e *Elector) reannounce(report election.Reporter, ev *evaluator, back []string, claims map[GroupID]string, taken map[string]bool) {
	if ev.claimedBy == nil {
		ev.claimedBy, ev.reannounced, ev.reannounceDue = map[string]string{}, map[string]time.Time{}, map[string]bool{}
	}
	now := e.now()
	ev.nextReannounce = time.Time{}
	var sent []string
	var why []string
	if len(back) > 0 {
		why = append(why, "member-returned:"+strings.Join(back, ","))
	}
	for _, g := range e.opts.Groups {
		e.mu.Lock()
		owned := e.owned[g.Name]
		e.mu.Unlock()
		if !owned {
			delete(ev.claimedBy, g.Name)
			delete(ev.reannounceDue, g.Name)
			continue
		}
		claimant, was := claims[e.ids[g.Name]], ev.claimedBy[g.Name]
		if claimant != "" {
			ev.claimedBy[g.Name] = claimant
		} else {
			delete(ev.claimedBy, g.Name)
		}
		if taken[g.Name] {
			// Taken in this election: its announcements just started.
			ev.reannounced[g.Name] = now
			delete(ev.reannounceDue, g.Name)
			continue
		}
		if len(back) > 0 || (was != "" && claimant == "") {
			if was != "" && claimant == "" {
				why = append(why, "released-by:"+was)
			}
			ev.reannounceDue[g.Name] = true
		}
		if !ev.reannounceDue[g.Name] {
			continue
		}
		if last := ev.reannounced[g.Name]; !last.IsZero() && now.Sub(last) < reannounceGap {
			if next := last.Add(reannounceGap); ev.nextReannounce.IsZero() || next.Before(ev.nextReannounce) {
				ev.nextReannounce = next
			}
			continue
		}
		delete(ev.reannounceDue, g.Name)
		ev.reannounced[g.Name] = now
		reason := ev.ownReason[g.Name]
		if reason == "" {
			reason = "elected"
		}
		if err := report(election.Transition{Group: g.Name, Owner: true, Reason: reason, At: now}); err != nil {
			// As a failed take: the node removed the VIPs and made the
			// group ineligible; our next meta withdraws the claim.
			e.mu.Lock()
			e.owned[g.Name] = false
			e.mu.Unlock()
			signal(e.dirty)
			e.log.Warn("gossip: could not announce the group's VIPs again; stepping down", "group", g.Name, "err", err)
			continue
		}
		sent = append(sent, g.Name)
	}
	if len(sent) > 0 {
		slices.Sort(why)
		e.log.Info("gossip: announcing owned groups' VIPs again: a member that may have held them is back or released them",
			"groups", len(sent), "first", sent[0], "why", strings.Join(slices.Compact(why), " "))
	}
}
