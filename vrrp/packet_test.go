package vrrp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	v4a = netip.MustParseAddr("198.51.100.1")
	v4b = netip.MustParseAddr("198.51.100.2")
	ll6 = netip.MustParseAddr("fe80::a02d:ddff:feb0:daa5")
)

// Packets captured (tcpdump in a network namespace) from Debian's keepalived
// v2.2.7 with vrrp_version 3: multicast IPv4, multicast IPv6 (link-local
// source) and unicast IPv4 (unicast_peer). They pin wire compatibility,
// including the IPv4 pseudo-header checksum.
var keepalivedCaptures = []struct {
	name     string
	src, dst netip.Addr
	hex      string
	want     Advert
}{
	{"ipv4-multicast", v4a, GroupV4, "31336401000a3565c6336464",
		Advert{VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}},
	{"ipv6-multicast", ll6, GroupV6, "3134c8010064820a20010db8000000000000000000000100",
		Advert{VRID: 52, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}},
	{"ipv4-unicast", v4a, v4b, "31355a010064f4e3c6336466",
		Advert{VRID: 53, Priority: 90, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.102")}}},
}

func TestDecodeKeepalived(t *testing.T) {
	for _, c := range keepalivedCaptures {
		t.Run(c.name, func(t *testing.T) {
			b, _ := hex.DecodeString(c.hex)
			got, err := Decode(b, c.src, c.dst)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.VRID != c.want.VRID || got.Priority != c.want.Priority || got.Interval != c.want.Interval || !slices.Equal(got.Addrs, c.want.Addrs) {
				t.Fatalf("Decode = %+v, want %+v", got, c.want)
			}
			// Re-encoding gives keepalived's exact bytes, checksum included.
			enc, err := Encode(got, c.src, c.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("Encode = %x, keepalived sent %x", enc, b)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	six := []netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::11")}
	for _, c := range []struct {
		a        Advert
		src, dst netip.Addr
	}{
		{Advert{VRID: 1, Priority: 0, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{v4b}}, v4a, GroupV4},
		{Advert{VRID: 255, Priority: 255, Interval: MaxInterval, Addrs: []netip.Addr{v4a, v4b}}, v4a, v4b},
		{Advert{VRID: 7, Priority: 150, Interval: 1230 * time.Millisecond, Addrs: six}, ll6, GroupV6},
	} {
		b, err := Encode(c.a, c.src, c.dst)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b, c.src, c.dst)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", c.a, err)
		}
		if got.VRID != c.a.VRID || got.Priority != c.a.Priority || got.Interval != c.a.Interval || !slices.Equal(got.Addrs, c.a.Addrs) {
			t.Fatalf("round trip %+v -> %+v", c.a, got)
		}
		// The pseudo-header matters: another destination fails the checksum.
		other := v4b
		if c.dst.Is6() {
			other = netip.MustParseAddr("fe80::1")
		} else if c.dst == v4b {
			other = GroupV4
		}
		if _, err := Decode(b, c.src, other); ReasonOf(err) != DropChecksum {
			t.Fatalf("Decode with wrong pseudo-header destination: %v, want checksum error", err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	ok := Advert{VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{v4b}}
	for name, c := range map[string]struct {
		mod      func(*Advert)
		src, dst netip.Addr
	}{
		"vrid 0":        {func(a *Advert) { a.VRID = 0 }, v4a, GroupV4},
		"no addrs":      {func(a *Advert) { a.Addrs = nil }, v4a, GroupV4},
		"interval 0":    {func(a *Advert) { a.Interval = 0 }, v4a, GroupV4},
		"interval 5ms":  {func(a *Advert) { a.Interval = 5 * time.Millisecond }, v4a, GroupV4},
		"interval 15ms": {func(a *Advert) { a.Interval = 15 * time.Millisecond }, v4a, GroupV4},
		"interval 41s":  {func(a *Advert) { a.Interval = 41 * time.Second }, v4a, GroupV4},
		"mixed family":  {func(a *Advert) {}, ll6, GroupV4},
		"v6 addr in v4": {func(a *Advert) { a.Addrs = []netip.Addr{ll6} }, v4a, GroupV4},
		"invalid src":   {func(a *Advert) {}, netip.Addr{}, GroupV4},
		"256 addrs":     {func(a *Advert) { a.Addrs = make([]netip.Addr, 256) }, v4a, GroupV4},
	} {
		a := ok
		a.Addrs = slices.Clone(ok.Addrs)
		c.mod(&a)
		if _, err := Encode(a, c.src, c.dst); err == nil {
			t.Errorf("%s: Encode succeeded, want error", name)
		}
	}
}

func TestDecodeDropReasons(t *testing.T) {
	good, _ := hex.DecodeString(keepalivedCaptures[0].hex)
	fix := func(b []byte) []byte { // recompute checksum after a mutation
		b[6], b[7] = 0, 0
		c := checksum(b, v4a, GroupV4)
		b[6], b[7] = byte(c>>8), byte(c)
		return b
	}
	mut := func(f func([]byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		src  netip.Addr
		want DropReason
	}{
		{"empty", nil, v4a, DropShort},
		{"7 bytes", good[:7], v4a, DropShort},
		{"truncated address", good[:10], v4a, DropShort},
		{"version 2", mut(func(b []byte) []byte { b[0] = 0x21; return fix(b) }), v4a, DropVersion},
		{"type 2", mut(func(b []byte) []byte { b[0] = 0x32; return fix(b) }), v4a, DropType},
		{"count 0", mut(func(b []byte) []byte { b[3] = 0; return fix(b[:8]) }), v4a, DropCount},
		{"trailing bytes", mut(func(b []byte) []byte { return fix(append(b, 0, 0, 0, 0)) }), v4a, DropCount},
		{"interval 0", mut(func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return fix(b) }), v4a, DropInterval},
		{"bad checksum", mut(func(b []byte) []byte { b[7]++; return b }), v4a, DropChecksum},
		{"priority flipped", mut(func(b []byte) []byte { b[2] = 1; return b }), v4a, DropChecksum},
		{"vrid 0", mut(func(b []byte) []byte { b[1] = 0; return fix(b) }), v4a, DropVRID},
		{"v6 source for v4", good, ll6, DropFamily},
		{"no source", good, netip.Addr{}, DropFamily},
	} {
		_, err := Decode(c.b, c.src, GroupV4)
		if got := ReasonOf(err); got != c.want {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.want)
		}
	}
	// Reserved bits of the interval field are ignored (RFC 5798 §5.2.7).
	b := mut(func(b []byte) []byte { b[4] |= 0xf0; return fix(b) })
	if a, err := Decode(b, v4a, GroupV4); err != nil || a.Interval != 100*time.Millisecond {
		t.Errorf("reserved bits: %+v, %v", a, err)
	}
}

// FuzzDecode checks that no input panics Decode, and that what it accepts
// re-encodes to the same bytes (modulo the reserved interval bits).
func FuzzDecode(f *testing.F) {
	for _, c := range keepalivedCaptures {
		b, _ := hex.DecodeString(c.hex)
		f.Add(b, c.src.Is6(), c.dst.IsMulticast())
	}
	f.Fuzz(func(t *testing.T, b []byte, six, multicast bool) {
		src, dst := v4a, v4b
		if multicast {
			dst = GroupV4
		}
		if six {
			src, dst = ll6, netip.MustParseAddr("fe80::1")
			if multicast {
				dst = GroupV6
			}
		}
		a, err := Decode(b, src, dst)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		enc, err := Encode(a, src, dst)
		if err != nil {
			t.Fatalf("accepted advert %+v does not encode: %v", a, err)
		}
		want := slices.Clone(b)
		want[4] &= 0x0f
		if want[4] != b[4] { // reserved bits were set: the checksum differs
			return
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("re-encode %x != input %x", enc, b)
		}
	})
}
