package config

import (
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Lease-mode defaults, documented in docs/lease.md.
const (
	DefaultLeaseNamespace = "kube-system"
	// 5s/3s/500ms is the tightest setting that is safe with the default
	// binding.lifetime (3s); with binding.lifetime 2s, 4s/2s/500ms is.
	DefaultLeaseDuration      = 5 * time.Second
	DefaultLeaseRenewDeadline = 3 * time.Second
	DefaultLeaseRetryPeriod   = 500 * time.Millisecond
	// DefaultLeaseNamePrefix + group name is a group's Lease name.
	DefaultLeaseNamePrefix = "vipd-"

	// LeaseTruncationMargin covers readers that see the Lease's renewTime at
	// whole-second resolution (client-go's LeaseLock), whose idea of "last
	// renewal" can therefore be up to 1s early.
	LeaseTruncationMargin = time.Second
	// LeaseDropMargin covers what happens between the owner's renew deadline
	// and its VIPs being gone (timer latency, the reporter removing addresses
	// on a loaded host) and the difference in clock rates between nodes.
	LeaseDropMargin = 500 * time.Millisecond
	// KernelLifetimeSlack is how late the kernel may remove an address after
	// its valid lifetime ran out: whenever any address changes, its lifetime
	// check is rescheduled at least 1s ahead (ADDRCONF_TIMER_FUZZ_MAX).
	KernelLifetimeSlack = time.Second
)

// Lease holds the mode-wide settings of mode "lease" (see docs/lease.md).
type Lease struct {
	// Namespace holds the Lease objects (and the Events). Default kube-system.
	Namespace string `yaml:"namespace,omitempty"`
	// Kubeconfig is a kubeconfig file path. Empty: the in-cluster service
	// account (KUBERNETES_SERVICE_HOST/PORT and the mounted token).
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	// Server overrides the API server URL of the kubeconfig or in-cluster
	// config, e.g. https://127.0.0.1:6443 on control-plane nodes so the
	// election never depends on the VIP it manages.
	Server string `yaml:"server,omitempty"`
	// LeaseDuration is how long followers wait, after last seeing the Lease
	// change, before they may take it. Whole seconds (the Lease field is
	// leaseDurationSeconds). Default 4s.
	LeaseDuration time.Duration `yaml:"leaseDuration,omitempty"`
	// RenewDeadline: an owner that has not renewed for this long (counted
	// from sending its last successful renewal) drops its VIPs. Default 3s.
	RenewDeadline time.Duration `yaml:"renewDeadline,omitempty"`
	// RetryPeriod is the interval between renewals and between attempts to
	// acquire. Default 500ms.
	RetryPeriod time.Duration `yaml:"retryPeriod,omitempty"`
}

func (c *Config) applyLeaseDefaults() {
	if c.Lease == nil {
		c.Lease = &Lease{}
	}
	l := c.Lease
	if l.Namespace == "" {
		l.Namespace = DefaultLeaseNamespace
	}
	if l.LeaseDuration == 0 {
		l.LeaseDuration = DefaultLeaseDuration
	}
	if l.RenewDeadline == 0 {
		l.RenewDeadline = DefaultLeaseRenewDeadline
	}
	if l.RetryPeriod == 0 {
		l.RetryPeriod = DefaultLeaseRetryPeriod
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.Lease == nil {
			g.Lease = &GroupLease{}
		}
		if g.Lease.Name == "" {
			g.Lease.Name = DefaultLeaseNamePrefix + g.Name
		}
	}
}

// dnsSubdomainRE is Kubernetes' DNS-1123 subdomain (object names).
var dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// LeaseMinDuration is the shortest leaseDuration that cannot overlap with
// the given renewDeadline and retryPeriod (the fencing rule, docs/lease.md):
// the owner drops its VIPs at renewDeadline after sending its last good
// renewal; nobody may acquire before leaseDuration after seeing it.
func LeaseMinDuration(renewDeadline, retryPeriod time.Duration) time.Duration {
	return renewDeadline + retryPeriod + LeaseTruncationMargin + LeaseDropMargin
}

func (c *Config) validateLease(errs *Errors) {
	l := c.Lease
	if !groupNameRE.MatchString(l.Namespace) {
		errs.add("lease.namespace", l.Namespace, "must be a Kubernetes namespace name (DNS label)")
	}
	if l.Server != "" {
		u, err := url.Parse(l.Server)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs.add("lease.server", l.Server, "must be an http(s) URL such as https://127.0.0.1:6443")
		}
	}
	timingOK := true
	switch {
	case l.RetryPeriod < 100*time.Millisecond || l.RetryPeriod > time.Minute:
		errs.add("lease.retryPeriod", l.RetryPeriod, "must be between 100ms and 1m")
		timingOK = false
	}
	switch {
	case l.RenewDeadline < 2*l.RetryPeriod:
		errs.add("lease.renewDeadline", l.RenewDeadline, "must be at least 2 x lease.retryPeriod (%s) so one failed renewal does not drop the VIPs", 2*l.RetryPeriod)
		timingOK = false
	case l.RenewDeadline > 10*time.Minute:
		errs.add("lease.renewDeadline", l.RenewDeadline, "must be at most 10m")
		timingOK = false
	}
	switch {
	case l.LeaseDuration < 2*time.Second || l.LeaseDuration > time.Hour:
		errs.add("lease.leaseDuration", l.LeaseDuration, "must be between 2s and 1h")
	case l.LeaseDuration%time.Second != 0:
		errs.add("lease.leaseDuration", l.LeaseDuration, "must be whole seconds (the Lease stores leaseDurationSeconds)")
	case timingOK && l.LeaseDuration < LeaseMinDuration(l.RenewDeadline, l.RetryPeriod):
		errs.add("lease.leaseDuration", l.LeaseDuration,
			"must be at least renewDeadline (%s) + retryPeriod (%s) + %s renewTime truncation + %s drop margin = %s, or an owner cut off from the API server could still hold the VIPs when another node takes the Lease",
			l.RenewDeadline, l.RetryPeriod, LeaseTruncationMargin, LeaseDropMargin, LeaseMinDuration(l.RenewDeadline, l.RetryPeriod))
	case c.Binding.Lifetime+KernelLifetimeSlack+l.RetryPeriod > l.LeaseDuration:
		// A crashed or frozen vipd neither renews nor refreshes: its VIPs
		// live until the kernel expires them, up to lifetime+1s after the
		// last refresh, while its last renewal may be a retryPeriod older.
		errs.add("lease.leaseDuration", l.LeaseDuration,
			"must be at least binding.lifetime (%s) + %s kernel expiry slack + retryPeriod (%s) = %s: a crashed or frozen vipd keeps its VIPs until the kernel expires them, which must happen before a follower may take the Lease (or lower binding.lifetime)",
			c.Binding.Lifetime, KernelLifetimeSlack, l.RetryPeriod, c.Binding.Lifetime+KernelLifetimeSlack+l.RetryPeriod)
	}
	names := map[string]string{}
	for gi, g := range c.Groups {
		if g.Lease == nil {
			continue
		}
		key := "groups[" + strconv.Itoa(gi) + "].lease.name"
		n := g.Lease.Name
		if !dnsSubdomainRE.MatchString(n) || len(n) > 253 {
			errs.add(key, n, "must be a Kubernetes object name (DNS subdomain: lower-case a-z, 0-9, '-', '.')")
		} else if prev, dup := names[n]; dup {
			errs.add(key, n, "duplicates %s: each group needs its own Lease", prev)
		} else {
			names[n] = key
		}
	}
}

// GroupLease is one group's Lease settings in mode "lease".
type GroupLease struct {
	// Name of the group's Lease object. Default "vipd-<group name>".
	Name string `yaml:"name,omitempty"`
}

// MaxBindingLifetime bounds the lifetime vipd may give VIPs when it renews
// a crowded interface's VIPs less often than binding.refresh
// (addr.PlanUpkeep, docs/benchmark.md "Scale"); 0: no bound of the mode's.
// In mode lease a crashed or frozen owner's VIPs must expire before a
// follower may take the Lease (the rule validateLease checks for
// binding.lifetime), so leaseDuration - KernelLifetimeSlack - retryPeriod.
func (c *Config) MaxBindingLifetime() time.Duration {
	if c.Mode != ModeLease || c.Lease == nil {
		return 0
	}
	return c.Lease.LeaseDuration - KernelLifetimeSlack - c.Lease.RetryPeriod
}
