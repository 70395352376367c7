package node

import (
	"net/netip"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/internal/health"
	"github.com/vipd/vipd/internal/hooks"
	"github.com/vipd/vipd/internal/metrics"
)

// The method sets through which the daemon reads or observes a mode, a
// health runner or an announcer for metrics, without importing the modes
// (and without them importing the metrics): each is optional.
type (
	// vrrpCounters: vrrp.Elector.
	vrrpCounters interface {
		Counters() (received, sent, sendErrors uint64, dropped map[string]uint64)
	}
	// memberCounter: gossip.Elector.
	memberCounter interface{ MembersByState() map[string]int }
	// renewObservable: lease.Elector.
	renewObservable interface {
		ObserveRenewals(func(group string, took time.Duration, errKind string))
	}
	// probeObservable: health.Runner.
	probeObservable interface {
		ObserveProbes(func(check string, took time.Duration))
	}
	// announcerStats: arp.Announcer.
	announcerStats interface{ StatsByInterface() []arp.InterfaceStats }
)

// observe connects the event metrics that the components report
// themselves (Lease renewals, probe durations).
func observe(m *metrics.Metrics, d Deps) {
	if m == nil {
		return
	}
	if o, ok := d.Elector.(renewObservable); ok {
		o.ObserveRenewals(m.LeaseRenew)
	}
	if o, ok := d.Health.(probeObservable); ok {
		o.ObserveProbes(m.Probe)
	}
}

// snapshot fills the scrape-time metrics from the daemon's state: the same
// numbers /status shows, read only when Prometheus asks.
func (d *daemon) snapshot(s *metrics.Snapshot) {
	s.Healthy, _ = d.Healthy()
	s.Ready, _ = d.Ready()
	for _, g := range d.manager.Groups() {
		mg := metrics.Group{Name: g.Name, Owner: g.Owner, Eligible: g.Eligible, Priority: g.Priority, BindFailures: g.BindFailures}
		for _, v := range g.VIPs {
			mv := metrics.VIP{Address: v.Address, Owned: g.Owner && v.Bound, Conflicts: v.Conflicts}
			if ip, err := netip.ParseAddr(v.Address); err == nil {
				if vs := d.verify.status(g.Name, ip); vs != nil && vs.Result != VerifyError {
					mv.Verified, mv.AnsweringMACs, mv.Findings = true, len(vs.MACs), vs.Findings
				}
			}
			mg.VIPs = append(mg.VIPs, mv)
		}
		s.Groups = append(s.Groups, mg)
		if hs, ok := d.hooks.Status(g.Name).(hooks.GroupStatus); ok {
			s.Hooks = append(s.Hooks, metrics.Hooks{Group: g.Name, Runs: hs.Runs, Failures: hs.Failures, Timeouts: hs.Timeouts, Dropped: hs.Dropped})
		}
	}
	if a, ok := d.announcer.(announcerStats); ok {
		for _, st := range a.StatsByInterface() {
			s.Announcements = append(s.Announcements, metrics.Announcements{Interface: st.Interface, Family: st.Family, Sent: st.Sent, Failed: st.Errors})
		}
	}
	for _, r := range d.health.Results() {
		s.Checks = append(s.Checks, metrics.Check{Name: r.Name, Passing: r.State == health.Passing, Passes: r.Passes, Failures: r.Failures})
	}
	rs := d.reloads.status()
	s.Reloads = metrics.Reloads{Applied: rs.Applied, Failed: rs.Failed}
	bs := d.binder.Stats()
	s.VIPRestores, s.VIPRefreshErrors = bs.Restores, bs.RefreshErrors
	if v, ok := d.elector.(vrrpCounters); ok {
		rx, tx, txErr, dropped := v.Counters()
		s.VRRP = &metrics.VRRP{Received: rx, Sent: tx, SendErrors: txErr, Dropped: dropped}
	}
	if d.verify != nil {
		p, e := d.verify.probeCounts()
		s.Verify = &metrics.Verify{Probes: p, Errors: e}
	}
	if g, ok := d.elector.(memberCounter); ok {
		s.GossipMembers = g.MembersByState()
	}
}
