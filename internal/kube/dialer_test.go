package kube

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// CloseSilent closes exactly the connections that received nothing for the
// given time: a connection in a silent partition, not one that answers.
func TestDialerCloseSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var servers []net.Conn
		d := newDialer(func(context.Context, string, string) (net.Conn, error) {
			c, s := net.Pipe()
			servers = append(servers, s)
			return c, nil
		})
		dial := func() net.Conn {
			c, err := d.DialContext(t.Context(), "tcp", "192.0.2.1:6443")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		live, dead := dial(), dial()
		defer live.Close()
		defer dead.Close()
		// Both send a request; only live's server answers, 900ms later.
		for _, s := range servers {
			go func() { _, _ = io.Copy(io.Discard, s) }()
		}
		go func() { _, _ = live.Write([]byte("req")); _, _ = dead.Write([]byte("req")) }()
		got := make(chan error, 2)
		for _, c := range []net.Conn{live, dead} {
			go func() {
				b := make([]byte, 8)
				for {
					if _, err := c.Read(b); err != nil {
						got <- err
						return
					}
				}
			}()
		}
		time.Sleep(900 * time.Millisecond)
		go func() { _, _ = servers[0].Write([]byte("resp")) }()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()

		// The request timed out after 1s: dead has read nothing for 1s.
		if n := d.CloseSilent(time.Second); n != 1 {
			t.Fatalf("CloseSilent(1s) closed %d connections, want 1 (the silent one)", n)
		}
		synctest.Wait()
		select {
		case err := <-got:
			if !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("read on the closed connection: %v", err)
			}
		default:
			t.Fatal("the silent connection was not closed")
		}
		if d.Open() != 1 {
			t.Errorf("%d connections tracked, want 1", d.Open())
		}
		// A connection closed by its user is no longer tracked.
		_ = live.Close()
		if d.Open() != 0 {
			t.Errorf("%d connections tracked after Close, want 0", d.Open())
		}
		for _, s := range servers {
			_ = s.Close()
		}
		synctest.Wait()
	})
}

// A failed dial is not tracked.
func TestDialerDialError(t *testing.T) {
	boom := errors.New("boom")
	d := newDialer(func(context.Context, string, string) (net.Conn, error) { return nil, boom })
	if _, err := d.DialContext(t.Context(), "tcp", "192.0.2.1:6443"); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if d.Open() != 0 {
		t.Fatalf("%d tracked", d.Open())
	}
}
