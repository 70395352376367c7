package config

import "time"

// Owner verification defaults (docs/verify.md).
const (
	DefaultVerifyInterval = 2 * time.Second
	DefaultVerifyWindow   = 200 * time.Millisecond
	DefaultVerifyMaxRate  = 20
	VerifyReactionNone    = "none"
	// VerifyReactionReannounce is the default reaction.
	VerifyReactionReannounce = "reannounce"
	VerifyReactionStepdown   = "stepdown"
)

// Verify is owner verification: every node asks the wire who answers for
// each VIP and compares it with the election (docs/verify.md).
type Verify struct {
	// Interval is the least time between two probes of one VIP. 0 turns
	// verification off; otherwise 500ms..1h. Default 2s.
	Interval *time.Duration `yaml:"interval,omitempty"`
	// Window is how long the answers to one probe are collected.
	// 10ms..5s and less than interval. Default 200ms.
	Window time.Duration `yaml:"window,omitempty"`
	// MaxRate caps this node's probes per second over all VIPs; with more
	// VIPs than interval × maxRate each VIP is probed less often. 1..1000,
	// default 20.
	MaxRate int `yaml:"maxRate,omitempty"`
	// Reaction to a confirmed finding: none, reannounce (default: the
	// owner re-announces) or stepdown (reannounce, and a node that answers
	// for a VIP it does not own removes it).
	Reaction string `yaml:"reaction,omitempty"`
}

func (c *Config) applyVerifyDefaults() {
	v := &c.Verify
	if v.Interval == nil {
		d := DefaultVerifyInterval
		v.Interval = &d
	}
	if v.Window == 0 {
		v.Window = DefaultVerifyWindow
	}
	if v.MaxRate == 0 {
		v.MaxRate = DefaultVerifyMaxRate
	}
	if v.Reaction == "" {
		v.Reaction = VerifyReactionReannounce
	}
}

func (c *Config) validateVerify(errs *Errors) {
	v := c.Verify
	iv := *v.Interval
	if iv != 0 && (iv < 500*time.Millisecond || iv > time.Hour) {
		errs.add("verify.interval", iv, "must be 0 (off) or between 500ms and 1h")
	}
	switch {
	case v.Window < 10*time.Millisecond || v.Window > 5*time.Second:
		errs.add("verify.window", v.Window, "must be between 10ms and 5s")
	case iv != 0 && v.Window >= iv:
		errs.add("verify.window", v.Window, "must be less than verify.interval (%s)", iv)
	}
	if v.MaxRate < 1 || v.MaxRate > 1000 {
		errs.add("verify.maxRate", v.MaxRate, "must be between 1 and 1000 probes per second")
	}
	switch v.Reaction {
	case VerifyReactionNone, VerifyReactionReannounce, VerifyReactionStepdown:
	default:
		errs.add("verify.reaction", v.Reaction, "must be none, reannounce or stepdown")
	}
}
