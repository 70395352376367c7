package vrrp

import (
	"testing"
	"time"
)

// TestSyncHold: the IPv4 and IPv6 routers of one group as a keepalived sync
// group (issue #11, 6). The IPv4 router hears a better master; the IPv6
// router hears nobody. Neither may become master: the IPv6 router wants
// master but its sibling does not. Once the IPv4 master goes silent, both
// want master and the last to time out takes over.
func TestSyncHold(t *testing.T) {
	p := Params{Interval: 100 * ms, Preempt: true, Self: self}
	m4, m6 := NewMachine(p, 100, true), NewMachine(p, 100, true)
	m4.SetSyncHold(func() bool { return !m6.WantsMaster() })
	m6.SetSyncHold(func() bool { return !m4.WantsMaster() })
	m4.Start(t0)
	m6.Start(t0)
	step := func(now time.Time) {
		for _, m := range []*Machine{m4, m6} {
			if d := m.Deadline(); !d.IsZero() && !now.Before(d) {
				m.Tick(now)
			}
		}
	}
	now := t0
	for ; now.Before(t0.Add(5 * time.Second)); now = now.Add(10 * ms) {
		if now.Sub(t0)%(100*ms) == 0 {
			m4.Receive(now, upper, adv(150, 100*ms))
		}
		step(now)
		if m4.State() == Master || m6.State() == Master {
			t.Fatalf("at %s: a router became master next to a better IPv4 master (v4 %s, v6 %s)", now.Sub(t0), m4.State(), m6.State())
		}
	}
	if !m6.WantsMaster() || m4.WantsMaster() {
		t.Fatalf("wants: v4 %v v6 %v, want false true", m4.WantsMaster(), m6.WantsMaster())
	}
	// The IPv4 master stops: within about one more Master_Down_Interval one
	// router becomes master (the elector then forces its sibling).
	silent := now
	for ; now.Before(silent.Add(time.Second)); now = now.Add(10 * ms) {
		step(now)
		if m4.State() == Master || m6.State() == Master {
			break
		}
	}
	if m4.State() != Master {
		t.Fatalf("after the IPv4 master went silent: v4 %s, v6 %s; want v4 master (the last to want it)", m4.State(), m6.State())
	}
	if took := now.Sub(silent); took > m4.MasterDownInterval()+20*ms {
		t.Errorf("took over %s after the master went silent, want within Master_Down_Interval %s", took, m4.MasterDownInterval())
	}
	if out := m6.Force(now, Master, ReasonSyncMaster); !out.Changed || m6.State() != Master {
		t.Errorf("forcing the IPv6 router: %+v", out)
	}
}
