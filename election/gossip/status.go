package gossip

import (
	"slices"
	"strings"
)

// Status is the gossip part of /status.
type Status struct {
	Profile     string `json:"profile"`
	Encrypted   bool   `json:"encrypted"`
	Fingerprint string `json:"fingerprint"`
	Joined      bool   `json:"joined"`
	// Settled: this node takes part in elections (false while it waits to
	// join, or for the first gossip rounds after joining).
	Settled bool `json:"settled"`
	// Unacknowledged: peers do not probe this node (they do not hold it as
	// alive), so it takes no group.
	Unacknowledged bool `json:"unacknowledged,omitempty"`
	// Isolated: every other member failed, or members failed while this
	// node bid for nothing (its link down?): it may be the one that was
	// cut off, so it takes no group until it has re-joined the members
	// (or found none reachable). Releases are not held.
	Isolated  bool   `json:"isolated,omitempty"`
	JoinError string `json:"joinError,omitempty"`
	// Refused: peers answered but refused this node (see JoinError); it
	// owns nothing until it can join.
	Refused bool     `json:"refused,omitempty"`
	Members []string `json:"members"`
	Expect  int      `json:"expect,omitempty"`
	Quorum  *bool    `json:"quorum,omitempty"`
	// KeyErrors counts packets/streams from peers this node could not
	// decrypt (or unencrypted ones): a peer with a different key.
	KeyErrors    int64  `json:"keyErrors,omitempty"`
	LastKeyError string `json:"lastKeyError,omitempty"`
	// BadMessages counts gossip user messages that were not understood
	// (dropped).
	BadMessages int64             `json:"badMessages,omitempty"`
	Mismatches  []Mismatch        `json:"mismatches,omitempty"`
	Waiting     map[string]string `json:"waitingForRelease,omitempty"`
	Conflicts   []string          `json:"nameConflicts,omitempty"`
	// TablesPending: members whose current group table this node has not
	// received yet (it uses the last it has, or none); see docs/gossip.md.
	TablesPending []string `json:"tablesPending,omitempty"`
	// Bids: this node's bid for each configured group, as gossiped.
	Bids []Bid `json:"bids"`
}

// Bid is this node's bid for one group.
type Bid struct {
	Group string `json:"group"`
	// Priority is the effective priority gossiped; 0: no bid (ineligible).
	Priority int `json:"priority"`
	// Degraded: a last-resort bid, below every healthy one.
	Degraded bool `json:"degraded,omitempty"`
	// Owner is the owner the last election computed ("" if none).
	Owner string `json:"owner,omitempty"`
}

// Mismatch is a peer whose configuration differs from ours.
type Mismatch struct {
	Member string `json:"member"`
	// Fingerprint is the peer's config fingerprint.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Groups whose VIP set differs (same name, other VIPs).
	Groups []string `json:"groups,omitempty"`
	// Error: the peer's meta could not be read (it cannot own anything).
	Error string `json:"error,omitempty"`
}

// Status returns a snapshot for /status.
func (e *Elector) Status() any {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{
		Profile: e.opts.Profile, Encrypted: len(e.opts.Keys) > 0, Fingerprint: e.fp.String(),
		Joined: e.joined, Settled: e.settled, Unacknowledged: e.unacked, Isolated: e.isolated, JoinError: e.joinErr, Refused: e.refused, Members: []string{e.opts.Node}, Expect: e.opts.Expect,
		KeyErrors: e.keyErrors, LastKeyError: e.lastKeyErr, BadMessages: e.badMsgs, Conflicts: slices.Clone(e.conflicts),
	}
	if e.opts.Quorum {
		q := e.quorumOK
		st.Quorum = &q
	}
	if len(e.waiting) > 0 {
		st.Waiting = map[string]string{}
		for k, v := range e.waiting {
			st.Waiting[k] = v
		}
	}
	for _, g := range e.opts.Groups {
		p, degraded := bid(e.inputs.Get(g.Name))
		st.Bids = append(st.Bids, Bid{Group: g.Name, Priority: p, Degraded: degraded, Owner: e.lastOwner[g.Name]})
	}
	for _, m := range e.members {
		st.Members = append(st.Members, m.name)
		if m.stale {
			st.TablesPending = append(st.TablesPending, m.name)
		}
		if mm, ok := e.mismatchLocked(m); ok {
			st.Mismatches = append(st.Mismatches, mm)
		}
	}
	slices.Sort(st.Members)
	slices.Sort(st.TablesPending)
	slices.SortFunc(st.Mismatches, func(a, b Mismatch) int { return strings.Compare(a.Member, b.Member) })
	return st
}

func (e *Elector) mismatchLocked(m *member) (Mismatch, bool) {
	if m.metaErr != nil {
		return Mismatch{Member: m.name, Error: m.metaErr.Error()}, true
	}
	if m.meta.Fingerprint == e.fp {
		return Mismatch{}, false
	}
	mm := Mismatch{Member: m.name, Fingerprint: m.meta.Fingerprint.String()}
	for _, g := range e.opts.Groups {
		if en, ok := m.entry(e.ids[g.Name]); ok && en.VIPHash != e.vipH[g.Name] {
			mm.Groups = append(mm.Groups, g.Name)
		}
	}
	return mm, true
}

// Ready implements election.Elector: false while this node cannot take
// part in the election as a full member: peers refuse it (another key),
// peers do not acknowledge it, or it is in a minority without quorum.
func (e *Elector) Ready() (bool, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.refused:
		return false, "gossip peers refuse this node: " + e.joinErr
	case e.unacked:
		return false, "gossip peers do not acknowledge this node yet"
	case e.opts.Quorum && e.settled && !e.quorumOK:
		return false, "gossip quorum lost: fewer than a majority of the expected members are alive"
	}
	return true, ""
}

// MembersByState counts the cluster's members as this node sees them:
// "alive" (this node and the peers it holds alive), "left" (said goodbye)
// and "failed" (gone without a goodbye; memberlist keeps no record for
// ever, and neither does this count once a peer comes back). Every state is
// present, zero included, for the vipd_gossip_members metric.
func (e *Elector) MembersByState() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{"alive": 1 + len(e.members), "left": 0, "failed": 0}
	for _, why := range e.gone {
		if strings.HasPrefix(why, "member-left:") {
			out["left"]++
		} else {
			out["failed"]++
		}
	}
	return out
}
