package arp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
)

var (
	testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	testV4  = netip.MustParseAddr("198.51.100.10")
	testV6  = netip.MustParseAddr("2001:db8::10")
)

// checkARPFrame checks every byte of a GARP frame by hand (not through the
// library that built it).
func checkARPFrame(t *testing.T, name string, f []byte, op uint16, tha net.HardwareAddr) {
	t.Helper()
	if len(f) != 60 {
		t.Fatalf("%s: len = %d, want 60 (42 + Ethernet padding)", name, len(f))
	}
	eq := func(field string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s = % x, want % x", name, field, got, want)
		}
	}
	eq("eth dst", f[0:6], Broadcast)
	eq("eth src", f[6:12], testMAC)
	eq("ethertype", f[12:14], []byte{0x08, 0x06})
	a := f[14:]
	eq("htype", a[0:2], []byte{0, 1})
	eq("ptype", a[2:4], []byte{0x08, 0x00})
	eq("hlen/plen", a[4:6], []byte{6, 4})
	if got := binary.BigEndian.Uint16(a[6:8]); got != op {
		t.Errorf("%s: op = %d, want %d", name, got, op)
	}
	eq("sha", a[8:14], testMAC)
	eq("spa", a[14:18], testV4.AsSlice())
	eq("tha", a[18:24], tha)
	eq("tpa", a[24:28], testV4.AsSlice())
	eq("padding", a[28:], make([]byte, 60-14-28))
}

func TestGratuitousARP(t *testing.T) {
	req, rep, err := GratuitousARP(testMAC, testV4)
	if err != nil {
		t.Fatal(err)
	}
	checkARPFrame(t, "request", req, 1, Broadcast) // keepalived's convention
	checkARPFrame(t, "reply", rep, 2, testMAC)     // tha == sha: Linux arp_is_garp

	// An IPv4-mapped IPv6 address is the same VIP.
	req2, _, err := GratuitousARP(testMAC, netip.MustParseAddr("::ffff:198.51.100.10"))
	if err != nil || !bytes.Equal(req, req2) {
		t.Errorf("mapped address: err=%v, frames equal=%v", err, bytes.Equal(req, req2))
	}
}

func TestUnsolicitedNA(t *testing.T) {
	na, err := UnsolicitedNA(testMAC, testV6, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	// ICMPv6 header 4 + flags/reserved 4 + target 16 + TLLA option 8.
	if len(b) != 32 {
		t.Fatalf("len = %d, want 32: % x", len(b), b)
	}
	if b[0] != 136 || b[1] != 0 {
		t.Errorf("type/code = %d/%d, want 136/0", b[0], b[1])
	}
	// Checksum is left to the kernel (IPV6_CHECKSUM on the ndp socket).
	if b[4] != 0x20 { // R=0 (0x80), S=0 (0x40), O=1 (0x20)
		t.Errorf("flags = %#02x, want 0x20 (R=0 S=0 O=1)", b[4])
	}
	if !bytes.Equal(b[5:8], []byte{0, 0, 0}) {
		t.Errorf("reserved = % x, want zero", b[5:8])
	}
	if !bytes.Equal(b[8:24], testV6.AsSlice()) {
		t.Errorf("target = % x, want %s", b[8:24], testV6)
	}
	if b[24] != 2 || b[25] != 1 { // type 2 = Target Link-Layer Address, length 1 (8 octets)
		t.Errorf("option type/len = %d/%d, want 2/1", b[24], b[25])
	}
	if !bytes.Equal(b[26:32], testMAC) {
		t.Errorf("option MAC = % x, want %s", b[26:32], testMAC)
	}
}

// On a node that routes IPv6 on the interface the Router flag is set, so
// hosts using the VIP as their gateway keep it in their router list.
func TestUnsolicitedNARouter(t *testing.T) {
	na, err := UnsolicitedNA(testMAC, testV6, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	if b[4] != 0xa0 { // R=1 (0x80), S=0, O=1 (0x20)
		t.Errorf("flags = %#02x, want 0xa0 (R=1 S=0 O=1)", b[4])
	}
}

func TestBadInput(t *testing.T) {
	bad := []struct {
		name string
		mac  net.HardwareAddr
		ip   netip.Addr
	}{
		{"zero addr", testMAC, netip.Addr{}},
		{"v4 unspecified", testMAC, netip.IPv4Unspecified()},
		{"v6 unspecified", testMAC, netip.IPv6Unspecified()},
		{"v4 broadcast", testMAC, netip.MustParseAddr("255.255.255.255")},
		{"v4 multicast", testMAC, netip.MustParseAddr("224.0.0.18")},
		{"v6 multicast", testMAC, netip.MustParseAddr("ff02::1")},
		{"nil mac", nil, testV4},
		{"short mac", net.HardwareAddr{1, 2, 3}, testV4},
		{"infiniband mac", make(net.HardwareAddr, 20), testV6},
	}
	for _, tc := range bad {
		if _, _, err := GratuitousARP(tc.mac, tc.ip); err == nil {
			t.Errorf("GratuitousARP(%s): no error", tc.name)
		}
		if _, err := UnsolicitedNA(tc.mac, tc.ip, false); err == nil {
			t.Errorf("UnsolicitedNA(%s): no error", tc.name)
		}
	}
	// Wrong family for the builder.
	if _, _, err := GratuitousARP(testMAC, testV6); !errors.Is(err, ErrBadAddr) {
		t.Errorf("GratuitousARP(v6) err = %v, want ErrBadAddr", err)
	}
	if _, err := UnsolicitedNA(testMAC, testV4, false); !errors.Is(err, ErrBadAddr) {
		t.Errorf("UnsolicitedNA(v4) err = %v, want ErrBadAddr", err)
	}
	if _, err := UnsolicitedNA(testMAC, netip.MustParseAddr("::ffff:198.51.100.10"), false); !errors.Is(err, ErrBadAddr) {
		t.Errorf("UnsolicitedNA(v4-mapped) err = %v, want ErrBadAddr", err)
	}
	if _, err := UnsolicitedNA(testMAC, netip.MustParseAddr("fe80::1"), false); !errors.Is(err, ErrBadAddr) {
		t.Errorf("UnsolicitedNA(link-local) err = %v, want ErrBadAddr", err)
	}
	// Zoned addresses are fine; the zone is not part of the wire format.
	if _, err := UnsolicitedNA(testMAC, netip.MustParseAddr("2001:db8::10%eth0"), false); err != nil {
		t.Errorf("UnsolicitedNA(zoned): %v", err)
	}
}
