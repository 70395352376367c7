package config

import (
	"testing"

	"github.com/vipd/vipd/arp"
)

// TestAnnounceDefaultsMatchArp ties the documented announce.* defaults to
// arp.DefaultSchedule (a value, so config cannot derive its constants from
// it): the announcer's fallback must be the schedule docs/config.md promises.
func TestAnnounceDefaultsMatchArp(t *testing.T) {
	want := arp.Schedule{Count: DefaultAnnounceCount, Interval: DefaultAnnounceInterval, Refresh: DefaultAnnounceRefresh}
	if arp.DefaultSchedule != want {
		t.Fatalf("arp.DefaultSchedule = %+v, config defaults = %+v", arp.DefaultSchedule, want)
	}
}
