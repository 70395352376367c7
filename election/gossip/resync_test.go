package gossip

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakePeers stands for memberlist's Join (a TCP push/pull) and Ping (a UDP
// ping) towards peers cut off from us until healAt (on the fake clock of a
// synctest bubble). It models what a partition does to them: a packet sent
// while cut off is lost, so a ping sent then goes unanswered (ProbeTimeout)
// and a connection started then fails at its timeout even when the heal
// comes meanwhile (the SYN was lost; the kernel repeats it after 1 s, which
// is memberlist's TCPTimeout in the fast profile). With linkDown, a packet
// sent while cut off fails at once (no route: our link is down).
type fakePeers struct {
	healAt       time.Time // the zero time: reachable from the start
	never        bool      // cut off for good
	refused      bool      // hosts up, no vipd listening
	linkDown     bool
	tcpTimeout   time.Duration
	probeTimeout time.Duration

	mu           sync.Mutex
	joins, pings int
}

func (f *fakePeers) cut(at time.Time) bool { return f.never || at.Before(f.healAt) }

func (f *fakePeers) Join(addrs []string) (int, error) {
	f.mu.Lock()
	f.joins++
	f.mu.Unlock()
	switch start := time.Now(); {
	case f.refused:
		return 0, errors.New("dial tcp 198.51.100.2:7946: connect: connection refused")
	case f.cut(start) && f.linkDown:
		return 0, errors.New("dial tcp 198.51.100.2:7946: connect: network is unreachable")
	case f.cut(start):
		time.Sleep(f.tcpTimeout)
		return 0, errors.New("dial tcp 198.51.100.2:7946: i/o timeout")
	}
	time.Sleep(time.Millisecond)
	return len(addrs), nil
}

func (f *fakePeers) Ping(node string, addr net.Addr) (time.Duration, error) {
	f.mu.Lock()
	f.pings++
	f.mu.Unlock()
	switch start := time.Now(); {
	case f.refused, f.cut(start) && !f.linkDown:
		time.Sleep(f.probeTimeout)
		return 0, errors.New("no ack")
	case f.cut(start):
		return 0, errors.New("sendto: network is unreachable")
	}
	time.Sleep(time.Millisecond)
	return time.Millisecond, nil
}

// Finding 6 of docs/chaos.md: a node back from isolation started its
// re-sync while still cut off; the partition healed within the bound, but
// the push/pull in flight had been started before (its SYN lost), failed
// at the bound, and the node elected alone from a view in which the others
// were still dead, beside the live owner. A node that can reach a peer
// within the bound must re-sync; one whose peers are really gone must get
// the verdict "alone" within the documented bound.
func TestResyncVerdict(t *testing.T) {
	const (
		bound  = time.Second            // fast: TCPTimeout
		retry  = 100 * time.Millisecond // fast: ProbeInterval
		probe  = 50 * time.Millisecond  // fast: ProbeTimeout
		settle = 200 * time.Millisecond // ten gossip rounds
	)
	for _, tc := range []struct {
		name       string
		f          *fakePeers
		heal       time.Duration
		wantSynced bool
		within     time.Duration // the verdict comes by then
	}{
		{name: "reachable", wantSynced: true, within: 10 * time.Millisecond},
		{name: "healed within the bound", heal: 500 * time.Millisecond, wantSynced: true, within: 500*time.Millisecond + retry + 10*time.Millisecond},
		{name: "healed just before the bound", heal: 950 * time.Millisecond, wantSynced: true, within: 950*time.Millisecond + retry + 10*time.Millisecond},
		{name: "link down, then up", f: &fakePeers{linkDown: true}, heal: 300 * time.Millisecond, wantSynced: true, within: 300*time.Millisecond + retry + 10*time.Millisecond},
		{name: "cut off for good", f: &fakePeers{never: true}, within: aloneWithin(bound, retry, probe)},
		// The race any bound has: a heal while the last ping round is out
		// (sent while cut off) comes too late; the verdict "alone" then
		// comes within ProbeTimeout of the heal, not a TCPTimeout later.
		{name: "healed during the last ping round", heal: bound + probe/2, within: aloneWithin(bound, retry, probe)},
		{name: "link down for good", f: &fakePeers{never: true, linkDown: true}, within: aloneWithin(bound, retry, probe)},
		{name: "refused", f: &fakePeers{refused: true}, within: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, err := New(Options{Node: "a", Peers: []string{"198.51.100.2:7946", "198.51.100.3:7946"}})
				if err != nil {
					t.Fatal(err)
				}
				f := tc.f
				if f == nil {
					f = &fakePeers{}
				}
				f.tcpTimeout, f.probeTimeout = bound, probe
				start := time.Now()
				if tc.heal > 0 {
					f.healAt = start.Add(tc.heal)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var wg sync.WaitGroup
				done := make(chan bool, 1)
				e.resync(ctx, &wg, f, done, bound, retry, probe, settle)
				synced := <-done
				took := time.Since(start)
				cancel()
				wg.Wait()
				if synced {
					took -= settle // the second push/pull waits settle on purpose
				}
				t.Logf("synced %v after %s (%d push/pulls, %d pings)", synced, took, f.joins, f.pings)
				if synced != tc.wantSynced {
					t.Errorf("synced = %v, want %v", synced, tc.wantSynced)
				}
				if took > tc.within {
					t.Errorf("the verdict took %s, want at most %s", took, tc.within)
				}
			})
		})
	}
}
