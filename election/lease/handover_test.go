package lease

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestShouldRequestAndYield(t *testing.T) {
	healthy := func(p int) eligibility { return eligibility{Eligible: true, Priority: p} }
	degraded := func(p int) eligibility { return eligibility{Eligible: true, Degraded: true, Priority: p} }
	for _, tc := range []struct {
		name   string
		holder eligibility // the holder's input, as it publishes it
		me     eligibility
		want   bool
	}{
		{"healthy asks a degraded holder", degraded(200), healthy(100), true},
		{"healthy asks a degraded holder of lower priority", degraded(50), healthy(100), true},
		{"higher priority asks a healthy holder", healthy(100), healthy(101), true},
		{"equal priority does not ask", healthy(100), healthy(100), false},
		{"lower priority does not ask", healthy(200), healthy(100), false},
		{"degraded never asks a degraded holder", degraded(50), degraded(200), false},
		{"degraded never asks a healthy holder", healthy(50), degraded(200), false},
		{"ineligible never asks", degraded(50), eligibility{Priority: 254}, false},
		{"clamped priorities compare clamped", healthy(254), healthy(300), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &coordinationv1.Lease{}
			setCandidacy(l, tc.holder)
			got := shouldRequest(publishedOf(l), tc.me)
			if got != tc.want {
				t.Fatalf("shouldRequest = %v, want %v", got, tc.want)
			}
			// The holder honours exactly the requests a candidate makes,
			// so an ignored request is not made again.
			if y := shouldYield("holder", tc.holder, "me", clampPriority(tc.me.Priority)); tc.me.Eligible && !tc.me.Degraded && y != got {
				t.Fatalf("shouldYield = %v, shouldRequest = %v: the two sides disagree", y, got)
			}
		})
	}
	if shouldRequest(published{}, healthy(254)) {
		t.Error("asked a holder that publishes no candidacy (another client, older vipd)")
	}
	if shouldYield("me", eligibility{Eligible: true, Degraded: true, Priority: 1}, "me", 254) {
		t.Error("yielded to itself")
	}
}

func TestWantsRequestWrite(t *testing.T) {
	in := eligibility{Eligible: true, Priority: 150}
	req := func(to, prio string) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annPriority: "100"}}}
		if to != "" {
			l.Annotations[annHandoverTo], l.Annotations[annHandoverPriority] = to, prio
		}
		return l
	}
	for _, tc := range []struct {
		name       string
		l          *coordinationv1.Lease
		want       bool
		write, ask bool
	}{
		{"want, nothing pending: ask", req("", ""), true, true, true},
		{"want, ours pending: nothing", req("me", "150"), true, false, true},
		{"want, ours pending with another priority: ask again", req("me", "120"), true, true, true},
		{"want, lower candidate pending: overwrite", req("other", "120"), true, true, true},
		{"want, equal candidate pending: leave it", req("other", "150"), true, false, true},
		{"want, higher candidate pending: leave it", req("other", "200"), true, false, true},
		{"no longer want, ours pending: withdraw", req("me", "150"), false, true, false},
		{"no longer want, other's pending: leave it", req("other", "150"), false, false, false},
		{"no longer want, nothing pending: nothing", req("", ""), false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, a := wantsRequestWrite(tc.l, "me", tc.want, in)
			if w != tc.write || (w && a != tc.ask) {
				t.Fatalf("write=%v ask=%v, want write=%v ask=%v", w, a, tc.write, tc.ask)
			}
		})
	}
}

func TestSameRenewal(t *testing.T) {
	h := "a"
	t1, t2 := metav1.NewMicroTime(t0), metav1.NewMicroTime(t0.Add(ms(500)))
	base := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &h, RenewTime: &t1}}
	asked := base.DeepCopy()
	asked.ResourceVersion = "7"
	asked.Annotations = map[string]string{annHandoverTo: "b", annHandoverPriority: "200"}
	if !sameRenewal(base, asked) {
		t.Error("a request counted as a write of the holder")
	}
	renewed := base.DeepCopy()
	renewed.Spec.RenewTime = &t2
	if sameRenewal(base, renewed) {
		t.Error("a renewal counted as a request")
	}
	other := "b"
	handed := base.DeepCopy()
	handed.Spec.HolderIdentity = &other
	if sameRenewal(base, handed) {
		t.Error("a handover counted as a request")
	}
}
