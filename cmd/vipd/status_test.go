package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/node"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := node.Status{
		Node: "n1", Mode: "vrrp", Version: "dev",
		Healthy: false, Unhealthy: "conflicts eth0 watch failing since 2026-12-04T11:59:58Z (restarts 1): network is down",
		Ready: false, NotReady: "not eligible: web: link eth0 down",
		Groups: []node.GroupStatus{{Name: "web", Owner: true, Since: now.Add(-90 * time.Second), Reason: "master-down-timer",
			VIPs: []node.VIPStatus{{Address: "198.51.100.100", Interface: "eth0", Bound: true}}}},
	}
	var b strings.Builder
	printStatus(&b, st, now)
	for _, want := range []string{
		"node n1, mode vrrp, vipd dev\n",
		"healthy: no (conflicts eth0 watch failing since 2026-12-04T11:59:58Z (restarts 1): network is down)\n",
		"ready: no (not eligible: web: link eth0 down)\n",
		"web    yes    1m30s ago  master-down-timer  198.51.100.100 on eth0 (bound)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
