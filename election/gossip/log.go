package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's "[LEVEL] memberlist: text" lines (it only
// speaks *log.Logger) into slog records, and counts messages that mean a
// peer speaks with a different key, which status and logs surface.
type logWriter struct {
	log            *slog.Logger
	decryptFailure func(line string)
}

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.line(string(line))
	}
	return len(p), nil
}

func (w *logWriter) line(s string) {
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG] ": slog.LevelDebug, "[INFO] ": slog.LevelInfo,
		"[WARN] ": slog.LevelWarn, "[ERR] ": slog.LevelError,
	} {
		if strings.HasPrefix(s, prefix) {
			level, s = l, strings.TrimPrefix(s, prefix)
			break
		}
	}
	if isKeyError(s) && w.decryptFailure != nil {
		w.decryptFailure(s) // logs it, rate-limited
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, s)
}

// isKeyError matches memberlist's messages for traffic it cannot decrypt or
// that is unencrypted while encryption is required.
func isKeyError(s string) bool {
	return strings.Contains(s, "No installed keys could decrypt") ||
		strings.Contains(s, "decrypt") ||
		strings.Contains(s, "Encryption is configured but remote state is not encrypted") ||
		strings.Contains(s, "not encrypted")
}
