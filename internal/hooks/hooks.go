// Package hooks runs the commands a group's transitions notify
// (docs/hooks.md): asynchronously, in order per group, never two at once for
// one group, each bounded by a timeout, so a slow or hanging hook never
// delays a failover.
package hooks

import "time"

// Spec is one group's hooks, translated from the config.
type Spec struct {
	// Command runs on every transition with keepalived's arguments:
	// GROUP <group> <STATE> <priority>.
	Command []string
	// Master, Backup, Fault, Stop run as written on entering that state.
	Master, Backup, Fault, Stop []string
	Timeout                     time.Duration
}

// State is a group's state as hooks see it: keepalived's words, so
// existing notify scripts keep working.
type State string

const (
	Master State = "MASTER"
	Backup State = "BACKUP"
	Fault  State = "FAULT"
	Stop   State = "STOP"
)
