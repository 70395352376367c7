package config

// VRRP holds the mode-wide settings of mode "vrrp" (owned by the vrrp mode; see docs/vrrp.md).
type VRRP struct{}

func (c *Config) applyVRRPDefaults() {
	if c.VRRP == nil {
		c.VRRP = &VRRP{}
	}
}

func (c *Config) validateVRRP(errs *Errors) {}

// GroupVRRP is one group's virtual-router settings in mode "vrrp".
type GroupVRRP struct{}
