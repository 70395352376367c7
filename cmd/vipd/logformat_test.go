package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestLogHandler(t *testing.T) {
	for _, tc := range []struct {
		format string
		check  func(string) bool
	}{
		{"text", func(s string) bool { return strings.Contains(s, "msg=transition group=web") }},
		{"json", func(s string) bool {
			var m map[string]any
			return json.Unmarshal([]byte(s), &m) == nil && m["msg"] == "transition" && m["group"] == "web"
		}},
	} {
		var buf bytes.Buffer
		h, err := logHandler(tc.format, &buf, slog.LevelInfo)
		if err != nil {
			t.Fatal(err)
		}
		slog.New(h).Info("transition", "group", "web")
		slog.New(h).Debug("hidden at info")
		if out := buf.String(); !tc.check(out) || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: %q", tc.format, out)
		}
	}
	_, err := logHandler("yaml", &bytes.Buffer{}, slog.LevelInfo)
	if err == nil || !strings.Contains(err.Error(), `--log-format: "yaml": want text or json`) {
		t.Errorf("bad format: %v", err)
	}
}

func TestRunRefusesBadLogFormat(t *testing.T) {
	var stderr bytes.Buffer
	err := runCmd(t.Context(), []string{"--log-format", "xml", "--config", "/nonexistent"}, &stderr)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("err %v, want exit 2 naming --log-format", err)
	}
}
