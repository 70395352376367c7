package lease

// Lab tests: three real vipd processes in lab namespaces elect through a real
// kube-apiserver + etcd running in the lab's "api" namespace, reached over
// the lab bridge. A client namespace probes the VIP (UDP, plus ARP sampling
// from a silent observer); the test also follows the VIP on every node with
// one order-exact netlink watch (lab.WatchAddrs), so "two owners at once" is
// checked at the kernel.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

const labPort = 7788

// labCluster is the lab, its control plane, and the vipd processes.
type labCluster struct {
	t     *testing.T
	l     *lab.Lab
	cp    *kubetest.ControlPlane
	api   *lab.Host
	bin   string
	vip   netip.Addr
	procs map[string]*lab.Process
	prio  map[string]int
	held  *holdings
}

func newLabCluster(t *testing.T) *labCluster {
	t.Helper()
	lab.Require(t)
	kubetest.Require(t)
	bin := lab.BuildVipd(t)
	l := lab.New(t, lab.Options{Nodes: 3, Extra: []string{"api"}})
	api := l.Extra["api"]
	start := time.Now()
	cp, err := kubetest.Start(t.Context(), kubetest.InLab(l, api))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("control plane in namespace %s at %s ready in %s", api.NetNS, cp.URL, time.Since(start).Round(time.Millisecond))
	applyRBAC(t, cp)
	if err := l.StartResponders(labPort); err != nil {
		t.Fatal(err)
	}
	c := &labCluster{t: t, l: l, cp: cp, api: api, bin: bin, vip: l.VIPv4(1),
		procs: map[string]*lab.Process{}, prio: map[string]int{}}
	c.held = watchHoldings(t, c.vip, l.Nodes)
	return c
}

func (c *labCluster) config(node string) *config.Config {
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: node, Mode: config.ModeLease,
		Lease: &config.Lease{Kubeconfig: c.cp.VipdKubeconfig, Namespace: "kube-system",
			LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond},
		Binding:  config.Binding{Lifetime: 2 * time.Second, Refresh: time.Second},
		Announce: config.Announce{Count: 3, Interval: 100 * time.Millisecond},
		Groups: []config.Group{{Name: "web", Priority: c.prio[node], Lease: &config.GroupLease{Name: "vipd-lab-web"},
			VIPs: []config.VIP{{Address: c.vip.String(), Interface: "eth0"}}}},
	}
}

func (c *labCluster) start(i, prio int) {
	c.t.Helper()
	h := c.l.Nodes[i]
	c.prio[h.Name] = prio
	p, err := c.l.StartVipdConfig(h, c.bin, c.config(h.Name))
	if err != nil {
		c.t.Fatal(err)
	}
	c.procs[h.Name] = p
}

func (c *labCluster) node(name string) (int, *lab.Host) {
	for i, h := range c.l.Nodes {
		if h.Name == name {
			return i, h
		}
	}
	c.t.Fatalf("no node %s", name)
	return 0, nil
}

// owner waits until exactly one node holds the VIP and the probe agrees.
func (c *labCluster) owner(probe *lab.Probe, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if hs := c.held.holders(); len(hs) == 1 {
			if probe == nil || probe.WaitOwner(hs[0], 2*time.Second) == nil {
				return hs[0]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no single owner within %s (holders %v)", timeout, c.held.holders())
	return ""
}

// leaseStatus reads a node's /status "election" entry for the group.
func (c *labCluster) leaseStatus(name string) GroupStatus {
	c.t.Helper()
	_, h := c.node(name)
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/status")
	if err != nil {
		c.t.Fatalf("%s /status: %v", name, err)
	}
	defer resp.Body.Close()
	var st struct {
		Election []GroupStatus `json:"election"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Election) != 1 {
		c.t.Fatalf("%s /status: %v %+v", name, err, st)
	}
	return st.Election[0]
}

// holdings follows the VIP on every node through one order-exact netlink
// watch (lab.WatchAddrs): who held it, in the kernels' order of changes,
// with receive times on the test's clock for the figures. "Two owners at
// once" is decided by that order, never by comparing receive times of
// different namespaces (which, under load, say nothing about the order).
type holdings struct {
	vip netip.Addr
	w   *lab.AddrWatch
}

type interval struct {
	node     string
	from, to time.Time // to zero: still held
	h        lab.Holding
}

func watchHoldings(t *testing.T, vip netip.Addr, nodes []*lab.Host) *holdings {
	return &holdings{vip: vip, w: lab.WatchAddrs(t, nodes...)}
}

func (h *holdings) holders() []string { return h.w.Holders(h.vip) }

// all returns every holding interval in the order they began, open ones
// ending at now.
func (h *holdings) all() []interval {
	var out []interval
	for _, x := range h.w.Holdings(h.vip) {
		out = append(out, interval{node: x.Host, from: x.From.At, to: x.To.At, h: x})
	}
	return out
}

// overlaps returns the pairs of intervals during which two different nodes
// held the VIP at once (in the kernels' order).
func overlaps(iv []interval) []lab.Overlap {
	hs := make([]lab.Holding, len(iv))
	for i, x := range iv {
		hs[i] = x.h
	}
	return lab.Overlaps(hs, time.Now())
}

// overlap returns the longest time two different nodes held the VIP at
// once, by the receive times, and who; ok is false if they never did (by
// the order: a real overlap too short for the stamps reads 0s, ok true).
func (h *holdings) overlap() (d time.Duration, what string, ok bool) {
	for _, o := range overlaps(h.all()) {
		if !ok || o.For > d {
			d, what, ok = o.For, fmt.Sprintf("%s and %s: %s", o.A.Host, o.B.Host, o), true
		}
	}
	return d, what, ok
}

// handover returns when from last dropped the VIP and to first took it at
// or after at (zero events if not); compare them with Before, which uses
// the kernels' order.
func (h *holdings) handover(from, to string, at time.Time) (dropped, took lab.AddrEvent) {
	for _, i := range h.w.Holdings(h.vip) {
		if i.Host == from && !i.To.IsZero() && !i.To.At.Before(at) && dropped.IsZero() {
			dropped = i.To
		}
		if i.Host == to && !i.From.At.Before(at) && took.IsZero() {
			took = i.From
		}
	}
	return dropped, took
}

func (c *labCluster) checkNoOverlap() {
	c.t.Helper()
	if d, who, ok := c.held.overlap(); ok {
		c.t.Errorf("two owners at once for %s (%s); holdings: %v", d, who, fmtHoldings(c.held.all()))
	}
}

func (c *labCluster) probe() *lab.Probe {
	c.t.Helper()
	p, err := c.l.StartProbe(context.Background(), c.vip, labPort, 10*time.Millisecond)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// TestLabLease runs the failure scenarios in sequence on one lab and one
// control plane (each costs seconds to build on a 2-core box), with the
// fast timing (leaseDuration 4s, renewDeadline 2s, retryPeriod 500ms, which
// needs binding.lifetime 2s).
func TestLabLease(t *testing.T) {
	c := newLabCluster(t)
	prios := []int{254, 200, 150}
	for i, p := range prios {
		c.start(i, p)
	}
	owner := c.owner(nil, 20*time.Second)
	t.Logf("first owner: %s", owner)

	restart := func(name string) {
		i, _ := c.node(name)
		c.start(i, prios[i])
		time.Sleep(time.Second)
	}
	// The highest priority takes its group back by handover (Lease mode's
	// preference by priority) once it runs again: wait until it holds.
	top := c.l.Nodes[0].Name
	settle := func() string {
		t.Helper()
		testutil.WaitForEvery(t, top+" holds the VIP again", 15*time.Second, 10*time.Millisecond, func() bool {
			hs := c.held.holders()
			return len(hs) == 1 && hs[0] == top
		})
		return top
	}

	t.Run("FollowerKilled", func(t *testing.T) {
		probe := c.probe()
		if err := probe.WaitOwner(owner, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		var follower string
		for _, h := range c.l.Nodes {
			if h.Name != owner {
				follower = h.Name
				break
			}
		}
		at := time.Now()
		_ = c.procs[follower].Kill()
		time.Sleep(6 * time.Second) // > leaseDuration
		restart(follower)
		time.Sleep(2 * time.Second)
		rec := probe.Stop()
		if f, ok := rec.FailoverAfter(at); ok {
			t.Fatalf("killing follower %s moved the VIP: %s", follower, f)
		}
		if hs := c.held.holders(); len(hs) != 1 || hs[0] != owner {
			t.Fatalf("holders %v, want still %s", hs, owner)
		}
		t.Logf("follower %s killed and restarted: no failover, %s", follower, rec.Summary())
	})

	t.Run("SIGTERM", func(t *testing.T) {
		for range 3 {
			probe := c.probe()
			if err := probe.WaitOwner(owner, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			_ = c.procs[owner].Signal(syscall.SIGTERM)
			next := c.waitNewOwner(owner, 5*time.Second)
			time.Sleep(500 * time.Millisecond)
			rec := probe.Stop()
			f, ok := rec.FailoverAfter(at)
			if !ok {
				t.Fatalf("probe saw no failover: %s", rec.Summary())
			}
			dropped, took := c.held.handover(owner, next, at)
			t.Logf("graceful handover %s -> %s (prio %d): service interruption %s, lost %d; VIP dropped -> peer bound %s; overlap %s, dual ARP samples %d",
				owner, next, c.prio[next], f.Interruption.Round(time.Millisecond), f.Lost, took.At.Sub(dropped.At).Round(time.Millisecond),
				f.Overlap, f.DualSamples)
			if f.Overlap > 0 || f.DualSamples > 0 || took.Before(dropped) {
				t.Errorf("overlap in a graceful handover")
			}
			if f.Interruption > time.Second {
				t.Errorf("graceful handover interruption %s", f.Interruption)
			}
			if exited, err := c.procs[owner].Wait(10 * time.Second); !exited || err != nil {
				t.Errorf("%s after SIGTERM: exited %v, err %v", owner, exited, err)
			}
			restart(owner)
			owner = settle()
			t.Logf("%s restarted: took the VIP back from %s by handover", owner, next)
		}
		c.checkNoOverlap()
	})

	t.Run("SIGKILL", func(t *testing.T) {
		for range 3 {
			probe := c.probe()
			if err := probe.WaitOwner(owner, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			_ = c.procs[owner].Kill()
			next := c.waitNewOwner(owner, 10*time.Second)
			time.Sleep(500 * time.Millisecond)
			rec := probe.Stop()
			f, ok := rec.FailoverAfter(at)
			if !ok {
				t.Fatalf("probe saw no failover: %s", rec.Summary())
			}
			dropped, took := c.held.handover(owner, next, at)
			// The responder behind the VIP survives vipd's death (as a real
			// service would), and the dead node's kernel keeps the VIP until
			// binding.lifetime runs out: so clients see an interruption only
			// from that expiry to the peer's bind.
			t.Logf("crash takeover %s -> %s (prio %d): SIGKILL -> peer bound the VIP %s (target <= 4.3s); dead node's VIP expired %s after the kill, %s before the peer bound it; service interruption %s, lost %d; overlap %s, dual ARP samples %d",
				owner, next, c.prio[next], took.At.Sub(at).Round(time.Millisecond), dropped.At.Sub(at).Round(time.Millisecond),
				took.At.Sub(dropped.At).Round(time.Millisecond), f.Interruption.Round(time.Millisecond), f.Lost, f.Overlap, f.DualSamples)
			if f.Overlap > 0 || f.DualSamples > 0 || dropped.IsZero() || took.Before(dropped) {
				t.Errorf("overlap after a crash")
			}
			if took.At.Sub(at) > 6*time.Second {
				t.Errorf("crash takeover took %s", took.At.Sub(at))
			}
			restart(owner)
			owner = settle()
		}
		c.checkNoOverlap()
	})

	t.Run("Partition", func(t *testing.T) {
		for range 2 {
			probe := c.probe()
			if err := probe.WaitOwner(owner, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			_, h := c.node(owner)
			route := c.api.IPv4.Addr().String() + "/32"
			at := time.Now()
			if _, err := h.Run(t.Context(), "ip", "route", "add", "blackhole", route); err != nil {
				t.Fatal(err)
			}
			next := c.waitNewOwner(owner, 10*time.Second)
			time.Sleep(500 * time.Millisecond)
			rec := probe.Stop()
			f, ok := rec.FailoverAfter(at)
			if !ok {
				t.Fatalf("probe saw no failover: %s", rec.Summary())
			}
			dropped, took := c.held.handover(owner, next, at)
			st := c.leaseStatus(owner)
			t.Logf("partition of %s from the API server: it dropped the VIP %s after the cut; %s bound it %s after the cut (gap %s); overlap %s, dual ARP samples %d; cut-off node status: owner=%v apiError=%q",
				owner, dropped.At.Sub(at).Round(time.Millisecond), next, took.At.Sub(at).Round(time.Millisecond),
				took.At.Sub(dropped.At).Round(time.Millisecond), f.Overlap, f.DualSamples, st.Owner, st.APIError)
			if dropped.IsZero() || took.Before(dropped) || f.Overlap > 0 || f.DualSamples > 0 {
				t.Errorf("overlap in a partition")
			}
			if st.Owner || st.APIError == "" {
				t.Errorf("cut-off node's status %+v", st)
			}
			if _, err := h.Run(t.Context(), "ip", "route", "del", "blackhole", route); err != nil {
				t.Fatal(err)
			}
			// Healed, the old owner (the highest priority) takes its group
			// back by handover, and nothing else moves.
			owner = settle()
			time.Sleep(2 * time.Second)
			if hs := c.held.holders(); len(hs) != 1 || hs[0] != owner {
				t.Fatalf("after healing: holders %v, want %s", hs, owner)
			}
		}
		c.checkNoOverlap()
	})

	t.Run("APIServerRestart", func(t *testing.T) {
		probe := c.probe()
		if err := probe.WaitOwner(owner, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		// SIGKILL: a crisp moment of loss. (After SIGTERM kube-apiserver keeps
		// serving open connections while it drains, so renewals go on.)
		c.cp.KillAPIServer()
		stopped := time.Since(at)
		// Without the API server nobody can prove ownership: the owner drops
		// the VIP at its renew deadline and nobody takes it.
		testutil.WaitForEvery(t, "owner drops the VIP", 10*time.Second, 10*time.Millisecond, func() bool { return len(c.held.holders()) == 0 })
		dropAt := time.Now()
		time.Sleep(6 * time.Second)
		if hs := c.held.holders(); len(hs) != 0 {
			t.Fatalf("holders %v without an API server", hs)
		}
		for name := range c.procs {
			if c.procs[name].Exited() {
				t.Fatalf("%s exited while the API server was down", name)
			}
			if st := c.leaseStatus(name); st.APIError == "" {
				t.Errorf("%s status shows no API error: %+v", name, st)
			}
		}
		back := time.Now()
		if err := c.cp.StartAPIServer(t.Context()); err != nil {
			t.Fatal(err)
		}
		ready := time.Since(back)
		next := c.owner(probe, 20*time.Second)
		t.Logf("API server SIGKILLed at 0 (reaped at %s); %s dropped the VIP at %s (renew deadline 2s after its last renewal); API server restarted, /readyz ok after %s; %s owns the VIP %s after the restart began",
			stopped.Round(time.Millisecond), owner, dropAt.Sub(at).Round(10*time.Millisecond), ready.Round(time.Millisecond), next, time.Since(back).Round(time.Millisecond))
		if dropAt.Sub(at) > 3*time.Second {
			t.Errorf("owner kept the VIP %s without an API server", dropAt.Sub(at))
		}
		probe.Stop()
		for name, p := range c.procs {
			if p.Exited() {
				t.Errorf("%s exited", name)
			}
		}
		owner = next
		c.checkNoOverlap()
	})
	t.Logf("VIP holdings over the whole test: %s", fmtHoldings(c.held.all()))
}

// waitNewOwner waits for a node other than old to hold the VIP.
func (c *labCluster) waitNewOwner(old string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.held.holders() {
			if n != old {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no new owner within %s (holders %v)", timeout, c.held.holders())
	return ""
}

func fmtHoldings(iv []interval) string {
	if len(iv) == 0 {
		return "none"
	}
	t0 := iv[0].from
	var b strings.Builder
	for _, i := range iv {
		to := "now"
		if !i.to.IsZero() {
			to = i.to.Sub(t0).Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "\n  %s [%s .. %s]", i.node, i.from.Sub(t0).Round(time.Millisecond), to)
	}
	return b.String()
}
