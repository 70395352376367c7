package lease

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/testutil"
)

// The owner cut off silently (its switch port stops forwarding: from the
// other nodes and from the API server, as vipd chaos's partition) for
// longer than leaseDuration, so another node takes over; then healed. The
// highest-priority node must take its group back promptly: its next
// request after the heal reaches the API server (at most one request
// deadline plus one retry period after the heal), then the handover's few
// writes. Before the fix its requests queued behind the one HTTP/2
// connection the partition had left in TCP's retransmission backoff,
// which resumed only at the next retransmission: up to as long again as
// the partition had lasted (docs/chaos.md, finding 7).
func TestLabLeasePartitionedOwnerTakesBack(t *testing.T) {
	c := newLabCluster(t)
	prios := []int{254, 200, 150}
	for i, p := range prios {
		c.start(i, p)
	}
	top := c.l.Nodes[0]
	holds := func(name string) func() bool {
		return func() bool {
			hs := c.held.holders()
			return len(hs) == 1 && hs[0] == name
		}
	}
	testutil.WaitForEvery(t, top.Name+" holds the VIP", 20*time.Second, 10*time.Millisecond, holds(top.Name))

	// The request deadline (max(2 × retryPeriod, 1s) = 1s) plus a retry
	// period: the cut-off node's first request that is sent after the heal;
	// then the handover (request, the holder's step-down and handover write,
	// the confirming write: a few round trips) and 1s of slack for the
	// shared machine.
	const bound = time.Second + 500*time.Millisecond + time.Second
	// How long the partition lasts beyond the takeover: the TCP
	// retransmission timer of a connection in backoff doubles (…, 3.2s,
	// 6.4s), so these land the heal at different points of it.
	for _, extra := range []time.Duration{500 * time.Millisecond, 2 * time.Second, 4 * time.Second} {
		before := len(c.procs[top.Name].Output())
		cut := time.Now()
		if err := top.SetIsolated(true); err != nil {
			t.Fatal(err)
		}
		next := c.waitNewOwner(top.Name, 10*time.Second)
		took := time.Since(cut)
		time.Sleep(extra)
		if err := top.SetIsolated(false); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		back := testutil.WaitForEvery(t, top.Name+" holds the VIP again", 30*time.Second, 10*time.Millisecond, holds(top.Name))
		t.Logf("%s cut off %s (%s took over after %s): took the group back %s after the heal",
			top.Name, healed.Sub(cut).Round(time.Millisecond), next, took.Round(time.Millisecond), back.Round(time.Millisecond))
		if back > bound {
			var lines []string
			for _, l := range strings.Split(c.procs[top.Name].Output()[before:], "\n") {
				if strings.Contains(l, "level=INFO") || strings.Contains(l, "level=WARN") {
					lines = append(lines, l)
				}
			}
			t.Errorf("%s took its group back %s after the heal (bound %s); its log since the cut:\n%s",
				top.Name, back.Round(time.Millisecond), bound, strings.Join(lines, "\n"))
		}
	}
	c.checkNoOverlap()
}
