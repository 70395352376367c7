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
	ReasonPreempt     = "preempt"                // ignored a lower-priority master and took over
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
	// master (RFC default; keepalived's nopreempt is Preempt=false).
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
}

// Machine is the RFC 5798 §6 state machine of one virtual router. It is pure:
// it performs no I/O and reads no clock; every event carries the current time
// (monotonic), and Deadline tells the caller when to call Tick next.
type Machine struct {
	p        Params
	prio     uint8 // configured priority (1..255)
	eligible bool
	state    State

	masterInterval time.Duration // Master_Adver_Interval
	masterDown     time.Time     // Backup: when the Master_Down_Timer fires
	downReason     string        // why it will fire: master-down-timer, priority-0-advert or preempt
	advertAt       time.Time     // Master: when the Adver_Timer fires
	lowerSince     time.Time     // first lower-priority advert seen (preempt delay)
	answeredAt     time.Time     // Master: last immediate answer to a lower-priority advert

	master     netip.Addr // current master as far as known
	masterPrio uint8

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
		return m.p.Self, m.prio
	}
	return m.master, m.masterPrio
}

// MasterInterval is the Master_Adver_Interval learned from the master.
func (m *Machine) MasterInterval() time.Duration { return m.masterInterval }

// SkewTime is ((256-Priority) × Master_Adver_Interval) / 256.
func (m *Machine) SkewTime() time.Duration {
	return time.Duration(256-int64(m.prio)) * m.masterInterval / 256
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
	if m.prio == PriorityOwner && m.eligible {
		return m.becomeMaster(now, ReasonOwner)
	}
	m.becomeBackup(now)
	return Output{Changed: true, State: Backup, Reason: ReasonStartBackup}
}

func (m *Machine) becomeMaster(now time.Time, reason string) Output {
	m.state, m.want = Master, Master
	m.advertAt = now.Add(m.p.Interval)
	m.lowerSince = time.Time{}
	return Output{Send: true, Priority: m.prio, Changed: true, State: Master, Reason: reason, Peer: m.p.Self}
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
			m.master, m.masterPrio = netip.Addr{}, 0
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
		return Output{Send: true, Priority: m.prio}
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
			m.master, m.masterPrio = netip.Addr{}, 0
			return Output{}
		}
		local := m.prio
		if !m.canMaster() {
			local = 0
		}
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
		m.master, m.masterPrio = src, a.Priority
		if !accept {
			// Let Master_Down_Timer run out: this is preemption.
			m.downReason = ReasonPreempt
			return Output{}
		}
		m.masterInterval = a.Interval
		m.masterDown = now.Add(m.MasterDownInterval())
		m.downReason = ReasonMasterDown
		m.want = Backup
		return Output{}
	case Master:
		if a.Priority == PriorityStop {
			// Another master is leaving: assert ourselves at once.
			m.advertAt = now.Add(m.p.Interval)
			return Output{Send: true, Priority: m.prio}
		}
		if a.Priority > m.prio || (a.Priority == m.prio && addrGreater(src, m.p.Self)) {
			m.masterInterval = a.Interval
			m.becomeBackup(now)
			m.want = Backup
			m.master, m.masterPrio = src, a.Priority
			return Output{Changed: true, State: Backup, Reason: ReasonHigherAdv, Peer: src}
		}
		// A lower-priority router (or an equal one with a lower address)
		// believes it is master: discard its advert and assert ourselves at
		// once (RFC 9568 §6.4.3, as keepalived does), so it steps down now
		// rather than at our next advert and learning bridges see our path.
		// At most once per Advertisement_Interval, so a stream of such
		// adverts cannot make us send faster than twice the usual rate.
		if m.answeredAt.IsZero() || now.Sub(m.answeredAt) >= m.p.Interval {
			m.answeredAt = now
			m.advertAt = now.Add(m.p.Interval)
			return Output{Send: true, Priority: m.prio}
		}
	}
	return Output{}
}

// SetInput changes priority and eligibility. A master that becomes
// ineligible steps down with a priority-0 advert, so a backup takes over
// after Skew_Time instead of Master_Down_Interval.
func (m *Machine) SetInput(now time.Time, priority uint8, eligible bool) Output {
	wasEligible := m.canMaster()
	m.prio, m.eligible = priority, eligible
	switch m.state {
	case Master:
		if !m.canMaster() {
			m.becomeBackup(now)
			m.want = Backup
			m.master, m.masterPrio = netip.Addr{}, 0
			return Output{Send: true, Priority: PriorityStop, Changed: true, State: Backup, Reason: ReasonIneligible}
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
