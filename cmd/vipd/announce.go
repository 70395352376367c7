package main

import (
	"log/slog"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/internal/config"
)

func newAnnouncer(cfg *config.Config, log *slog.Logger) (*arp.Announcer, error) {
	var refresh time.Duration
	if cfg.Announce.Refresh != nil {
		refresh = *cfg.Announce.Refresh
	}
	return arp.NewAnnouncer(log.With("component", "announce"), arp.Schedule{
		Count: cfg.Announce.Count, Interval: cfg.Announce.Interval, Refresh: refresh,
	}, arp.Open), nil
}
