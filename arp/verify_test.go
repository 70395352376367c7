package arp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

var (
	proberMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ownerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	strayMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	proberLL  = netip.MustParseAddr("fe80::1")
)

// wire is a fake raw socket: WriteTo hands each frame to answer, whose
// frames are read back (as the LAN's answers).
type wire struct {
	answer func(frame []byte) [][]byte

	mu      sync.Mutex
	written [][]byte
	dsts    []net.HardwareAddr
	in      chan []byte
	closed  chan struct{}
	once    sync.Once
	readErr error
}

func newWire(answer func([]byte) [][]byte) *wire {
	return &wire{answer: answer, in: make(chan []byte, 64), closed: make(chan struct{})}
}

func (w *wire) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-w.in:
		if f == nil {
			return 0, nil, w.readErr
		}
		return copy(b, f), &packet.Addr{}, nil
	case <-w.closed:
		return 0, nil, net.ErrClosed
	}
}

func (w *wire) WriteTo(b []byte, a net.Addr) (int, error) {
	w.mu.Lock()
	w.written = append(w.written, bytes.Clone(b))
	w.dsts = append(w.dsts, a.(*packet.Addr).HardwareAddr)
	w.mu.Unlock()
	// Our own frame comes back on a packet socket (PACKET_OUTGOING).
	w.in <- bytes.Clone(b)
	if w.answer != nil {
		for _, f := range w.answer(b) {
			w.in <- f
		}
	}
	return len(b), nil
}

func (w *wire) Close() error                     { w.once.Do(func() { close(w.closed) }); return nil }
func (w *wire) LocalAddr() net.Addr              { return &packet.Addr{} }
func (w *wire) SetDeadline(time.Time) error      { return nil }
func (w *wire) SetReadDeadline(time.Time) error  { return nil }
func (w *wire) SetWriteDeadline(time.Time) error { return nil }
func (w *wire) frames() [][]byte                 { w.mu.Lock(); defer w.mu.Unlock(); return w.written }
func (w *wire) fail(err error)                   { w.readErr = err; w.in <- nil }
func linkLocalOK() (netip.Addr, error)           { return proberLL, nil }
func linkLocalNone() (netip.Addr, error)         { return netip.Addr{}, errors.New("tentative") }
func arpAnswers(macs ...net.HardwareAddr) func([]byte) [][]byte {
	return func(req []byte) [][]byte {
		var f ethernet.Frame
		var p marp.Packet
		if f.UnmarshalBinary(req) != nil || p.UnmarshalBinary(f.Payload) != nil {
			return nil
		}
		var out [][]byte
		for _, m := range macs {
			b, err := arpFrameTo(marp.OperationReply, m, p.TargetIP, p.SenderHardwareAddr, p.SenderIP, p.SenderHardwareAddr)
			if err != nil {
				panic(err)
			}
			out = append(out, b, b) // duplicates count once
		}
		return out
	}
}

func ndpAnswers(t *testing.T, macs ...net.HardwareAddr) func([]byte) [][]byte {
	return func(req []byte) [][]byte {
		var f ethernet.Frame
		if f.UnmarshalBinary(req) != nil || len(f.Payload) < 40 {
			return nil
		}
		m, err := ndp.ParseMessage(f.Payload[40:])
		if err != nil {
			t.Errorf("probe is not NDP: %v", err)
			return nil
		}
		ns := m.(*ndp.NeighborSolicitation)
		var out [][]byte
		for _, mac := range macs {
			fr := naFrame(t, &ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: ns.TargetAddress,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}})
			out = append(out, fr)
		}
		return out
	}
}

func TestProbeIPv4(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.10")
	for _, tc := range []struct {
		name    string
		answers []net.HardwareAddr
	}{
		{"none", nil},
		{"owner", []net.HardwareAddr{ownerMAC}},
		{"two MACs", []net.HardwareAddr{ownerMAC, strayMAC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWire(arpAnswers(tc.answers...))
				p, err := NewProber(proberMAC, w, nil, linkLocalOK)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				start := time.Now()
				got, err := p.Probe(t.Context(), vip, 200*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d != 200*time.Millisecond {
					t.Errorf("probe took %v, want the window", d)
				}
				if !sameMACs(got, tc.answers) {
					t.Errorf("got %v, want %v", got, tc.answers)
				}
				// The request is an RFC 5227 probe: claims nothing.
				fs := w.frames()
				if len(fs) != 1 {
					t.Fatalf("%d frames written, want 1", len(fs))
				}
				var f ethernet.Frame
				var pk marp.Packet
				if err := f.UnmarshalBinary(fs[0]); err != nil {
					t.Fatal(err)
				}
				if err := pk.UnmarshalBinary(f.Payload); err != nil {
					t.Fatal(err)
				}
				if pk.Operation != marp.OperationRequest || !pk.SenderIP.IsUnspecified() || pk.TargetIP != vip ||
					!bytes.Equal(pk.SenderHardwareAddr, proberMAC) || !bytes.Equal(f.Destination, Broadcast) {
					t.Errorf("request %+v to %v: want an ARP probe for %s from %s", pk, f.Destination, vip, proberMAC)
				}
				if _, ok := ParseClaim(fs[0]); ok {
					t.Error("the probe reads as a claim: the conflict watch would count it")
				}
			})
		})
	}
}

func TestProbeIPv6(t *testing.T) {
	vip := netip.MustParseAddr("2001:db8::10")
	synctest.Test(t, func(t *testing.T) {
		w := newWire(ndpAnswers(t, ownerMAC, strayMAC))
		p, err := NewProber(proberMAC, nil, w, linkLocalOK)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		got, err := p.Probe(t.Context(), vip, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !sameMACs(got, []net.HardwareAddr{ownerMAC, strayMAC}) {
			t.Errorf("got %v", got)
		}
		fs := w.frames()
		var f ethernet.Frame
		if err := f.UnmarshalBinary(fs[0]); err != nil {
			t.Fatal(err)
		}
		want := net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x10}
		if !bytes.Equal(f.Destination, want) || f.EtherType != ethernet.EtherTypeIPv6 {
			t.Errorf("frame to %v type %v, want %v IPv6", f.Destination, f.EtherType, want)
		}
		src, _ := netip.AddrFromSlice(f.Payload[8:24])
		dst, _ := netip.AddrFromSlice(f.Payload[24:40])
		if src != proberLL || dst != netip.MustParseAddr("ff02::1:ff00:10") || f.Payload[7] != 255 {
			t.Errorf("IPv6 header %s -> %s hop %d", src, dst, f.Payload[7])
		}
		// The checksum is right: ndp verifies it against the pseudo-header.
		if _, err := ndp.ParseMessage(f.Payload[40:]); err != nil {
			t.Fatal(err)
		}
	})
}

func TestProbeConcurrentAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := netip.MustParseAddr("198.51.100.1")
		b := netip.MustParseAddr("198.51.100.2")
		// Only a is answered (by the stray); b's probe sees nothing of it.
		w := newWire(func(req []byte) [][]byte {
			var f ethernet.Frame
			var p marp.Packet
			_ = f.UnmarshalBinary(req)
			_ = p.UnmarshalBinary(f.Payload)
			if p.TargetIP == a {
				return arpAnswers(strayMAC)(req)
			}
			return nil
		})
		p, _ := NewProber(proberMAC, w, nil, linkLocalNone)
		var got [2][]net.HardwareAddr
		var wg sync.WaitGroup
		for i, ip := range []netip.Addr{a, b} {
			wg.Go(func() { got[i], _ = p.Probe(t.Context(), ip, 100*time.Millisecond) })
		}
		wg.Wait()
		if !sameMACs(got[0], []net.HardwareAddr{strayMAC}) || len(got[1]) != 0 {
			t.Errorf("got %v", got)
		}
		if _, err := p.Probe(t.Context(), netip.MustParseAddr("2001:db8::1"), time.Millisecond); !errors.Is(err, ErrNoFamily) {
			t.Errorf("IPv6 without a socket: %v", err)
		}
		// A broken socket is reported, so the caller reopens.
		w.fail(errors.New("boom"))
		synctest.Wait()
		if _, err := p.Probe(t.Context(), a, time.Millisecond); err == nil {
			t.Error("probe on a broken socket succeeded")
		}
		p.Close()
		if _, err := p.Probe(context.Background(), a, time.Millisecond); err == nil {
			t.Error("probe after Close succeeded")
		}
	})
}

func TestProbeNoLinkLocal(t *testing.T) {
	p, _ := NewProber(proberMAC, nil, newWire(nil), linkLocalNone)
	defer p.Close()
	if _, err := p.Probe(t.Context(), netip.MustParseAddr("2001:db8::1"), time.Millisecond); err == nil {
		t.Error("no error without a link-local address")
	}
}

func sameMACs(a, b []net.HardwareAddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
