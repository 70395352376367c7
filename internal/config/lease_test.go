package config

import (
	"strings"
	"testing"
	"time"
)

const leaseBase = `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: lease
groups:
- name: web
  vips: [{address: 198.51.100.100}]
`

func TestLeaseDefaults(t *testing.T) {
	c, err := Parse([]byte(leaseBase))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	l := c.Lease
	if l.Namespace != "kube-system" || l.LeaseDuration != 5*time.Second || l.RenewDeadline != 3*time.Second || l.RetryPeriod != 500*time.Millisecond {
		t.Errorf("defaults: %+v", *l)
	}
	if got := c.Groups[0].Lease.Name; got != "vipd-web" {
		t.Errorf("lease name %q", got)
	}
	// The defaults sit exactly on the fencing rule's bound.
	if LeaseMinDuration(l.RenewDeadline, l.RetryPeriod) != l.LeaseDuration {
		t.Errorf("defaults are not the tightest safe setting: min %s", LeaseMinDuration(l.RenewDeadline, l.RetryPeriod))
	}
}

func TestLeaseValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // substring of the error; "" means valid
	}{
		{"explicit ok", "lease: {namespace: vipd, leaseDuration: 6s, renewDeadline: 3s, retryPeriod: 1s, server: 'https://127.0.0.1:6443', kubeconfig: /etc/k.conf}\n", ""},
		{"overlap possible", "lease: {leaseDuration: 3s, renewDeadline: 2s}\n",
			`lease.leaseDuration: 3s: must be at least renewDeadline (2s) + retryPeriod (500ms) + 1s renewTime truncation + 500ms drop margin = 4s`},
		{"fractional duration", "lease: {leaseDuration: 4500ms}\n", `lease.leaseDuration: 4.5s: must be whole seconds`},
		{"deadline too short", "lease: {renewDeadline: 900ms}\n", `lease.renewDeadline: 900ms: must be at least 2 x lease.retryPeriod (1s)`},
		{"retry too short", "lease: {retryPeriod: 10ms}\n", `lease.retryPeriod: 10ms: must be between 100ms and 1m`},
		{"bad namespace", "lease: {namespace: Kube_System}\n", `lease.namespace: "Kube_System": must be a Kubernetes namespace name`},
		{"bad server", "lease: {server: '127.0.0.1:6443'}\n", `lease.server: "127.0.0.1:6443": must be an http(s) URL`},
		{"lifetime vs lease", "binding: {lifetime: 4s, refresh: 1s}\n", `lease.leaseDuration: 5s: must be at least binding.lifetime (4s) + 1s kernel expiry slack + retryPeriod (500ms) = 5.5s`},
		{"4s lease needs a 2s lifetime", "lease: {leaseDuration: 4s, renewDeadline: 2s}\n", `must be at least binding.lifetime (3s) + 1s kernel expiry slack + retryPeriod (500ms) = 4.5s`},
		{"fast setting", "binding: {lifetime: 2s, refresh: 1s}\nlease: {leaseDuration: 4s, renewDeadline: 2s}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(leaseBase + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(fakeHost{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLeaseGroupNames(t *testing.T) {
	y := `apiVersion: vipd.io/v1alpha1
kind: Config
node: n1
mode: lease
groups:
- name: a
  vips: [{address: 198.51.100.100}]
  lease: {name: shared}
- name: b
  vips: [{address: 198.51.100.101}]
  lease: {name: shared}
- name: c
  vips: [{address: 198.51.100.102}]
  lease: {name: Bad_Name}
`
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(fakeHost{})
	for _, want := range []string{
		`groups[1].lease.name: "shared": duplicates groups[0].lease.name`,
		`groups[2].lease.name: "Bad_Name": must be a Kubernetes object name`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// A scaled lifetime (addr.PlanUpkeep) stays within what the Lease allows:
// with the defaults that is binding.lifetime itself (5s - 1s - 500ms).
func TestMaxBindingLifetime(t *testing.T) {
	c, err := Parse([]byte(leaseBase + "lease: {leaseDuration: 60s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if got := c.MaxBindingLifetime(); got != 58500*time.Millisecond {
		t.Errorf("MaxBindingLifetime = %s, want 58.5s", got)
	}
	c.Lease.LeaseDuration = DefaultLeaseDuration
	if got := c.MaxBindingLifetime(); got != 3500*time.Millisecond {
		t.Errorf("MaxBindingLifetime = %s with the defaults, want 3.5s", got)
	}
	c.Mode, c.Lease = ModeStatic, nil
	if got := c.MaxBindingLifetime(); got != 0 {
		t.Errorf("MaxBindingLifetime = %s in mode static, want 0 (no bound)", got)
	}
}
