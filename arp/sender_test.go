package arp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
)

// fakePC records writes; it stands in for an AF_PACKET socket.
type fakePC struct {
	mu     sync.Mutex
	frames [][]byte
	addrs  []net.Addr
	err    error
	closed bool
}

func (f *fakePC) WriteTo(b []byte, addr net.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.frames = append(f.frames, bytes.Clone(b))
	f.addrs = append(f.addrs, addr)
	return len(b), nil
}
func (f *fakePC) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errors.New("not used") }
func (f *fakePC) Close() error                           { f.closed = true; return nil }
func (f *fakePC) LocalAddr() net.Addr                    { return nil }
func (f *fakePC) SetDeadline(time.Time) error            { return nil }
func (f *fakePC) SetReadDeadline(time.Time) error        { return nil }
func (f *fakePC) SetWriteDeadline(time.Time) error       { return nil }

type ndpWrite struct {
	m   ndp.Message
	cm  *ipv6.ControlMessage
	dst netip.Addr
}

type fakeNDP struct {
	writes []ndpWrite
	closed bool
}

func (f *fakeNDP) WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error {
	f.writes = append(f.writes, ndpWrite{m, cm, dst})
	return nil
}
func (f *fakeNDP) Close() error { f.closed = true; return nil }

var testIfi = &net.Interface{Index: 7, Name: "veth0", HardwareAddr: testMAC}

func TestIPv4Sender(t *testing.T) {
	pc := &fakePC{}
	s := NewIPv4Sender(testIfi, pc)
	if err := s.Announce(testV4); err != nil {
		t.Fatal(err)
	}
	req, rep, _ := GratuitousARP(testMAC, testV4)
	if len(pc.frames) != 2 || !bytes.Equal(pc.frames[0], req) || !bytes.Equal(pc.frames[1], rep) {
		t.Fatalf("frames = %d, want [request, reply]", len(pc.frames))
	}
	for _, a := range pc.addrs {
		if pa, ok := a.(*packet.Addr); !ok || !bytes.Equal(pa.HardwareAddr, Broadcast) {
			t.Errorf("destination = %v, want broadcast packet.Addr", a)
		}
	}
	if err := s.Announce(testV6); err == nil {
		t.Error("IPv4 sender accepted an IPv6 address")
	}
	pc.err = errors.New("ENOBUFS")
	if err := s.Announce(testV4); err == nil {
		t.Error("write error not returned")
	}
}

func TestIPv6Sender(t *testing.T) {
	c := &fakeNDP{}
	s := NewIPv6Sender(testIfi, c)
	if err := s.Announce(testV6); err != nil {
		t.Fatal(err)
	}
	if len(c.writes) != 1 {
		t.Fatalf("writes = %d, want 1", len(c.writes))
	}
	w := c.writes[0]
	if w.dst != AllNodes {
		t.Errorf("dst = %s, want ff02::1", w.dst)
	}
	// nil = the ndp.Conn default: hop limit 255, link-local source.
	if w.cm != nil {
		t.Errorf("control message = %+v, want nil (ndp default)", w.cm)
	}
	na, ok := w.m.(*ndp.NeighborAdvertisement)
	if !ok || !na.Override || na.Solicited || na.Router || na.TargetAddress != testV6 {
		t.Errorf("message = %#v", w.m)
	}
	if err := s.Announce(testV4); err == nil {
		t.Error("IPv6 sender accepted an IPv4 address")
	}
}

func TestDualSenderLazyIPv6(t *testing.T) {
	pc := &fakePC{}
	opens := 0
	var c *fakeNDP
	ds := &dualSender{ifi: testIfi, v4: NewIPv4Sender(testIfi, pc), openV6: func() (NDPConn, error) {
		opens++
		if opens == 1 {
			return nil, errors.New("no link-local address")
		}
		c = &fakeNDP{}
		return c, nil
	}}
	// IPv4 works and does not touch IPv6.
	if err := ds.Announce(testV4); err != nil || opens != 0 {
		t.Fatalf("v4: err=%v opens=%d", err, opens)
	}
	// First IPv6 attempt fails (no link-local yet) but IPv4 keeps working.
	if err := ds.Announce(testV6); err == nil {
		t.Fatal("v6 without link-local: no error")
	}
	if err := ds.Announce(testV4); err != nil {
		t.Fatal(err)
	}
	// Retried on next use, then reused.
	for range 2 {
		if err := ds.Announce(testV6); err != nil {
			t.Fatal(err)
		}
	}
	if opens != 2 || len(c.writes) != 2 {
		t.Errorf("opens=%d writes=%d, want 2/2", opens, len(c.writes))
	}
	if err := ds.Announce(netip.Addr{}); err == nil {
		t.Error("zero address: no error")
	}
	if err := ds.Close(); err != nil || !pc.closed || !c.closed {
		t.Errorf("close: err=%v v4 closed=%v v6 closed=%v", err, pc.closed, c.closed)
	}
	if err := ds.Announce(testV6); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after close: %v, want net.ErrClosed", err)
	}
}

func TestOpenRejectsNonEthernet(t *testing.T) {
	if _, err := Open(&net.Interface{Name: "lo", Index: 1}); err == nil {
		t.Error("Open(no MAC): no error")
	}
	if _, err := Open(nil); err == nil {
		t.Error("Open(nil): no error")
	}
}
