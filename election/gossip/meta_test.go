package gossip

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{Version: 1, Fingerprint: Fingerprint{1, 2, 3, 4, 5, 6, 7, 8}}
	for i := 0; i < MaxGroups; i++ {
		m.Entries = append(m.Entries, Entry{ID: GroupID(i * 7919), VIPHash: uint32(i), Priority: i % 255, Owned: i%3 == 0})
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 512 {
		t.Fatalf("%d groups encode to %d bytes, memberlist allows 512", MaxGroups, len(b))
	}
	got, err := DecodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	m.Entries = append(m.Entries, Entry{})
	if _, err := m.Encode(); err == nil {
		t.Fatalf("%d groups encoded, want error", len(m.Entries))
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	good, _ := Meta{Entries: []Entry{{ID: 1, Priority: 100}}}.Encode()
	future := append(append([]byte{}, good...), 9, 9, 9)
	future[0] = 2
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"short header", good[:5], false},
		{"version 0", append([]byte{0}, good[1:]...), false},
		{"truncated entry", good[:len(good)-1], false},
		{"v1 trailing bytes", append(append([]byte{}, good...), 0), false},
		{"future version appends", future, true},
		{"good", good, true},
	}
	for _, tt := range tests {
		_, err := DecodeMeta(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := Meta{Entries: []Entry{{ID: 1, Priority: 100, Owned: true}}}.Encode()
	f.Add(good)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		// Unknown flag bits are dropped, so compare decoded values.
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
		m2, err := DecodeMeta(again)
		m.Version = 1
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%x: decode(encode(m)) = %+v, %v; want %+v", b, m2, err, m)
		}
	})
}

func TestFingerprint(t *testing.T) {
	a, b := netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("2001:db8::100")
	f1 := ConfigFingerprint([]GroupSpec{{Name: "web", VIPs: []netip.Addr{a, b}}, {Name: "db"}})
	f2 := ConfigFingerprint([]GroupSpec{{Name: "db"}, {Name: "web", VIPs: []netip.Addr{b, a}}})
	f3 := ConfigFingerprint([]GroupSpec{{Name: "web", VIPs: []netip.Addr{a}}, {Name: "db"}})
	if f1 != f2 {
		t.Errorf("fingerprint depends on order: %v vs %v", f1, f2)
	}
	if f1 == f3 {
		t.Errorf("fingerprint ignores a VIP")
	}
	if VIPHash([]netip.Addr{a, b}) != VIPHash([]netip.Addr{b, a}) || VIPHash([]netip.Addr{a}) == VIPHash([]netip.Addr{b}) {
		t.Errorf("VIPHash is order-sensitive or ignores content")
	}
}

func TestLeaveMsg(t *testing.T) {
	if n, ok := parseLeaveMsg(leaveMsg("node-1")); !ok || n != "node-1" {
		t.Fatalf("round trip: %q %v", n, ok)
	}
	for _, b := range [][]byte{nil, []byte("vipd-leave\x01"), []byte("vipd-leave\x02x"), []byte("garbage")} {
		if _, ok := parseLeaveMsg(b); ok {
			t.Errorf("%q accepted", b)
		}
	}
}
