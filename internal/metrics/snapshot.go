package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what the daemon's components count and know, read at scrape
// time: nothing here costs the daemon anything between scrapes.
type Snapshot struct {
	// Ready and Healthy are /readyz and /healthz.
	Ready, Healthy bool
	Groups         []Group
	Announcements  []Announcements
	Checks         []Check
	Hooks          []Hooks
	Reloads        Reloads
	// Binding: VIPs put back after someone deleted them, failed lifetime
	// refreshes (internal/addr).
	VIPRestores, VIPRefreshErrors uint64
	// VRRP is set in VRRP mode.
	VRRP *VRRP
	// GossipMembers counts gossip members by state (alive, left, failed),
	// this node included; nil outside gossip mode.
	GossipMembers map[string]int
	// Verify is owner verification's node-wide counters (nil: off).
	Verify *Verify
}

// Verify counts owner verification's probes (docs/verify.md).
type Verify struct{ Probes, Errors uint64 }

// Group is one group's state on this node.
type Group struct {
	Name     string
	Owner    bool
	Eligible bool
	Priority int
	// BindFailures counts takes that failed because a VIP could not be bound.
	BindFailures uint64
	VIPs         []VIP
}

// VIP is one VIP of a group.
type VIP struct {
	Address string
	// Owned: this node owns the group and holds the VIP.
	Owned bool
	// Conflicts counts frames in which another MAC claimed the VIP while
	// this node held it.
	Conflicts uint64
	// Verified: the VIP has been verified on the wire at least once;
	// AnsweringMACs is how many MACs answered then (1 is right), and
	// Findings counts confirmed findings by result (split, none, foreign).
	Verified      bool
	AnsweringMACs int
	Findings      map[string]uint64
}

// Announcements are the gratuitous ARP / unsolicited NA counters of one
// interface and family ("ipv4", "ipv6").
type Announcements struct {
	Interface, Family string
	Sent, Failed      uint64
}

// Check is one health check.
type Check struct {
	Name             string
	Passing          bool
	Passes, Failures uint64
}

// Hooks are one group's notify hook counters.
type Hooks struct {
	Group                    string
	Runs, Failures, Timeouts uint64
	Dropped                  uint64
}

// Reloads count configuration reloads.
type Reloads struct{ Applied, Failed uint64 }

// VRRP are the VRRP mode's packet counters.
type VRRP struct {
	Received, Sent, SendErrors uint64
	// Dropped counts discarded packets by reason (a fixed set of words).
	Dropped map[string]uint64
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

var (
	dReady          = desc("ready", "1 while the node is ready to own VIPs (/readyz: every group eligible and the mode ready).")
	dHealthy        = desc("healthy", "1 while the process works (/healthz: VIP refresh loop and every watch running).")
	dGroupOwner     = desc("group_owner", "1 while this node owns the group.", "group")
	dGroupEligible  = desc("group_eligible", "1 while this node is eligible to own the group (links, bind hold-down, health gates).", "group")
	dGroupPriority  = desc("group_priority", "This node's effective priority for the group (base plus check weights).", "group")
	dBindFailures   = desc("bind_failures_total", "Takes of the group that failed because a VIP could not be bound.", "group")
	dVIPOwned       = desc("vip_owned", "1 while this node owns the VIP's group and holds the VIP.", "group", "vip")
	dConflicts      = desc("conflicts_total", "Frames in which another MAC claimed a VIP this node held.", "group", "vip")
	dAnnSent        = desc("announcements_sent_total", "Announcements sent (gratuitous ARP for IPv4, unsolicited neighbour advertisement for IPv6; one per address, all forms).", "interface", "family")
	dAnnFailed      = desc("announcements_failed_total", "Announcements that could not be sent.", "interface", "family")
	dCheckPassing   = desc("health_check_passing", "1 while the health check passes (0 failing or not known yet).", "check")
	dCheckAttempts  = desc("health_check_attempts_total", "Health check attempts (and observations of watched checks) by result (pass, fail).", "check", "result")
	dHookRuns       = desc("hook_runs_total", "Notify hook processes run.", "group")
	dHookFailures   = desc("hook_failures_total", "Notify hook processes that did not exit 0 (timeouts and start errors included).", "group")
	dHookTimeouts   = desc("hook_timeouts_total", "Notify hook processes killed by their timeout.", "group")
	dHookDropped    = desc("hook_events_dropped_total", "Notify hook events never run (queue full, or still queued at shutdown).", "group")
	dReloads        = desc("config_reloads_total", "Configuration reloads by result (applied, failed).", "result")
	dRestores       = desc("vip_restores_total", "VIPs bound again after they disappeared from the interface while owned.")
	dRefreshErrors  = desc("vip_refresh_errors_total", "Failed renewals of a VIP's kernel lifetime.")
	dVRRPReceived   = desc("vrrp_adverts_received_total", "Valid VRRP advertisements received.")
	dVRRPSent       = desc("vrrp_adverts_sent_total", "VRRP advertisements sent.")
	dVRRPSendErrors = desc("vrrp_advert_send_errors_total", "VRRP advertisements that could not be sent.")
	dVRRPDropped    = desc("vrrp_packets_dropped_total", "VRRP packets discarded, by reason (see docs/vrrp.md).", "reason")
	dGossipMembers  = desc("gossip_members", "Gossip cluster members by state (alive, left, failed), this node included.", "state")
	dVerifyFindings = desc("verify_findings_total", "Confirmed owner-verification findings for the VIP, by result: split (two or more MACs answer), none (nobody answers while an owner is elected), foreign (a MAC other than the owner's answers alone).", "group", "vip", "result")
	dVerifyMACs     = desc("verify_answering_macs", "MACs that answered for the VIP at its last verification (1 is right; 0 or 2+ is a finding when an owner is elected).", "group", "vip")
	dVerifyProbes   = desc("verify_probes_total", "Owner-verification probes sent (ARP requests / neighbour solicitations).")
	dVerifyErrors   = desc("verify_probe_errors_total", "Owner-verification probes that could not be sent.")

	allDescs = []*prometheus.Desc{dReady, dHealthy, dGroupOwner, dGroupEligible, dGroupPriority, dBindFailures,
		dVIPOwned, dConflicts, dAnnSent, dAnnFailed, dCheckPassing, dCheckAttempts, dHookRuns, dHookFailures,
		dHookTimeouts, dHookDropped, dReloads, dRestores, dRefreshErrors, dVRRPReceived, dVRRPSent,
		dVRRPSendErrors, dVRRPDropped, dGossipMembers, dVerifyFindings, dVerifyMACs, dVerifyProbes, dVerifyErrors}
)

// snapshotCollector turns the daemon's Snapshot into metrics at scrape time.
type snapshotCollector struct{ m *Metrics }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	fill := c.m.snapshot
	c.m.mu.Unlock()
	if fill == nil {
		return
	}
	var s Snapshot
	fill(&s)
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge(dReady, b2f(s.Ready))
	gauge(dHealthy, b2f(s.Healthy))
	for _, g := range s.Groups {
		gauge(dGroupOwner, b2f(g.Owner), g.Name)
		gauge(dGroupEligible, b2f(g.Eligible), g.Name)
		gauge(dGroupPriority, float64(g.Priority), g.Name)
		counter(dBindFailures, g.BindFailures, g.Name)
		for _, v := range g.VIPs {
			gauge(dVIPOwned, b2f(v.Owned), g.Name, v.Address)
			counter(dConflicts, v.Conflicts, g.Name, v.Address)
			if s.Verify != nil && v.Verified {
				gauge(dVerifyMACs, float64(v.AnsweringMACs), g.Name, v.Address)
				for _, r := range []string{"split", "none", "foreign"} {
					counter(dVerifyFindings, v.Findings[r], g.Name, v.Address, r)
				}
			}
		}
	}
	for _, a := range s.Announcements {
		counter(dAnnSent, a.Sent, a.Interface, a.Family)
		counter(dAnnFailed, a.Failed, a.Interface, a.Family)
	}
	for _, k := range s.Checks {
		gauge(dCheckPassing, b2f(k.Passing), k.Name)
		counter(dCheckAttempts, k.Passes, k.Name, "pass")
		counter(dCheckAttempts, k.Failures, k.Name, "fail")
	}
	for _, h := range s.Hooks {
		counter(dHookRuns, h.Runs, h.Group)
		counter(dHookFailures, h.Failures, h.Group)
		counter(dHookTimeouts, h.Timeouts, h.Group)
		counter(dHookDropped, h.Dropped, h.Group)
	}
	counter(dReloads, s.Reloads.Applied, "applied")
	counter(dReloads, s.Reloads.Failed, "failed")
	counter(dRestores, s.VIPRestores)
	counter(dRefreshErrors, s.VIPRefreshErrors)
	if v := s.VRRP; v != nil {
		counter(dVRRPReceived, v.Received)
		counter(dVRRPSent, v.Sent)
		counter(dVRRPSendErrors, v.SendErrors)
		for _, r := range sortedKeys(v.Dropped) {
			counter(dVRRPDropped, v.Dropped[r], r)
		}
	}
	if v := s.Verify; v != nil {
		counter(dVerifyProbes, v.Probes)
		counter(dVerifyErrors, v.Errors)
	}
	if s.GossipMembers != nil {
		for _, st := range sortedKeys(s.GossipMembers) {
			gauge(dGossipMembers, float64(s.GossipMembers[st]), st)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
