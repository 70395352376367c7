package main

import (
	"fmt"
	"log/slog"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/election/lease"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/vrrp"
)

// newElector builds the configured election mode. Each mode adds its case here.
func newElector(cfg *config.Config, log *slog.Logger) (election.Elector, error) {
	switch cfg.Mode {
	case config.ModeStatic:
		return election.NewStatic(cfg.GroupNames()), nil
	case config.ModeVRRP:
		return vrrp.NewFromConfig(cfg, log)
	case config.ModeLease:
		e, err := lease.NewFromConfig(cfg, log)
		if err != nil {
			return nil, err
		}
		return e, nil
	case config.ModeGossip:
		return newGossipElector(cfg, log)
	}
	return nil, fmt.Errorf("mode %q is not available in this build", cfg.Mode)
}
