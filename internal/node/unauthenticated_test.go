package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// lockedBuffer is a log sink the daemon's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The spec's unauthenticated paths are logged once at start (WARN) and
// listed on /status.
func TestRunUnauthenticatedPaths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const path = "gossip: gossip.insecure is true (no gossip.keyFile): any host can join"
		var logs lockedBuffer
		r := startRig(t, func(r *rig, d *Deps) {
			r.spec.Unauthenticated = []string{path}
			d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		})
		code, body := r.ln.get(t, "/status")
		var st Status
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("/status %d %v %s", code, err, body)
		}
		if len(st.Unauthenticated) != 1 || st.Unauthenticated[0] != path {
			t.Errorf("/status unauthenticated = %q, want [%q]", st.Unauthenticated, path)
		}
		r.stop(t)
		if n := strings.Count(logs.String(), `level=WARN msg="unauthenticated election path" path="`+path+`"`); n != 1 {
			t.Errorf("logged %d times, want once:\n%s", n, logs.String())
		}
	})
}
