package gossip

import (
	"context"
	"net"
	"net/netip"
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
//   - meanwhile it pings every address each probe interval: a push/pull
//     started while cut off fails at its timeout even when the cut heals
//     meanwhile (docs/chaos.md, finding 6); an answered ping starts a
//     fresh one;
//   - if every address refuses the connection (the hosts are up, no vipd
//     listens: they are really gone), or nobody answers a ping round sent
//     after resyncBound (within aloneWithin), it is genuinely alone and the
//     next election may take.
//
// Owners re-announce: when a member it declared failed comes back, or a
// peer that claimed one of its groups stops claiming it, an owner announces
// the group's VIPs again (docs/chaos.md, finding 1): the member may have
// held them on its side of a partition, and hosts there learnt its MAC.

// resyncBound is how long a node back from isolation tries to reach a peer
// before it may count as alone: memberlist's own limit for one push/pull
// (TCPTimeout: fast 1 s, lan 10 s, wan 30 s). A peer that is alive and
// reachable answers a push/pull or a ping within it; one that has not
// answered by then is what memberlist itself counts as unreachable.
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

// peerLink is what a re-sync needs of memberlist (tests fake it): a
// push/pull (TCP) and a ping (UDP).
type peerLink interface {
	Join(addrs []string) (int, error)
	Ping(node string, addr net.Addr) (time.Duration, error)
}

// aloneWithin bounds how long a re-sync that reaches nobody takes to say
// so: the bound, then the ping round that starts at the next retry tick
// and its timeout.
func aloneWithin(bound, retry, probeTimeout time.Duration) time.Duration {
	return bound + retry + probeTimeout
}

// resync re-joins the members after isolation and reports on done whether
// a peer answered (see the top of this file). A push/pull with every
// address it can find (configured peers, the DNS name, members we know)
// starts at once, and every retry a ping to each: a push/pull started
// while cut off fails at its timeout even if the cut heals meanwhile (its
// SYN was lost; the kernel repeats it only after 1 s, memberlist's whole
// TCPTimeout in fast), so the node would count as alone after the heal and
// take from a view in which the others were still dead (docs/chaos.md,
// finding 6). A ping answers within a round trip of the heal: on an ack, a
// fresh push/pull with that address. The verdict "alone" comes only from a
// ping round that started after bound and that nobody answered, with no
// push/pull to an answering peer in flight (within aloneWithin when nobody
// ever answers); or at once when every first push/pull is refused (hosts
// up, no vipd listening: really gone). settle: the pause before the second
// push/pull.
func (e *Elector) resync(ctx context.Context, wg *sync.WaitGroup, ml peerLink, done chan<- bool, bound, retry, probeTimeout, settle time.Duration) {
	wg.Go(func() {
		synced := false
		defer func() { done <- synced }() // buffered; one re-sync at a time
		// rctx ends the attempts still in flight when the verdict is in.
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		start := time.Now()
		addrs := e.knownAddrs(ctx)
		if len(addrs) == 0 {
			return
		}
		type result struct {
			addr string
			kind int // first push/pull, push/pull after an ack, ping
			err  error
		}
		const (
			first = iota
			afterAck
			ping
		)
		results := make(chan result)
		send := func(r result) {
			select {
			case results <- r:
			case <-rctx.Done():
			}
		}
		// One push/pull per address at once: an unreachable peer costs a
		// TCP timeout, which must not delay reaching a live one.
		for _, a := range addrs {
			wg.Go(func() {
				_, err := ml.Join([]string{a})
				send(result{a, first, err})
			})
		}
		firstLeft, refused := len(addrs), 0
		joining := map[string]bool{} // push/pulls after an ack, in flight
		pinging, acked := 0, false   // the current ping round
		var roundStart time.Time
		tick := time.NewTicker(retry)
		defer tick.Stop()
		for {
			select {
			case r := <-results:
				switch r.kind {
				case first:
					firstLeft--
					if r.err != nil && strings.Contains(r.err.Error(), "connection refused") {
						refused++
					}
				case afterAck:
					delete(joining, r.addr)
				case ping:
					pinging--
					if r.err == nil {
						acked = true
						if !joining[r.addr] {
							joining[r.addr] = true
							wg.Go(func() {
								_, err := ml.Join([]string{r.addr})
								send(result{r.addr, afterAck, err})
							})
						}
					}
				}
				if r.kind != ping && r.err == nil {
					// The peers refuted the death our state reported when
					// they merged it; a second push/pull brings their new
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
				if firstLeft == 0 && refused == len(addrs) {
					return // hosts up, no vipd listening: really gone
				}
				if pinging == 0 && !roundStart.IsZero() && !acked && len(joining) == 0 && roundStart.Sub(start) >= bound {
					return // nobody answered a ping sent after the bound
				}
			case <-tick.C:
				if pinging > 0 {
					continue // a round is still waiting for its acks
				}
				roundStart, acked = time.Now(), false
				for _, a := range e.knownAddrs(ctx) {
					ap, err := netip.ParseAddrPort(a)
					if err != nil {
						continue
					}
					pinging++
					wg.Go(func() {
						// No node name: any member there answers.
						_, err := ml.Ping("", net.UDPAddrFromAddrPort(ap))
						send(result{a, ping, err})
					})
				}
				if pinging == 0 && roundStart.Sub(start) >= bound && len(joining) == 0 {
					return // no address to ping
				}
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
