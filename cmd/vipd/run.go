package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

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
	elector, err := modes.NewElector(cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	return node.RunSystem(ctx, modes.NodeSpec(cfg, version), elector, log)
}
