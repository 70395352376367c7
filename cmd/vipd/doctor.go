package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vipd/vipd/internal/doctor"
)

// doctorCmd runs the preflight checks (internal/doctor). Exit status: 0
// every line OK, 1 a WARN, 2 a FAIL (or bad flags); docs/doctor.md.
func doctorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	path := fs.String("config", "", "config file to check (required)")
	listen := fs.Duration("listen", 0, "how long to listen for VRRP adverts (default: 3 advert intervals, at least 3s; negative: skip)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return &exitError{code: 2, err: errors.New("doctor: --config is required")}
	}
	lines := doctor.Run(ctx, doctor.Options{ConfigPath: *path, Listen: *listen, Out: stdout}, doctor.SystemDeps())
	code := doctor.ExitCode(lines)
	if code == 0 {
		return nil
	}
	var warns, fails int
	for _, l := range lines {
		switch l.Verdict {
		case doctor.Warn:
			warns++
		case doctor.Fail:
			fails++
		}
	}
	return &exitError{code: code, err: fmt.Errorf("doctor: %d FAIL, %d WARN (exit %d)", fails, warns, code)}
}
