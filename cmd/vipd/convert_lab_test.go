package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/testutil"
	"github.com/vipd/vipd/internal/vrrplab"
)

// The migration lab of issue #13: a three-node keepalived cluster is
// converted to vipd node by node with `vipd convert keepalived` while the
// client probes the VIP every 10 ms, and the result must behave as the
// keepalived cluster did.

// stepCost is what one step cost the client.
type stepCost struct {
	name   string
	took   time.Duration // event to the settled state
	lost   int           // probes nobody answered
	owners string        // who answered, in order, during the step
}

// migrationLab is the running cluster: keepalived or vipd on each node.
type migrationLab struct {
	t     *testing.T
	l     *lab.Lab
	bin   string
	prios []int
	svcs  []*lab.Service
	probe *lab.Probe
	kas   []*vrrplab.Keepalived // nil once the node runs vipd
	costs []stepCost
}

// TestLabConvertKeepalivedNodeByNode: keepalived on three nodes
// (priorities 150/100/50, 100 ms adverts, a track_script curl-ing the
// node's service every 1 s with fall 2, rise 2, weight -60). First the
// failover order under keepalived: node1's service fails (150 -> 90), then
// node2's too (100 -> 40), then both recover. Then each node in turn,
// backups first and the master last, is converted: its file through the
// real `vipd convert keepalived`, `vipd validate` in its namespace,
// keepalived stopped (SIGTERM), vipd started with the output; the step ends
// when vipd holds the role keepalived had. Finally the same failure
// sequence runs on the vipd cluster: it must give the same masters in the
// same order. Every step's lost probes and duration are logged.
func TestLabConvertKeepalivedNodeByNode(t *testing.T) {
	lab.Require(t)
	if err := vrrplab.KeepalivedAvailable(); err != nil {
		lab.Unavailable(t, err)
	}
	l := lab.New(t, lab.Options{Nodes: 3})
	const port = 7191
	r := vrrplab.Router{VRID: 91, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{l.VIPv4(31)}}
	m := &migrationLab{t: t, l: l, bin: lab.BuildVipd(t), prios: []int{150, 100, 50}, kas: make([]*vrrplab.Keepalived, 3)}
	if err := l.StartResponders(port); err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Nodes {
		s, err := h.StartService(port + 1000)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		m.svcs = append(m.svcs, s)
	}
	p, err := l.StartProbe(t.Context(), r.VIPs[0], port, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	m.probe = p

	// The master first, so that no backup is master for a moment at start.
	for i, h := range l.Nodes {
		conf := vrrplab.WithScripts(vrrplab.KeepalivedConfig(h, m.prios[i], r, netip.Addr{}, nil), vrrplab.Script{
			Name: "chk_svc", Command: "/usr/bin/curl -sf -o /dev/null -m 1 " + m.svcs[i].URL(),
			Interval: time.Second, Timeout: time.Second, Fall: 2, Rise: 2, Weight: -60})
		ka, err := vrrplab.StartKeepalived(l, h, conf)
		if err != nil {
			t.Fatal(err)
		}
		m.kas[i] = ka
		state := "BACKUP"
		if i == 0 {
			state = "MASTER"
			if err := p.WaitOwner("node1", 15*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if err := ka.WaitLog("Entering "+state+" STATE", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"node2", "node1"} // 150-60=90 < 100; then 100-60=40 < 50 < 90
	kaOrder := m.failureSequence("keepalived")
	if !slices.Equal(kaOrder, want) {
		t.Fatalf("keepalived's failover order %v, want %v (the test's premise)", kaOrder, want)
	}

	// Node by node, backups first.
	master := l.Nodes[0].IPv4.Addr()
	for _, i := range []int{2, 1, 0} {
		m.convert(i, master)
	}
	if o := m.owner(); o != "node1" {
		t.Fatalf("after the migration %s answers, keepalived's master was node1", o)
	}
	vipdOrder := m.failureSequence("vipd")
	if !slices.Equal(vipdOrder, kaOrder) {
		t.Errorf("failover order: keepalived %v, vipd %v", kaOrder, vipdOrder)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%-58s %8s %5s  %s\n", "step", "took", "lost", "answered by")
	for _, c := range m.costs {
		fmt.Fprintf(&b, "%-58s %8s %5d  %s\n", c.name, c.took.Round(time.Millisecond), c.lost, c.owners)
	}
	t.Logf("what each step cost the client (probe every 10 ms):\n%s", b.String())
}

// failureSequence fails node1's service, then node2's, and returns who
// ended up answering after each; then it restores node1's service, then
// node2's, and checks node1 stays the owner throughout.
func (m *migrationLab) failureSequence(impl string) []string {
	m.t.Helper()
	var order []string
	for i := range 2 {
		at := m.svcs[i].SetHealthy(false)
		m.waitPriority(i, m.prios[i]-60)
		order = append(order, m.settle(fmt.Sprintf("%s: node%d's service fails (%d -> %d)", impl, i+1, m.prios[i], m.prios[i]-60), at))
	}
	// node1 first: node2 back at 100 next to node1 still at 90 would
	// rightly take over. The time until each is back at its priority shows
	// vipd's health.minMoveInterval (default 10s after the drop), which
	// keepalived does not have.
	start := time.Now()
	for i := range 2 {
		at := m.svcs[i].SetHealthy(true)
		m.waitPriority(i, m.prios[i])
		m.record(fmt.Sprintf("%s: node%d's service back (%d -> %d)", impl, i+1, m.prios[i]-60, m.prios[i]), at, time.Now())
	}
	if f, moved := m.probe.Snapshot().FailoverAfter(start); moved {
		m.t.Errorf("%s: the VIP moved while node1 recovered first: %s", impl, f)
	}
	return order
}

// convert migrates node i from keepalived to vipd: it converts and
// validates its keepalived.conf first (so a refused file leaves keepalived
// running), then stops keepalived and starts vipd, and waits until vipd is
// a backup of master at its priority (node1: the owner). The step's cost is
// from keepalived's SIGTERM on.
func (m *migrationLab) convert(i int, master netip.Addr) {
	m.t.Helper()
	h := m.l.Nodes[i]
	ka := m.kas[i]
	conv := time.Now()
	cmd := exec.Command(m.bin, "convert", "keepalived", "--config-id", h.Name, ka.ConfigFile())
	var out, warn bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &warn
	if err := cmd.Run(); err != nil {
		m.t.Fatalf("vipd convert keepalived %s: %v\n%s", ka.ConfigFile(), err, warn.String())
	}
	tookConv := time.Since(conv)
	path := filepath.Join(m.l.TempDir(), "vipd-"+h.Name+".yaml")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if v, err := h.Run(context.Background(), m.bin, "validate", "--config", path); err != nil {
		m.t.Fatalf("vipd validate on %s: %v\n%s\n%s", h.Name, err, v, out.String())
	}
	m.t.Logf("%s: converted in %s, %d warning(s):\n%s", h.Name, tookConv.Round(time.Millisecond),
		strings.Count(warn.String(), "warning:"), strings.TrimSpace(warn.String()))

	at := time.Now()
	if err := ka.Stop(5 * time.Second); err != nil {
		m.t.Fatal(err)
	}
	m.kas[i] = nil
	if _, err := m.l.Start(h, m.bin, "run", "--config", path); err != nil {
		m.t.Fatal(err)
	}
	role := "backup"
	if i == 0 {
		role = "master"
	}
	var last string
	if _, err := testutil.Poll(context.Background(), 15*time.Second, 20*time.Millisecond, func() bool {
		st, err := vrrplab.NodeStatus(h)
		if err != nil || len(st.Groups) != 1 {
			last = fmt.Sprintf("%+v %v", st, err)
			return false
		}
		g := st.Groups[0]
		last = fmt.Sprintf("owner %t priority %d reason %q", g.Owner, g.Priority, g.Reason)
		if g.Priority != m.prios[i] {
			return false
		}
		if i == 0 {
			return g.Owner && m.owner() == h.Name
		}
		vs, err := vrrplab.VipdStatus(h)
		return err == nil && !g.Owner && len(vs.Routers) == 1 && vs.Routers[0].State == "backup" &&
			vs.Routers[0].Master == master.String() && vs.Routers[0].MasterPriority == uint8(m.prios[0])
	}); err != nil {
		m.t.Fatalf("%s: vipd not %s at priority %d within 15s: %s", h.Name, role, m.prios[i], last)
	}
	m.record(fmt.Sprintf("convert %s (%d): keepalived stopped, vipd %s", h.Name, m.prios[i], role), at, time.Now())
}

// settle waits until a node other than the one answering before at has
// answered for a second without a break in owner, records the step, and
// returns that node.
func (m *migrationLab) settle(name string, at time.Time) string {
	m.t.Helper()
	const hold = time.Second
	var node string
	var first time.Time
	if _, err := testutil.Poll(context.Background(), 15*time.Second, 20*time.Millisecond, func() bool {
		rec := m.probe.Snapshot()
		f, ok := rec.FailoverAfter(at)
		spans := rec.Owners()
		if !ok || len(spans) == 0 {
			return false
		}
		s := spans[len(spans)-1]
		if s.Node == f.From || s.First.Before(f.FirstTo) || time.Since(s.First) < hold {
			return false
		}
		node, first = s.Node, s.First
		return true
	}); err != nil {
		m.t.Fatalf("%s: no new owner settled: %s", name, m.probe.Snapshot().Summary())
	}
	m.record(name, at, first)
	return node
}

// record logs and keeps the cost of the step from at to until: probes sent
// in between that nobody answered, and who answered.
func (m *migrationLab) record(name string, at, until time.Time) {
	m.t.Helper()
	// Every request sent until then is answered or lost once one sent after
	// it is answered (one path, in order).
	if _, err := testutil.Poll(context.Background(), 5*time.Second, 10*time.Millisecond, func() bool {
		r, ok := m.probe.Latest()
		return ok && r.SentAt.After(until)
	}); err != nil {
		m.t.Fatalf("%s: no probe answered after the step: %s", name, m.probe.Snapshot().Summary())
	}
	rec := m.probe.Snapshot()
	answered := map[int]bool{}
	var owners []string
	for _, rp := range rec.Replies {
		answered[rp.Seq] = true
		if rp.SentAt.Before(at) || rp.SentAt.After(until) {
			continue
		}
		if n := len(owners); n == 0 || owners[n-1] != rp.Node {
			owners = append(owners, rp.Node)
		}
	}
	lost := 0
	for seq, sent := range rec.SentAt {
		if !sent.Before(at) && !sent.After(until) && !answered[seq] {
			lost++
		}
	}
	c := stepCost{name: name, took: until.Sub(at), lost: lost, owners: strings.Join(owners, " -> ")}
	for from := at; ; {
		f, ok := rec.FailoverAfter(from)
		if !ok || f.FirstTo.After(until) {
			break
		}
		m.t.Logf("%s: %s", name, f)
		from = f.FirstTo.Add(time.Nanosecond)
	}
	m.t.Logf("%s: %s, %d probes lost, answered by %s", name, c.took.Round(time.Millisecond), c.lost, c.owners)
	m.costs = append(m.costs, c)
}

// owner is the node that answered the latest probe.
func (m *migrationLab) owner() string {
	r, ok := m.probe.Latest()
	if !ok {
		return ""
	}
	return r.Node
}

// waitPriority waits until node i's effective priority is prio, read from
// keepalived's log or vipd's /status, whichever runs there.
func (m *migrationLab) waitPriority(i, prio int) {
	m.t.Helper()
	h := m.l.Nodes[i]
	got := -1
	if _, err := testutil.Poll(context.Background(), 10*time.Second, 20*time.Millisecond, func() bool {
		if ka := m.kas[i]; ka != nil {
			got = keepalivedPriority(ka.Output(), m.prios[i])
			return got == prio
		}
		st, err := vrrplab.NodeStatus(h)
		if err == nil && len(st.Groups) == 1 {
			got = st.Groups[0].Priority
		}
		return got == prio
	}); err != nil {
		m.t.Fatalf("%s: effective priority %d, want %d", h.Name, got, prio)
	}
}

var kaPrioRE = regexp.MustCompile(`Changing effective priority from \d+ to (\d+)`)

// keepalivedPriority is the effective priority keepalived last logged, or
// base if it logged none.
func keepalivedPriority(out string, base int) int {
	ms := kaPrioRE.FindAllStringSubmatch(out, -1)
	if len(ms) == 0 {
		return base
	}
	p, _ := strconv.Atoi(ms[len(ms)-1][1])
	return p
}
