// Package metrics is vipd's Prometheus instrumentation: one private
// registry per daemon (never the default one), the process and Go
// collectors, a few event metrics the daemon records as things happen
// (transitions, takeover durations, Lease renewals, probe latencies) and a
// snapshot collector that reads everything else from the components' own
// counters and states at scrape time, so the hot paths pay nothing for it.
//
// It imports no other vipd package: the daemon (internal/node) translates
// its components' status into a Snapshot, and the election modes are
// reached through small method sets they implement (see internal/node).
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every vipd metric.
const Namespace = "vipd"

// Ownership states in vipd_transitions_total's from and to labels.
const (
	StateOwner  = "owner"
	StateBackup = "backup"
)

// Info labels vipd_build_info.
type Info struct {
	Version string
	Mode    string
}

// Metrics is one daemon's instrumentation. A nil *Metrics records nothing,
// so code paths and tests without metrics need no checks.
type Metrics struct {
	reg *prometheus.Registry

	transitions *prometheus.CounterVec
	takeover    *prometheus.HistogramVec
	renew       *prometheus.HistogramVec
	renewErrors *prometheus.CounterVec
	probe       *prometheus.HistogramVec

	mu       sync.Mutex
	snapshot func(*Snapshot) // nil: no snapshot collector
}

// TakeoverBuckets cover 1 ms (a local bind and one packet) to 10 s (a
// Lease takeover after a crash), roughly doubling.
var TakeoverBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// LatencyBuckets are for requests and probes: 1 ms to 10 s.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the instrumentation of one daemon with its own registry.
func New(info Info) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "transitions_total",
		Help: "Ownership transitions of a group on this node, by previous and new state (owner, backup) and the election's reason.",
	}, []string{"group", "from", "to", "reason"})
	m.takeover = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "takeover_duration_seconds",
		Help:    "Time from the election's decision that this node owns a group to the first announcement of its first VIP on the wire.",
		Buckets: TakeoverBuckets,
	}, []string{"group"})
	m.renew = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "lease_renew_duration_seconds",
		Help:    "Duration of Lease renewal requests to the Kubernetes API server (successful or not).",
		Buckets: LatencyBuckets,
	}, []string{"group"})
	m.renewErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "lease_renew_errors_total",
		Help: "Lease renewals that failed, by kind (conflict, not-found, timeout, api).",
	}, []string{"group", "kind"})
	m.probe = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "health_check_duration_seconds",
		Help:    "Duration of health check attempts (polled checks: http, tcp, exec, interface, file).",
		Buckets: LatencyBuckets,
	}, []string{"check"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1: the running vipd's version and election mode.",
		ConstLabels: prometheus.Labels{"version": info.Version, "mode": info.Mode},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.transitions, m.takeover, m.renew, m.renewErrors, m.probe, buildInfo,
		snapshotCollector{m},
	)
	return m
}

// Registry is the daemon's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetSnapshot installs the function that fills the scrape-time metrics
// (nil removes it). The daemon sets it when it starts and clears it when
// it ends.
func (m *Metrics) SetSnapshot(fill func(*Snapshot)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.snapshot = fill
	m.mu.Unlock()
}

// Transition counts one ownership change of group. reason is the
// election's reason; only its leading word is used (ReasonLabel).
func (m *Metrics) Transition(group string, owner bool, reason string) {
	if m == nil {
		return
	}
	from, to := StateBackup, StateOwner
	if !owner {
		from, to = to, from
	}
	m.transitions.WithLabelValues(group, from, to, ReasonLabel(reason)).Inc()
}

// Takeover records the time from the decision to own group to its first
// announcement.
func (m *Metrics) Takeover(group string, d time.Duration) {
	if m == nil {
		return
	}
	m.takeover.WithLabelValues(group).Observe(max(d, 0).Seconds())
}

// LeaseRenew records one Lease renewal: its duration, and its failure kind
// ("" for success).
func (m *Metrics) LeaseRenew(group string, d time.Duration, errKind string) {
	if m == nil {
		return
	}
	m.renew.WithLabelValues(group).Observe(max(d, 0).Seconds())
	if errKind != "" {
		m.renewErrors.WithLabelValues(group, errKind).Inc()
	}
}

// Probe records one health check attempt's duration.
func (m *Metrics) Probe(check string, d time.Duration) {
	if m == nil {
		return
	}
	m.probe.WithLabelValues(check).Observe(max(d, 0).Seconds())
}

// ForgetGroup drops a removed group's event series (a reload removed it).
func (m *Metrics) ForgetGroup(group string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"group": group}
	m.transitions.DeletePartialMatch(l)
	m.takeover.DeletePartialMatch(l)
	m.renew.DeletePartialMatch(l)
	m.renewErrors.DeletePartialMatch(l)
}

// ForgetCheck drops a removed check's probe histogram.
func (m *Metrics) ForgetCheck(check string) {
	if m == nil {
		return
	}
	m.probe.DeletePartialMatch(prometheus.Labels{"check": check})
}

// ReasonLabel bounds a transition reason for a label: the election's
// reasons are a fixed set of words, but some carry a detail after a colon,
// a space or a parenthesis (a peer name, the input's reason, a check):
// "member-failed:node2" → "member-failed", "ineligible: link eth0 down" →
// "ineligible". The detail is in the log line.
func ReasonLabel(reason string) string {
	if i := strings.IndexAny(reason, ": ("); i >= 0 {
		reason = reason[:i]
	}
	if len(reason) > 40 {
		reason = reason[:40]
	}
	if reason == "" {
		return "unknown"
	}
	return reason
}
