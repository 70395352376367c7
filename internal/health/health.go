// Package health runs the node's health checks (http, tcp, exec, endpoints,
// interface, file) and turns their raw attempts into a debounced state with
// rise/fall hysteresis. It knows nothing about groups, priorities or
// elections: the daemon (internal/node) maps check states onto each group's
// election input. It takes plain values (Spec), never the config package.
package health

import (
	"context"
	"fmt"
	"time"
)

// State is a check's debounced state.
type State int8

const (
	// Unknown: the check has not yet passed Rise times or failed Fall times
	// in a row since it started (or was changed by a reload).
	Unknown State = iota
	Passing
	Failing
)

func (s State) String() string {
	switch s {
	case Passing:
		return "passing"
	case Failing:
		return "failing"
	}
	return "unknown"
}

// MarshalText makes State read as its name in /status.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the name back: `vipd status` and `vipd reload` decode
// the daemon's /status, and without it every check in it failed the decode.
func (s *State) UnmarshalText(b []byte) error {
	switch string(b) {
	case "unknown":
		*s = Unknown
	case "passing":
		*s = Passing
	case "failing":
		*s = Failing
	default:
		return fmt.Errorf("unknown check state %q (want unknown, passing or failing)", b)
	}
	return nil
}

// Spec is one check, translated from the config (defaults applied).
type Spec struct {
	Name     string
	Interval time.Duration // between attempts (polled checks) or resyncs
	Timeout  time.Duration // of one attempt
	Rise     int           // consecutive passes from Unknown/Failing to Passing
	Fall     int           // consecutive failures from Unknown/Passing to Failing

	// Exactly one of these is set.
	HTTP      *HTTP
	TCP       *TCP
	Exec      *Exec
	Endpoints *Endpoints
	Interface *Interface
	File      *File
}

// HTTP passes when a GET of URL answers with a status in [StatusMin, StatusMax].
type HTTP struct {
	URL                string
	CAFile             string // PEM bundle to verify the server; empty: system roots
	InsecureSkipVerify bool
	CertFile, KeyFile  string // optional client certificate
	BearerTokenFile    string // re-read on every attempt (rotated tokens)
	Host               string // optional Host header (and TLS server name)
	StatusMin          int    // default 200
	StatusMax          int    // default 399
}

// TCP passes when a TCP connection to Address (host:port) opens.
type TCP struct {
	Address string
}

// Exec passes when Command (argv; no shell unless argv names one) exits 0.
type Exec struct {
	Command []string
	User    string // run as this user (name or uid); empty: vipd's own
}

// Endpoints passes while Service in Namespace has a ready endpoint whose
// nodeName is NodeName (EndpointSlices, watched through an informer).
type Endpoints struct {
	Namespace, Service string
	NodeName           string
	Kubeconfig         string // empty: in-cluster credentials
	Server             string // optional API server URL override
}

// Interface passes while the named link exists, is up and has carrier.
type Interface struct {
	Name string
}

// File fails while Path exists: a maintenance switch (touch it to drain).
type File struct {
	Path string
}

// Prober is a polled check: one attempt, bounded by ctx (Spec.Timeout).
// detail is a short human text (first bytes of output, status line) shown
// in /status and logs whether the attempt passed or not.
type Prober interface {
	Probe(ctx context.Context) (detail string, err error)
}

// Watcher is an event-driven check (endpoints): it calls observe with every
// new observation until ctx is done (nil) or it breaks (the error; the
// runner restarts it and the check counts as failing meanwhile).
type Watcher interface {
	Watch(ctx context.Context, observe func(ok bool, detail string)) error
}

// Result is a check's state as published to the daemon and /status.
type Result struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
	// LastError is the last failed attempt's error ("" after a pass).
	LastError string `json:"lastError,omitempty"`
	// Detail is the last attempt's detail (exec output, HTTP status).
	Detail string `json:"detail,omitempty"`
	// Latency of the last attempt.
	Latency time.Duration `json:"latencyNs"`
	// Passes and Failures count attempts since start.
	Passes   uint64 `json:"passes"`
	Failures uint64 `json:"failures"`
}
