package lease

// Lab tests of health in Lease mode (issue #12): three real vipd processes
// elect through the lab's real kube-apiserver (labCluster, lab_test.go), each
// node runs a small HTTP service in its namespace that its vipd checks, and
// the test breaks and heals those services (or touches a drain file, or edits
// an EndpointSlice) and follows the VIP on every node's kernel (holdings)
// and from a client (probe). One lab and control plane serve every subtest:
// each subtest restarts the three vipd processes with its own config and
// its own Lease.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kubetest"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
)

const (
	// healthServicePort is each node's checked HTTP service (its own
	// namespace's loopback).
	healthServicePort = 8080
	// Check timing of these tests: interval 200ms, fall 2, rise 2.
	checkInterval = 200 * time.Millisecond
	checkFall     = 2
	checkRise     = 2
	// handoverBound is what the tests allow the Lease handover on top of
	// detection (fall × interval, plus one interval of phase): a generous
	// bound (the degraded holder re-publishes at once, the candidate asks on
	// the watch event, two API round trips), so a loaded CI box does not
	// flake; the measured figures are logged.
	handoverBound = 2 * time.Second
)

// detectBound is the longest a check needs to turn failing (or passing,
// with rise) after its target changed: n attempts plus one interval of
// phase plus one timeout.
func detectBound(n int) time.Duration { return time.Duration(n+2) * checkInterval }

// healthLab is the shared lab: the cluster and one service per node.
type healthLab struct {
	*labCluster
	svc map[string]*lab.Service
}

// nodeStatus is the part of vipd's /status these tests read.
type nodeStatus struct {
	Groups []struct {
		Name      string `json:"name"`
		Owner     bool   `json:"owner"`
		Reason    string `json:"reason"`
		Eligible  bool   `json:"eligible"`
		Degraded  bool   `json:"degraded"`
		Priority  int    `json:"priority"`
		Why       string `json:"why"`
		Candidacy struct {
			Effective int    `json:"effective"`
			Held      string `json:"held"`
		} `json:"candidacy"`
	} `json:"groups"`
	Checks []struct {
		Name      string    `json:"name"`
		State     string    `json:"state"`
		Since     time.Time `json:"since"`
		LastError string    `json:"lastError"`
	} `json:"checks"`
}

// status reads a node's /status; ok false if vipd does not answer (yet).
func (h *healthLab) status(name string) (nodeStatus, bool) {
	_, host := h.node(name)
	var st nodeStatus
	resp, err := host.HTTPClient().Get("http://127.0.0.1:9610/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Groups) != 1 {
		return st, false
	}
	return st, true
}

// check returns a check's state and since from a node's /status.
func (h *healthLab) check(name, check string) (state string, since time.Time) {
	st, ok := h.status(name)
	if !ok {
		return "", time.Time{}
	}
	for _, c := range st.Checks {
		if c.Name == check {
			return c.State, c.Since
		}
	}
	return "", time.Time{}
}

// readyz returns a node's /readyz status code and body.
func (h *healthLab) readyz(t *testing.T, name string) (int, string) {
	t.Helper()
	_, host := h.node(name)
	resp, err := host.HTTPClient().Get("http://127.0.0.1:9610/readyz")
	if err != nil {
		t.Fatalf("%s /readyz: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// stopAll stops every vipd (followers first, so nobody takes the group
// while the holder shuts down) and waits until no node holds the VIP.
func (h *healthLab) stopAll(t *testing.T) {
	t.Helper()
	holders := map[string]bool{}
	for _, n := range h.held.holders() {
		holders[n] = true
	}
	for _, last := range []bool{false, true} {
		for name, p := range h.procs {
			if holders[name] != last {
				continue
			}
			_ = p.Signal(syscall.SIGTERM)
			if exited, _ := p.Wait(10 * time.Second); !exited {
				t.Errorf("%s did not exit within 10s of SIGTERM", name)
				_ = p.Kill()
			}
			delete(h.procs, name)
		}
	}
	testutil.WaitForEvery(t, "no node holds the VIP", 5*time.Second, 10*time.Millisecond, func() bool { return len(h.held.holders()) == 0 })
}

// startAll restarts the three vipd processes with priorities prios (node
// order) and each node's config edited by edit, on a Lease of the subtest's
// own; every service is healthy again first.
func (h *healthLab) startAll(t *testing.T, prios []int, edit func(name string, c *config.Config)) {
	t.Helper()
	h.stopAll(t)
	for _, s := range h.svc {
		s.SetHealthy(true)
	}
	lease := "vipd-lab-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	for i, host := range h.l.Nodes {
		h.prio[host.Name] = prios[i]
		c := h.config(host.Name)
		c.Groups[0].Lease.Name = lease
		edit(host.Name, c)
		p, err := h.l.StartVipdConfig(host, h.bin, c)
		if err != nil {
			t.Fatal(err)
		}
		h.procs[host.Name] = p
	}
}

// httpCheck is the edit "each node checks its own service, tracked as a gate (or with
// a weight)", with the given policy and minMoveInterval (nil: the default).
func (h *healthLab) httpCheck(weight int, policy string, minMove *time.Duration) func(string, *config.Config) {
	return func(name string, c *config.Config) {
		c.Checks = []config.Check{{Name: "svc", Interval: checkInterval, Timeout: checkInterval, Rise: checkRise, Fall: checkFall,
			HTTP: &config.HTTPCheck{URL: h.svc[name].URL()}}}
		c.Groups[0].Track = []config.Track{{Check: "svc", Weight: weight}}
		c.Groups[0].WhenNoneHealthy = policy
		c.Health.MinMoveInterval = minMove
	}
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// waitHolder waits until name alone holds the VIP.
// probeOwner waits until name holds the VIP and a client probe, started
// here and stopped at the end of the test, sees it answer.
func (h *healthLab) probeOwner(t *testing.T, name string) *lab.Probe {
	t.Helper()
	h.waitHolder(t, name, 20*time.Second)
	probe := h.probe()
	t.Cleanup(func() { probe.Stop() })
	if err := probe.WaitOwner(name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return probe
}

func (h *healthLab) waitHolder(t *testing.T, name string, timeout time.Duration) time.Time {
	t.Helper()
	testutil.WaitForEvery(t, name+" alone holds the VIP", timeout, 5*time.Millisecond, func() bool {
		hs := h.held.holders()
		return len(hs) == 1 && hs[0] == name
	})
	return time.Now()
}

// settleOn waits until name alone holds the VIP and the probe sees it
// answer, so the next measured move starts from it.
func (h *healthLab) settleOn(t *testing.T, probe *lab.Probe, name string, timeout time.Duration) {
	t.Helper()
	h.waitHolder(t, name, timeout)
	if err := probe.WaitOwner(name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitOther waits until a node other than old holds the VIP and returns it.
func (h *healthLab) waitOther(t *testing.T, old string, timeout time.Duration) string {
	t.Helper()
	var next string
	testutil.WaitForEvery(t, "a node other than "+old+" holds the VIP", timeout, 5*time.Millisecond, func() bool {
		for _, n := range h.held.holders() {
			if n != old {
				next = n
				return true
			}
		}
		return false
	})
	return next
}

// waitGroup waits until cond holds for name's group on its /status.
func (h *healthLab) waitGroup(t *testing.T, name, what string, cond func(nodeStatus) bool) nodeStatus {
	t.Helper()
	var st nodeStatus
	testutil.WaitForEvery(t, name+": "+what, 10*time.Second, 20*time.Millisecond, func() bool {
		var ok bool
		st, ok = h.status(name)
		return ok && cond(st)
	})
	return st
}

// takeover is one measured move of the VIP caused at `at`.
type takeover struct {
	from, to       string
	at             time.Time
	detected       time.Time     // the old owner's check changed state (its /status)
	dropped, bound lab.AddrEvent // the old owner's kernel lost the VIP; the new one's got it
	answered       time.Time     // the probe's first reply from the new owner
	interruption   time.Duration
	lost           int
}

func (k takeover) total() time.Duration { return k.answered.Sub(k.at) }

func (k takeover) String() string {
	rel := func(x time.Time) string {
		if x.IsZero() {
			return "?"
		}
		return x.Sub(k.at).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%s -> %s: new owner answering %s after the cause (check turned at %s, VIP dropped at %s, bound at %s); client interruption %s, lost %d",
		k.from, k.to, rel(k.answered), rel(k.detected), rel(k.dropped.At), rel(k.bound.At), k.interruption.Round(time.Millisecond), k.lost)
}

// measure waits for the probe to see a node other than from answering
// after at, and gathers the takeover's figures (to is the first node that
// answered); it fails t on two owners at once.
// The detection time is when check changed state on node checkOn.
func (h *healthLab) measure(t *testing.T, probe *lab.Probe, from string, at time.Time, checkOn, check string, timeout time.Duration) takeover {
	t.Helper()
	var f lab.Failover
	testutil.WaitForEvery(t, "the probe sees a node other than "+from+" answer", timeout, 5*time.Millisecond, func() bool {
		var ok bool
		f, ok = probe.Snapshot().FailoverAfter(at)
		return ok
	})
	if f.From != from {
		t.Errorf("before the cause %s answered, want %s", f.From, from)
	}
	to := f.To
	k := takeover{from: from, to: to, at: at, answered: f.FirstTo, interruption: f.Interruption, lost: f.Lost}
	k.dropped, k.bound = h.held.handover(from, to, at)
	if check != "" {
		if _, since := h.check(checkOn, check); since.After(at) {
			k.detected = since
		}
	}
	if f.Overlap > 0 || f.DualSamples > 0 {
		t.Errorf("%s: two owners seen by the client: overlap %s, dual ARP samples %d", k, f.Overlap, f.DualSamples)
	}
	if !k.dropped.IsZero() && !k.bound.IsZero() && k.bound.Before(k.dropped) {
		t.Errorf("%s: %s bound the VIP (event #%d) before %s dropped it (#%d)", k, to, k.bound.Seq, from, k.dropped.Seq)
	}
	return k
}

// noOverlapSince fails t if two nodes held the VIP at once at any moment
// after since (holdings at the kernels, decided by the kernels' order of
// changes; the duration shown is from the receive times).
func (h *healthLab) noOverlapSince(t *testing.T, since time.Time) {
	t.Helper()
	var iv []interval
	for _, i := range h.held.all() {
		if i.to.IsZero() || i.to.After(since) {
			iv = append(iv, i)
		}
	}
	for _, o := range overlaps(iv) {
		t.Errorf("two owners at once: %s and %s for %s (%s); holdings: %s", o.A.Host, o.B.Host, o.For, o, fmtHoldings(iv))
	}
}

// keptSince fails t if name's holding of the VIP ended after since (or it
// does not hold it now).
func (h *healthLab) keptSince(t *testing.T, name string, since time.Time) {
	t.Helper()
	for _, i := range h.held.all() {
		if i.node == name && !i.to.IsZero() && i.to.After(since) {
			t.Errorf("%s dropped the VIP %s after %s", name, i.to.Sub(since).Round(time.Millisecond), since.Format(time.TimeOnly))
		}
	}
	if hs := h.held.holders(); len(hs) != 1 || hs[0] != name {
		t.Errorf("holders %v, want %s", hs, name)
	}
}

// TestLabLeaseHealth: the VIP follows the health of the service on each
// node in Lease mode: gates, weights, the file drain, the endpoints check
// against the lab's kube-apiserver, and both whenNoneHealthy policies.
func TestLabLeaseHealth(t *testing.T) {
	c := newLabCluster(t)
	h := &healthLab{labCluster: c, svc: map[string]*lab.Service{}}
	for _, host := range c.l.Nodes {
		s, err := host.StartService(healthServicePort)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		h.svc[host.Name] = s
	}
	n := func(i int) string { return c.l.Nodes[i].Name }
	top, mid, low := n(0), n(1), n(2)
	var figures []string
	note := func(t *testing.T, format string, args ...any) {
		t.Helper()
		s := fmt.Sprintf(format, args...)
		t.Log(s)
		figures = append(figures, s)
	}

	// Gate: the owner's service turns 503 → the next node answers within
	// fall × interval + the handover; recovery → the highest priority takes
	// it back by handover (minMoveInterval 0 so it returns at once).
	t.Run("Gate", func(t *testing.T) {
		t0 := time.Now()
		h.startAll(t, []int{200, 150, 100}, h.httpCheck(0, config.PolicyKeep, durationPtr(0)))
		probe := h.probeOwner(t, top)
		for round := range 2 {
			at := h.svc[top].SetHealthy(false)
			next := h.waitOther(t, top, detectBound(checkFall)+handoverBound+5*time.Second)
			k := h.measure(t, probe, top, at, top, "svc", 5*time.Second)
			note(t, "gate fails on the owner (round %d): %s", round+1, k)
			if bound := detectBound(checkFall) + handoverBound; k.total() > bound {
				t.Errorf("takeover took %s, bound %s (fall %d × interval %s + phase + handover %s)", k.total(), bound, checkFall, checkInterval, handoverBound)
			}
			if next != mid {
				// A degraded holder yields to the first healthy requester;
				// the higher then takes it by handover.
				t.Logf("the lower node %s asked first; %s must take it from it", next, mid)
			}
			h.settleOn(t, probe, mid, 5*time.Second)
			code, body := h.readyz(t, top)
			if code != 503 || !strings.Contains(body, "check svc failing") || !strings.Contains(body, "503") {
				t.Errorf("%s /readyz = %d %q, want 503 naming check svc and its error", top, code, body)
			}
			t.Logf("%s /readyz: %d %s", top, code, body)

			at = h.svc[top].SetHealthy(true)
			h.waitHolder(t, top, detectBound(checkRise)+handoverBound+5*time.Second)
			k = h.measure(t, probe, mid, at, top, "svc", 5*time.Second)
			note(t, "gate recovers on %s (round %d, minMoveInterval 0): %s", top, round+1, k)
			if bound := detectBound(checkRise) + handoverBound; k.total() > bound {
				t.Errorf("return took %s, bound %s", k.total(), bound)
			}
			if code, body := h.readyz(t, top); code != 200 {
				t.Errorf("%s /readyz after recovery = %d %q", top, code, body)
			}
		}
		h.noOverlapSince(t, t0)
	})

	// GateDefaultHold: with the default health.minMoveInterval (10s) a
	// recovered owner takes the group back only 10s after its check failed,
	// and /status says why in the meantime.
	t.Run("GateDefaultHold", func(t *testing.T) {
		t0 := time.Now()
		h.startAll(t, []int{200, 150, 100}, h.httpCheck(0, config.PolicyKeep, nil))
		probe := h.probeOwner(t, top)
		at := h.svc[top].SetHealthy(false)
		h.settleOn(t, probe, mid, detectBound(checkFall)+handoverBound+5*time.Second)
		k := h.measure(t, probe, top, at, top, "svc", 5*time.Second)
		note(t, "gate fails (default minMoveInterval): %s", k)
		_, failedAt := h.check(top, "svc")
		h.svc[top].SetHealthy(true)
		st := h.waitGroup(t, top, "check passing again, return held", func(st nodeStatus) bool {
			return len(st.Checks) == 1 && st.Checks[0].State == "passing" && st.Groups[0].Candidacy.Held != ""
		})
		t.Logf("%s while held: eligible %v degraded %v why %q held %q", top, st.Groups[0].Eligible, st.Groups[0].Degraded, st.Groups[0].Why, st.Groups[0].Candidacy.Held)
		back := h.waitHolder(t, top, config.DefaultMinMoveInterval+5*time.Second)
		_, took := h.held.handover(mid, top, at)
		held := took.At.Sub(failedAt)
		note(t, "default minMoveInterval %s: recovered owner took the group back %s after its check failed (%s after the service recovered)",
			config.DefaultMinMoveInterval, held.Round(time.Millisecond), back.Sub(at).Round(time.Millisecond))
		if failedAt.IsZero() || held < config.DefaultMinMoveInterval-100*time.Millisecond || held > config.DefaultMinMoveInterval+handoverBound+time.Second {
			t.Errorf("returned %s after the check failed (at %s), want about %s", held, failedAt, config.DefaultMinMoveInterval)
		}
		h.noOverlapSince(t, t0)
	})

	// AllFailingKeep: every service 503 → the owner keeps the VIP (degraded),
	// it never goes unowned; recovery changes nothing.
	t.Run("AllFailingKeep", func(t *testing.T) {
		t0 := time.Now()
		h.startAll(t, []int{200, 150, 100}, h.httpCheck(0, config.PolicyKeep, durationPtr(0)))
		h.waitHolder(t, top, 20*time.Second)
		// The others fail first, so none of them is healthy (and asks)
		// when the owner turns degraded.
		for _, name := range []string{mid, low} {
			h.svc[name].SetHealthy(false)
		}
		for _, name := range []string{mid, low} {
			h.waitGroup(t, name, "degraded", func(st nodeStatus) bool { return st.Groups[0].Eligible && st.Groups[0].Degraded })
		}
		at := h.svc[top].SetHealthy(false)
		h.waitGroup(t, top, "degraded", func(st nodeStatus) bool { return st.Groups[0].Degraded })
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if hs := h.held.holders(); len(hs) != 1 || hs[0] != top {
				t.Fatalf("every node failing, policy keep: holders %v, want %s", hs, top)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, name := range []string{top, mid, low} {
			if code, body := h.readyz(t, name); code != 503 || !strings.Contains(body, "degraded") {
				t.Errorf("%s /readyz = %d %q, want 503 degraded", name, code, body)
			}
		}
		// The owner recovers first: a healthy node recovering before it
		// would rightly take the group from the degraded owner.
		h.svc[top].SetHealthy(true)
		h.waitGroup(t, top, "healthy again", func(st nodeStatus) bool { return st.Groups[0].Eligible && !st.Groups[0].Degraded })
		for _, name := range []string{mid, low} {
			h.svc[name].SetHealthy(true)
		}
		for _, name := range []string{mid, low} {
			h.waitGroup(t, name, "healthy again", func(st nodeStatus) bool { return st.Groups[0].Eligible && !st.Groups[0].Degraded })
		}
		time.Sleep(time.Second)
		h.keptSince(t, top, at)
		h.noOverlapSince(t, t0)
		note(t, "every service failing, policy keep: %s kept the VIP throughout (degraded, /readyz 503)", top)
	})

	// AllFailingRelease: every service 503 → nobody holds the VIP; recovery
	// → the highest priority takes it.
	t.Run("AllFailingRelease", func(t *testing.T) {
		t0 := time.Now()
		h.startAll(t, []int{200, 150, 100}, h.httpCheck(0, config.PolicyRelease, durationPtr(0)))
		h.waitHolder(t, top, 20*time.Second)
		for _, name := range []string{mid, low} {
			h.svc[name].SetHealthy(false)
		}
		for _, name := range []string{mid, low} {
			h.waitGroup(t, name, "not eligible", func(st nodeStatus) bool { return !st.Groups[0].Eligible })
		}
		if hs := h.held.holders(); len(hs) != 1 || hs[0] != top {
			t.Fatalf("holders %v before the owner failed", hs)
		}
		at := h.svc[top].SetHealthy(false)
		testutil.WaitForEvery(t, "nobody holds the VIP", detectBound(checkFall)+handoverBound, 5*time.Millisecond, func() bool { return len(h.held.holders()) == 0 })
		gone, _ := h.held.handover(top, "", at)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if hs := h.held.holders(); len(hs) != 0 {
				t.Fatalf("every node failing, policy release: holders %v", hs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		code, body := h.readyz(t, top)
		if code != 503 || !strings.Contains(body, "check svc failing") {
			t.Errorf("%s /readyz = %d %q", top, code, body)
		}
		back := time.Now()
		for _, s := range h.svc {
			s.SetHealthy(true)
		}
		h.waitHolder(t, top, detectBound(checkRise)+handoverBound+5*time.Second)
		note(t, "every service failing, policy release: the VIP was gone %s after the owner's service failed; all recovered -> %s holds it again after %s",
			gone.At.Sub(at).Round(time.Millisecond), top, time.Since(back).Round(time.Millisecond))
		h.noOverlapSince(t, t0)
	})

	// Weight: 150/100/50 and weight -60 → the owner falls to 90, below the
	// 100 node, which takes over by handover; recovery moves it back.
	t.Run("Weight", func(t *testing.T) {
		t0 := time.Now()
		h.startAll(t, []int{150, 100, 50}, h.httpCheck(-60, config.PolicyKeep, durationPtr(0)))
		probe := h.probeOwner(t, top)
		at := h.svc[top].SetHealthy(false)
		h.settleOn(t, probe, mid, detectBound(checkFall)+handoverBound+5*time.Second)
		k := h.measure(t, probe, top, at, top, "svc", 5*time.Second)
		note(t, "weight -60 fails on the 150 owner: %s", k)
		if bound := detectBound(checkFall) + handoverBound; k.total() > bound {
			t.Errorf("takeover took %s, bound %s", k.total(), bound)
		}
		st, _ := h.status(top)
		if g := st.Groups[0]; g.Priority != 90 || !g.Eligible || g.Degraded {
			t.Errorf("%s after the weight: priority %d eligible %v degraded %v, want 90, eligible, not degraded", top, g.Priority, g.Eligible, g.Degraded)
		}
		at = h.svc[top].SetHealthy(true)
		h.waitHolder(t, top, detectBound(checkRise)+handoverBound+5*time.Second)
		k = h.measure(t, probe, mid, at, top, "svc", 5*time.Second)
		note(t, "weight check recovers (back to 150): %s", k)
		time.Sleep(time.Second)
		if hs := h.held.holders(); len(hs) != 1 || hs[0] != top {
			t.Errorf("holders %v after recovery, want %s", hs, top)
		}
		h.noOverlapSince(t, t0)
	})

	// FileDrain: touching the drain file moves the VIP away; removing it
	// moves it back once minMoveInterval (3s here) has passed.
	t.Run("FileDrain", func(t *testing.T) {
		t0 := time.Now()
		const minMove = 3 * time.Second
		drain := func(name string) string { return filepath.Join(h.l.TempDir(), "drain-"+name) }
		h.startAll(t, []int{200, 150, 100}, func(name string, c *config.Config) {
			c.Checks = []config.Check{{Name: "drain", Interval: checkInterval, Rise: checkRise, Fall: checkFall,
				File: &config.FileCheck{Path: drain(name)}}}
			c.Groups[0].Track = []config.Track{{Check: "drain"}}
			c.Health.MinMoveInterval = durationPtr(minMove)
		})
		probe := h.probeOwner(t, top)
		at := time.Now()
		if err := os.WriteFile(drain(top), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		h.settleOn(t, probe, mid, detectBound(checkFall)+handoverBound+5*time.Second)
		k := h.measure(t, probe, top, at, top, "drain", 5*time.Second)
		note(t, "touch %s on the owner: %s", drain(top), k)
		_, drained := h.check(top, "drain")
		undo := time.Now()
		if err := os.Remove(drain(top)); err != nil {
			t.Fatal(err)
		}
		h.waitHolder(t, top, minMove+detectBound(checkRise)+handoverBound+5*time.Second)
		k = h.measure(t, probe, mid, undo, top, "drain", 5*time.Second)
		note(t, "rm the drain file (minMoveInterval %s): %s; %s after the drain took effect", minMove, k, k.answered.Sub(drained).Round(time.Millisecond))
		if drained.IsZero() || k.bound.At.Sub(drained) < minMove-100*time.Millisecond {
			t.Errorf("back %s after the drain took effect (at %s), want >= minMoveInterval %s", k.bound.At.Sub(drained), drained, minMove)
		}
		h.noOverlapSince(t, t0)
	})

	// Endpoints: the VIP sits where the Service has a ready endpoint,
	// whatever the priorities; the endpoint moving moves the VIP.
	t.Run("Endpoints", func(t *testing.T) {
		t0 := time.Now()
		const ns, svc = "ingress", "web"
		admin, err := c.cp.Client(c.cp.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// vipd runs as the ServiceAccount kube-system/vipd (the lab's vipd
		// kubeconfig): it gets exactly the rights of the shipped manifest.
		kubetest.ApplyRoles(t, admin, "deploy/health/endpoints-rbac.yaml", ns)
		if _, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ep := func(addr, node string, ready bool) discoveryv1.Endpoint {
			return discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: &node,
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		}
		port, proto := int32(80), corev1.ProtocolTCP
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{ep("203.0.113.30", low, true)},
			Ports:       []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
		}
		if slice, err = admin.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.startAll(t, []int{200, 150, 100}, func(name string, c *config.Config) {
			c.Checks = []config.Check{{Name: "ingress", Endpoints: &config.EndpointsCheck{Namespace: ns, Service: svc}}}
			c.Groups[0].Track = []config.Track{{Check: "ingress"}}
			c.Health.MinMoveInterval = durationPtr(0)
		})
		// The lowest priority holds it: the others' gates fail.
		h.waitHolder(t, low, 20*time.Second)
		for _, name := range []string{top, mid} {
			st := h.waitGroup(t, name, "check ingress failing", func(st nodeStatus) bool {
				return len(st.Checks) == 1 && st.Checks[0].State == "failing"
			})
			t.Logf("%s: ingress %s (%s)", name, st.Checks[0].State, st.Checks[0].LastError)
		}
		time.Sleep(time.Second)
		if hs := h.held.holders(); len(hs) != 1 || hs[0] != low {
			t.Fatalf("holders %v, want %s (the only node with a ready endpoint)", hs, low)
		}
		probe := h.probeOwner(t, low)
		// The pod on low turns not ready, one on mid is ready.
		slice.Endpoints = []discoveryv1.Endpoint{ep("203.0.113.30", low, false), ep("203.0.113.20", mid, true)}
		at := time.Now()
		if _, err := admin.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.settleOn(t, probe, mid, handoverBound+5*time.Second)
		k := h.measure(t, probe, low, at, low, "ingress", 5*time.Second)
		note(t, "endpoints: ready endpoint moves from %s to %s (EndpointSlice update at 0): %s", low, mid, k)
		if k.total() > handoverBound+time.Second {
			t.Errorf("move took %s, bound %s", k.total(), handoverBound+time.Second)
		}
		time.Sleep(time.Second)
		if hs := h.held.holders(); len(hs) != 1 || hs[0] != mid {
			t.Errorf("holders %v, want %s", hs, mid)
		}
		h.noOverlapSince(t, t0)
	})

	h.stopAll(t)
	t.Logf("figures:\n  %s", strings.Join(figures, "\n  "))
}
