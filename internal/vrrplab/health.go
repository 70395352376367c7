package vrrplab

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/node"
)

// NodeStatus reads vipd's whole /status in h (groups with their candidacy,
// checks); its Election part is the VRRP elector's (VipdStatus).
func NodeStatus(h *lab.Host) (node.Status, error) {
	var st node.Status
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decoding /status of %s: %w", h.Name, err)
	}
	return st, nil
}

// Readyz returns vipd's /readyz in h: the status code and the body (the
// reason when it is 503).
func Readyz(h *lab.Host) (int, string, error) {
	resp, err := h.HTTPClient().Get("http://127.0.0.1:9610/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// Script is a keepalived vrrp_script tracked by every instance
// (track_script), keepalived's own health check.
type Script struct {
	Name    string
	Command string // the script line, run without a shell
	// Interval and Timeout: keepalived 2.2.7 reads whole seconds only
	// ("0.1" runs as 1s), so they are written rounded up, at least 1s.
	Interval, Timeout time.Duration
	Fall, Rise        int
	Weight            int // 0: a failing script puts the instance in FAULT
}

// WithScripts adds scripts to a KeepalivedConfig: their vrrp_script blocks,
// and a track_script naming them in every vrrp_instance. They run as root
// (the lab has no keepalived_script user).
func WithScripts(conf string, scripts ...Script) string {
	var defs, names strings.Builder
	for _, s := range scripts {
		fmt.Fprintf(&defs, "vrrp_script %s {\n  script \"%s\"\n  interval %d\n  timeout %d\n  fall %d\n  rise %d\n",
			s.Name, s.Command, wholeSeconds(s.Interval), wholeSeconds(s.Timeout), s.Fall, s.Rise)
		if s.Weight != 0 {
			fmt.Fprintf(&defs, "  weight %d\n", s.Weight)
		}
		defs.WriteString("}\n")
		fmt.Fprintf(&names, "    %s\n", s.Name)
	}
	conf = strings.Replace(conf, "global_defs {\n", "global_defs {\n  script_user root\n", 1)
	conf = strings.Replace(conf, "vrrp_instance ", defs.String()+"vrrp_instance ", 1)
	return strings.ReplaceAll(conf, "  virtual_ipaddress {\n", "  track_script {\n"+names.String()+"  }\n  virtual_ipaddress {\n")
}

func wholeSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
