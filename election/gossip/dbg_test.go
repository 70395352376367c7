package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
)

func TestDbgDegradedPropagation(t *testing.T) {
	w := newWorld(t)
	groups := testGroups(1)
	g := groups[0].Name
	nodes := cluster(t, w, 3, groups, nil)
	waitOwners(t, w, expectedOwners(names(nodes), groups), 10*time.Second)
	for round := 0; round < 5; round++ {
		at := time.Now()
		p := 150 + round
		fmt.Printf("DBG %s round %d\n", time.Now().Format("05.000"), round)
		nodes[1].e.SetInput(g, election.Input{Eligible: true, Degraded: true, Priority: p, Reason: "x"})
		nodes[2].e.SetInput(g, election.Input{Eligible: true, Degraded: true, Priority: p, Reason: "x"})
		who := 2
		for i := 0; i < 600; i++ {
			ok := true
			for _, n := range nodes {
				for _, m := range nodes[1:] {
					if n != m {
						en, _ := peerEntry(n, m.name, g)
						ok = ok && en.Priority == p
					}
				}
			}
			if ok {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Printf("update of node-%d seen after %s\n", who, time.Since(at))
	}
}
