package lease

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

// A hung owner (SIGSTOP) for longer than binding.lifetime: its kernel
// removes the VIP (the dead-man's switch) and another node takes the Lease
// and binds it. On SIGCONT the resumed vipd must not put the VIP back (its
// address watch reads the kernel's deletion, its refresh loop wakes up)
// before its election has caught up: the VIP lapsed, and only the Lease
// may give it back (docs/chaos.md, finding 3). The kernels' order of
// address changes (lab.WatchAddrs) must show no two holders at any moment:
// in Lease mode nothing excuses an overlap.
func TestLabLeaseStoppedOwnerDoesNotRestoreItsVIP(t *testing.T) {
	c := newLabCluster(t)
	prios := []int{254, 200, 150}
	for i, p := range prios {
		c.start(i, p)
	}
	top := c.l.Nodes[0].Name
	settle := func() {
		t.Helper()
		testutil.WaitForEvery(t, top+" holds the VIP", 20*time.Second, 10*time.Millisecond, func() bool {
			hs := c.held.holders()
			return len(hs) == 1 && hs[0] == top
		})
	}
	settle()
	// SIGCONT at once when the new owner bound the VIP (the window of the
	// finding: both the resumed node's address watch and its refresh loop
	// race its elector), and later.
	for _, after := range []time.Duration{0, 300 * time.Millisecond, time.Second, 2 * time.Second} {
		before := len(c.held.w.Events())
		p := c.procs[top]
		at := time.Now()
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		next := c.waitNewOwner(top, 10*time.Second)
		time.Sleep(after)
		stopped := time.Since(at)
		if err := p.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed := time.Now()
		settle()
		time.Sleep(500 * time.Millisecond)
		evs := c.held.w.Events()[before:]
		if ov := lab.Overlaps(lab.HoldingsOf(evs, c.vip), time.Now()); len(ov) > 0 {
			t.Errorf("stopped %s, SIGCONT %s after %s bound the VIP: two owners: %v; holdings: %v",
				stopped.Round(time.Millisecond), after, next, ov, fmtHoldings(c.held.all()))
		}
		// The resumed node's first add after SIGCONT comes after the new
		// owner's removal (the handover back), in the kernels' order.
		dropped, took := c.held.handover(next, top, resumed)
		if dropped.IsZero() || took.IsZero() || took.Before(dropped) {
			t.Errorf("%s took the VIP back (event %d) before %s removed it (event %d)", top, took.Seq, next, dropped.Seq)
		}
		t.Logf("%s stopped %s (until %s after %s bound the VIP): resumed, %s dropped the VIP %s after SIGCONT, %s took it back %s after SIGCONT",
			top, stopped.Round(time.Millisecond), after, next, next, dropped.At.Sub(resumed).Round(time.Millisecond),
			top, took.At.Sub(resumed).Round(time.Millisecond))
	}
	// Nobody took a valid Lease from its holder: the resumed node gets
	// its group back by handover (or once the Lease is free), never by
	// writing over another node's hold (its holder would see lease-lost).
	for _, n := range c.l.Nodes[1:] {
		for _, line := range strings.Split(c.procs[n.Name].Output(), "\n") {
			if strings.Contains(line, "msg=transition") && strings.Contains(line, "reason=lease-lost") {
				t.Errorf("%s lost a valid Lease: %s", n.Name, line)
			}
		}
	}
	out := c.procs[top].Output()
	if strings.Contains(out, "VIP was deleted while owned; restored") {
		t.Errorf("%s restored a VIP whose lifetime ran out:\n%s", top, out)
	}
	// Which of the resumed node's goroutines acts first is a race: its
	// elector (renew-deadline, lease-lost) or its binder (a lapse).
	t.Logf("%s: %d of the resumes lapsed the VIP in the binder first; the others stepped down in the elector first",
		top, strings.Count(out, "VIP lifetime ran out since its last refresh"))
	c.checkNoOverlap()
}
