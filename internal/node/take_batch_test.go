package node

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
)

// batchRecorder is a Binder and Announcer with the batch methods
// (addr.Binder, arp.Announcer): a take is one BindAll and one StartAll per
// interface.
type batchRecorder struct {
	mu      sync.Mutex
	calls   []string
	bindErr map[netip.Addr]error
}

func (r *batchRecorder) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }

func (r *batchRecorder) Bind(addr.VIP) error   { r.add("bind"); return nil }
func (r *batchRecorder) Unbind(addr.VIP) error { r.add("unbind"); return nil }
func (r *batchRecorder) BindAll(vs []addr.VIP) []error {
	r.add("bindAll " + vipNames(vs))
	errs := make([]error, len(vs))
	for i, v := range vs {
		errs[i] = r.bindErr[v.Addr]
	}
	return errs
}
func (r *batchRecorder) UnbindAll(vs []addr.VIP) []error {
	r.add("unbindAll " + vipNames(vs))
	return make([]error, len(vs))
}
func (r *batchRecorder) Start(context.Context, string, netip.Addr) error { r.add("start"); return nil }
func (r *batchRecorder) Stop(netip.Addr)                                 {}
func (r *batchRecorder) StartAll(_ context.Context, ifname string, ips []netip.Addr) []error {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	r.add("startAll " + ifname + " " + strings.Join(s, " "))
	return make([]error, len(ips))
}

func vipNames(vs []addr.VIP) string {
	var s []string
	for _, v := range vs {
		s = append(s, v.String())
	}
	return strings.Join(s, " ")
}

func TestTakeAndReleaseInBatches(t *testing.T) {
	a := addr.VIP{Interface: "eth0", Addr: netip.MustParseAddr("198.51.100.101")}
	b := addr.VIP{Interface: "eth1", Addr: netip.MustParseAddr("2001:db8::101")}
	c := addr.VIP{Interface: "eth0", Addr: netip.MustParseAddr("198.51.100.102")}
	g := Group{Name: "web", VIPs: []addr.VIP{a, b, c}}
	r := &batchRecorder{}
	m := NewManager(context.Background(), quiet, []Group{g}, r, r)
	if err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Report(election.Transition{Group: "web", Owner: false, Reason: "shutdown", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bindAll " + vipNames(g.VIPs),
		"start", // the first alone: the takeover's time is its packet's
		"startAll eth1 2001:db8::101",
		"startAll eth0 198.51.100.102",
		"unbindAll " + vipNames(g.VIPs),
	}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls\n%q\nwant\n%q", r.calls, want)
	}

	// A VIP that cannot be bound: nothing is announced, every VIP of the
	// group is removed again (the binder holds the failed one too), and the
	// take fails.
	r = &batchRecorder{bindErr: map[netip.Addr]error{b.Addr: errors.New("no such device")}}
	m = NewManager(context.Background(), quiet, []Group{g}, r, r)
	err := m.Report(election.Transition{Group: "web", Owner: true, Reason: "elected", At: time.Now()})
	if !errors.Is(err, ErrBind) {
		t.Fatalf("Report = %v, want ErrBind", err)
	}
	want = []string{"bindAll " + vipNames(g.VIPs), "unbindAll " + vipNames(g.VIPs)}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
	if st := m.Groups()[0]; st.Owner || st.VIPs[1].Error != "no such device" || st.VIPs[0].Error != "" || st.BindFailures != 1 {
		t.Fatalf("status after the failed take: %+v", st)
	}
}
