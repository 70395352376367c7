package gossip

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// GroupID identifies a group on the wire: a 32-bit hash of its name, so node
// meta (512 bytes at most) carries a fixed 10 bytes per group whatever the
// name's length. Collisions among one node's groups are refused at startup.
type GroupID uint32

// IDOf returns the GroupID of a group name (FNV-1a, stable across versions).
func IDOf(name string) GroupID {
	h := fnv.New32a()
	h.Write([]byte(name))
	return GroupID(h.Sum32())
}

// Member is one alive member's bids as the owner choice sees them: the groups
// it is eligible for, with its priority for each (1..254).
type Member struct {
	Name string
	// Bids are its healthy bids (eligible, not degraded).
	Bids map[GroupID]int
	// Degraded are its last-resort bids (election.Input.Degraded).
	Degraded map[GroupID]int
	// Owns are the groups it claims (its meta says it holds them): the
	// current owners as every member sees them, which makes a degraded
	// owner's keep the same decision everywhere.
	Owns map[GroupID]bool

	// sorted caches Bids sorted by group (Meta.Member fills it): Assign
	// then walks every member's bids in step instead of hashing 50 × 1,000
	// times. Nil: Assign sorts Bids itself.
	sorted *sortedBids
}

type sortedBids struct {
	ids   []GroupID
	prios []int
}

// sortBids returns bids (those > 0) sorted by group.
func sortBids(bids map[GroupID]int) *sortedBids {
	sb := &sortedBids{ids: make([]GroupID, 0, len(bids))}
	for g, p := range bids {
		if p > 0 {
			sb.ids = append(sb.ids, g)
		}
	}
	slices.Sort(sb.ids)
	sb.prios = make([]int, len(sb.ids))
	for i, g := range sb.ids {
		sb.prios[i] = bids[g]
	}
	return sb
}

// LoadSlack is how many groups above the even share (ceil(groups/members))
// one member may be given among equal-priority peers.
const LoadSlack = 1

// Assign chooses one owner per group from the alive members' bids. It is a
// pure function of its input (order of members does not matter), so every
// member that sees the same membership computes the same owners.
//
// Rules, in order:
//  1. Only members bidding for a group (eligible) can own it.
//  2. Highest priority wins.
//  3. Among equal priorities, rendezvous (highest-random-weight) hashing of
//     (member, group): each group has its own random preference order of
//     members, so groups spread evenly and a member joining or leaving moves
//     only the groups that hash to it.
//  4. Bounded load: plain rendezvous spreads 20 groups over 4 members as a
//     binomial draw (7+ on one member is common), so groups are assigned in a
//     fixed order (by GroupID) and a member that already has
//     ceil(groups/members)+LoadSlack groups is skipped in favour of the next in
//     the group's preference order — unless every top-priority bidder is full,
//     where priority wins over balance.
//
// The slack keeps the cap loose enough that it rarely binds, so join/leave
// movement stays close to rendezvous' minimum (see the property tests).
//
// Degraded bids are a last resort and never compete with healthy ones: the
// rules above run on the healthy bids alone (so their result, load bound
// included, is what a member that cannot see degraded bids computes too), and
// only a group without any healthy bid goes to a degraded bidder:
//  5. a degraded bidder that claims the group keeps it (stickiness: a
//     degraded owner is not replaced by another degraded member, whatever
//     its priority); among several claimants (a moment of two claims), the
//     best by priority then rendezvous weight;
//  6. otherwise (nobody holds it), the highest degraded priority, ties by
//     rendezvous weight. No load bound: this is the emergency case.
func Assign(members []Member) map[GroupID]string {
	out := assign(members, true)
	lastResort(members, out)
	return out
}

// lastResort gives each group that has degraded bids but no owner in out to
// its claimant, or else its best degraded bidder (rules 5 and 6 of Assign).
func lastResort(members []Member, out map[GroupID]string) {
	type best struct {
		name    string
		claimed bool
		p       int
		w       uint64
	}
	chosen := map[GroupID]best{}
	for _, m := range members {
		for g, p := range m.Degraded {
			if p <= 0 || out[g] != "" {
				continue
			}
			c := best{m.Name, m.Owns[g], p, Weight(m.Name, g)}
			b, seen := chosen[g]
			if !seen || better(c.claimed, c.p, c.w, c.name, b.claimed, b.p, b.w, b.name) {
				chosen[g] = c
			}
		}
	}
	for g, c := range chosen {
		out[g] = c.name
	}
}

// better orders degraded candidates: a claimant first, then priority, then
// rendezvous weight, then name (a total order, so member order never matters).
func better(c1 bool, p1 int, w1 uint64, n1 string, c2 bool, p2 int, w2 uint64, n2 string) bool {
	switch {
	case c1 != c2:
		return c1
	case p1 != p2:
		return p1 > p2
	case w1 != w2:
		return w1 > w2
	}
	return n1 < n2
}

func assign(members []Member, bounded bool) map[GroupID]string {
	sbs := make([]*sortedBids, len(members))
	var groups []GroupID // the union of all bids, sorted
	bidders := 0
	for i, m := range members {
		sb := m.sorted
		if sb == nil {
			sb = sortBids(m.Bids)
		}
		sbs[i] = sb
		if len(sb.ids) == 0 {
			continue
		}
		bidders++
		if !slices.Equal(sb.ids, groups) { // members mostly bid for the same groups
			groups = unionSorted(groups, sb.ids)
		}
	}
	out := make(map[GroupID]string, len(groups))
	if len(groups) == 0 {
		return out
	}
	capacity := (len(groups)+bidders-1)/bidders + LoadSlack
	load := make([]int, len(members))

	// One pass per group, no sort: the owner is the first member, in the
	// group's preference order (weight descending, then name), that is not
	// full; the very first if all are (priority beats balance). Each
	// member's bids are walked in step with the groups (cursor), and each
	// member's name is hashed once (weigher): 1,000 groups × 50 members
	// take well under a millisecond.
	ws := make([]weigher, len(members))
	for i, m := range members {
		ws[i] = newWeigher(m.Name)
	}
	cur := make([]int, len(members))
	for _, g := range groups {
		best, bestFree := -1, -1
		var bestW, freeW uint64
		prio := 0
		for i, m := range members {
			sb := sbs[i]
			c := cur[i]
			for c < len(sb.ids) && sb.ids[c] < g {
				c++
			}
			cur[i] = c
			if c == len(sb.ids) || sb.ids[c] != g {
				continue
			}
			p := sb.prios[c]
			switch {
			case p < prio:
				continue
			case p > prio:
				prio = p
				best, bestFree = -1, -1
			}
			w := ws[i].weight(g)
			if best < 0 || prefer(w, m.Name, bestW, members[best].Name) {
				best, bestW = i, w
			}
			if bounded && load[i] < capacity && (bestFree < 0 || prefer(w, m.Name, freeW, members[bestFree].Name)) {
				bestFree, freeW = i, w
			}
		}
		owner := best
		if bestFree >= 0 {
			owner = bestFree
		}
		load[owner]++
		out[g] = members[owner].Name
	}
	return out
}

// unionSorted merges two sorted, duplicate-free slices.
func unionSorted(a, b []GroupID) []GroupID {
	out := make([]GroupID, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// prefer orders members in a group's preference order: higher weight first,
// then the smaller name (a total order, so member order never matters).
func prefer(w1 uint64, n1 string, w2 uint64, n2 string) bool {
	if w1 != w2 {
		return w1 > w2
	}
	return n1 < n2
}

// weigher computes Weight for one member: FNV-1a is sequential, so the
// member name is hashed once and each group only adds its five bytes.
type weigher uint64

func newWeigher(member string) weigher {
	h := fnv.New64a()
	h.Write([]byte(member))
	return weigher(h.Sum64())
}

func (s weigher) weight(g GroupID) uint64 {
	const prime64 = 1099511628211
	x := uint64(s)
	var b [5]byte // a 0 separator so ("ab", g) and ("a", g') never collide by concatenation
	binary.BigEndian.PutUint32(b[1:], uint32(g))
	for _, c := range b {
		x ^= uint64(c)
		x *= prime64
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Weight is the rendezvous weight of member for group: FNV-1a over both,
// finished with the splitmix64 mixer because FNV's high bits are weak for
// short, similar inputs such as "node-1", "node-2".
func Weight(member string, g GroupID) uint64 { return newWeigher(member).weight(g) }
