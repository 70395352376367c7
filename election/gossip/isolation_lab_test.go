package gossip_test

import (
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

// Finding 6 of docs/chaos.md: a backup cut off by a silent partition
// declares the others dead and, back from isolation, re-joins before it
// takes the group; the partition heals while that re-join is under way
// (its push/pull started while cut off, its SYN lost). It must re-sync
// with the healed members and leave the group to its owner: it used to
// count as alone when the re-join's bound ran out after the heal and bind
// the VIP beside the owner's. Decided by the kernel's order of address
// changes (lab.WatchAddrs), not by timestamps.
func TestLabGossipBackupHealDuringResync(t *testing.T) {
	g := newGossipLab(t, 3, 3, 1, config.Gossip{})
	all := g.nodes
	w := lab.WatchAddrs(t, all...)
	for _, h := range all {
		g.start(h, g.key)
	}
	owners, _ := g.waitOneOwnerEach("start", all, 30*time.Second)
	vip := g.l.VIPv4(1)
	var backup *lab.Host
	for _, h := range all {
		if h.Name != owners[groupName(0)] {
			backup = h
			break
		}
	}
	if err := backup.SetIsolated(true); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	// The backup is back from isolation once it declared the others dead
	// and holds its take for the re-join (status: isolated, waiting).
	testutil.WaitForEvery(t, backup.Name+" re-joining after isolation", 10*time.Second, 10*time.Millisecond, func() bool {
		st, ok := status(backup)
		return ok && st.Election.Isolated && len(st.Election.Waiting) > 0
	})
	resync := time.Now()
	// Heal within the re-join's bound (1 s in fast), late enough that its
	// first push/pull (started while cut off) cannot succeed before it.
	time.Sleep(700 * time.Millisecond)
	if err := backup.SetIsolated(false); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	t.Logf("%s cut off for %s; re-join began %s after the cut, healed %s into it",
		backup.Name, healed.Sub(cut).Round(time.Millisecond), resync.Sub(cut).Round(time.Millisecond), healed.Sub(resync).Round(time.Millisecond))
	testutil.WaitForEvery(t, backup.Name+" re-synced with every member", 10*time.Second, 20*time.Millisecond, func() bool {
		st, ok := status(backup)
		return ok && !st.Election.Isolated && len(st.Election.Members) == len(all)
	})
	t.Logf("%s re-synced %s after the heal", backup.Name, time.Since(healed).Round(time.Millisecond))
	g.waitOneOwnerEach("after the heal", all, 10*time.Second)
	for _, h := range w.Holdings(vip) {
		if h.Host == backup.Name {
			t.Errorf("%s bound the VIP (event #%d, %s after the heal)", backup.Name, h.From.Seq, h.From.At.Sub(healed).Round(time.Millisecond))
		}
	}
	for _, o := range lab.Overlaps(w.Holdings(vip), time.Now()) {
		t.Errorf("two owners in the kernel: %s (%s)", o, o.For.Round(time.Millisecond))
	}
}
