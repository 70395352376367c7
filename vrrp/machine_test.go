package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

var (
	t0    = time.Unix(1000, 0)
	self  = netip.MustParseAddr("198.51.100.11")
	lower = netip.MustParseAddr("198.51.100.10")
	upper = netip.MustParseAddr("198.51.100.12")
	ms    = time.Millisecond
)

func adv(prio uint8, interval time.Duration) Advert {
	return Advert{VRID: 1, Priority: prio, Interval: interval, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}
}

func TestTimers(t *testing.T) {
	for _, c := range []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{255, time.Second, 3906250, 3003906250},
		{1, 100 * ms, 99609375, 399609375},
		{150, 100 * ms, 41406250, 341406250},
		{50, 10 * ms, 8046875, 38046875},
	} {
		m := NewMachine(Params{Interval: c.interval}, c.prio, true)
		if m.SkewTime() != c.skew || m.MasterDownInterval() != c.down {
			t.Errorf("prio %d interval %s: skew %s down %s, want %s %s", c.prio, c.interval, m.SkewTime(), m.MasterDownInterval(), c.skew, c.down)
		}
	}
}

// step is one event at t0+at and what the machine must answer.
type step struct {
	at    time.Duration
	ev    string // start, tick, recv, input, force-master, force-backup, shutdown
	src   netip.Addr
	adv   Advert
	prio  uint8 // input
	elig  bool  // input
	degr  bool  // input
	want  Output
	state State // state after the step
}

func run(t *testing.T, m *Machine, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		var got Output
		switch s.ev {
		case "start":
			got = m.Start(now)
		case "tick":
			got = m.Tick(now)
		case "recv":
			got = m.Receive(now, s.src, s.adv)
		case "input":
			got = m.SetInput(now, s.prio, s.elig, s.degr)
		case "force-master":
			got = m.Force(now, Master, ReasonSyncMaster)
		case "force-backup":
			got = m.Force(now, Backup, ReasonSyncBackup)
		case "shutdown":
			got = m.Shutdown(now)
		default:
			t.Fatalf("step %d: unknown event %q", i, s.ev)
		}
		if got != s.want {
			t.Fatalf("step %d (%s at %s): got %+v, want %+v", i, s.ev, s.at, got, s.want)
		}
		if m.State() != s.state {
			t.Fatalf("step %d (%s at %s): state %s, want %s", i, s.ev, s.at, m.State(), s.state)
		}
	}
}

func TestMachine(t *testing.T) {
	toBackup := Output{Changed: true, State: Backup, Reason: ReasonStartBackup}
	send := func(p uint8) Output { return Output{Send: true, Priority: p} }
	master := func(p uint8, reason string) Output {
		return Output{Send: true, Priority: p, Changed: true, State: Master, Reason: reason, Peer: self}
	}
	// answer: a master hears a lower master, answers with an advert and
	// asks for a re-announce; heard: the same with the answer rate-limited;
	// yield: a master steps down with one last advert of its priority.
	answer := func(p uint8, from netip.Addr) Output {
		return Output{Send: true, Priority: p, Reannounce: true, Peer: from}
	}
	heard := func(from netip.Addr) Output { return Output{Reannounce: true, Peer: from} }
	yield := func(p uint8, to netip.Addr) Output {
		return Output{Send: true, Priority: p, Changed: true, State: Backup, Reason: ReasonHigherAdv, Peer: to}
	}
	p100 := Params{Interval: 100 * ms, Preempt: true, Self: self}
	for _, c := range []struct {
		name   string
		params Params
		prio   uint8
		elig   bool
		steps  []step
	}{
		{"alone: backup, then master after Master_Down_Interval", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 359 * ms, ev: "tick", state: Backup}, // 300ms + 60.9375ms skew
			{at: 361 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 400 * ms, ev: "tick", state: Master},
			{at: 461 * ms, ev: "tick", want: send(100), state: Master},
			{at: 561 * ms, ev: "tick", want: send(100), state: Master},
		}},
		{"backup learns the master's interval", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 100 * ms, ev: "recv", src: upper, adv: adv(200, time.Second), state: Backup},
			{at: 3700 * ms, ev: "tick", state: Backup}, // 3s + 609ms after the advert
			{at: 3710 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
		}},
		{"master leaves with priority 0: takeover after Skew_Time", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 100 * ms, ev: "recv", src: upper, adv: adv(200, 100*ms), state: Backup},
			{at: 200 * ms, ev: "recv", src: upper, adv: adv(0, 100*ms), state: Backup},
			{at: 260 * ms, ev: "tick", state: Backup},
			{at: 261 * ms, ev: "tick", want: master(100, ReasonMasterLeft), state: Master},
		}},
		{"preempt: a lower master is taken over after Skew_Time", Params{Interval: 100 * ms, Preempt: true, Self: self}, 150, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(200, 100*ms), state: Backup},
			{at: 110 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup}, // its priority dropped
			{at: 120 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup}, // does not push the timer back
			{at: 151 * ms, ev: "tick", state: Backup},                                    // skew 41.4ms at 150
			{at: 152 * ms, ev: "tick", want: master(150, ReasonPreempt), state: Master},
		}},
		{"preempt: the best backup takes over, a worse one then accepts it", Params{Interval: 100 * ms, Preempt: true, Self: self}, 120, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(200, 100*ms), state: Backup},
			{at: 110 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup}, // skew 53ms at 120
			{at: 152 * ms, ev: "recv", src: lower, adv: adv(150, 100*ms), state: Backup}, // a better backup preempted first
			{at: 170 * ms, ev: "tick", state: Backup},
			{at: 505 * ms, ev: "tick", state: Backup},
			{at: 506 * ms, ev: "tick", want: master(120, ReasonMasterDown), state: Master}, // 152 + 300 + its own skew 53.1ms
		}},
		{"preempt: a lower sender that is not the master followed is discarded (a flood)", Params{Interval: 100 * ms, Preempt: true, Self: self}, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(150, 100*ms), state: Backup},
			{at: 20 * ms, ev: "recv", src: lower, adv: adv(50, 100*ms), state: Backup},
			{at: 90 * ms, ev: "tick", state: Backup}, // no Skew_Time takeover
			{at: 110 * ms, ev: "recv", src: upper, adv: adv(150, 100*ms), state: Backup},
			{at: 120 * ms, ev: "recv", src: lower, adv: adv(50, 100*ms), state: Backup},
			{at: 470 * ms, ev: "tick", state: Backup}, // 110 + 360.9
			{at: 471 * ms, ev: "tick", want: master(100, ReasonPreempt), state: Master},
		}},
		{"nopreempt: a lower master keeps the group", Params{Interval: 100 * ms, Preempt: false, Self: self}, 150, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 300 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 600 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 900 * ms, ev: "tick", state: Backup},
			{at: 950 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
		}},
		{"preempt delay: wait before taking over", Params{Interval: 100 * ms, Preempt: true, PreemptDelay: time.Second, Self: self}, 150, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 100 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 400 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 700 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 1000 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 1050 * ms, ev: "tick", state: Backup},
			{at: 1100 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup}, // delay over: preempt after skew
			{at: 1141 * ms, ev: "tick", state: Backup},
			{at: 1142 * ms, ev: "tick", want: master(150, ReasonPreempt), state: Master},
		}},
		{"master yields to higher priority", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "recv", src: lower, adv: adv(99, 100*ms), want: answer(100, lower), state: Master},
			{at: 460 * ms, ev: "recv", src: lower, adv: adv(101, 100*ms), want: yield(100, lower), state: Backup},
		}},
		{"equal priority: higher address wins", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "recv", src: lower, adv: adv(100, 100*ms), want: answer(100, lower), state: Master},
			{at: 460 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), want: yield(100, upper), state: Backup},
		}},
		{"master answers a priority-0 advert at once", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 420 * ms, ev: "recv", src: lower, adv: adv(0, 100*ms), want: send(100), state: Master},
			{at: 500 * ms, ev: "tick", state: Master}, // timer restarted at 420
			{at: 520 * ms, ev: "tick", want: send(100), state: Master},
		}},
		{"master answers a lower-priority advert at once, at most once per interval (RFC 9568 §6.4.3)", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 430 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), want: answer(100, upper), state: Master},
			{at: 440 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), want: heard(upper), state: Master},        // rate-limited
			{at: 500 * ms, ev: "tick", state: Master},                                                              // timer restarted at 430
			{at: 520 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), want: heard(upper), state: Master},        // 90ms since the answer
			{at: 530 * ms, ev: "tick", want: send(100), state: Master},                                             // the periodic advert
			{at: 535 * ms, ev: "recv", src: lower, adv: adv(100, 100*ms), want: answer(100, lower), state: Master}, // equal priority, lower address
			{at: 540 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), want: heard(upper), state: Master},        // rate-limited
			{at: 630 * ms, ev: "tick", state: Master},
			{at: 635 * ms, ev: "tick", want: send(100), state: Master},
		}},
		{"address owner starts as master", p100, 255, true, []step{
			{at: 0, ev: "start", want: master(255, ReasonOwner), state: Master},
		}},
		{"ineligible master steps down with priority 0; ineligible backup never takes over", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "input", prio: 100, elig: false,
				want: Output{Send: true, Priority: 0, Changed: true, State: Backup, Reason: ReasonIneligible}, state: Backup},
			{at: 2 * time.Second, ev: "tick", state: Backup},
			{at: 5 * time.Second, ev: "tick", state: Backup},
			{at: 5100 * ms, ev: "input", prio: 100, elig: true, state: Backup},
			{at: 5400 * ms, ev: "tick", state: Backup},
			{at: 5500 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
		}},
		{"ineligible backup accepts any master", Params{Interval: 100 * ms, Preempt: true, Self: self}, 200, false, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 100 * ms, ev: "recv", src: upper, adv: adv(10, 100*ms), state: Backup},
			{at: 300 * ms, ev: "recv", src: upper, adv: adv(10, 100*ms), state: Backup},
			{at: 500 * ms, ev: "tick", state: Backup},
		}},
		{"priority change while master goes into the adverts", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "input", prio: 20, elig: true, want: send(20), state: Master}, // at once
			{at: 500 * ms, ev: "tick", state: Master},                                        // timer restarted at 450
			{at: 520 * ms, ev: "input", prio: 30, elig: true, state: Master},                 // at most one extra per interval
			{at: 550 * ms, ev: "tick", want: send(30), state: Master},                        // the next periodic advert tells
			{at: 650 * ms, ev: "tick", want: send(30), state: Master},
			{at: 660 * ms, ev: "input", prio: 30, elig: true, state: Master}, // unchanged: nothing to tell
			{at: 710 * ms, ev: "recv", src: lower, adv: adv(50, 100*ms), want: yield(30, lower), state: Backup},
		}},
		{"sync group forcing", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "force-master", want: master(100, ReasonSyncMaster), state: Master},
			{at: 20 * ms, ev: "force-master", state: Master},
			{at: 30 * ms, ev: "force-backup", want: Output{Changed: true, State: Backup, Reason: ReasonSyncBackup}, state: Backup},
			{at: 40 * ms, ev: "force-backup", state: Backup},
			{at: 50 * ms, ev: "input", prio: 100, elig: false, state: Backup},
			{at: 60 * ms, ev: "force-master", state: Backup},
		}},
		{"shutdown: master sends priority 0, backup just stops", p100, 100, true, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(100, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "shutdown", want: Output{Send: true, Priority: 0, Changed: true, State: Initialize, Reason: ReasonShutdown}, state: Initialize},
			{at: 460 * ms, ev: "tick", state: Initialize},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run(t, NewMachine(c.params, c.prio, c.elig), c.steps)
		})
	}
}

func TestMachineMasterInfo(t *testing.T) {
	m := NewMachine(Params{Interval: 100 * ms, Preempt: true, Self: self}, 100, true)
	m.Start(t0)
	m.Receive(t0.Add(ms), upper, adv(200, 200*ms))
	if a, p := m.Master(); a != upper || p != 200 || m.MasterInterval() != 200*ms {
		t.Fatalf("Master() = %s %d interval %s", a, p, m.MasterInterval())
	}
	if d := m.Deadline(); d != t0.Add(ms+600*ms+m.SkewTime()) {
		t.Fatalf("Deadline %s", d.Sub(t0))
	}
}

// TestMachineDegraded: a degraded router (election.Input.Degraded) is a last
// resort: it advertises priority 1 whatever its priority, keeps the group
// as master until a healthy preempting router takes it, never preempts a
// live master, and takes over only when no master is heard.
func TestMachineDegraded(t *testing.T) {
	toBackup := Output{Changed: true, State: Backup, Reason: ReasonStartBackup}
	send := func(p uint8) Output { return Output{Send: true, Priority: p} }
	master := func(p uint8, reason string) Output {
		return Output{Send: true, Priority: p, Changed: true, State: Master, Reason: reason, Peer: self}
	}
	// answer and yield: as in TestMachine.
	answer := func(p uint8, from netip.Addr) Output {
		return Output{Send: true, Priority: p, Reannounce: true, Peer: from}
	}
	yield := func(p uint8, to netip.Addr) Output {
		return Output{Send: true, Priority: p, Changed: true, State: Backup, Reason: ReasonHigherAdv, Peer: to}
	}
	preempt := Params{Interval: 100 * ms, Preempt: true, Self: self}
	nopreempt := Params{Interval: 100 * ms, Preempt: false, Self: self}
	for _, c := range []struct {
		name   string
		params Params
		prio   uint8
		steps  []step
	}{
		{"degraded master advertises 1 at once and keeps the group", preempt, 200, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(200, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "input", prio: 200, elig: true, degr: true, want: send(1), state: Master},
			{at: 550 * ms, ev: "tick", want: send(1), state: Master},
			{at: 650 * ms, ev: "tick", want: send(1), state: Master},
			{at: 700 * ms, ev: "input", prio: 250, elig: true, degr: true, state: Master}, // weights do not show while degraded
			{at: 750 * ms, ev: "tick", want: send(1), state: Master},
			{at: 760 * ms, ev: "input", prio: 250, elig: true, want: send(250), state: Master}, // healthy again
			{at: 800 * ms, ev: "input", prio: 250, elig: true, degr: true, state: Master},      // rate-limited: next advert tells
			{at: 860 * ms, ev: "tick", want: send(1), state: Master},
		}},
		{"degraded master yields to any live router, keeps against nothing", preempt, 200, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 400 * ms, ev: "tick", want: master(200, ReasonMasterDown), state: Master},
			{at: 450 * ms, ev: "input", prio: 200, elig: true, degr: true, want: send(1), state: Master},
			{at: 560 * ms, ev: "recv", src: lower, adv: adv(1, 100*ms), want: answer(1, lower), state: Master}, // degraded too, lower address
			{at: 580 * ms, ev: "recv", src: lower, adv: adv(2, 100*ms), want: yield(1, lower), state: Backup},
		}},
		{"healthy preempting backup takes over from a degraded master within its Skew_Time", preempt, 50, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(200, 100*ms), state: Backup},
			{at: 60 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup}, // its immediate advert
			{at: 140 * ms, ev: "tick", state: Backup},                                 // skew at 50: 80.5ms
			{at: 141 * ms, ev: "tick", want: master(50, ReasonPreempt), state: Master},
		}},
		{"nopreempt backup leaves a degraded master alone", nopreempt, 200, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(100, 100*ms), state: Backup},
			{at: 60 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup},
			{at: 160 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup},
			{at: 260 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup},
			{at: 360 * ms, ev: "tick", state: Backup},
			{at: 360 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup},
			{at: 620 * ms, ev: "tick", state: Backup},
			{at: 700 * ms, ev: "tick", want: master(200, ReasonMasterDown), state: Master}, // but takes over when it is gone
		}},
		{"degraded backup never preempts a live master, takes over when none is heard", preempt, 200, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 5 * ms, ev: "input", prio: 200, elig: true, degr: true, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup},
			{at: 110 * ms, ev: "recv", src: upper, adv: adv(1, 100*ms), state: Backup}, // a degraded master, higher address
			{at: 210 * ms, ev: "recv", src: lower, adv: adv(1, 100*ms), state: Backup}, // lower address: equal priority is accepted
			{at: 609 * ms, ev: "tick", state: Backup},                                  // 210 + 3 × 100ms + skew at 1: 99.6ms
			{at: 610 * ms, ev: "tick", want: master(1, ReasonMasterDown), state: Master},
			{at: 620 * ms, ev: "recv", src: lower, adv: adv(50, 100*ms), want: yield(1, lower), state: Backup},
		}},
		{"degraded backup with preempt delay still never preempts", Params{Interval: 100 * ms, Preempt: true, PreemptDelay: 50 * ms, Self: self}, 200, []step{
			{at: 0, ev: "start", want: toBackup, state: Backup},
			{at: 5 * ms, ev: "input", prio: 200, elig: true, degr: true, state: Backup},
			{at: 10 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup},
			{at: 110 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup},
			{at: 210 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup},
			{at: 300 * ms, ev: "tick", state: Backup},
			{at: 310 * ms, ev: "input", prio: 200, elig: true, state: Backup}, // healthy again
			{at: 320 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup},
			{at: 371 * ms, ev: "recv", src: upper, adv: adv(50, 100*ms), state: Backup}, // delay over: preempt after skew 21.9ms
			{at: 392 * ms, ev: "tick", state: Backup},
			{at: 393 * ms, ev: "tick", want: master(200, ReasonPreempt), state: Master},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run(t, NewMachine(c.params, c.prio, true), c.steps)
		})
	}
}
