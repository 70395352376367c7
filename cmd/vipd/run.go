package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/addr"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/httpapi"
	"github.com/vipd/vipd/internal/modes"
	"github.com/vipd/vipd/internal/node"
)

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, &exitError{code: 2, err: errors.New("--config FILE is required")}
	}
	cfg, err := config.Load(path, config.LocalHost{})
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return cfg, nil
}

func validateCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	path := fs.String("config", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (node %q, mode %s, %d group(s))\n", *path, cfg.Node, cfg.Mode, len(cfg.Groups))
	return nil
}

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "", "config file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--log-level: %q: %w", *logLevel, err)}
	}
	// Everything that can be wrong with the config is found here, before any
	// interface is touched.
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.Node)
	return run(ctx, cfg, log)
}

// daemon is one running vipd: the pieces run() wires together.
type daemon struct {
	cfg     *config.Config
	binder  *addr.Binder
	manager *node.Manager
	elector election.Elector
}

func (d *daemon) Healthy() (bool, string) {
	if !d.binder.Healthy() {
		return false, "VIP refresh loop is stuck"
	}
	return true, ""
}

// Ready: eligible to own. Link state and health gate every group; a mode
// can add its own condition (Lease: the API server has been unreachable
// for longer than the lease duration).
func (d *daemon) Ready() (bool, string) {
	if ok, why := d.manager.Ready(); !ok {
		return false, why
	}
	return d.elector.Ready()
}

func (d *daemon) Status() any {
	ready, why := d.Ready()
	st := node.Status{
		Node: d.cfg.Node, Mode: d.cfg.Mode, Version: version,
		Ready: ready, NotReady: why,
		Groups:  d.manager.Groups(),
		Binding: d.binder.Stats(),
	}
	st.Election = d.elector.Status()
	return st
}

// interfacesOf lists the interfaces groups bind on, each once.
func interfacesOf(groups []node.Group) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range node.AllVIPs(groups) {
		if !seen[v.Interface] {
			seen[v.Interface] = true
			out = append(out, v.Interface)
		}
	}
	return out
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	groups := node.GroupsFromConfig(cfg)
	elector, err := modes.NewElector(cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	defer ln.Close()

	kernel, err := addr.NewNetlink()
	if err != nil {
		return err
	}
	defer kernel.Close()
	binder := addr.NewBinder(log, kernel, cfg.Binding.Lifetime, cfg.Binding.Refresh)
	removed, err := binder.RemoveStale(node.AllVIPs(groups))
	if err != nil {
		return err
	}
	for _, v := range removed {
		log.Warn("removed a stale VIP left by an earlier run", "vip", v)
	}
	// From here on every path out goes through ReleaseAll: vipd never leaves
	// a VIP behind when it exits (and the kernel lifetime covers a crash).
	defer binder.ReleaseAll()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	announcer, err := newAnnouncer(cfg, log)
	if err != nil {
		return err
	}
	defer announcer.Close()
	manager := node.NewManager(ctx, log, groups, binder, announcer)
	d := &daemon{cfg: cfg, binder: binder, manager: manager, elector: elector}

	srv := &http.Server{Handler: httpapi.Handler(d), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()

	binderDone := make(chan error, 1)
	go func() { binderDone <- binder.Run(ctx) }()

	linksDone, err := node.WatchLinks(ctx, groups, func(group string, in election.Input) {
		manager.SetEligibility(group, in)
		elector.SetInput(group, in)
		if in.Eligible {
			log.Info("eligible", "group", group, "priority", in.Priority)
		} else {
			log.Warn("not eligible", "group", group, "why", in.Reason)
		}
	})
	if err != nil {
		return err
	}

	for _, ifname := range interfacesOf(groups) {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifname, err)
		}
		go func() {
			held := func(a netip.Addr) bool { return binder.Held(a) }
			report := func(c arp.Claim) { manager.Conflict(c.IP, c.MAC.String()) }
			if err := arp.WatchConflicts(ctx, ifi, held, report); err != nil {
				log.Error("conflict detection stopped", "interface", ifname, "err", err)
			}
		}()
	}

	log.Info("vipd started", "mode", cfg.Mode, "groups", len(groups), "http", ln.Addr().String(), "version", version)
	electErr := make(chan error, 1)
	go func() { electErr <- elector.Run(ctx, manager.Report) }()

	electorDone := false
	select {
	case err = <-electErr:
		electorDone = true
		if ctx.Err() == nil && err == nil {
			err = errors.New("election stopped unexpectedly")
		}
	case err = <-linksDone:
		if ctx.Err() == nil {
			err = fmt.Errorf("link watch: %w", err)
		}
	case err = <-binderDone:
		if ctx.Err() == nil {
			err = fmt.Errorf("VIP binder: %w", err)
		}
	case <-ctx.Done():
	}
	cancel()
	if !electorDone {
		// The elector reports "shutdown" (VIPs removed) and then says goodbye
		// to its peers (priority-0 advert, Lease release, memberlist leave).
		select {
		case eerr := <-electErr:
			if err == nil {
				err = eerr
			}
		case <-time.After(10 * time.Second):
			log.Error("election did not stop within 10s; releasing VIPs anyway")
		}
	}
	if err != nil {
		log.Error("vipd stopping on error", "err", err)
		return err
	}
	log.Info("vipd stopped")
	return nil
}
