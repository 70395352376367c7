package vrrp

import (
	"testing"
	"time"
)

// queuedConn is a Conn whose socket holds a datagram while q is set.
type queuedConn struct {
	Conn
	q bool
}

func (c *queuedConn) Queued() bool { return c.q }

// A backup's due Master_Down_Timer waits for adverts that wait to be read
// (in the socket or in pkts): until a batch is handled or one advert
// interval passed, once per deadline; a master never waits.
func TestHoldTick(t *testing.T) {
	const iv = 10 * time.Millisecond
	newVR := func() (*runner, *vr, *queuedConn, time.Time) {
		c := &queuedConn{}
		r := &runner{pkts: make(chan *received, 1)}
		g := &group{spec: GroupSpec{Name: "web", VRID: 1, Interval: iv}}
		v := &vr{g: g, conn: c, m: NewMachine(Params{Interval: iv, Self: self}, 100, true)}
		g.vrs = []*vr{v}
		r.groups = []*group{g}
		v.m.Start(t0)
		d := v.m.Deadline()
		if v.m.State() != Backup || d.IsZero() {
			t.Fatalf("not a backup with a deadline: %s %s", v.m.State(), d)
		}
		return r, v, c, d
	}

	t.Run("nothing waits", func(t *testing.T) {
		r, v, _, d := newVR()
		if r.holdTick(v, d, d) {
			t.Error("held with nothing to read")
		}
	})
	t.Run("a datagram in the socket", func(t *testing.T) {
		r, v, c, d := newVR()
		c.q = true
		if !r.holdTick(v, d, d) {
			t.Fatal("not held")
		}
		if next, _ := r.nextDeadline(); !next.Equal(d.Add(iv)) {
			t.Errorf("next deadline during the hold %s, want %s", next.Sub(t0), d.Add(iv).Sub(t0))
		}
		if !r.holdTick(v, d, d.Add(iv-time.Microsecond)) {
			t.Error("hold ended early")
		}
		if r.holdTick(v, d, d.Add(iv)) {
			t.Error("held past one interval")
		}
		if r.holdTick(v, d, d.Add(2*iv)) {
			t.Error("held twice for one deadline")
		}
		if next, _ := r.nextDeadline(); !next.Equal(d) {
			t.Errorf("next deadline after the hold %s, want %s", next.Sub(t0), d.Sub(t0))
		}
	})
	t.Run("a batch in pkts, then handled", func(t *testing.T) {
		r, v, _, d := newVR()
		r.pkts <- &received{}
		if !r.holdTick(v, d, d) {
			t.Fatal("not held")
		}
		<-r.pkts
		r.endHolds()
		if r.holdTick(v, d, d.Add(time.Millisecond)) {
			t.Error("held after the batch was handled")
		}
		// The master's advert moved the deadline: a new one may wait again.
		v.m.Receive(d, upper, adv(200, iv))
		d2 := v.m.Deadline()
		if !d2.After(d) {
			t.Fatalf("deadline %s not moved by the master's advert", d2.Sub(t0))
		}
		r.pkts <- &received{}
		if !r.holdTick(v, d2, d2) {
			t.Error("a new deadline was not held")
		}
	})
	t.Run("a master does not wait", func(t *testing.T) {
		r, v, c, _ := newVR()
		c.q = true
		out := v.m.Tick(v.m.Deadline())
		if out.State != Master {
			t.Fatalf("not master: %+v", out)
		}
		d := v.m.Deadline()
		if r.holdTick(v, d, d) {
			t.Error("a master's advert timer was held")
		}
	})
}
