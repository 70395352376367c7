package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/vipd/vipd/internal/config"
)

// announcer is node.Announcer plus Close.
type announcer interface {
	Start(ctx context.Context, ifname string, ip netip.Addr) error
	Stop(ip netip.Addr)
	Close() error
}

type noAnnouncer struct{}

func (noAnnouncer) Start(context.Context, string, netip.Addr) error { return nil }
func (noAnnouncer) Stop(netip.Addr)                                 {}
func (noAnnouncer) Close() error                                    { return nil }

func newAnnouncer(cfg *config.Config, log *slog.Logger) (announcer, error) {
	return noAnnouncer{}, nil
}
