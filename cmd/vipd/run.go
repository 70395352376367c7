package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/vipd/vipd/election"
	"github.com/vipd/vipd/internal/config"
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
	logFormat := fs.String("log-format", "text", "text (logfmt) or json (one JSON object a line)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--log-level: %q: %w", *logLevel, err)}
	}
	handler, err := logHandler(*logFormat, stderr, level)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// Everything that can be wrong with the config is found here, before any
	// interface is touched.
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log := slog.New(handler).With("node", cfg.Node)
	tuneRuntime(ctx, cfg, log)
	// client-go (Lease mode, endpoints checks) logs through klog: one log
	// stream, one format.
	klog.SetSlogLogger(log.With("component", "client-go"))
	elector, err := modes.NewElector(cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	reloads := make(chan node.Reload)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan struct{})
	defer func() { stop(); <-done }()
	go func() {
		defer close(done)
		serveReloads(runCtx, *path, cfg, elector, hup, reloads)
	}()
	return node.RunSystem(runCtx, modes.NodeSpec(cfg, version), elector, log, reloads)
}

// logHandler is the daemon's log format: text (logfmt, for people and
// journald) or json (for log pipelines: one object a line, the same keys).
func logHandler(format string, w io.Writer, level slog.Level) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("--log-format: %q: want text or json", format)
}

// serveReloads turns each SIGHUP into one reload: the file is read and
// validated again; a file that cannot be used, or a change that needs a
// restart, reaches the daemon as a refused reload (logged and counted
// there), so nothing changes; a valid one is applied as a diff.
func serveReloads(ctx context.Context, path string, cur *config.Config, elector election.Elector, hup <-chan os.Signal, reloads chan<- node.Reload) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		next, err := config.Load(path, config.LocalHost{})
		if err == nil {
			err = modes.CheckReload(cur, next)
		}
		if err == nil {
			// Refused before the daemon applies its part of the diff: a
			// mode that cannot reload would leave added VIPs bound (and
			// removed ones gone) under an elector still on the old groups.
			if m, ok := modes.Lookup(next.Mode); ok && m.Reload == nil {
				err = fmt.Errorf("mode %s cannot apply a new config while it runs: restart vipd (the running daemon keeps its current config)", next.Mode)
			}
		}
		req := node.Reload{Err: err}
		result := make(chan error, 1)
		req.Done = result
		if err == nil {
			req.Spec = modes.NodeSpec(next, version)
			req.Elector = func() error { return modes.Reload(elector, next) }
		}
		select {
		case reloads <- req:
		case <-ctx.Done():
			return
		}
		select {
		case err = <-result:
		case <-ctx.Done():
			return
		}
		if err == nil {
			cur = next
		}
	}
}
