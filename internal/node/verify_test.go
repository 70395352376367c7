package node

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name                string
		owner, canOwn, self bool
		others              int
		want                string
		wrong               bool
	}{
		{"owner alone", true, false, true, 0, VerifyOK, false},
		{"owner and a stray", true, false, true, 1, VerifySplit, true},
		{"owner not bound, a stray answers", true, false, false, 1, VerifyForeign, true},
		{"owner not bound, nobody answers", true, false, false, 0, VerifyNone, true},
		{"owner not bound, two strays", true, false, false, 2, VerifySplit, true},
		{"backup hears the owner", false, true, false, 1, VerifyOK, false},
		{"backup hears two MACs", false, true, false, 2, VerifySplit, false},
		{"backup still answers, so does the owner", false, true, true, 1, VerifySplit, true},
		{"backup answers alone", false, true, true, 0, VerifyForeign, true},
		{"eligible backup hears nobody", false, true, false, 0, VerifyNone, false},
		{"ineligible backup hears nobody", false, false, false, 0, VerifyUnowned, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, wrong := judge(tc.owner, tc.canOwn, tc.self, tc.others)
			if got != tc.want || wrong != tc.wrong {
				t.Fatalf("judge = %s, wrong=%v; want %s, %v", got, wrong, tc.want, tc.wrong)
			}
		})
	}
}

var (
	selfMAC  = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	otherMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	strayMAC = net.HardwareAddr{2, 0, 0, 0, 0, 3}
)

// fakeWire is a Prober and a LocalAddr: answers says which other MACs
// answer for an address (per probe, so a test can change it), local which
// addresses this node holds.
type fakeWire struct {
	mu      sync.Mutex
	answers map[netip.Addr][]net.HardwareAddr
	local   map[netip.Addr]bool
	probes  []time.Time
	opened  int
	// next, when set, answers the next probe instead of answers (once).
	next []net.HardwareAddr
}

func (w *fakeWire) open(string) (Prober, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opened++
	return w, nil
}

func (w *fakeWire) ProbeAll(ctx context.Context, ips []netip.Addr, window time.Duration) (map[netip.Addr][]net.HardwareAddr, error) {
	w.mu.Lock()
	out := map[netip.Addr][]net.HardwareAddr{}
	for _, ip := range ips {
		w.probes = append(w.probes, time.Now())
		out[ip] = w.answers[ip]
		if w.next != nil {
			out[ip], w.next = w.next, nil
		}
	}
	w.mu.Unlock()
	select {
	case <-time.After(window):
	case <-ctx.Done():
	}
	return out, nil
}

func (w *fakeWire) MAC() net.HardwareAddr { return selfMAC }
func (w *fakeWire) Close() error          { return nil }
func (w *fakeWire) isLocal(ip netip.Addr) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.local[ip]
}
func (w *fakeWire) set(ip netip.Addr, local bool, macs ...net.HardwareAddr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers[ip] = macs
	w.local[ip] = local
}
func (w *fakeWire) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.probes) }

func newFakeWire() *fakeWire {
	return &fakeWire{answers: map[netip.Addr][]net.HardwareAddr{}, local: map[netip.Addr]bool{}}
}

// verifyRig is a manager with one group (web: vipA, vipB) and a verifier.
type verifyRig struct {
	m      *Manager
	rec    *recorder
	wire   *fakeWire
	v      *verifier
	canOwn bool
}

func newVerifyRig(t *testing.T, reaction string, owner bool) *verifyRig {
	r := &verifyRig{rec: &recorder{}, wire: newFakeWire(), canOwn: true}
	r.m = NewManager(t.Context(), quiet, []Group{web}, r.rec, r.rec)
	if owner {
		if err := r.m.Report(election.Transition{Group: "web", Owner: true, Reason: "told", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		r.wire.set(vipA, true)
		r.wire.set(vipB, true)
	} else {
		r.wire.set(vipA, false, otherMAC)
		r.wire.set(vipB, false, otherMAC)
	}
	r.rec.take()
	r.v = newVerifier(VerifySpec{Interval: 2 * time.Second, Window: 200 * time.Millisecond, MaxRate: 20, Reaction: reaction},
		quiet, r.m, func(string) bool { return r.canOwn }, r.wire.open, r.wire.isLocal)
	return r
}

func (r *verifyRig) check(t *testing.T, ip netip.Addr) *VerifyStatus {
	t.Helper()
	r.v.checkInterface(t.Context(), "eth0", []verifyItem{{group: "web", vip: addr.VIP{Interface: "eth0", Addr: ip}}})
	st := r.v.status("web", ip)
	if st == nil {
		t.Fatal("no status recorded")
	}
	return st
}

func TestVerifyOwnerSplitReannounces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVerifyRig(t, ReactionReannounce, true)
		if st := r.check(t, vipA); st.Result != VerifyOK || st.Wrong || !slices.Equal(st.MACs, []string{selfMAC.String()}) {
			t.Fatalf("owner alone: %+v", st)
		}
		if n := r.wire.count(); n != 1 {
			t.Fatalf("an OK result took %d probes, want 1", n)
		}
		if ok, why := r.v.Ready(); !ok {
			t.Fatalf("not ready: %s", why)
		}
		r.wire.set(vipA, true, strayMAC)
		start := time.Now()
		st := r.check(t, vipA)
		if st.Result != VerifySplit || !st.Wrong || st.Findings[VerifySplit] != 1 ||
			!slices.Equal(st.MACs, []string{selfMAC.String(), strayMAC.String()}) {
			t.Fatalf("stray: %+v", st)
		}
		// Confirmed by a second probe: two windows.
		if d := time.Since(start); d != 400*time.Millisecond {
			t.Errorf("finding took %v, want two windows", d)
		}
		if got := r.rec.take(); !slices.Equal(got, []call{{"announce", vipA}}) {
			t.Fatalf("reaction: %v, want one re-announcement of %s", got, vipA)
		}
		ok, why := r.v.Ready()
		if ok || !strings.Contains(why, "web 198.51.100.100: split (MACs "+selfMAC.String()+", "+strayMAC.String()+")") {
			t.Fatalf("ready %v %q", ok, why)
		}
		// Rate limit: at most one reaction per interval per VIP.
		r.check(t, vipA)
		if got := r.rec.take(); len(got) != 0 {
			t.Fatalf("second reaction within the interval: %v", got)
		}
		time.Sleep(2 * time.Second)
		if st := r.check(t, vipA); st.Findings[VerifySplit] != 3 || st.Reactions != 2 {
			t.Fatalf("after the interval: %+v", st)
		}
		if got := r.rec.take(); !slices.Equal(got, []call{{"announce", vipA}}) {
			t.Fatalf("reaction after the interval: %v", got)
		}
		// Repaired: ready again.
		r.wire.set(vipA, true)
		if st := r.check(t, vipA); st.Result != VerifyOK || st.Wrong {
			t.Fatalf("repaired: %+v", st)
		}
		if ok, why := r.v.Ready(); !ok {
			t.Fatalf("not ready after repair: %s", why)
		}
	})
}

func TestVerifyOwnerForeignAndNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVerifyRig(t, ReactionNone, true)
		r.wire.set(vipA, false, strayMAC)
		if st := r.check(t, vipA); st.Result != VerifyForeign || !st.Wrong {
			t.Fatalf("foreign: %+v", st)
		}
		r.wire.set(vipB, false)
		if st := r.check(t, vipB); st.Result != VerifyNone || !st.Wrong || st.Findings[VerifyNone] != 1 {
			t.Fatalf("none: %+v", st)
		}
		if got := r.rec.take(); len(got) != 0 {
			t.Fatalf("reaction none did something: %v", got)
		}
	})
}

func TestVerifyUnconfirmedIsNotAFinding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVerifyRig(t, ReactionReannounce, true)
		r.wire.next = []net.HardwareAddr{strayMAC} // one stray answer, then quiet
		st := r.check(t, vipA)
		if st.Result != VerifyOK || len(st.Findings) != 0 {
			t.Fatalf("a finding the second probe did not confirm: %+v", st)
		}
		if got := r.rec.take(); len(got) != 0 {
			t.Fatalf("reacted to an unconfirmed finding: %v", got)
		}
	})
}

func TestVerifyBackup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVerifyRig(t, ReactionReannounce, false)
		if st := r.check(t, vipA); st.Result != VerifyOK {
			t.Fatalf("backup hears the owner: %+v", st)
		}
		// Two MACs: a finding, but this backup is not the one that is wrong.
		r.wire.set(vipA, false, otherMAC, strayMAC)
		if st := r.check(t, vipA); st.Result != VerifySplit || st.Wrong {
			t.Fatalf("backup hears two: %+v", st)
		}
		// Nobody: a finding while this node could own (so another does).
		r.wire.set(vipA, false)
		if st := r.check(t, vipA); st.Result != VerifyNone || st.Wrong {
			t.Fatalf("backup hears nobody: %+v", st)
		}
		r.canOwn = false
		if st := r.check(t, vipA); st.Result != VerifyUnowned || st.Findings[VerifyUnowned] != 0 {
			t.Fatalf("ineligible backup hears nobody: %+v", st)
		}
		if ok, why := r.v.Ready(); !ok {
			t.Fatalf("a bystander is not ready: %s", why)
		}
		// This backup still answers: it is wrong; reannounce does nothing
		// on a backup.
		r.wire.set(vipA, true, otherMAC)
		if st := r.check(t, vipA); st.Result != VerifySplit || !st.Wrong {
			t.Fatalf("backup still answers: %+v", st)
		}
		if ok, _ := r.v.Ready(); ok {
			t.Fatal("a backup that answers is ready")
		}
		if got := r.rec.take(); len(got) != 0 {
			t.Fatalf("reannounce on a backup: %v", got)
		}
	})
}

func TestVerifyStepdownRemovesStray(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newVerifyRig(t, ReactionStepdown, false)
		r.wire.set(vipA, true) // this backup answers alone
		// The fake binder's Unbind does not change what the wire says, so
		// the verifier must say the removal did not help.
		if st := r.check(t, vipA); st.Result != VerifyForeign || !st.Wrong || st.Reactions != 0 {
			t.Fatalf("stray: %+v", st)
		}
		if got := r.rec.take(); !slices.Equal(got, []call{{"unbind", vipA}}) {
			t.Fatalf("stepdown: %v", got)
		}
		// Now the removal works.
		time.Sleep(2 * time.Second)
		unbind := &unbindingRecorder{recorder: r.rec, wire: r.wire}
		r.m.binder = unbind
		if st := r.check(t, vipA); st.Reactions != 1 {
			t.Fatalf("stray removed: %+v", st)
		}
		if st := r.check(t, vipA); st.Result != VerifyNone || st.Wrong {
			t.Fatalf("after the removal: %+v", st)
		}
	})
}

// unbindingRecorder's Unbind removes the address from the fake host.
type unbindingRecorder struct {
	*recorder
	wire *fakeWire
}

func (u *unbindingRecorder) Unbind(v addr.VIP) error {
	u.wire.set(v.Addr, false)
	return u.recorder.Unbind(v)
}

// The schedule: every VIP once per period, the period stretched by maxRate.
func TestVerifySchedule(t *testing.T) {
	for _, tc := range []struct {
		vips, rate int
		interval   time.Duration
		want       time.Duration
	}{
		{2, 20, 2 * time.Second, 2 * time.Second},
		{40, 20, 2 * time.Second, 2 * time.Second},
		{100, 20, 2 * time.Second, 5 * time.Second},
		{1000, 20, 2 * time.Second, 50 * time.Second},
		{1000, 500, 2 * time.Second, 2 * time.Second},
	} {
		if got := (VerifySpec{Interval: tc.interval, MaxRate: tc.rate}).periodFor(tc.vips); got != tc.want {
			t.Errorf("%d VIPs at %d/s: period %v, want %v", tc.vips, tc.rate, got, tc.want)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		var vips []addr.VIP
		for i := range 100 {
			vips = append(vips, addr.VIP{Interface: "eth0", Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})})
		}
		g := Group{Name: "many", Priority: 100, VIPs: vips}
		wire := newFakeWire()
		m := NewManager(t.Context(), quiet, []Group{g}, &recorder{}, &recorder{})
		for _, v := range vips {
			wire.set(v.Addr, false, otherMAC)
		}
		v := newVerifier(VerifySpec{Interval: 2 * time.Second, MaxRate: 20}, quiet, m, func(string) bool { return true }, wire.open, wire.isLocal)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { v.run(ctx); close(done) }()
		time.Sleep(60 * time.Second)
		cancel()
		<-done
		// 100 VIPs at most 20/s: a 5 s period, 12 periods in 60 s (the
		// start is randomised by up to a second, gaps by ±20 %).
		wire.mu.Lock()
		probes := slices.Clone(wire.probes)
		wire.mu.Unlock()
		if n := len(probes); n < 1100 || n > 1220 {
			t.Fatalf("%d probes in 60 s, want about 1200 (20/s)", n)
		}
		// In batches of 5 about every 250 ms (ticks jittered ±20 %):
		// never much more than the rate over any 5 s.
		for i := range probes {
			j := i
			for j < len(probes) && probes[j].Sub(probes[i]) < 5*time.Second {
				j++
			}
			if j-i > 125 {
				t.Fatalf("%d probes within 5 s from %v: over the rate", j-i, probes[i])
			}
		}
		if probes[4] != probes[0] || probes[5] == probes[0] {
			t.Fatalf("not batched by 5: %v", probes[:6])
		}
		if s := v.summary(); s.Period != 5*time.Second || s.Probes != uint64(len(probes)) {
			t.Fatalf("summary %+v", s)
		}
		if wire.opened != 1 {
			t.Fatalf("prober opened %d times, want once", wire.opened)
		}
	})
}

// Through Run: /status shows each VIP's verification and /readyz the node
// that is wrong.
func TestRunVerify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := newFakeWire()
		r := startRig(t, func(r *rig, d *Deps) {
			r.spec.Verify = VerifySpec{Interval: 2 * time.Second, Window: 200 * time.Millisecond, MaxRate: 20, Reaction: ReactionReannounce}
			d.Probers, d.LocalAddr = wire.open, wire.isLocal
		})
		r.elector.own <- "web"
		if err := <-r.elector.errs; err != nil {
			t.Fatal(err)
		}
		wire.set(vipA, true, strayMAC)
		wire.set(vipB, true)
		time.Sleep(5 * time.Second)
		code, body := r.ln.get(t, "/readyz")
		if code != 503 || !strings.Contains(body, "verify: web 198.51.100.100: split") {
			t.Fatalf("/readyz %d %q", code, body)
		}
		_, body = r.ln.get(t, "/status")
		var st Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		a, b := st.Groups[0].VIPs[0].Verify, st.Groups[0].VIPs[1].Verify
		if a == nil || a.Result != VerifySplit || len(a.MACs) != 2 || b == nil || b.Result != VerifyOK || st.Verify == nil || st.Verify.Probes == 0 {
			t.Fatalf("/status: %s", body)
		}
		wire.set(vipA, true)
		time.Sleep(5 * time.Second)
		if code, body := r.ln.get(t, "/readyz"); code != 200 {
			t.Fatalf("/readyz after repair %d %q", code, body)
		}
		r.stop(t)
	})
}
