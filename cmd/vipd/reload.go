package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/node"
)

// reloadCmd asks the running daemon to re-read its config: it finds the
// daemon's PID on its /status (no PID file to go stale), sends SIGHUP, and
// waits for the outcome to show up there.
func reloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reload", stderr)
	addrFlag := fs.String("addr", "", "vipd's HTTP address (default: http.listen from --config, else "+config.DefaultHTTPListen+")")
	path := fs.String("config", "", "config file to read http.listen from")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := *addrFlag
	fromFile := false
	if target == "" && *path != "" {
		// The file may be the broken one being reloaded: only its
		// http.listen is wanted, so decoding suffices.
		if cfg, err := loadConfig(*path); err == nil {
			target, fromFile = cfg.HTTP.Listen, true
		}
	}
	if target == "" {
		target = config.DefaultHTTPListen
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	before, err := fetchStatus(ctx, target)
	if err != nil {
		if fromFile {
			// The address comes from the new file: an edited http.listen
			// sends us where the daemon is not listening yet.
			return fmt.Errorf("is vipd running? %w (%s is http.listen in %s: if that changed, it needs a restart; --addr reaches the running daemon)", err, target, *path)
		}
		return fmt.Errorf("is vipd running? %w", err)
	}
	if before.PID <= 0 {
		return errors.New("vipd's /status names no PID: send it SIGHUP yourself")
	}
	if err := syscall.Kill(before.PID, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signalling vipd (pid %d): %w", before.PID, err)
	}
	for {
		select {
		case <-ctx.Done():
			return errors.New("vipd did not report the reload within 30s")
		case <-time.After(100 * time.Millisecond):
		}
		st, err := fetchStatus(ctx, target)
		if err != nil {
			continue
		}
		r := st.Reloads
		switch {
		case r.Applied > before.Reloads.Applied:
			fmt.Fprintln(stdout, "reload applied")
			return nil
		case r.Failed > before.Reloads.Failed:
			return &exitError{code: 1, err: fmt.Errorf("reload refused (vipd keeps its previous config): %s", r.LastError)}
		}
	}
}

func fetchStatus(ctx context.Context, target string) (node.Status, error) {
	var st node.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(body, &st)
}
