package config

// Gossip holds the mode-wide settings of mode "gossip" (owned by the gossip mode; see docs/gossip.md).
type Gossip struct{}

func (c *Config) applyGossipDefaults() {
	if c.Gossip == nil {
		c.Gossip = &Gossip{}
	}
}

func (c *Config) validateGossip(errs *Errors) {}
