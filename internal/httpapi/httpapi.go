// Package httpapi serves vipd's health and status endpoints, split like
// CoreDNS: /healthz says the process works, /readyz says the node is eligible
// to own its VIPs, /status says who owns what, since when and why; and
// /metrics, for Prometheus.
package httpapi

import (
	"encoding/json"
	"net/http"
)

// Source is what the endpoints report on.
type Source interface {
	// Healthy is false when the process no longer works (e.g. its VIP refresh
	// loop is stuck), with the reason.
	Healthy() (bool, string)
	// Ready is false when the node must not own VIPs, with the reason.
	Ready() (bool, string)
	// Status is the JSON document served on /status.
	Status() any
}

// Handler returns the endpoints' handler; metrics serves GET /metrics (nil:
// not served).
func Handler(src Source, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeCheck(w, src.Healthy)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		writeCheck(w, src.Ready)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(src.Status())
	})
	return mux
}

func writeCheck(w http.ResponseWriter, check func() (bool, string)) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ok, why := check()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(why + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
