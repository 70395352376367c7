// Package systemd holds the tests of the shipped systemd unit (there is no
// Go code here): the shutdown ordering that releases the VIPs before the
// network goes down, the least-privilege sandbox, and systemd's own verdict
// on both (docs/shutdown.md, docs/security.md).
package systemd

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "vipd.service"

// stopWindow is how long vipd may take from SIGTERM to exit: the elector's
// stop (internal/node Deps.StopTimeout, 10 s; by its end the VIPs are gone
// and the peers told), the HTTP server's 1 s, and room for the STOP hooks.
// The unit's TimeoutStopSec, and the pods' terminationGracePeriodSeconds
// (deploy/shutdown_test.go), must be at least this.
const stopWindow = 15 * time.Second

// maxExposure is the bound on `systemd-analyze security`'s overall exposure
// (0 = fully sandboxed, 10 = none). What is left is what vipd needs: root
// with two capabilities, the host's network, netlink and packet sockets.
const maxExposure = 2.3

// unit is a parsed unit file: section -> key -> values in file order (a key
// may repeat, e.g. SystemCallFilter=).
type unit map[string]map[string][]string

// parseUnit reads the subset of systemd's ini syntax the unit uses:
// [Section] headers, Key=Value lines, # and ; comments, blank lines. A line
// continued with a backslash is refused, so the test never misreads one.
func parseUnit(data string) (unit, error) {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("line %d: continuation lines are not supported by this parser", n)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is not Key=Value inside a section", n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u, sc.Err()
}

// words is every space-separated word of every value of key.
func (u unit) words(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// last is the value in force: systemd's last assignment wins.
func (u unit) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// parseTimespan reads systemd time spans such as "15", "15s", "1min 30s".
func parseTimespan(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "sec": time.Second,
		"m": time.Minute, "min": time.Minute, "h": time.Hour, "hr": time.Hour}
	var total time.Duration
	re := regexp.MustCompile(`^(\d+)\s*([a-z]+)`)
	rest := strings.TrimSpace(s)
	for rest != "" {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("%q: not a time span", s)
		}
		n, _ := strconv.Atoi(m[1])
		d, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("%q: unknown unit %q", s, m[2])
		}
		total += time.Duration(n) * d
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return total, nil
}

func loadUnit(t *testing.T) unit {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(data))
	if err != nil {
		t.Fatalf("%s: %v", unitFile, err)
	}
	return u
}

func TestParseUnit(t *testing.T) {
	u, err := parseUnit("# c\n[Unit]\nAfter=a.target\nAfter=b.target c.target\n; c\n[Service]\nX = y=z\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.words("Unit", "After"); !slices.Equal(got, []string{"a.target", "b.target", "c.target"}) {
		t.Errorf("After: %q", got)
	}
	if got := u.last("Service", "X"); got != "y=z" {
		t.Errorf("X: %q", got)
	}
	for _, bad := range []string{"Key=before a section\n", "[Unit]\nno equals sign\n", "[Unit]\nAfter=a \\\n b\n"} {
		if _, err := parseUnit(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseTimespan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"15", 15 * time.Second}, {"15s", 15 * time.Second}, {"1min 30s", 90 * time.Second}, {"2m", 2 * time.Minute}, {"500ms", 500 * time.Millisecond}} {
		if got, err := parseTimespan(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "15 fortnights", "infinity"} {
		if _, err := parseTimespan(bad); err == nil && bad != "" {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestUnitShutdownOrdering: at shutdown systemd stops units in the reverse
// of their start order, so a unit ordered after the network is stopped
// before it: vipd gets SIGTERM, hands over and removes its VIPs while the
// network still carries the goodbye (OCPBUGS-109633 lost an apiserver VIP
// for ~70 s when the network went first).
func TestUnitShutdownOrdering(t *testing.T) {
	u := loadUnit(t)
	after := u.words("Unit", "After")
	for _, want := range []string{"network-online.target", "network.target"} {
		if !slices.Contains(after, want) {
			t.Errorf("After= %q lacks %s: vipd would not be stopped before the network", after, want)
		}
	}
	if !slices.Contains(u.words("Unit", "Wants"), "network-online.target") {
		t.Errorf("Wants= lacks network-online.target (After= alone does not pull it in)")
	}
	// DefaultDependencies=no drops Conflicts=/Before=shutdown.target.
	if v := u.last("Unit", "DefaultDependencies"); v != "" && v != "yes" && v != "true" {
		t.Errorf("DefaultDependencies=%s: the unit would not be stopped in order at shutdown", v)
	}
	if v := u.last("Service", "KillSignal"); v != "SIGTERM" {
		t.Errorf("KillSignal=%s, want SIGTERM (vipd's graceful stop)", v)
	}
	if v := u.last("Service", "KillMode"); v != "" && v != "control-group" && v != "mixed" {
		t.Errorf("KillMode=%s: vipd must get SIGTERM", v)
	}
	if v := u.last("Service", "SendSIGKILL"); v == "no" {
		t.Errorf("SendSIGKILL=no: a hung vipd would hold up the shutdown")
	}
	stop, err := parseTimespan(u.last("Service", "TimeoutStopSec"))
	if err != nil || stop < stopWindow {
		t.Errorf("TimeoutStopSec=%q (%v): must be at least vipd's stop window %v, or systemd kills it mid-handover", u.last("Service", "TimeoutStopSec"), err, stopWindow)
	}
	if v := u.last("Service", "ExecStop"); v != "" {
		t.Errorf("ExecStop=%s: the stop is SIGTERM, vipd's own", v)
	}
}

// TestUnitLeastPrivilege pins the sandbox: exactly the two capabilities,
// exactly the address families vipd uses, and every hardening directive.
func TestUnitLeastPrivilege(t *testing.T) {
	u := loadUnit(t)
	caps := []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if got := slices.Sorted(slices.Values(u.words("Service", k))); !slices.Equal(got, caps) {
			t.Errorf("%s=%q, want exactly %q", k, got, caps)
		}
	}
	families := []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"}
	if got := slices.Sorted(slices.Values(u.words("Service", "RestrictAddressFamilies"))); !slices.Equal(got, families) {
		t.Errorf("RestrictAddressFamilies=%q, want exactly %q", got, families)
	}
	if got := u.words("Service", "SystemCallFilter"); !slices.Contains(got, "@system-service") {
		t.Errorf("SystemCallFilter=%q lacks @system-service", got)
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DevicePolicy": "closed", "PrivateMounts": "yes",
		"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
		"ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
		"RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
		"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
		"SystemCallErrorNumber": "EPERM", "UMask": "0077", "KeyringMode": "private",
	} {
		if got := u.last("Service", k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	// Breaks vipd: another network namespace or user namespace has none of
	// the host's interfaces (or no CAP_NET_ADMIN over them); ProcSubset=pid
	// hides /proc/sys/net, which vipd reads.
	for _, k := range []string{"PrivateNetwork", "PrivateUsers", "ProcSubset", "IPAddressDeny"} {
		if v := u.last("Service", k); v != "" {
			t.Errorf("%s=%s would break vipd (docs/security.md)", k, v)
		}
	}
}

// systemdAnalyze finds systemd-analyze (Debian: package systemd, installed
// by scripts/test); without it the test skips, or fails under
// VIPD_REQUIRE_LAB=1 (CI), which installs it.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
			t.Fatal("systemd-analyze not found (apt-get install systemd); required under VIPD_REQUIRE_LAB=1")
		}
		t.Skip("systemd-analyze not found (apt-get install systemd)")
	}
	return p
}

// unitCopy writes the unit with /usr/local/bin/vipd replaced by an existing
// executable (verify checks that every Exec*= command exists), under the
// same file name.
func unitCopy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "/usr/local/bin/vipd ") {
		t.Fatal("the unit no longer runs /usr/local/bin/vipd: update unitCopy")
	}
	p := filepath.Join(t.TempDir(), unitFile)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/vipd ", exe+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUnitVerify: systemd itself loads the unit without a complaint: no
// unknown directive (a typo would silently drop a protection), no bad value.
func TestUnitVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	out, err := exec.Command(sa, "verify", unitCopy(t)).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: (\d+(?:\.\d+)?)`)

// TestUnitSecurityExposure keeps the sandbox from eroding: systemd's own
// exposure score of the unit, computed offline, stays within maxExposure.
func TestUnitSecurityExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	cmd := exec.Command(sa, "security", "--offline=true", "--no-pager", unitCopy(t))
	out, err := cmd.CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v; no overall exposure in:\n%s", err, out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall exposure %.1f (bound %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("overall exposure %.1f > %.1f: a protection was dropped or weakened:\n%s", score, maxExposure, out)
	}
}
