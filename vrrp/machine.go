package vrrp

import (
	"net/netip"
	"time"
)

// State of a virtual router (RFC 5798 §6.4).
type State uint8

// States.
const (
	Initialize State = iota
	Backup
	Master
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "initialize"
	case Backup:
		return "backup"
	case Master:
		return "master"
	}
	return "unknown"
}

// Transition reasons (election.Transition.Reason); stable words.
const (
	ReasonMasterDown  = "master-down-timer"      // no advert from a master for Master_Down_Interval
	ReasonMasterLeft  = "priority-0-advert"      // the master said it leaves; took over after Skew_Time
	ReasonPreempt     = "preempt"                // a lower-priority master was heard: took over after Skew_Time
	ReasonHigherAdv   = "higher-priority-advert" // a better master exists
	ReasonOwner       = "address-owner"          // priority 255 starts as master
	ReasonIneligible  = "ineligible"             // health/drain made this node step down
	ReasonShutdown    = "shutdown"               // context cancelled
	ReasonSyncMaster  = "sync-group-master"      // another VR of the group became master
	ReasonSyncBackup  = "sync-group-backup"      // another VR of the group became backup
	ReasonStartBackup = "startup"                // Initialize -> Backup
)

// Params configure one virtual router.
type Params struct {
	// Interval is this router's Advertisement_Interval (10ms..40.95s).
	Interval time.Duration
	// Preempt lets a higher-priority backup take over from a lower-priority
	// master (RFC default). Preempt=false is keepalived's nopreempt: the
	// backup accepts any live master, whatever its priority, degraded
	// (priority 1) or not, and takes over only when no master is heard
	// (Master_Down_Timer, or a priority-0 advert).
	Preempt bool
	// PreemptDelay postpones preemption until a lower-priority master has
	// been seen for this long (keepalived preempt_delay), so a node that just
	// booted does not take the VIPs back before it is really ready.
	PreemptDelay time.Duration
	// Self is this router's primary address on the interface, the advert's
	// source: with equal priorities the higher address wins.
	Self netip.Addr
}

// Output is what the caller must do after an event.
type Output struct {
	// Send: transmit an advert now with Priority.
	Send     bool
	Priority uint8
	// Changed: the state changed to State, for Reason; Peer is the router
	// believed to be master now, when known.
	Changed bool
	State   State
	Reason  string
	Peer    netip.Addr
	// Reannounce: a master heard another router that believes it is master
	// with a lower priority (Peer): it could not hear us (a partition that
	// healed, a one-way link), so hosts may have learnt its MAC for the
	// VIPs. The caller announces the VIPs again, rate-limited, as
	// keepalived does with garp_lower_prio_repeat.
	Reannounce bool
}

// Machine is the RFC 5798 §6 state machine of one virtual router. It is pure:
// it performs no I/O and reads no clock; every event carries the current time
// (monotonic), and Deadline tells the caller when to call Tick next.
type Machine struct {
	p        Params
	prio     uint8 // configured priority (1..255)
	eligible bool
	// degraded: a last resort (election.Input.Degraded). It advertises
	// priority 1, so every healthy preempting router takes over, and it
	// never preempts anyone; as master it keeps the group until then.
	degraded bool
	state    State

	masterInterval time.Duration // Master_Adver_Interval
	masterDown     time.Time     // Backup: when the Master_Down_Timer fires
	downReason     string        // why it will fire: master-down-timer, priority-0-advert or preempt
	advertAt       time.Time     // Master: when the Adver_Timer fires
	lowerSince     time.Time     // first lower-priority advert seen (preempt delay)
	extraAt        time.Time     // Master: last advert sent outside the Adver_Timer (answer, priority change)

	master     netip.Addr // current master as far as known
	masterPrio uint8
	// following is the master whose last advert this backup accepted
	// (it reset the Master_Down_Timer); invalid when none is followed.
	following netip.Addr

	// want is the state this router would be in on its own (keepalived's
	// wantstate): Master once its Master_Down_Timer fired, Backup once it
	// accepted a master. syncHold, when set, is asked before a backup
	// becomes master: true keeps it backup (wanting master) because a
	// sibling of its sync group does not want master yet.
	want     State
	syncHold func() bool
}

// NewMachine returns a router in state Initialize.
func NewMachine(p Params, priority uint8, eligible bool) *Machine {
	return &Machine{p: p, prio: priority, eligible: eligible, masterInterval: p.Interval}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// WantsMaster reports whether this router would be master on its own: its
// Master_Down_Timer fired and no acceptable master has been heard since
// (keepalived's wantstate MASTER), or it is master.
func (m *Machine) WantsMaster() bool { return m.state == Master || m.want == Master }

// SetSyncHold installs the sync group's veto (keepalived
// vrrp_sync_can_goto_master): when hold returns true at the moment this
// backup would become master, it stays backup, wanting master, and waits
// another Master_Down_Interval.
func (m *Machine) SetSyncHold(hold func() bool) { m.syncHold = hold }

// Master returns the current master's address and priority as far as known
// (this router's own when it is master).
func (m *Machine) Master() (netip.Addr, uint8) {
	if m.state == Master {
		return m.p.Self, m.Advertised()
	}
	return m.master, m.masterPrio
}

// MasterInterval is the Master_Adver_Interval learned from the master.
func (m *Machine) MasterInterval() time.Duration { return m.masterInterval }

// Advertised is the priority this router puts in its adverts and compares
// with other routers': 0 when it may not be master, 1 when degraded (the
// lowest a live router can have, whatever its configured priority: every
// healthy router beats it), its priority otherwise.
func (m *Machine) Advertised() uint8 {
	switch {
	case !m.eligible:
		return 0
	case m.degraded && m.prio > 0:
		return 1
	}
	return m.prio
}

// Degraded reports whether the router is a last resort (SetInput).
func (m *Machine) Degraded() bool { return m.degraded }

// SetParams changes the router's parameters in place (a reload): the next
// adverts use the new interval; a master's next advert is not postponed.
func (m *Machine) SetParams(now time.Time, p Params) {
	old := m.p
	m.p = p
	if p.Interval != old.Interval {
		if m.masterInterval == old.Interval {
			m.masterInterval = p.Interval
		}
		if m.state == Master {
			m.advertAt = minTime(m.advertAt, now.Add(p.Interval))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SkewTime is ((256-Priority) × Master_Adver_Interval) / 256, with the
// priority this router advertises (a degraded router waits longest).
func (m *Machine) SkewTime() time.Duration {
	return time.Duration(256-int64(m.Advertised())) * m.masterInterval / 256
}

// MasterDownInterval is 3 × Master_Adver_Interval + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.masterInterval + m.SkewTime()
}

// Deadline is when Tick must next be called (zero in Initialize).
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case Backup:
		return m.masterDown
	case Master:
		return m.advertAt
	}
	return time.Time{}
}

func (m *Machine) canMaster() bool { return m.eligible && m.prio > 0 }

// Start leaves Initialize (RFC 5798 §6.4.1).
func (m *Machine) Start(now time.Time) Output {
	if m.state != Initialize {
		return Output{}
	}
	if m.Advertised() == PriorityOwner {
		return m.becomeMaster(now, ReasonOwner)
	}
	m.becomeBackup(now)
	return Output{Changed: true, State: Backup, Reason: ReasonStartBackup}
}

func (m *Machine) becomeMaster(now time.Time, reason string) Output {
	m.state, m.want = Master, Master
	m.advertAt = now.Add(m.p.Interval)
	m.lowerSince = time.Time{}
	return Output{Send: true, Priority: m.Advertised(), Changed: true, State: Master, Reason: reason, Peer: m.p.Self}
}

func (m *Machine) becomeBackup(now time.Time) {
	m.state = Backup
	m.masterDown = now.Add(m.MasterDownInterval())
	m.downReason = ReasonMasterDown
}

// Tick handles expired timers; call it at or after Deadline.
func (m *Machine) Tick(now time.Time) Output {
	switch m.state {
	case Backup:
		if now.Before(m.masterDown) {
			return Output{}
		}
		if !m.canMaster() {
			// Ineligible: never take over; keep the timer ticking slowly
			// rather than spinning.
			m.want = Backup
			m.master, m.masterPrio, m.following = netip.Addr{}, 0, netip.Addr{}
			m.masterDown = now.Add(m.MasterDownInterval())
			return Output{}
		}
		if m.syncHold != nil {
			m.want = Master
			if m.syncHold() {
				// A sibling does not want master (it hears a better
				// router): stay backup rather than pull the whole group
				// over and flap, as keepalived does. Check again after
				// another Master_Down_Interval.
				m.masterDown = now.Add(m.MasterDownInterval())
				return Output{}
			}
		}
		return m.becomeMaster(now, m.downReason)
	case Master:
		if now.Before(m.advertAt) {
			return Output{}
		}
		m.advertAt = now.Add(m.p.Interval)
		return Output{Send: true, Priority: m.Advertised()}
	}
	return Output{}
}

// Receive handles a valid advert for this VRID from src (RFC 5798 §6.4.2-3).
func (m *Machine) Receive(now time.Time, src netip.Addr, a Advert) Output {
	switch m.state {
	case Backup:
		if a.Priority == PriorityStop {
			// The master leaves: take over after Skew_Time, so the best
			// backup (smallest skew) wins without a full Master_Down_Interval.
			m.masterDown = now.Add(m.SkewTime())
			m.downReason = ReasonMasterLeft
			m.master, m.masterPrio, m.following = netip.Addr{}, 0, netip.Addr{}
			return Output{}
		}
		local := m.Advertised()
		accept := !m.p.Preempt || a.Priority >= local
		if !accept && m.p.PreemptDelay > 0 {
			if m.lowerSince.IsZero() {
				m.lowerSince = now
			}
			accept = now.Sub(m.lowerSince) < m.p.PreemptDelay
		}
		if a.Priority >= local {
			m.lowerSince = time.Time{}
		}
		weakened := src == m.following
		m.master, m.masterPrio = src, a.Priority
		if !accept {
			// Preemption. RFC 5798 §6.4.2 (and keepalived since 1.3)
			// discard the advert and let Master_Down_Timer run out, up to
			// 3 × interval + skew after the master's last acceptable advert.
			// When it is the master we followed that now advertises less
			// than us, it lost priority (a weight, a degraded check): treat
			// it like a leaving master and take over after Skew_Time, so the
			// best preempting backup (smallest skew) wins and the others
			// hear it before their own timer fires. Any other lower-priority
			// sender (a router that could not hear the master, a flood) is
			// discarded as the RFC says: the master we follow is still alive.
			// keepalived before 1.3 became master at once ("forcing a new
			// MASTER election"), on any lower advert.
			if weakened {
				m.masterDown = minTime(m.masterDown, now.Add(m.SkewTime()))
				m.following = netip.Addr{}
			}
			m.downReason = ReasonPreempt
			return Output{}
		}
		m.following = src
		m.masterInterval = a.Interval
		m.masterDown = now.Add(m.MasterDownInterval())
		m.downReason = ReasonMasterDown
		m.want = Backup
		return Output{}
	case Master:
		local := m.Advertised()
		if a.Priority == PriorityStop {
			// Another master is leaving: assert ourselves at once.
			m.advertAt = now.Add(m.p.Interval)
			return Output{Send: true, Priority: local}
		}
		if a.Priority > local || (a.Priority == local && addrGreater(src, m.p.Self)) {
			m.masterInterval = a.Interval
			m.becomeBackup(now)
			m.want = Backup
			m.master, m.masterPrio, m.following = src, a.Priority, src
			// One last advert with our priority after stepping down
			// (keepalived's higher_prio_send_advert): when two masters meet
			// (a partition heals) the new master may not have heard us, and
			// this tells it to announce the VIPs we held (Reannounce).
			return Output{Send: true, Priority: local, Changed: true, State: Backup, Reason: ReasonHigherAdv, Peer: src}
		}
		// A lower-priority router (or an equal one with a lower address)
		// believes it is master: discard its advert and assert ourselves at
		// once (RFC 9568 §6.4.3, as keepalived does), so it steps down now
		// rather than at our next advert and learning bridges see our path.
		// At most once per Advertisement_Interval, so a stream of such
		// adverts cannot make us send faster than twice the usual rate.
		// It held the VIPs too, so hosts may send to it: re-announce.
		out, _ := m.extra(now)
		out.Reannounce, out.Peer = true, src
		return out
	}
	return Output{}
}

// extra sends an advert now, outside the Adver_Timer (which restarts), at
// most once per Advertisement_Interval: a stream of stimuli cannot make a
// master send faster than twice its usual rate, and when one is refused the
// next periodic advert carries the same priority.
func (m *Machine) extra(now time.Time) (Output, bool) {
	if !m.extraAt.IsZero() && now.Sub(m.extraAt) < m.p.Interval {
		return Output{}, false
	}
	m.extraAt = now
	m.advertAt = now.Add(m.p.Interval)
	return Output{Send: true, Priority: m.Advertised()}, true
}

// SetInput changes priority, eligibility and degradation. A master that
// becomes ineligible steps down with a priority-0 advert, so a backup takes
// over after Skew_Time instead of Master_Down_Interval. A master whose
// advertised priority changes (a weight, degraded) stays master and
// advertises the new priority at once rather than at its next advert, so a
// better preempting backup takes over within its Skew_Time.
func (m *Machine) SetInput(now time.Time, priority uint8, eligible, degraded bool) Output {
	wasEligible := m.canMaster()
	was := m.Advertised()
	m.prio, m.eligible, m.degraded = priority, eligible, degraded
	switch m.state {
	case Master:
		if !m.canMaster() {
			m.becomeBackup(now)
			m.want = Backup
			m.master, m.masterPrio, m.following = netip.Addr{}, 0, netip.Addr{}
			return Output{Send: true, Priority: PriorityStop, Changed: true, State: Backup, Reason: ReasonIneligible}
		}
		if m.Advertised() != was {
			out, _ := m.extra(now)
			return out
		}
	case Backup:
		if !wasEligible && m.canMaster() {
			m.masterDown = now.Add(m.MasterDownInterval())
			m.downReason = ReasonMasterDown
		}
	}
	return Output{}
}

// Force aligns this router with the other routers of its sync group (the
// IPv4 and IPv6 routers of one vipd group): to Master (if it may be master)
// or to Backup.
func (m *Machine) Force(now time.Time, to State, reason string) Output {
	switch {
	case to == Master && m.state == Backup && m.canMaster():
		return m.becomeMaster(now, reason)
	case to == Backup && m.state == Master:
		m.becomeBackup(now)
		m.want = Backup
		return Output{Changed: true, State: Backup, Reason: reason}
	}
	return Output{}
}

// Shutdown returns to Initialize; a master sends a priority-0 advert.
func (m *Machine) Shutdown(now time.Time) Output {
	was := m.state
	m.state = Initialize
	if was == Master {
		return Output{Send: true, Priority: PriorityStop, Changed: true, State: Initialize, Reason: ReasonShutdown}
	}
	return Output{Changed: was != Initialize, State: Initialize, Reason: ReasonShutdown}
}

// addrGreater compares addresses as unsigned integers in network byte order
// (RFC 5798 §6.4.3: the higher primary address wins a tie).
func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }
