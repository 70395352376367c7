package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

func TestCleanMappings(t *testing.T) {
	const exe = "/usr/bin/vipd"
	smaps := func(hdr string, privDirty, anon string) string {
		return hdr + "\nSize:  100 kB\nRss:  64 kB\nPrivate_Clean:  64 kB\nPrivate_Dirty:  " + privDirty +
			" kB\nAnonymous:  " + anon + " kB\nAnonHugePages:  0 kB\nVmFlags: rd ex mr mw me\n"
	}
	tests := []struct {
		name string
		in   string
		want []mapping
	}{
		{"code", smaps("00400000-01407000 r-xp 00000000 fd:01 123 "+exe, "0", "0"), []mapping{{0x400000, 0x1407000}}},
		{"read-only data", smaps("01407000-02433000 r--p 01007000 fd:01 123 "+exe, "0", "0"), []mapping{{0x1407000, 0x2433000}}},
		{"writable data kept", smaps("02433000-024c7000 rw-p 02033000 fd:01 123 "+exe, "0", "0"), nil},
		{"dirty in the page cache", smaps("01407000-02433000 r--p 01007000 fd:01 123 "+exe, "8", "0"), []mapping{{0x1407000, 0x2433000}}},
		{"relocated kept", smaps("01407000-02433000 r--p 01007000 fd:01 123 "+exe, "8", "8"), nil},
		{"private copy kept", smaps("00400000-01407000 r-xp 00000000 fd:01 123 "+exe, "0", "4"), nil},
		{"other file kept", smaps("7f00-8000 r-xp 00000000 fd:01 9 /usr/lib/libc.so.6", "0", "0"), nil},
		{"anonymous kept", smaps("7f00-8000 r--p 00000000 00:00 0", "0", "0"), nil},
		{"shared kept", smaps("00400000-01407000 r-xs 00000000 fd:01 123 "+exe, "0", "0"), nil},
		{"path with spaces", smaps("1000-2000 r-xp 00000000 fd:01 5 /opt/my dir/vipd", "0", "0"), nil},
		{"several", smaps("00400000-01407000 r-xp 00000000 fd:01 123 "+exe, "0", "0") +
			smaps("01407000-02433000 r--p 01007000 fd:01 123 "+exe, "12", "12") +
			smaps("02433000-02434000 r--p 01007000 fd:01 123 "+exe, "0", "0"),
			[]mapping{{0x400000, 0x1407000}, {0x2433000, 0x2434000}}},
		{"garbage", "not smaps\n\n-\nx-y r-xp\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cleanMappings(strings.NewReader(tt.in), exe)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %x, want %x", got, tt.want)
			}
		})
	}
	got, _ := cleanMappings(strings.NewReader(smaps("1000-2000 r-xp 00000000 fd:01 5 /opt/my dir/vipd", "0", "0")), "/opt/my dir/vipd")
	if len(got) != 1 {
		t.Errorf("a path with a space: got %v", got)
	}
}

// TestDropStartupPages drops the test binary's own clean pages: the process
// goes on running (its code is mapped again as it runs) and maps less of
// its binary than before.
func TestDropStartupPages(t *testing.T) {
	before := rssFile(t)
	n, err := dropStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no mapping of the executable was dropped")
	}
	after := rssFile(t)
	// Code runs and allocates after the drop.
	s := strings.Repeat("x", 1000)
	if len(strings.Fields(s)) != 1 {
		t.Fatal("strings broken")
	}
	t.Logf("dropped %d MiB of mappings; RssFile %d -> %d kB", n>>20, before, after)
	if after >= before {
		t.Errorf("RssFile did not shrink: %d -> %d kB", before, after)
	}
}

func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			var kb int
			for _, c := range f[1] {
				kb = kb*10 + int(c-'0')
			}
			return kb
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

func TestOnePMode(t *testing.T) {
	for mode, want := range map[string]bool{
		config.ModeVRRP: true, config.ModeGossip: true,
		config.ModeLease: false, config.ModeStatic: false,
	} {
		if got := onePMode(mode); got != want {
			t.Errorf("onePMode(%q) = %v, want %v", mode, got, want)
		}
	}
}
