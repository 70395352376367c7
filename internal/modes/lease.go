package modes

import (
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/election/lease"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kube"
)

// RESTConfig builds the API client configuration of mode "lease": the
// kubeconfig file if set, else the in-cluster service account; then
// lease.server, if set, replaces the server URL (a control-plane node's own
// API server, so the election never depends on the VIP it manages).
func RESTConfig(l *config.Lease) (*rest.Config, error) {
	rc, err := kube.RESTConfig(l.Kubeconfig, l.Server, "vipd")
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	// Renewals are a few requests per second per group; the client-side
	// limiter must never be what delays a renewal.
	rc.QPS, rc.Burst = 50, 100
	return rc, nil
}

// newLease builds the Lease elector for a validated config.
func newLease(cfg *config.Config, log *slog.Logger) (election.Elector, error) {
	rc, err := RESTConfig(cfg.Lease)
	if err != nil {
		return nil, err
	}
	// Our own dialer, so that a connection a silent partition left behind
	// can be closed when requests on it go unanswered (kube.Dialer).
	dialer := kube.NewDialer()
	rc.Dial = dialer.DialContext
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	log.Info("lease mode", "server", rc.Host, "namespace", cfg.Lease.Namespace,
		"leaseDuration", cfg.Lease.LeaseDuration, "renewDeadline", cfg.Lease.RenewDeadline, "retryPeriod", cfg.Lease.RetryPeriod)
	o := leaseOptions(cfg)
	o.Client, o.Log = cs, log.With("mode", "lease")
	o.Unanswered = func(waited time.Duration) {
		if n := dialer.CloseSilent(waited); n > 0 {
			o.Log.Info("closed connections to the API server that went silent; the next request dials anew",
				"connections", n, "silentFor", waited)
		}
	}
	return lease.New(o)
}

// leaseOptions translates the config into lease.Options, without the
// client (New builds it; Reconfigure keeps the running one).
func leaseOptions(cfg *config.Config) lease.Options {
	groups := make([]lease.Group, len(cfg.Groups))
	for i, g := range cfg.Groups {
		groups[i] = lease.Group{Name: g.Name, Lease: g.Lease.Name}
	}
	return lease.Options{
		Namespace: cfg.Lease.Namespace, Identity: cfg.Node, Groups: groups,
		Timing:     lease.Timing{LeaseDuration: cfg.Lease.LeaseDuration, RenewDeadline: cfg.Lease.RenewDeadline, RetryPeriod: cfg.Lease.RetryPeriod},
		Kubeconfig: cfg.Lease.Kubeconfig, Server: cfg.Lease.Server,
	}
}

// reloadLease applies a reload: groups added, removed or with a renamed
// Lease; a changed timing, namespace, kubeconfig or server is refused (it
// needs a restart). Priorities and health are inputs, not config here.
func reloadLease(e election.Elector, cfg *config.Config) error {
	le, ok := e.(*lease.Elector)
	if !ok {
		return fmt.Errorf("mode lease: elector is a %T", e)
	}
	return le.Reconfigure(leaseOptions(cfg))
}
