package gossip

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func tableEntries(n int, owned func(i int) bool) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{ID: GroupID(i*7919 + 1), VIPHash: uint32(i), Priority: 100, Owned: owned(i)}
	}
	return out
}

func TestMetaV3RoundTripAndSize(t *testing.T) {
	r := &TableRef{Epoch: 7, Seq: 12, Base: 10, Digest: 99, Groups: 1000}
	for i := range metaMaxChanges {
		r.Changes = append(r.Changes, Change{Entry: Entry{ID: GroupID(i), VIPHash: 3, Priority: 1 + i, Owned: i%2 == 0, Degraded: i%3 == 0}, Removed: i == 5})
	}
	r.Changes[5].Entry = Entry{ID: 5}
	m := Meta{Version: metaTableVersion, Fingerprint: Fingerprint{1, 2}, Table: r}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > metaMaxSize {
		t.Fatalf("v3 meta with %d changes takes %d bytes", metaMaxChanges, len(b))
	}
	t.Logf("v3 meta with %d changes: %d bytes", metaMaxChanges, len(b))
	got, err := DecodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	// An older member reads no entries: no bids, no claims (hence: upgrade
	// every member before configuring more than MaxInlineGroups groups).
	if v1 := decodeV1(t, b); len(v1) != 0 {
		t.Fatalf("v1 reader sees %+v", v1)
	}
	for _, bad := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)-1] },                // truncated change
		func(b []byte) []byte { b[10] = 1; return b },                // inline entries and a table
		func(b []byte) []byte { b[metaHeaderLen+18] = 33; return b }, // too many changes
		func(b []byte) []byte { b[metaHeaderLen+11] = 13; return b }, // base > seq
		func(b []byte) []byte { return append(b, 0) },                // trailing byte
	} {
		if m, err := DecodeMeta(bad(slices.Clone(b))); err == nil {
			t.Errorf("decoded a broken v3 meta: %+v", m)
		}
	}
}

func TestTableMsgRoundTrip(t *testing.T) {
	tb := &table{epoch: 3, seq: 44, entries: tableEntries(MaxGroups, func(i int) bool { return i%50 == 0 })}
	tb.entries[7].Degraded, tb.entries[8].Priority = true, 0
	b := encodeTableMsg("node-1", tb)
	t.Logf("table message of %d groups: %d bytes", MaxGroups, len(b))
	name, got, err := decodeTableMsg(b)
	if err != nil || name != "node-1" || !reflect.DeepEqual(got, tb) {
		t.Fatalf("round trip: %s %+v %v", name, got, err)
	}
	if _, _, err := decodeTableMsg(b[:len(b)-3]); err == nil {
		t.Error("decoded a truncated table")
	}
	tb.entries[1], tb.entries[2] = tb.entries[2], tb.entries[1]
	if _, _, err := decodeTableMsg(encodeTableMsg("x", tb)); err == nil {
		t.Error("decoded a table out of order")
	}
	if n, ok := parsePullMsg(pullMsg("node-9")); !ok || n != "node-9" {
		t.Errorf("pull message: %q %v", n, ok)
	}
}

func FuzzDecodeTableMsg(f *testing.F) {
	f.Add(encodeTableMsg("a", &table{epoch: 1, seq: 2, entries: tableEntries(3, func(int) bool { return true })}))
	f.Add([]byte(tableMsgTag + "\x01a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, tb, err := decodeTableMsg(b)
		if err != nil {
			return
		}
		// Unknown flag bits are dropped, so compare decoded values.
		n2, tb2, err := decodeTableMsg(encodeTableMsg(name, tb))
		if err != nil || n2 != name || !reflect.DeepEqual(tb, tb2) {
			t.Fatalf("%x: decode(encode(t)) = %s %+v %v", b, n2, tb2, err)
		}
	})
}

// A peer that follows the metas, whichever of them it hears (memberlist may
// skip some), either applies the listed changes or knows it must fetch the
// table; what it applies is exactly the sender's table.
func TestOwnTableChangesReachPeers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 200 {
		var own ownTable
		entries := tableEntries(300, func(int) bool { return false })
		ref := own.update(5, entries)
		peer := &table{epoch: 5, seq: 1, entries: entries} // a push/pull brought it
		if got, ok := peer.apply(ref); !ok || got != peer {
			t.Fatalf("run %d: a peer with the current table cannot follow", run)
		}
		fetched, applied := 0, 0
		for step := range 60 {
			entries = slices.Clone(entries)
			// Mostly single claims and releases, sometimes a burst (a
			// start-up or a reload) bigger than any meta carries.
			n := 1 + r.IntN(3)
			if r.IntN(10) == 0 {
				n = 1 + r.IntN(80)
			}
			for range n {
				i := r.IntN(len(entries))
				switch r.IntN(8) {
				case 0: // removed by a reload
					entries = slices.Delete(entries, i, i+1)
				case 1: // added by a reload
					id := GroupID(r.Uint32())
					j, found := slices.BinarySearchFunc(entries, id, func(e Entry, id GroupID) int { return cmpID(e.ID, id) })
					if !found {
						entries = slices.Insert(entries, j, Entry{ID: id, Priority: 50})
					}
				default:
					entries[i].Owned = !entries[i].Owned
					entries[i].Priority = r.IntN(3) * 100
				}
			}
			ref = own.update(5, entries)
			if err := func() error { _, err := (Meta{Table: ref}).Encode(); return err }(); err != nil {
				t.Fatalf("run %d step %d: %v", run, step, err)
			}
			if r.IntN(3) == 0 {
				continue // this peer never hears this meta
			}
			if got, ok := peer.apply(ref); ok {
				peer = got
				applied++
			} else {
				peer = own.cur // it fetches the table
				fetched++
			}
			if !reflect.DeepEqual(peer.entries, entries) && !(len(peer.entries) == 0 && len(entries) == 0) {
				t.Fatalf("run %d step %d: peer's table differs from the sender's", run, step)
			}
		}
		if run == 0 {
			t.Logf("run 0: %d metas applied, %d tables fetched", applied, fetched)
		}
	}
	// Another epoch (a restarted member) or a gap is never applied.
	var own ownTable
	ref := own.update(9, tableEntries(10, func(int) bool { return false }))
	if _, ok := (&table{epoch: 8, seq: 5}).apply(ref); ok {
		t.Error("applied a meta of another epoch")
	}
	if _, ok := (*table)(nil).apply(ref); ok {
		t.Error("applied a meta to no table")
	}
}
