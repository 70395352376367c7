package config

import (
	"slices"
	"testing"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/election/gossip"
	"github.com/vipd/vipd/vrrp"
)

// TestLimitsMatchModePackages ties the limits and defaults that config
// checks and documents to the packages that implement them. config does not
// import those packages (internal/lab imports config, and the mode
// packages' own tests use the lab), so this test is what keeps the two
// copies equal.
func TestLimitsMatchModePackages(t *testing.T) {
	if GossipMaxGroups != gossip.MaxGroups {
		t.Errorf("GossipMaxGroups = %d, gossip.MaxGroups = %d", GossipMaxGroups, gossip.MaxGroups)
	}
	if want := []string{gossip.ProfileFast, gossip.ProfileLAN, gossip.ProfileWAN}; !slices.Equal(gossipProfiles(), want) {
		t.Errorf("gossip profiles %v, package gossip has %v", gossipProfiles(), want)
	}
	if DefaultGossipProfile != gossip.ProfileFast {
		t.Errorf("DefaultGossipProfile = %q, want gossip.ProfileFast", DefaultGossipProfile)
	}
	if MinVRRPAdvertInterval != vrrp.MinInterval || MaxVRRPAdvertInterval != vrrp.MaxInterval {
		t.Errorf("VRRP advert interval %s..%s, package vrrp has %s..%s",
			MinVRRPAdvertInterval, MaxVRRPAdvertInterval, vrrp.MinInterval, vrrp.MaxInterval)
	}
	// arp.DefaultSchedule is the announcer's fallback; it must be the
	// schedule docs/config.md promises.
	want := arp.Schedule{Count: DefaultAnnounceCount, Interval: DefaultAnnounceInterval, Refresh: DefaultAnnounceRefresh}
	if arp.DefaultSchedule != want {
		t.Errorf("arp.DefaultSchedule = %+v, config's announce defaults = %+v", arp.DefaultSchedule, want)
	}
}
