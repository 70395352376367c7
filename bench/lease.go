package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/election/lease"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

// apiHost is the lab's extra namespace running etcd + kube-apiserver.
const apiHost = "api"

// Lease timing: the fast setting of docs/lease.md (4s/2s/500ms needs
// binding.lifetime 2s).
const (
	leaseDuration = 4 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
	leaseLifetime = 2 * time.Second
)

// Priorities 254/200/100: tie-break delays 0/54/154ms when the Lease is
// free, so node1, then node2, wins a free Lease.
var leasePrios = []int{254, 200, 100}

// leaseMode runs vipd in Lease mode against a real API server in the lab.
//
// A healthy node with a higher priority asks the holder for the Lease and
// is handed it (docs/lease.md), so node1 normally takes it back by itself
// once it runs again. Reclaim waits for that, and only if it does not
// happen it hands the Lease back the old way: once node1 runs and has read
// the Lease, the holder is stopped with SIGTERM (it releases the Lease;
// node1 with no tie-break delay takes it), and then restarted as a
// follower. That handover is not measured.
type leaseMode struct {
	*vipdMode
	vip netip.Addr
	cp  *kubetest.ControlPlane
}

func newLeaseMode(bin string, vip netip.Addr) *leaseMode {
	m := &leaseMode{vip: vip}
	m.vipdMode = newVipdMode("vipd-lease", bin,
		fmt.Sprintf("Lease: leaseDuration %s, renewDeadline %s, retryPeriod %s, binding.lifetime %s (refresh 1s), priorities 254/200/100 (node1 takes the Lease back by handover between rounds); API server in the lab's %q namespace",
			leaseDuration, renewDeadline, retryPeriod, leaseLifetime, apiHost),
		leasePrios, leaseLifetime, m.configFor)
	return m
}

func (m *leaseMode) configFor(h *lab.Host, prio int) *config.Config {
	return &config.Config{APIVersion: config.APIVersion, Kind: config.Kind, Node: h.Name, Mode: config.ModeLease,
		Lease: &config.Lease{Kubeconfig: m.cp.VipdKubeconfig, Namespace: "kube-system",
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod},
		Binding: config.Binding{Lifetime: leaseLifetime, Refresh: time.Second},
		Groups: []config.Group{{Name: "web", Priority: prio, Lease: &config.GroupLease{Name: "vipd-bench-web"},
			VIPs: []config.VIP{{Address: m.vip.String(), Interface: "eth0"}}}},
	}
}

// Setup starts etcd + kube-apiserver in the lab's api namespace and applies
// deploy/lease/rbac.yaml, so vipd runs with the manifest's rights.
func (m *leaseMode) Setup(ctx context.Context, l *lab.Lab) error {
	api := l.Extra[apiHost]
	if api == nil {
		return errors.New("lab has no api host")
	}
	if _, _, err := kubetest.Binaries(); err != nil {
		return err
	}
	start := time.Now()
	cp, err := kubetest.Start(ctx, kubetest.InLab(l, api))
	if err != nil {
		return err
	}
	m.cp = cp
	if err := cp.ApplyRBAC(ctx); err != nil {
		return err
	}
	fmt.Printf("control plane (etcd + kube-apiserver) in namespace %s at %s ready in %s\n", api.NetNS, cp.URL, time.Since(start).Round(time.Millisecond))
	return nil
}

func (m *leaseMode) Close() {
	if m.cp != nil {
		m.cp.Stop()
	}
}

// Reclaim hands the Lease to node1 (see leaseMode). It retries because a
// free Lease goes to whichever ready node tries first; priority only
// orders the tries.
func (m *leaseMode) Reclaim(ctx context.Context, l *lab.Lab, vip netip.Addr) error {
	node1 := l.Nodes[0].Name
	// The priority handover: node1 asks once it is a follower again.
	if _, err := testutil.Until(ctx, "node1 handed the Lease back", 15*time.Second, 50*time.Millisecond, func() bool {
		holders, _ := l.AddressHolders(vip)
		return len(holders) == 1 && holders[0] == node1
	}); err == nil {
		return nil
	}
	for handbacks := 0; ; {
		var holders []string
		// Someone holds it once a takeover in progress is done.
		if _, err := testutil.Until(ctx, "a single VIP holder", 30*time.Second, 50*time.Millisecond, func() bool {
			holders, _ = l.AddressHolders(vip)
			return len(holders) == 1
		}); err != nil {
			return err
		}
		if holders[0] == node1 {
			return nil
		}
		if handbacks == 5 {
			return fmt.Errorf("lease: node1 not the owner after %d hand-backs (holder %s)", handbacks, holders[0])
		}
		handbacks++
		holder := slices.IndexFunc(l.Nodes, func(h *lab.Host) bool { return h.Name == holders[0] })
		if _, err := testutil.Until(ctx, "node1 ready as a Lease follower", 30*time.Second, 50*time.Millisecond, func() bool { return leaseFollower(l.Nodes[0]) }); err != nil {
			return err
		}
		if err := m.Stop(holder); err != nil {
			return err
		}
		if err := m.Start(l, holder, m.prios[holder]); err != nil {
			return err
		}
		// Ready before the next round, or it could not take over first.
		if _, err := testutil.Until(ctx, holders[0]+" ready as a Lease follower", 30*time.Second, 50*time.Millisecond, func() bool { return leaseFollower(l.Nodes[holder]) }); err != nil {
			return err
		}
	}
}

// leaseFollower: h's vipd is ready (eligible, API server reachable) and has
// read the Lease, held by someone else. Only then can it take a released
// Lease first.
func leaseFollower(h *lab.Host) bool {
	c := h.HTTPClient()
	resp, err := c.Get("http://127.0.0.1:9610/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	resp, err = c.Get("http://127.0.0.1:9610/status")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Election []lease.GroupStatus `json:"election"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Election) != 1 {
		return false
	}
	g := st.Election[0]
	return g.APIError == "" && g.Holder != "" && g.Holder != h.Name
}
