package node

import (
	"time"

	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/health"
)

// Status is the document served on /status and printed by `vipd status`.
type Status struct {
	// PID is the daemon's process (`vipd reload` signals it).
	PID       int           `json:"pid"`
	Node      string        `json:"node"`
	Mode      string        `json:"mode"`
	Version   string        `json:"version"`
	Healthy   bool          `json:"healthy"`
	Unhealthy string        `json:"unhealthy,omitempty"`
	Ready     bool          `json:"ready"`
	NotReady  string        `json:"notReady,omitempty"`
	Groups    []GroupStatus `json:"groups"`
	// Checks are the health checks' states (docs/health.md).
	Checks []health.Result `json:"checks,omitempty"`
	// Reloads records configuration reloads (docs/reload.md).
	Reloads ReloadStatus `json:"reloads"`
	Binding addr.Stats   `json:"binding"`
	// Watchers are the daemon's long-running watches (link state, address
	// deletions, conflicts per interface) and whether they run.
	Watchers []WatcherStatus `json:"watchers"`
	// Election is the mode's own state (counters, peers, API server
	// reachability).
	Election any `json:"election,omitempty"`
	// Unauthenticated: ways a host could take part in the election without
	// proving who it is (docs/security.md).
	Unauthenticated []string `json:"unauthenticated,omitempty"`
	// Verify is owner verification's settings and probe counters (nil:
	// off); each VIP's last verification is in its VIPStatus.
	Verify *VerifySummary `json:"verify,omitempty"`
}

// GroupStatus is one group as shown on /status.
type GroupStatus struct {
	Name     string    `json:"name"`
	Owner    bool      `json:"owner"`
	Since    time.Time `json:"since"`
	Reason   string    `json:"reason"`
	Peer     string    `json:"peer,omitempty"`
	Eligible bool      `json:"eligible"`
	// Degraded: eligible only as a last resort (a gate fails with policy
	// keep, or the start-up delay).
	Degraded bool `json:"degraded,omitempty"`
	// Priority is the effective priority; Candidacy shows how it came about.
	Priority  int         `json:"priority"`
	Candidacy Breakdown   `json:"candidacy"`
	Why       string      `json:"why,omitempty"` // why the node is not (fully) eligible
	VIPs      []VIPStatus `json:"vips"`
	// Hooks is the group's notify hooks' record (nil: none configured).
	Hooks any `json:"hooks,omitempty"`
	// BindFailures counts takes that failed because a VIP could not be bound.
	BindFailures uint64 `json:"bindFailures,omitempty"`
}

// VIPStatus is one VIP as shown on /status.
type VIPStatus struct {
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Bound     bool   `json:"bound"`
	Error     string `json:"error,omitempty"`
	// Conflicts counts frames in which another MAC claimed this VIP while
	// this node held it; LastConflict names that MAC.
	Conflicts    uint64 `json:"conflicts,omitempty"`
	LastConflict string `json:"lastConflict,omitempty"`
	// Verify is the VIP's last verification on the wire (docs/verify.md).
	Verify     *VerifyStatus `json:"verify,omitempty"`
	conflictAt time.Time     // last reaction, for rate limiting
}

// WatcherStatus is one supervised watch.
type WatcherStatus struct {
	Name     string `json:"name"`
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts,omitempty"`
	// LastError is why it last stopped; FailingSince is set while it is
	// waiting to be restarted.
	LastError    string    `json:"lastError,omitempty"`
	FailingSince time.Time `json:"failingSince,omitzero"`
}
