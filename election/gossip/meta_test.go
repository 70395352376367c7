package gossip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, degraded := range []bool{false, true} {
		m := Meta{Version: metaVersion, Fingerprint: Fingerprint{1, 2, 3, 4, 5, 6, 7, 8}}
		for i := 0; i < MaxInlineGroups; i++ {
			// degraded: every bid is (the worst case for the size).
			m.Entries = append(m.Entries, Entry{ID: GroupID(i * 7919), VIPHash: uint32(i), Priority: 1 + i%254, Owned: i%3 == 0,
				Degraded: degraded || i%4 == 1})
		}
		m.Entries[2].Priority, m.Entries[2].Degraded = 0, false // not eligible
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 512 {
			t.Fatalf("%d groups encode to %d bytes, memberlist allows 512", MaxInlineGroups, len(b))
		}
		t.Logf("%d groups, degraded=%v: %d bytes", MaxInlineGroups, degraded, len(b))
		got, err := DecodeMeta(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		if degraded {
			m.Entries = append(m.Entries, Entry{Priority: 100, Degraded: true})
			if _, err := m.Encode(); err == nil {
				t.Fatalf("%d degraded groups encoded, want error", len(m.Entries))
			}
		}
	}
	if _, err := (Meta{Entries: []Entry{{ID: 1, Degraded: true}}}).Encode(); err == nil {
		t.Error("a degraded entry without a priority encoded, want error")
	}
}

// A member of the previous version (v1) reads a v2 meta as it reads any later
// version: a degraded bid is no bid, the claim is still seen.
func TestMetaV1ReaderSeesDegradedAsNoBid(t *testing.T) {
	b, err := Meta{Entries: []Entry{
		{ID: 1, Priority: 100, Owned: true, Degraded: true},
		{ID: 2, Priority: 120},
	}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	v1 := decodeV1(t, b)
	if want := []Entry{{ID: 1, Priority: 0, Owned: true}, {ID: 2, Priority: 120}}; !reflect.DeepEqual(v1, want) {
		t.Fatalf("v1 reader sees %+v, want %+v", v1, want)
	}
	m, err := DecodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	mb := m.Member("x")
	if fmt.Sprint(mb.Bids) != fmt.Sprint(map[GroupID]int{2: 120}) || fmt.Sprint(mb.Degraded) != fmt.Sprint(map[GroupID]int{1: 100}) ||
		!mb.Owns[1] || mb.Owns[2] {
		t.Fatalf("v2 reader: %+v", mb)
	}
	// And a v1 meta (an old member) reads as having no degraded bid.
	old := append([]byte{1}, b[1:len(b)-1]...)
	old[metaHeaderLen+9] |= entryFlagDegraded // set by nobody, ignored in v1
	m, err = DecodeMeta(old)
	if err != nil || m.Entries[0].Degraded || m.Entries[0].Priority != 0 || !m.Entries[0].Owned {
		t.Fatalf("v1 meta: %+v, %v", m, err)
	}
}

// decodeV1 is the previous version's decoder (entries only), kept to test
// what old members see of a v2 meta.
func decodeV1(t *testing.T, b []byte) []Entry {
	t.Helper()
	if len(b) < 11 || b[0] < 1 {
		t.Fatalf("v1 decoder refuses %x", b)
	}
	n := int(b[10])
	need := 11 + 10*n
	if n > 50 || len(b) < need || b[0] == 1 && len(b) != need {
		t.Fatalf("v1 decoder refuses %x", b)
	}
	var out []Entry
	for i := 0; i < n; i++ {
		p := b[11+10*i:]
		out = append(out, Entry{ID: GroupID(binary.BigEndian.Uint32(p)), VIPHash: binary.BigEndian.Uint32(p[4:]), Priority: int(p[8]), Owned: p[9]&1 != 0})
	}
	return out
}

func TestDecodeMetaErrors(t *testing.T) {
	good, _ := Meta{Entries: []Entry{{ID: 1, Priority: 100}}}.Encode()
	future := append(append([]byte{}, good...), 9, 9, 9)
	future[0] = 3
	deg, _ := Meta{Entries: []Entry{{ID: 1, Priority: 100, Degraded: true}, {ID: 2, Priority: 7}}}.Encode()
	degHealthyPrio := slices.Clone(deg)
	degHealthyPrio[metaHeaderLen+8] = 5
	degZero := slices.Clone(deg)
	degZero[len(degZero)-1] = 0
	v1With50 := make([]byte, 11+500)
	v1With50[0], v1With50[10] = 1, 50
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"short header", good[:5], false},
		{"version 0", append([]byte{0}, good[1:]...), false},
		{"truncated entry", good[:len(good)-1], false},
		{"v2 trailing bytes", append(append([]byte{}, good...), 0), false},
		{"v1 trailing bytes", append(append([]byte{1}, good[1:]...), 0), false},
		{"future version appends", future, true},
		{"good", good, true},
		{"degraded", deg, true},
		{"degraded bid's priority missing", deg[:len(deg)-1], false},
		{"degraded with a healthy priority", degHealthyPrio, false},
		{"degraded with priority 0", degZero, false},
		{"v1 member with 50 groups", v1With50, true},
		{"over 512 bytes", append(slices.Clone(future), make([]byte, 512)...), false},
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
	deg, _ := Meta{Entries: []Entry{{ID: 1, Priority: 100, Owned: true, Degraded: true}, {ID: 2, Priority: 3}}}.Encode()
	f.Add(deg)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255})
	v3, _ := Meta{Table: &TableRef{Epoch: 1, Seq: 9, Base: 7, Digest: 5, Groups: 1000,
		Changes: []Change{{Entry: Entry{ID: 1, Priority: 100, Owned: true}}, {Entry: Entry{ID: 2}, Removed: true}, {Entry: Entry{ID: 3, Priority: 4, Degraded: true}}}}}.Encode()
	f.Add(v3)
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
		m.Version = metaVersion
		if m.Table != nil {
			m.Version = metaTableVersion
		}
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
