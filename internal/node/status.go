package node

import "github.com/vipd/vipd/internal/addr"

// Status is the document served on /status and printed by `vipd status`.
type Status struct {
	Node     string        `json:"node"`
	Mode     string        `json:"mode"`
	Version  string        `json:"version"`
	Ready    bool          `json:"ready"`
	NotReady string        `json:"notReady,omitempty"`
	Groups   []GroupStatus `json:"groups"`
	Binding  addr.Stats    `json:"binding"`
	// Election is the mode's own state (counters, peers, API server
	// reachability) when the elector offers one.
	Election any `json:"election,omitempty"`
}
