package gossip

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// resolvePeers returns the join addresses (host:port) of configured peers
// and the DNS name, without this node's own address.
func (e *Elector) resolvePeers(ctx context.Context) []string {
	port := e.opts.BindPort
	if port == 0 {
		port = DefaultPort
	}
	e.mu.Lock()
	self := e.selfAddr
	e.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	add := func(host, p string) {
		addr := net.JoinHostPort(host, p)
		if addr != self && !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resolve := func(host, p string) {
		if net.ParseIP(host) != nil {
			add(host, p)
			return
		}
		ips, err := e.opts.Lookup(lctx, host)
		if err != nil {
			e.log.Debug("gossip: resolving peer", "name", host, "err", err)
			return
		}
		slices.Sort(ips)
		for _, ip := range ips {
			add(ip, p)
		}
	}
	for _, p := range e.opts.Peers {
		host, ps, err := net.SplitHostPort(p)
		if err != nil {
			host, ps = p, strconv.Itoa(port)
		}
		resolve(host, ps)
	}
	if e.opts.DNS != "" {
		resolve(e.opts.DNS, strconv.Itoa(port))
	}
	return out
}

// join joins peers in the background. initial: every resolved peer, and
// report failure. Otherwise (every RejoinInterval) only configured peers
// that are not alive members: after a partition both sides have declared
// the other dead and memberlist stops talking to dead members after
// GossipToTheDeadTime, so only a join heals it. While fewer than Expect
// members are alive, everyone is joined again.
func (e *Elector) join(ctx context.Context, wg *sync.WaitGroup, ml *memberlist.Memberlist, initial bool) {
	if !e.rejoinBusy.CompareAndSwap(false, true) {
		return
	}
	if initial {
		e.initialJoin.Store(true)
	}
	wg.Go(func() {
		defer e.rejoinBusy.Store(false)
		if initial {
			defer e.initialJoin.Store(false)
		}
		peers := e.resolvePeers(ctx)
		if ctx.Err() != nil {
			return
		}
		alive := map[string]bool{}
		for _, n := range e.peerNodes() {
			alive[n.Address()] = true
		}
		var todo []string
		e.mu.Lock()
		unacked, expect := e.unacked, e.opts.Expect // Expect: a reload may change it
		e.mu.Unlock()
		// Unacknowledged: our alive state has not been accepted (say, a new
		// address within the dead-node reclaim time); a join pushes it again.
		below := unacked || expect > 0 && 1+len(alive) < expect
		for _, p := range peers {
			if initial || below || !alive[p] {
				todo = append(todo, p)
			}
		}
		if len(todo) == 0 {
			if initial {
				e.joinFailed(errors.New("no peer address resolved"))
			}
			return
		}
		n, err := ml.Join(todo)
		if n > 0 {
			if !e.isJoined() {
				// The peer we joined passed on what it knew of the
				// others, which may lag (a group claimed a moment ago).
				// Each member's own state about itself is current, so
				// push/pull once with every member before the first
				// election.
				var rest []string
				for _, p := range e.peerNodes() {
					if a := p.Address(); !slices.Contains(todo, a) {
						rest = append(rest, a)
					}
				}
				if len(rest) > 0 {
					_, _ = ml.Join(rest)
				}
				e.log.Info("joined gossip cluster", "contacted", n+len(rest), "members", ml.NumMembers())
			}
			e.setJoined(true, "")
			return
		}
		if initial || len(alive) == 0 {
			e.joinFailed(err)
		}
	})
}

// syncPeers does a push/pull with every alive peer in the background, then
// signals done (also when some or all fail: the election then runs on what
// gossip brought).
func (e *Elector) syncPeers(ctx context.Context, wg *sync.WaitGroup, ml *memberlist.Memberlist, done chan struct{}) {
	wg.Go(func() {
		defer signal(done)
		var addrs []string
		for _, n := range e.peerNodes() {
			addrs = append(addrs, n.Address())
		}
		if len(addrs) == 0 || ctx.Err() != nil {
			return
		}
		if n, err := ml.Join(addrs); err != nil {
			e.log.Debug("gossip: state sync before the first election", "synced", n, "of", len(addrs), "err", err)
		}
	})
}

// peerNodes lists alive peers from our own copies (see Run on why not
// memberlist's Members()).
func (e *Elector) peerNodes() []*memberlist.Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*memberlist.Node, 0, len(e.members))
	for _, m := range e.members {
		host, port, _ := net.SplitHostPort(m.addr)
		p, _ := strconv.Atoi(port)
		out = append(out, &memberlist.Node{Name: m.name, Addr: net.ParseIP(host), Port: uint16(p)})
	}
	return out
}

func (e *Elector) setJoined(ok bool, msg string) {
	e.mu.Lock()
	e.joined = ok
	e.joinErr = msg
	e.refused = false
	f := e.onJoin
	e.onJoin = nil
	e.mu.Unlock()
	if f != nil {
		f()
	}
}

func (e *Elector) isJoined() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.joined
}

func (e *Elector) joinFailed(err error) {
	msg := "no peer reachable"
	if err != nil {
		msg = strings.Join(strings.Fields(err.Error()), " ")
	}
	refused := joinRefused(msg)
	e.mu.Lock()
	changed := e.joinErr != msg
	e.joinErr = msg
	e.refused = refused
	e.mu.Unlock()
	switch {
	case !changed:
	case refused:
		e.log.Error("gossip: peers are reachable but refuse this node: a different gossip key (gossip.keyFile) on one side, or encryption on only one side", "err", msg)
	default:
		e.log.Warn("gossip: could not join any peer", "err", msg)
	}
}

// joinRefused tells "a peer answered and refused us" (wrong key, one side
// unencrypted, not a memberlist) from "nobody answered" (peers down, first
// node up): only the latter lets a node elect itself alone.
func joinRefused(msg string) bool {
	if msg == "" || msg == "no peer reachable" {
		return false
	}
	for _, s := range []string{"connection refused", "i/o timeout", "no route to host", "network is unreachable", "host is down", "no such host", "deadline exceeded"} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	return true
}
