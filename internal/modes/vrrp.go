package modes

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/vrrp"
)

// VRRPSpecs turns a validated vrrp-mode config into group specs.
func VRRPSpecs(c *config.Config) ([]vrrp.GroupSpec, error) {
	specs := make([]vrrp.GroupSpec, 0, len(c.Groups))
	for _, g := range c.Groups {
		v := g.VRRP
		if v == nil {
			return nil, fmt.Errorf("group %q has no vrrp settings", g.Name)
		}
		s := vrrp.GroupSpec{
			Name: g.Name, VRID: uint8(v.VRID), Interface: v.Interface,
			Interval: v.AdvertInterval, Preempt: *v.Preempt, PreemptDelay: *v.PreemptDelay,
			Peers: slices.Clone(v.Peers), Sources: slices.Clone(v.Sources),
		}
		// Unset: zero, which the elector reads as the group's own interval.
		if v.MinPeerAdvertInterval != nil {
			s.MinPeerInterval = *v.MinPeerAdvertInterval
		}
		if v.MaxPeerAdvertInterval != nil {
			s.MaxPeerInterval = *v.MaxPeerAdvertInterval
		}
		for _, vip := range g.VIPs {
			// Excluded VIPs are bound with the group (the node manager binds
			// every VIP of an owned group) but have no router and are not
			// advertised.
			if !vip.Excluded {
				s.VIPs = append(s.VIPs, vip.Addr)
			}
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func newVRRP(c *config.Config, log *slog.Logger) (election.Elector, error) {
	specs, err := VRRPSpecs(c)
	if err != nil {
		return nil, err
	}
	return vrrp.New(specs, log, vrrp.Options{}), nil
}

// reloadVRRP applies a new config in place (vrrp.Elector.Reconfigure): every
// vrrp setting of a group can change without a restart; a new VRID,
// interface or address family set replaces that group's virtual routers.
func reloadVRRP(e election.Elector, c *config.Config) error {
	v, ok := e.(*vrrp.Elector)
	if !ok {
		return fmt.Errorf("mode vrrp: elector is a %T", e)
	}
	specs, err := VRRPSpecs(c)
	if err != nil {
		return err
	}
	return v.Reconfigure(specs)
}
