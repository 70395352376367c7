package modes

import (
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/vipd/vipd/election/lease"
	"github.com/vipd/vipd/internal/config"
)

func leaseConfig(t *testing.T, extra, groups string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: lease
lease:
  kubeconfig: /etc/vipd/vipd.kubeconfig
` + extra + `groups:
` + groups))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(eth0Host{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadLease: groups follow the new config in place; a setting that
// needs a restart is refused by its config key.
func TestReloadLease(t *testing.T) {
	web := "- name: web\n  vips: [{address: 198.51.100.100}]\n"
	api := "- name: api\n  vips: [{address: 198.51.100.101}]\n"
	c := leaseConfig(t, "", web)
	o := leaseOptions(c)
	o.Client = fake.NewClientset()
	e, err := lease.New(o)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := Lookup(config.ModeLease)
	if err := m.Reload(e, leaseConfig(t, "", web+api)); err != nil {
		t.Fatal(err)
	}
	if st := e.GroupStatuses(); len(st) != 2 || st[1].Lease != "vipd-api" {
		t.Fatalf("groups after reload: %+v", st)
	}
	for key, extra := range map[string]string{
		"lease.retryPeriod": "  retryPeriod: 250ms\n",
		"lease.namespace":   "  namespace: vipd\n",
		"lease.server":      "  server: https://192.0.2.1:6443\n",
	} {
		err := m.Reload(e, leaseConfig(t, extra, web))
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "restart") {
			t.Errorf("%s changed: %v, want an error naming it and a restart", key, err)
		}
	}
	if st := e.GroupStatuses(); len(st) != 2 {
		t.Fatalf("a refused reload changed the groups: %+v", st)
	}
}
