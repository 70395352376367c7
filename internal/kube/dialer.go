package kube

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Dialer dials the API server (as client-go's default dialer does) and
// keeps the connections it made, so that those gone silent can be closed.
//
// Why: client-go multiplexes every request over one HTTP/2 connection and
// only notices that it died after its health check (a ping after 30s
// without a frame, 15s to answer). A silent network partition leaves that
// connection open, in TCP's retransmission backoff, and every request
// queues on it; after the heal nothing moves until the kernel's next
// retransmission, which comes up to as long again as the partition lasted
// (the timer doubles: …, 3.2s, 6.4s, 12.8s). A request that went
// unanswered until its deadline on a connection that received nothing
// meanwhile is the sign: closing that connection makes the next request
// dial afresh, and a fresh dial after the heal connects at once
// (docs/chaos.md, finding 7). Kubelet does the same after failed node
// status updates.
type Dialer struct {
	dial  func(ctx context.Context, network, address string) (net.Conn, error)
	epoch time.Time // lastRead is counted from here (monotonic)

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// NewDialer returns a Dialer with client-go's default dial settings (30s
// connect timeout, 30s keep-alive). Use DialContext as rest.Config.Dial.
func NewDialer() *Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return newDialer(d.DialContext)
}

func newDialer(dial func(ctx context.Context, network, address string) (net.Conn, error)) *Dialer {
	return &Dialer{dial: dial, epoch: time.Now(), conns: map[*trackedConn]struct{}{}}
}

// DialContext dials and tracks the connection until it is closed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, d: d}
	tc.lastRead.Store(int64(time.Since(d.epoch)))
	d.mu.Lock()
	d.conns[tc] = struct{}{}
	d.mu.Unlock()
	return tc, nil
}

// CloseSilent closes every connection that has received nothing for at
// least silentFor (nor since it was dialled), and returns how many it
// closed. Requests in flight on them fail; the next ones dial anew.
func (d *Dialer) CloseSilent(silentFor time.Duration) int {
	now := int64(time.Since(d.epoch))
	var silent []*trackedConn
	d.mu.Lock()
	for c := range d.conns {
		if now-c.lastRead.Load() >= int64(silentFor) {
			silent = append(silent, c)
		}
	}
	d.mu.Unlock()
	for _, c := range silent {
		_ = c.Close()
	}
	return len(silent)
}

// Open returns how many connections are open.
func (d *Dialer) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

type trackedConn struct {
	net.Conn
	d        *Dialer
	lastRead atomic.Int64 // time.Since(d.epoch) at the last read that returned data
	once     sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.lastRead.Store(int64(time.Since(c.d.epoch)))
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}
