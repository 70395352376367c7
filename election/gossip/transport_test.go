package gossip

import (
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestTransport sends datagrams and opens a stream between two transports
// bound like memberlist's (IPv4, IPv6, the IPv4 wildcard, which is a
// dual-stack IPv6 socket), on loopback; the receiver sees the sender's port.
func TestTransport(t *testing.T) {
	logger := log.New(io.Discard, "", 0)
	for _, tt := range []struct{ name, bind, dst string }{
		{"ipv4", "127.0.0.1", "127.0.0.1"},
		{"ipv6", "::1", "::1"},
		{"wildcard to ipv4", "0.0.0.0", "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newTransport(tt.bind, 0, logger)
			if err != nil {
				if tt.bind == "::1" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer a.Shutdown()
			b, err := newTransport(tt.bind, 0, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Shutdown()
			to := net.JoinHostPort(tt.dst, strconv.Itoa(b.port()))
			for _, msg := range []string{"x", "ping", string(make([]byte, 1400))} {
				if _, err := a.WriteToAddress([]byte(msg), memberlist.Address{Addr: to}); err != nil {
					t.Fatal(err)
				}
				select {
				case p := <-b.PacketCh():
					if string(p.Buf) != msg {
						t.Fatalf("got %d bytes %q, want %d", len(p.Buf), p.Buf[:min(len(p.Buf), 8)], len(msg))
					}
					from := p.From.(*net.UDPAddr)
					if from.Port != a.port() || !from.IP.Equal(net.ParseIP(tt.dst)) {
						t.Fatalf("from %v, want %s port %d", from, tt.dst, a.port())
					}
					if p.Timestamp.IsZero() {
						t.Fatal("no timestamp")
					}
				case <-time.After(5 * time.Second):
					t.Fatal("datagram not received")
				}
			}
			c, err := a.DialAddressTimeout(memberlist.Address{Addr: to}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			select {
			case s := <-b.StreamCh():
				s.Close()
			case <-time.After(5 * time.Second):
				t.Fatal("stream not accepted")
			}
			ip, port, err := b.FinalAdvertiseAddr("", 0)
			if tt.bind != "0.0.0.0" && (err != nil || !ip.Equal(net.ParseIP(tt.bind)) || port != b.port()) {
				t.Fatalf("advertise %v %d %v, want %s %d", ip, port, err, tt.bind, b.port())
			}
		})
	}
}

// TestTransportErrors: a port in use, an address that is no IP, a
// destination of the other family, and Shutdown ending the loops.
func TestTransportErrors(t *testing.T) {
	logger := log.New(io.Discard, "", 0)
	a, err := newTransport("127.0.0.1", 0, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTransport("127.0.0.1", a.port(), logger); err == nil {
		t.Fatal("second bind on a port in use succeeded")
	}
	if _, err := newTransport("not-an-ip", 0, logger); err == nil {
		t.Fatal("bind address not an IP accepted")
	}
	if _, err := a.WriteTo([]byte("x"), "[2001:db8::1]:7946"); err == nil {
		t.Fatal("IPv6 destination from an IPv4 socket accepted")
	}
	done := make(chan error)
	go func() { done <- a.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs")
	}
}
