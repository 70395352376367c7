package modes

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/election/gossip"
	"github.com/vipd/vipd/internal/config"
)

// newGossip translates the validated gossip config into the elector.
func newGossip(cfg *config.Config, log *slog.Logger) (election.Elector, error) {
	opts, derived, err := gossipOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.Log = log
	if derived.IsValid() {
		log.Info("gossip advertise address taken from the VIP interface (set gossip.advertise to override)", "addr", derived)
	}
	return gossip.New(opts)
}

// reloadGossip applies a reloaded config (Mode.Reload): the groups change
// in place; a changed transport setting is refused, naming it.
func reloadGossip(e election.Elector, cfg *config.Config) error {
	g, ok := e.(*gossip.Elector)
	if !ok {
		return fmt.Errorf("mode gossip: elector is a %T", e)
	}
	opts, _, err := gossipOptions(cfg)
	if err != nil {
		return err
	}
	return g.Reconfigure(opts)
}

// gossipOptions translates the config; derived is the advertise address
// taken from the VIP interface, if it was.
func gossipOptions(cfg *config.Config) (opts gossip.Options, derived netip.Addr, err error) {
	g := cfg.Gossip
	bindHost, bindPort, err := net.SplitHostPort(g.Bind)
	if err != nil {
		return opts, derived, fmt.Errorf("gossip.bind: %w", err)
	}
	port, _ := strconv.Atoi(bindPort)
	opts = gossip.Options{
		Node:           cfg.Node,
		BindAddr:       bindHost,
		BindPort:       port,
		Peers:          g.Peers,
		DNS:            g.DNS,
		Expect:         g.Expect,
		Quorum:         g.Quorum,
		Profile:        g.Profile,
		RejoinInterval: g.RejoinInterval,
		Keys:           g.Keys,
		KeyFile:        g.KeyFile,
	}
	if g.KeyFile != "" {
		path := g.KeyFile
		opts.KeySource = func() ([][]byte, error) { return config.LoadGossipKeys(path) }
	}
	if g.Advertise != "" {
		host, p, err := net.SplitHostPort(g.Advertise)
		if err != nil {
			host, p = g.Advertise, ""
		}
		opts.AdvertiseAddr = host
		opts.AdvertisePort, _ = strconv.Atoi(p)
	} else if ip, err := netip.ParseAddr(bindHost); err == nil && ip.IsUnspecified() {
		// memberlist would advertise a private (RFC 1918) address and fail
		// without one; the VIPs' own LAN is where the peers are.
		if a, ok := lanAddress(cfg); ok {
			opts.AdvertiseAddr = a.String()
			derived = a
		}
	}
	for _, grp := range cfg.Groups {
		spec := gossip.GroupSpec{Name: grp.Name}
		for _, v := range grp.VIPs {
			spec.VIPs = append(spec.VIPs, v.Addr)
		}
		opts.Groups = append(opts.Groups, spec)
	}
	return opts, derived, nil
}

// lanAddress is the first global unicast address (IPv4 preferred) with a
// subnet (not a /32 or /128, which may be a VIP) on the first VIP's interface.
func lanAddress(cfg *config.Config) (netip.Addr, bool) {
	if len(cfg.Groups) == 0 || len(cfg.Groups[0].VIPs) == 0 {
		return netip.Addr{}, false
	}
	ifi, err := net.InterfaceByName(cfg.Groups[0].VIPs[0].Interface)
	if err != nil {
		return netip.Addr{}, false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	var v6 netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(ipn.String())
		if err != nil || p.IsSingleIP() || !p.Addr().IsGlobalUnicast() {
			continue
		}
		if p.Addr().Is4() {
			return p.Addr(), true
		}
		if !v6.IsValid() {
			v6 = p.Addr()
		}
	}
	return v6, v6.IsValid()
}
