package gossip

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/vipd/vipd/election"
)

type reconfigure struct {
	opts Options
	gs   groupSet
	done chan struct{}
}

// Reconfigure applies a reloaded configuration: the same values New takes
// (election.Mode.Reload's contract). Groups removed that this node owns are
// reported Owner=false (reason "removed") before it returns, and its meta
// stops bidding for them; added groups bid once their input is set (the
// daemon sets it before the reload); a group whose VIPs changed keeps its
// owner (only its VIP hash in the meta changes); other groups are untouched.
// Expect, Quorum and RejoinInterval apply in place. The transport (node
// name, bind, advertise, peers, DNS, profile, keys) cannot change while
// memberlist runs: such a change returns an error naming the setting and
// nothing is changed. Settle, KeySource, KeyPollInterval, Lookup and Log are
// kept from New. Before Run starts (or after it ended) it only replaces the
// configuration.
func (e *Elector) Reconfigure(opts Options) error {
	if err := e.restartNeeded(opts); err != nil {
		return err
	}
	gs, err := newGroupSet(opts.Groups)
	if err != nil {
		return err
	}
	if opts.RejoinInterval <= 0 {
		opts.RejoinInterval = time.Second
	}
	opts.Groups = slices.Clone(opts.Groups)
	req := reconfigure{opts: opts, gs: gs, done: make(chan struct{})}
	e.mu.Lock()
	running := e.running
	if running == nil {
		e.applyLocked(req.gs, req.opts)
	}
	e.mu.Unlock()
	if running == nil {
		return nil
	}
	select {
	case e.reconf <- req:
		<-req.done
	case <-running:
		// Run ended (and released everything) meanwhile.
		e.mu.Lock()
		e.applyLocked(req.gs, req.opts)
		e.mu.Unlock()
	}
	return nil
}

// Options returns the configuration in effect (New's, as reloads changed it).
func (e *Elector) Options() Options {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.opts
	o.Groups, o.Peers, o.Keys = slices.Clone(o.Groups), slices.Clone(o.Peers), slices.Clone(o.Keys)
	return o
}

// restartNeeded names the first transport setting that differs: memberlist
// is created once, with them.
func (e *Elector) restartNeeded(n Options) error {
	e.mu.Lock() // Run may be installing the groups of a concurrent reload
	o := e.opts
	e.mu.Unlock()
	profile := n.Profile
	if profile == "" {
		profile = ProfileFast
	}
	changed := func(setting string, from, to any) error {
		return fmt.Errorf("gossip: changing %s (%v → %v) needs a restart", setting, from, to)
	}
	switch {
	case n.Node != o.Node:
		return changed("the node name", o.Node, n.Node)
	case n.BindAddr != o.BindAddr || n.BindPort != o.BindPort:
		return changed("gossip.bind", fmt.Sprintf("%s:%d", o.BindAddr, o.BindPort), fmt.Sprintf("%s:%d", n.BindAddr, n.BindPort))
	case n.AdvertiseAddr != o.AdvertiseAddr || n.AdvertisePort != o.AdvertisePort:
		return changed("gossip.advertise", fmt.Sprintf("%s:%d", o.AdvertiseAddr, o.AdvertisePort), fmt.Sprintf("%s:%d", n.AdvertiseAddr, n.AdvertisePort))
	case !slices.Equal(sortedCopy(o.Peers), sortedCopy(n.Peers)):
		return changed("gossip.peers", o.Peers, n.Peers)
	case n.DNS != o.DNS:
		return changed("gossip.dns", o.DNS, n.DNS)
	case profile != o.Profile:
		return changed("gossip.profile", o.Profile, profile)
	case n.KeyFile != o.KeyFile:
		return changed("gossip.keyFile", o.KeyFile, n.KeyFile)
	case n.KeyFile == "" && !slices.EqualFunc(o.Keys, n.Keys, bytes.Equal):
		// Keys without a key file (never printed): rotation goes through
		// the key file, which is re-read without a reload.
		return fmt.Errorf("gossip: changing the gossip keys (%d → %d keys, or other keys) needs a restart", len(o.Keys), len(n.Keys))
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// applyLocked installs a checked configuration (e.mu held). Readers outside
// Run's goroutine (localMeta, Status, join) read these under e.mu.
func (e *Elector) applyLocked(gs groupSet, n Options) {
	for name := range e.ids {
		if _, kept := gs.ids[name]; !kept {
			delete(e.owned, name)
		}
	}
	e.opts.Groups = n.Groups
	e.opts.Expect, e.opts.Quorum, e.opts.RejoinInterval = n.Expect, n.Quorum, n.RejoinInterval
	e.ids, e.vipH, e.fp = gs.ids, gs.vipH, gs.fp
}

// reconfigure runs in Run: it releases the removed groups this node owns,
// installs the configuration and has the new meta gossiped; Run's next
// election (right after) bids for added groups, which it takes only after
// holdoff (as at start-up: peers reloading at the same moment must see each
// other's bids first). It reports whether groups were added.
func (e *Elector) reconfigure(report election.Reporter, ev *evaluator, gs groupSet, n Options, rejoin *time.Ticker, holdoff time.Duration) bool {
	old := e.opts
	var removed []string
	for _, g := range old.Groups {
		if _, kept := gs.ids[g.Name]; kept {
			continue
		}
		removed = append(removed, g.Name)
		e.mu.Lock()
		had := e.owned[g.Name]
		e.mu.Unlock()
		if had {
			_ = report(election.Transition{Group: g.Name, Owner: false, Reason: "removed", At: e.now()})
			e.mu.Lock()
			e.owned[g.Name] = false
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	e.applyLocked(gs, n)
	e.mu.Unlock()
	for _, g := range removed {
		// Forget it: were it added again, it bids only once the daemon
		// sets its input again.
		e.inputs.Set(g, election.Input{Reason: election.AwaitingInput})
		delete(ev.prevOwner, g)
		delete(ev.waitedOn, g)
		delete(ev.holdUntil, g)
	}
	if n.RejoinInterval != old.RejoinInterval {
		rejoin.Reset(n.RejoinInterval)
	}
	var added []string
	for _, g := range n.Groups {
		if !slices.ContainsFunc(old.Groups, func(o GroupSpec) bool { return o.Name == g.Name }) {
			added = append(added, g.Name)
		}
	}
	if ev.holdUntil == nil {
		ev.holdUntil = map[string]time.Time{}
	}
	for _, g := range added {
		ev.holdUntil[g] = e.now().Add(holdoff)
	}
	e.log.Info("gossip configuration reloaded", "added", added, "removed", removed, "groups", len(n.Groups), "fingerprint", gs.fp.String())
	signal(e.dirty)
	return len(added) > 0
}
