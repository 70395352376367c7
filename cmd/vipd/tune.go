package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/config"
)

// trimAfter is how long after start the binary's start-up pages are dropped
// (dropStartupPages): config parsing, socket setup and the first election
// are done by then.
const trimAfter = 10 * time.Second

// tuneRuntime applies the daemon's runtime defaults (issue #15, measured in
// docs/benchmark.md):
//
//   - VRRP mode runs on one P (GOMAXPROCS=1) unless the GOMAXPROCS
//     environment variable says otherwise. Its work is one goroutine's (the
//     elector's loop), woken by a timer or a datagram every advert; with a
//     second, idle P the runtime wakes another thread to look for work at
//     every such wake-up, which doubled the CPU time of an idle node at 10ms
//     adverts (~10 context switches per advert instead of ~5).
//   - Gossip mode too: memberlist's goroutines (a ticker every gossip
//     interval, a probe every probe interval, the packet handlers) each do
//     microseconds of work per wake-up, and the second P's extra thread
//     wake-ups made up about half of an idle fast-profile member's CPU
//     (0.75 % of a core → 0.4 %). The same price as in VRRP: a system call
//     blocking for long holds the loop until sysmon retakes the P (≤ 10 ms,
//     inside the fast profile's 50 ms probe timeout).
//   - trimAfter after start, the pages of the binary that only start-up used
//     are dropped from the process (dropStartupPages).
func tuneRuntime(ctx context.Context, cfg *config.Config, log *slog.Logger) {
	if onePMode(cfg.Mode) && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	go func() {
		t := time.NewTimer(trimAfter)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := dropStartupPages()
		if err != nil {
			log.Debug("could not drop the start-up pages of the binary", "err", err)
			return
		}
		log.Debug("dropped the start-up pages of the binary", "mappedBytes", n)
	}()
}

// onePMode says whether a mode runs on one P by default (tuneRuntime).
func onePMode(mode string) bool { return mode == config.ModeVRRP || mode == config.ModeGossip }

// dropStartupPages unmaps the pages of the executable's read-only mappings
// (code, read-only data) from the process with MADV_DONTNEED. vipd is one
// binary for every mode: package initialisation (client-go's API scheme,
// memberlist, prometheus, ...) touches code and data all over it, and the
// kernel maps 64 KiB around every page touched, so ~25 MiB of the binary
// stayed mapped (counted in RSS) though an idle VRRP node uses a few MiB
// of it. The pages stay in the page cache; those still used are mapped
// again at their next use (a minor fault). Only mappings without a private
// copy of any page are dropped: MADV_DONTNEED would discard such copies
// (relocations, breakpoints: smaps' Anonymous), while the file's pages are
// simply mapped again from the page cache.
// It returns the size of the mappings it dropped.
func dropStartupPages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	ranges, err := cleanMappings(f, exe)
	f.Close()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range ranges {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); e != 0 {
			return total, e
		}
		total += int(r.end - r.start)
	}
	return total, nil
}

type mapping struct{ start, end uintptr }

// cleanMappings lists, from smaps, the private read-only mappings of path
// none of whose pages is a private copy (Anonymous 0). Private_Dirty does
// not matter: it also counts page-cache pages not yet written back (a
// freshly built binary), which stay in the page cache.
func cleanMappings(smaps io.Reader, path string) ([]mapping, error) {
	var out []mapping
	var cur mapping
	var candidate, dirty bool
	flush := func() {
		if candidate && !dirty {
			out = append(out, cur)
		}
		candidate, dirty = false, false
	}
	s := bufio.NewScanner(smaps)
	for s.Scan() {
		line := s.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if k := f[0]; strings.HasSuffix(k, ":") {
			if k == "Anonymous:" && len(f) > 1 && f[1] != "0" {
				dirty = true
			}
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]".
		bounds := strings.SplitN(f[0], "-", 2)
		if len(bounds) != 2 || len(f) < 5 {
			continue
		}
		flush()
		start, err1 := strconv.ParseUint(bounds[0], 16, 64)
		end, err2 := strconv.ParseUint(bounds[1], 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		perms := f[1]
		name := ""
		if len(f) >= 6 {
			name = strings.Join(f[5:], " ")
		}
		cur = mapping{uintptr(start), uintptr(end)}
		candidate = name == path && len(perms) >= 4 && perms[1] != 'w' && perms[3] == 'p' && end > start
	}
	flush()
	return out, s.Err()
}
