package node

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// A conflict watch on an interface that is deleted ends with an error (so
// the daemon restarts it on the re-created interface) instead of staying
// bound to a dead index, deaf, while /healthz is green.
func TestLabConflictWatchEndsWhenTheInterfaceIsDeleted(t *testing.T) {
	lab.Require(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	n1 := l.Nodes[0]
	if _, err := n1.Run(context.Background(), "ip", "link", "add", "vx0", "type", "veth", "peer", "name", "vx1"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Run(context.Background(), "ip", "link", "set", "vx0", "up"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- n1.Do(func() error {
			close(started)
			return WatchConflicts(ctx, "vx0", func(netip.Addr) bool { return false }, func(netip.Addr, string) {})
		})
	}()
	<-started
	// Wait until the watch's packet sockets are bound to vx0 (the watch is
	// then fully set up), so the deletion is the event under test.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := n1.Run(context.Background(), "ss", "-0", "-n")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(out, "vx0") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch never opened its sockets on vx0:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := n1.Run(context.Background(), "ip", "link", "del", "vx0"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "vx0 (index") || !strings.Contains(err.Error(), "was deleted") {
			t.Fatalf("watch ended with %v, want an error naming the deleted interface", err)
		}
		t.Logf("watch ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("conflict watch still running 10s after its interface was deleted")
	}
}
