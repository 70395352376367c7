package config

// Lease holds the mode-wide settings of mode "lease" (owned by the lease mode; see docs/lease.md).
type Lease struct{}

func (c *Config) applyLeaseDefaults() {
	if c.Lease == nil {
		c.Lease = &Lease{}
	}
}

func (c *Config) validateLease(errs *Errors) {}

// GroupLease is one group's Lease settings in mode "lease".
type GroupLease struct{}
