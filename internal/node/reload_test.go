package node

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
)

func TestNeedsRestart(t *testing.T) {
	cur := Spec{Node: "n1", Mode: "vrrp", Version: "1", HTTPListen: ":9610", Lifetime: 3 * time.Second, Refresh: time.Second,
		StartupDelay: time.Second, MinMoveInterval: time.Second, Groups: []Group{web}, Checks: []health.Spec{{Name: "api"}}}
	tests := []struct {
		name   string
		change func(*Spec)
		keys   string // "" for none
	}{
		{"nothing", func(*Spec) {}, ""},
		{"groups, checks and version change live", func(s *Spec) {
			s.Groups, s.Checks, s.Version = nil, nil, "2"
		}, ""},
		{"node", func(s *Spec) { s.Node = "n2" }, "[node]"},
		{"mode", func(s *Spec) { s.Mode = "lease" }, "[mode]"},
		{"http.listen", func(s *Spec) { s.HTTPListen = ":9611" }, "[http.listen]"},
		{"binding.lifetime", func(s *Spec) { s.Lifetime = time.Minute }, "[binding.lifetime]"},
		{"binding.refresh", func(s *Spec) { s.Refresh = 2 * time.Second }, "[binding.refresh]"},
		{"announce", func(s *Spec) { s.Announce.Count = 9 }, "[announce]"},
		{"health.startupDelay", func(s *Spec) { s.StartupDelay = 0 }, "[health.startupDelay]"},
		{"health.minMoveInterval", func(s *Spec) { s.MinMoveInterval = 0 }, "[health.minMoveInterval]"},
		{"several, in a fixed order", func(s *Spec) { s.HTTPListen, s.Node, s.Mode = "", "", "" }, "[node mode http.listen]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := cur
			tc.change(&next)
			err := NeedsRestart(cur, next)
			switch {
			case tc.keys == "" && err != nil:
				t.Fatalf("NeedsRestart = %v, want nil", err)
			case tc.keys != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.keys+" changed: that needs a restart")):
				t.Fatalf("NeedsRestart = %v, want %s named", err, tc.keys)
			}
		})
	}
}

var (
	vipD = netip.MustParseAddr("198.51.100.101")
	db   = Group{Name: "db", Priority: 50, VIPs: []addr.VIP{{Interface: "eth1", Addr: vipC}}}
)

// reloadRig is the daemon with a reload channel, a fake health runner with
// checks "api" and "load", and fake hooks; links eth0 and eth1 are up.
type reloadRig struct {
	*rig
	health  *fakeHealth
	hooks   *fakeHooks
	reloads chan Reload
}

func startReloadRig(t *testing.T, groups ...Group) *reloadRig {
	t.Helper()
	rr := &reloadRig{health: newFakeHealth("api", "load"), hooks: newFakeHooks(), reloads: make(chan Reload)}
	rr.rig = startRig(t, func(r *rig, d *Deps) {
		r.links.initial = map[string]LinkState{"eth0": up, "eth1": up}
		r.spec.Groups = groups
		r.spec.Checks = []health.Spec{{Name: "api"}, {Name: "load"}}
		d.Health, d.Hooks, d.Reloads = rr.health, rr.hooks, rr.reloads
	})
	return rr
}

// reload sends one reload and returns its outcome; elector, if not nil, is
// the mode's part (it runs inside the reload).
func (rr *reloadRig) reload(spec Spec, elector func() error) error {
	done := make(chan error, 1)
	rr.reloads <- Reload{Spec: spec, Elector: elector, Done: done}
	err := <-done
	synctest.Wait()
	return err
}

// withGroups is the rig's current spec with other groups.
func (rr *reloadRig) withGroups(groups ...Group) Spec {
	s := rr.spec
	s.Groups = groups
	return s
}

// statusDoc is the part of /status these tests read.
type statusDoc struct {
	Reloads ReloadStatus `json:"reloads"`
	Groups  []struct {
		Name     string      `json:"name"`
		Owner    bool        `json:"owner"`
		Since    time.Time   `json:"since"`
		Eligible bool        `json:"eligible"`
		Priority int         `json:"priority"`
		Why      string      `json:"why"`
		VIPs     []VIPStatus `json:"vips"`
		Hooks    any         `json:"hooks"`
	} `json:"groups"`
	Watchers []WatcherStatus `json:"watchers"`
}

func (rr *reloadRig) status(t *testing.T) statusDoc {
	t.Helper()
	code, body := rr.ln.get(t, "/status")
	if code != 200 {
		t.Fatalf("/status %d %s", code, body)
	}
	var s statusDoc
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	return s
}

func (s statusDoc) groupNames() []string {
	var out []string
	for _, g := range s.Groups {
		out = append(out, g.Name)
	}
	return out
}

func (rr *reloadRig) own(t *testing.T, group string) {
	t.Helper()
	rr.elector.own <- group
	if err := <-rr.elector.errs; err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
}

// since returns the events logged after the first n.
func (rr *reloadRig) since(n int) []string { return rr.log.all()[n:] }

func (rr *reloadRig) replaces() map[netip.Addr]int {
	rr.kernel.mu.Lock()
	defer rr.kernel.mu.Unlock()
	out := map[netip.Addr]int{}
	for a, n := range rr.kernel.replaces {
		out[a] = n
	}
	return out
}

// Settings that need a restart, and a config that could not be used, are
// refused and counted; nothing changes, not even the checks.
func TestReloadRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.own(t, "web")
		n := len(rr.log.all())
		ran := false
		next := rr.withGroups(web, db)
		next.Node, next.HTTPListen = "n2", "127.0.0.1:1"
		err := rr.reload(next, func() error { ran = true; return nil })
		if err == nil || !strings.HasPrefix(err.Error(), "[node http.listen] changed: that needs a restart") {
			t.Fatalf("reload = %v, want node and http.listen named", err)
		}
		bad := errors.New("config: groups[0].vips[1]: not an address")
		if err := rr.reload(Spec{}, nil); err == nil {
			t.Fatal("a reload to an empty spec (every restart key changed) was applied")
		}
		done := make(chan error, 1)
		rr.reloads <- Reload{Err: bad, Spec: rr.withGroups(), Done: done}
		if err := <-done; err != bad {
			t.Fatalf("reload with Err = %v, want it back", err)
		}
		rr.health.updateErr = errors.New("check api: url: missing scheme")
		if err := rr.reload(rr.withGroups(web, db), func() error { ran = true; return nil }); err == nil || !strings.Contains(err.Error(), "missing scheme") {
			t.Fatalf("reload with bad checks = %v", err)
		}
		synctest.Wait()
		if ran {
			t.Fatal("the mode's part ran for a refused reload")
		}
		if got := rr.since(n); len(got) != 0 {
			t.Fatalf("a refused reload changed something: %q", got)
		}
		if len(rr.health.updates) != 1 {
			t.Fatalf("checks updated %d times, want once (the refused update)", len(rr.health.updates))
		}
		s := rr.status(t)
		if s.Reloads.Applied != 0 || s.Reloads.Failed != 4 || !strings.Contains(s.Reloads.LastError, "missing scheme") || s.Reloads.LastAt.IsZero() {
			t.Fatalf("/status reloads %+v, want 4 failed", s.Reloads)
		}
		if !slices.Equal(s.groupNames(), []string{"web"}) || !s.Groups[0].Owner || len(s.Groups[0].VIPs) != 2 {
			t.Fatalf("/status groups changed: %+v", s.Groups)
		}
		// A good reload after refused ones clears the error.
		rr.health.updateErr = nil
		if err := rr.reload(rr.withGroups(web), nil); err != nil {
			t.Fatal(err)
		}
		if s := rr.status(t); s.Reloads.Applied != 1 || s.Reloads.Failed != 4 || s.Reloads.LastError != "" {
			t.Fatalf("/status reloads %+v after a good one", s.Reloads)
		}
		rr.stop(t)
	})
}

// A VIP added to an owned group is bound and announced; the VIPs it keeps
// are not touched (no Replace, delete or announcement) until their regular
// refresh, which then covers the new one too.
func TestReloadAddsAVIPToAnOwnedGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.own(t, "web")
		rr.announce.take()
		before := rr.replaces()
		n := len(rr.log.all())
		at := time.Now()
		g := web
		g.VIPs = append(slices.Clone(web.VIPs), addr.VIP{Interface: "eth0", Addr: vipD})
		if err := rr.reload(rr.withGroups(g), nil); err != nil {
			t.Fatal(err)
		}
		if !time.Now().Equal(at) {
			t.Fatal("time moved during the reload: a refresh may hide a re-bind")
		}
		if got := rr.since(n); !slices.Equal(got, []string{"kernel add " + vipD.String()}) {
			t.Fatalf("kernel and elector events %q, want only the new VIP added", got)
		}
		after := rr.replaces()
		if after[vipA] != before[vipA] || after[vipB] != before[vipB] || after[vipD] != 1 {
			t.Fatalf("Replace calls before %v, after %v: want the kept VIPs untouched, the new one once", before, after)
		}
		if got := rr.announce.take(); !slices.Equal(got, []call{{"announce", vipD}}) {
			t.Fatalf("announcer calls %v, want the new VIP only", got)
		}
		s := rr.status(t)
		if len(s.Groups) != 1 || !s.Groups[0].Owner || len(s.Groups[0].VIPs) != 3 {
			t.Fatalf("/status %+v", s.Groups)
		}
		for _, v := range s.Groups[0].VIPs {
			if !v.Bound {
				t.Fatalf("VIP %s not bound", v.Address)
			}
		}
		time.Sleep(rr.spec.Refresh)
		synctest.Wait()
		refreshed := rr.replaces()
		for _, a := range []netip.Addr{vipA, vipB, vipD} {
			if refreshed[a] != after[a]+1 {
				t.Fatalf("after one refresh interval: %v (was %v), want every VIP refreshed once", refreshed, after)
			}
		}
		rr.stop(t)
		if rr.kernel.bound() != 0 {
			t.Fatal("VIPs left after Run returned")
		}
	})
}

// A VIP a reload drops from an owned group is silenced and unbound, and
// never refreshed back; the other one stays untouched.
func TestReloadRemovesAVIPFromAnOwnedGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.own(t, "web")
		rr.announce.take()
		before := rr.replaces()
		n := len(rr.log.all())
		g := web
		g.VIPs = web.VIPs[:1]
		if err := rr.reload(rr.withGroups(g), nil); err != nil {
			t.Fatal(err)
		}
		if got := rr.since(n); !slices.Equal(got, []string{"kernel del " + vipB.String()}) {
			t.Fatalf("events %q, want only %s deleted", got, vipB)
		}
		if got := rr.announce.take(); !slices.Equal(got, []call{{"silence", vipB}}) {
			t.Fatalf("announcer calls %v", got)
		}
		if after := rr.replaces(); after[vipA] != before[vipA] {
			t.Fatalf("the kept VIP was re-bound: %v -> %v", before, after)
		}
		time.Sleep(3 * rr.spec.Refresh)
		synctest.Wait()
		if got := rr.since(n); len(got) != 1 || rr.kernel.bound() != 1 {
			t.Fatalf("after refreshes: events %q, %d bound", got, rr.kernel.bound())
		}
		s := rr.status(t)
		if len(s.Groups[0].VIPs) != 1 || s.Groups[0].VIPs[0].Address != vipA.String() || !s.Groups[0].VIPs[0].Bound {
			t.Fatalf("/status VIPs %+v", s.Groups[0].VIPs)
		}
		rr.stop(t)
	})
}

// An added group is in /status, has its hooks, watches its interface, and
// has its input before the mode's part runs (the elector never sees a new
// group without an input).
func TestReloadAddsAGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.hooks.take()
		g := db
		g.Notify = webNotify
		var atElector string
		err := rr.reload(rr.withGroups(web, g), func() error {
			in := rr.elector.inputs.Get("db")
			atElector = strings.Join(rr.log.all(), "\n")
			rr.log.add("elector reload")
			if !in.Eligible || in.Priority != 50 {
				return errors.New("db has no eligible input when the elector learns about it")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(atElector, "input db eligible=true ") {
			t.Fatalf("db's input was not set before the mode's part ran:\n%s", atElector)
		}
		s := rr.status(t)
		if !slices.Equal(s.groupNames(), []string{"web", "db"}) {
			t.Fatalf("/status groups %q", s.groupNames())
		}
		if d := s.Groups[1]; !d.Eligible || d.Priority != 50 || d.Owner || len(d.VIPs) != 1 || d.Hooks != "hooks of db" {
			t.Fatalf("/status db %+v", d)
		}
		var watching bool
		for _, w := range s.Watchers {
			watching = watching || (w.Name == "conflicts eth1" && w.Running)
		}
		if !watching {
			t.Fatalf("no conflict watch on eth1: %+v", s.Watchers)
		}
		if got := rr.hooks.take(); !slices.Equal(got, []string{"db BACKUP<- 50: starting"}) {
			t.Fatalf("hooks %q", got)
		}
		rr.own(t, "db")
		if rr.kernel.bound() != 1 {
			t.Fatal("the added group's VIP is not bound")
		}
		rr.stop(t)
	})
}

// A removed group: the mode's part reports it Owner=false (the daemon has
// not touched its VIPs before that), the daemon then forgets it: no VIP,
// no status, no watch, hooks end with STOP. Added again later, it starts
// over.
func TestReloadRemovesAGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := db
		g.Notify = webNotify
		rr := startReloadRig(t, web, g)
		rr.own(t, "db")
		rr.hooks.take()
		var boundAtElector int
		var namesAtElector []string
		err := rr.reload(rr.withGroups(web), func() error {
			boundAtElector = rr.kernel.bound()
			// Not rr.status: this runs in the reloader's goroutine.
			_, body := rr.ln.get(nil, "/status")
			var s statusDoc
			_ = json.Unmarshal([]byte(body), &s)
			namesAtElector = s.groupNames()
			rr.log.add("elector reload")
			rr.elector.drop <- "db"
			return <-rr.elector.errs
		})
		if err != nil {
			t.Fatal(err)
		}
		if boundAtElector != 1 || !slices.Equal(namesAtElector, []string{"web", "db"}) {
			t.Fatalf("when the mode's part ran: %d bound, groups %q; want db still there", boundAtElector, namesAtElector)
		}
		evs := rr.log.all()
		if el, del := contains(evs, "elector reload"), contains(evs, "kernel del "+vipC.String()); el < 0 || del < el {
			t.Fatalf("db's VIP must go after the mode's part ran: %q", evs)
		}
		if rr.kernel.bound() != 0 {
			t.Fatal("db's VIP is still bound")
		}
		s := rr.status(t)
		if !slices.Equal(s.groupNames(), []string{"web"}) {
			t.Fatalf("/status groups %q", s.groupNames())
		}
		for _, w := range s.Watchers {
			if w.Name == "conflicts eth1" {
				t.Fatalf("eth1 still watched: %+v", s.Watchers)
			}
		}
		if got := rr.hooks.take(); !slices.Equal(got, []string{"db STOP<-MASTER 50: removed"}) {
			t.Fatalf("hooks %q", got)
		}
		if rr.hooks.Status("db") != nil {
			t.Fatal("db's hooks still set")
		}
		// Added again: a fresh group.
		if err := rr.reload(rr.withGroups(web, g), nil); err != nil {
			t.Fatal(err)
		}
		if got := rr.hooks.take(); !slices.Equal(got, []string{"db BACKUP<- 50: starting"}) {
			t.Fatalf("hooks of the group added again %q", got)
		}
		rr.own(t, "db")
		rr.stop(t)
	})
}

// A priority or track change changes the input only: ownership, VIPs and
// announcements stay as they were.
func TestReloadPriorityAndTrackChangeOnlyTheInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.own(t, "web")
		rr.announce.take()
		rr.hooks.take()
		since := rr.status(t).Groups[0].Since
		rr.health.set(health.Result{Name: "load", State: health.Failing})
		before := rr.replaces()
		n := len(rr.log.all())

		g := web
		g.Priority = 150
		if err := rr.reload(rr.withGroups(g), nil); err != nil {
			t.Fatal(err)
		}
		if in := rr.elector.inputs.Get("web"); !in.Eligible || in.Priority != 150 {
			t.Fatalf("input after the priority change %+v", in)
		}
		g.Track = []Track{{"load", -30}}
		next := rr.withGroups(g)
		next.Checks = []health.Spec{{Name: "load"}}
		if err := rr.reload(next, nil); err != nil {
			t.Fatal(err)
		}
		if in := rr.elector.inputs.Get("web"); !in.Eligible || in.Priority != 120 || in.Reason != "check load failing (weight -30)" {
			t.Fatalf("input after the track change %+v", in)
		}
		if got := rr.health.updates[len(rr.health.updates)-1]; len(got) != 1 || got[0].Name != "load" {
			t.Fatalf("checks updated to %+v", got)
		}
		want := []string{"input web eligible=true ", "input web eligible=true check load failing (weight -30)"}
		if got := rr.since(n); !slices.Equal(got, want) {
			t.Fatalf("events %q, want only the two inputs", got)
		}
		if after := rr.replaces(); after[vipA] != before[vipA] || after[vipB] != before[vipB] {
			t.Fatalf("VIPs re-bound: %v -> %v", before, after)
		}
		if got := rr.announce.take(); len(got) != 0 {
			t.Fatalf("announcements %v", got)
		}
		if got := rr.hooks.take(); len(got) != 0 {
			t.Fatalf("hooks %q", got)
		}
		s := rr.status(t)
		if gs := s.Groups[0]; !gs.Owner || !gs.Since.Equal(since) || gs.Priority != 120 {
			t.Fatalf("/status %+v", gs)
		}
		rr.stop(t)
	})
}

// A reload that arrives while the daemon shuts down must not race the
// shutdown of the watches (run with -race).
func TestReloadDuringShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		rr.cancel()
		done := make(chan error, 1)
		select {
		case rr.reloads <- Reload{Spec: rr.withGroups(web, db), Done: done}:
		case err := <-rr.done:
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := <-rr.done; err != nil {
			t.Fatal(err)
		}
		if rr.kernel.bound() != 0 {
			t.Fatal("VIPs left")
		}
	})
}

// A mode that does not report a removed group it owned: the daemon still
// removes its VIPs when it forgets the group (nothing is left bound for a
// group nobody tracks).
func TestReloadRemovesAnOwnedGroupTheModeDidNotRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web, db)
		rr.own(t, "db")
		rr.announce.take()
		if err := rr.reload(rr.withGroups(web), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if rr.kernel.bound() != 0 {
			t.Fatal("the removed group's VIP is still bound")
		}
		if got := rr.announce.take(); !slices.Equal(got, []call{{"silence", vipC}}) {
			t.Fatalf("announcer calls %v", got)
		}
		if got := rr.hooks.take(); !slices.Equal(got[len(got)-1:], []string{"db STOP<-MASTER 50: removed"}) {
			t.Fatalf("hooks %q", got)
		}
		rr.stop(t)
	})
}

// The mode refusing its part: the reload is reported failed, naming the
// mode, while the daemon's part (here a priority) is applied.
func TestReloadModeRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rr := startReloadRig(t, web)
		g := web
		g.Priority = 150
		err := rr.reload(rr.withGroups(g), func() error { return errors.New("vrrp: virtualRouterID changed") })
		if err == nil || err.Error() != "mode fake: vrrp: virtualRouterID changed" {
			t.Fatalf("reload = %v", err)
		}
		s := rr.status(t)
		if s.Reloads.Failed != 1 || s.Reloads.LastError != err.Error() || s.Groups[0].Priority != 150 {
			t.Fatalf("/status %+v", s)
		}
		rr.stop(t)
	})
}
