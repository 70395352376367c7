package gossip

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func groupsN(n int) []GroupID {
	gs := make([]GroupID, n)
	for i := range gs {
		gs[i] = IDOf(fmt.Sprintf("g%02d", i))
	}
	return gs
}

func equalMembers(names []string, groups []GroupID, prio int) []Member {
	ms := make([]Member, len(names))
	for i, n := range names {
		b := map[GroupID]int{}
		for _, g := range groups {
			b[g] = prio
		}
		ms[i] = Member{Name: n, Bids: b}
	}
	return ms
}

func TestAssignTable(t *testing.T) {
	web, db := IDOf("web"), IDOf("db")
	tests := []struct {
		name    string
		members []Member
		want    map[GroupID]string
	}{
		{"no members", nil, map[GroupID]string{}},
		{"nobody eligible", []Member{{"a", map[GroupID]int{web: 0}}}, map[GroupID]string{}},
		{"single member", []Member{{"a", map[GroupID]int{web: 100}}}, map[GroupID]string{web: "a"}},
		{"higher priority wins", []Member{
			{"a", map[GroupID]int{web: 100}}, {"b", map[GroupID]int{web: 150}}, {"c", map[GroupID]int{web: 120}},
		}, map[GroupID]string{web: "b"}},
		{"ineligible higher priority is skipped", []Member{
			{"a", map[GroupID]int{web: 100}}, {"b", map[GroupID]int{}}, {"c", map[GroupID]int{web: 0}},
		}, map[GroupID]string{web: "a"}},
		{"per-group priorities", []Member{
			{"a", map[GroupID]int{web: 200, db: 100}}, {"b", map[GroupID]int{web: 100, db: 200}},
		}, map[GroupID]string{web: "a", db: "b"}},
		{"group known only to some members", []Member{
			{"a", map[GroupID]int{web: 100}}, {"b", map[GroupID]int{web: 100, db: 100}},
		}, map[GroupID]string{web: tieWinner([]string{"a", "b"}, web), db: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(tt.members)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Assign = %v, want %v", got, tt.want)
			}
		})
	}
}

// tieWinner is the plain rendezvous choice among equal bidders.
func tieWinner(names []string, g GroupID) string {
	best, bw := "", uint64(0)
	for _, n := range names {
		if w := Weight(n, g); best == "" || w > bw {
			best, bw = n, w
		}
	}
	return best
}

// randomCluster draws a membership: 1..7 members, 1..30 groups, each member
// bidding for a random subset with priorities from a small set (so ties are common).
func randomCluster(r *rand.Rand) ([]Member, []GroupID) {
	groups := groupsN(1 + r.IntN(30))
	n := 1 + r.IntN(7)
	ms := make([]Member, n)
	for i := range ms {
		b := map[GroupID]int{}
		for _, g := range groups {
			if r.IntN(5) > 0 {
				b[g] = []int{0, 100, 100, 100, 150}[r.IntN(5)]
			}
		}
		ms[i] = Member{Name: fmt.Sprintf("node-%d-%d", i, r.IntN(1000)), Bids: b}
	}
	return ms, groups
}

func TestAssignPropertyOneOwnerHighestPriority(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		ms, groups := randomCluster(r)
		got := Assign(ms)
		for _, g := range groups {
			best := 0
			for _, m := range ms {
				best = max(best, m.Bids[g])
			}
			owner, ok := got[g]
			if best == 0 {
				if ok {
					t.Fatalf("iter %d: group %v has owner %q but no eligible bidder", iter, g, owner)
				}
				continue
			}
			if !ok {
				t.Fatalf("iter %d: group %v has no owner", iter, g)
			}
			var p int
			for _, m := range ms {
				if m.Name == owner {
					p = m.Bids[g]
				}
			}
			if p != best {
				t.Fatalf("iter %d: group %v owner %q has priority %d, best is %d", iter, g, owner, p, best)
			}
		}
		// Every member computes from its own (differently ordered) view.
		shuffled := append([]Member(nil), ms...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if fmt.Sprint(Assign(shuffled)) != fmt.Sprint(got) {
			t.Fatalf("iter %d: result depends on member order", iter)
		}
	}
}

func TestAssignPropertyBalance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 2000; iter++ {
		nodes := 1 + r.IntN(8)
		ng := 1 + r.IntN(60)
		names := make([]string, nodes)
		for i := range names {
			names[i] = fmt.Sprintf("n%d-%x", i, r.Uint32())
		}
		got := Assign(equalMembers(names, groupsN(ng), 100))
		limit := (ng+nodes-1)/nodes + LoadSlack
		load := map[string]int{}
		for _, o := range got {
			load[o]++
		}
		for n, l := range load {
			if l > limit {
				t.Fatalf("%d groups over %d nodes: %s owns %d, limit %d", ng, nodes, n, l, limit)
			}
		}
	}
}

// The lab test's names (lab_test.go): 20 groups over 4 nodes, ceil(20/4)+1 = 6 at most.
func TestAssignLabBalance(t *testing.T) {
	names := []string{"node1", "node2", "node3", "node4"}
	var groups []GroupID
	for i := 0; i < 20; i++ {
		groups = append(groups, IDOf(fmt.Sprintf("vip-%02d", i)))
	}
	load := map[string]int{}
	plain := map[string]int{}
	for g, o := range Assign(equalMembers(names, groups, 100)) {
		load[o]++
		plain[tieWinner(names, g)]++
	}
	t.Logf("bounded-load rendezvous: %v; plain rendezvous would give %v", load, plain)
	for n, l := range load {
		if l > 6 {
			t.Errorf("%s owns %d groups, want at most 6", n, l)
		}
	}
}

// Plain rendezvous moves exactly the groups it must; bounded load adds a few
// moves when the cap binds. Both are checked and the extra is reported.
func TestAssignPropertyMovement(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var moved, must, extraRuns, runs int
	for iter := 0; iter < 2000; iter++ {
		ms, _ := randomCluster(r)
		if len(ms) < 2 {
			continue
		}
		x := r.IntN(len(ms))
		without := append(append([]Member(nil), ms[:x]...), ms[x+1:]...)
		leaver := ms[x].Name
		for _, bounded := range []bool{false, true} {
			before, after := assign(ms, bounded), assign(without, bounded)
			n, m := 0, 0
			for g, o := range before {
				if o == leaver {
					m++
				}
				if after[g] != o {
					n++
					if !bounded && o != leaver {
						t.Fatalf("iter %d: leave of %s moved group %v from %s to %s", iter, leaver, g, o, after[g])
					}
				}
			}
			// Joining is the same pair read backwards: every move is towards the joiner.
			for g, o := range after {
				if before[g] != o && before[g] != leaver && !bounded {
					t.Fatalf("iter %d: join of %s moved group %v from %s to %s", iter, leaver, g, o, before[g])
				}
			}
			if bounded {
				runs++
				moved += n
				must += m
				if n > m {
					extraRuns++
				}
				if n > 2*m+3 {
					t.Fatalf("iter %d: bounded leave moved %d groups, %d were on the leaver", iter, n, m)
				}
			}
		}
	}
	t.Logf("bounded load over %d leaves: %d groups moved, %d had to (owned by the leaver); %d leaves moved extra groups",
		runs, moved, must, extraRuns)
}

func BenchmarkAssign(b *testing.B) {
	for _, c := range []struct{ nodes, groups int }{{4, 20}, {10, 50}} {
		names := make([]string, c.nodes)
		for i := range names {
			names[i] = fmt.Sprintf("node%d", i+1)
		}
		ms := equalMembers(names, groupsN(c.groups), 100)
		b.Run(fmt.Sprintf("%dnodes-%dgroups", c.nodes, c.groups), func(b *testing.B) {
			for b.Loop() {
				Assign(ms)
			}
		})
	}
}
