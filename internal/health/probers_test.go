package health

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	drain := filepath.Join(dir, "drain")
	p, err := newFileProber(Spec{File: &File{Path: drain}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probeOnce(t, p, time.Second); err != nil {
		t.Errorf("no drain file: %v", err)
	}
	writeFile(t, dir, "drain", nil)
	if _, err := probeOnce(t, p, time.Second); err == nil || err.Error() != "drain file "+drain+" exists" {
		t.Errorf("drain file present: %v", err)
	}
	os.Remove(drain)
	if err := os.Symlink(filepath.Join(dir, "nowhere"), drain); err != nil {
		t.Fatal(err)
	}
	if _, err := probeOnce(t, p, time.Second); err == nil {
		t.Error("a dangling symlink at the path should drain too")
	}
	// A path below a regular file: ENOTDIR, neither "exists" nor "absent".
	under := filepath.Join(writeFile(t, dir, "plain", nil), "drain")
	p, _ = newFileProber(Spec{File: &File{Path: under}})
	if _, err := probeOnce(t, p, time.Second); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("stat error: %v, want it reported", err)
	}
}

func TestInterface(t *testing.T) {
	p, err := newInterfaceProber(Spec{Interface: &Interface{Name: "lo"}})
	if err != nil {
		t.Fatal(err)
	}
	if detail, err := probeOnce(t, p, time.Second); err != nil {
		t.Errorf("lo: %q, %v", detail, err)
	}
	p, _ = newInterfaceProber(Spec{Interface: &Interface{Name: "vipdnosuch0"}})
	if _, err := probeOnce(t, p, time.Second); err == nil || err.Error() != "interface vipdnosuch0 not found" {
		t.Errorf("missing link: %v", err)
	}
}

func TestLinkState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags net.Flags
		raw   uint32
		oper  netlink.LinkOperState
		want  string // "" passes
	}{
		{"up", net.FlagUp, unix.IFF_UP | unix.IFF_RUNNING, netlink.OperUp, ""},
		{"unknown but running (lo, some virtual links)", net.FlagUp, unix.IFF_UP | unix.IFF_RUNNING, netlink.OperUnknown, ""},
		{"unknown, not running", net.FlagUp, unix.IFF_UP, netlink.OperUnknown, "no carrier"},
		{"no carrier", net.FlagUp, unix.IFF_UP, netlink.OperDown, "no carrier (oper state down)"},
		{"lower layer down", net.FlagUp, unix.IFF_UP, netlink.OperLowerLayerDown, "no carrier"},
		{"admin down", 0, 0, netlink.OperDown, "administratively down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1", Flags: tc.flags, RawFlags: tc.raw, OperState: tc.oper}}
			_, err := linkState(l)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("linkState: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRunnerFileCheck runs a real check through NewRunner: touching the
// drain file fails it after fall attempts, removing it passes after rise.
func TestRunnerFileCheck(t *testing.T) {
	dir := t.TempDir()
	drain := filepath.Join(dir, "drain")
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRunner(quiet, []Spec{{Name: "drain", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2, File: &File{Path: drain}}})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t0: time.Now(), t: t}
		stop := start(t, r, rec)
		time.Sleep(1500 * time.Millisecond) // passes at 0s, 1s
		writeFile(t, dir, "drain", nil)
		time.Sleep(2 * time.Second) // fails at 2s, 3s
		if res := r.Results()[0]; res.State != Failing || res.LastError != "drain file "+drain+" exists" {
			t.Errorf("drained: %+v", res)
		}
		os.Remove(drain)
		time.Sleep(2 * time.Second) // passes at 4s, 5s
		stop()
		if got, want := rec.summary(), "drain:passing@1s drain:failing@3s drain:passing@5s"; got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
	})
}
