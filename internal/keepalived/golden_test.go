package keepalived

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeHost has eth0 and eth1; every address is on eth0.
type fakeHost struct{}

func (fakeHost) InterfaceExists(name string) bool       { return name == "eth0" || name == "eth1" }
func (fakeHost) InterfaceFor(netip.Addr) (string, bool) { return "eth0", true }

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden converts testdata/*.conf: a good file must give its .yaml
// (which must validate as printed) and .warnings; a bad one (err-*) its
// .error, naming the file and line.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, f := range files {
		base := strings.TrimSuffix(f, ".conf")
		t.Run(filepath.Base(base), func(t *testing.T) {
			tree, err := ParseFile(f, Options{ConfigID: "lb1"})
			if strings.HasPrefix(filepath.Base(f), "err-") {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("want a syntax error, got %v", err)
				}
				golden(t, base+".error", []byte(err.Error()+"\n"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(tree)
			if err != nil {
				t.Fatal(err)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, base+".yaml", out)
			var w strings.Builder
			for _, x := range res.Warnings {
				w.WriteString(x.String() + "\n")
			}
			golden(t, base+".warnings", []byte(w.String()))
			c, err := config.Parse(out)
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if err := c.Validate(fakeHost{}); err != nil {
				t.Fatalf("output does not validate: %v", err)
			}
		})
	}
}

// TestKeepalivedAccepts runs keepalived -t on every good input (in a
// network namespace of its own with eth0 and eth1), so the inputs are
// configs keepalived 2.2 really loads; and on every err-* input, which it
// must refuse.
var tolerated = map[string]string{"novip.conf": "No VIP specified; at least one is sensible"}

var keepalivedLine = regexp.MustCompile(`Line (\d+)\)`)

func TestKeepalivedAccepts(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil || os.Getenv("VIPD_SKIP_LAB") == "1" || os.Geteuid() != 0 {
		if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
			t.Fatalf("keepalived -t needed: %v (euid %d)", err, os.Geteuid())
		}
		t.Skip("keepalived not installed, not root, or VIPD_SKIP_LAB=1")
	}
	files, _ := filepath.Glob("testdata/*.conf")
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			script := `set -e
ip link set lo up
ip link add eth0 type veth peer name p0; ip link set p0 up; ip link set eth0 up; ip addr add 198.51.100.2/24 dev eth0; ip addr add 2001:db8::2/64 dev eth0 nodad
mkdir -p /etc/keepalived; mount -t tmpfs tmpfs /etc/keepalived; cp "$2" /etc/keepalived/; chmod 755 /etc/keepalived/check_apiserver.sh
ip link add eth1 type veth peer name p1; ip link set p1 up; ip link set eth1 up; ip addr add 203.0.113.11/24 dev eth1
exec ` + bin + ` -t -l -D -i lb1 -f "$1"`
			cmd := exec.Command("unshare", "--net", "--mount", "sh", "-c", script, "sh", abs, filepath.Join(filepath.Dir(abs), "check_apiserver.sh"))
			out, err := cmd.CombinedOutput()
			bad := strings.HasPrefix(filepath.Base(f), "err-")
			if bad && err == nil {
				t.Errorf("keepalived accepted %s:\n%s", f, out)
			}
			if bad {
				// Where keepalived names a line, convert must name the same.
				if m := keepalivedLine.FindSubmatch(out); m != nil {
					want, _ := os.ReadFile(strings.TrimSuffix(f, ".conf") + ".error")
					if !strings.Contains(string(want), ":"+string(m[1])+":") {
						t.Errorf("keepalived refuses %s at line %s; convert says %q", f, m[1], want)
					}
				}
			}
			// keepalived -t fails an instance with no VIP, which it runs
			// all the same; vipd convert leaves such an instance out.
			if tolerated[filepath.Base(f)] != "" && strings.Contains(string(out), tolerated[filepath.Base(f)]) {
				return
			}
			if !bad && err != nil {
				t.Errorf("keepalived refused %s: %v\n%s", f, err, out)
			}
		})
	}
}
