package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Node meta is what each member gossips about itself (memberlist carries it in
// every alive message, at most 512 bytes). Hand-encoded rather than msgpack or
// JSON so its size is known: 11 + 10 bytes per group, + 1 per degraded bid.
//
// Version 2 layout (big endian):
//
//	[0]     version (2)
//	[1]     flags (none defined yet; ignored)
//	[2:10]  config fingerprint: hash of this node's whole group→VIP set
//	[10]    number of group entries n
//	n × 10: group ID (uint32), VIP-set hash of the group (uint32),
//	        priority of a healthy bid (0 = no healthy bid),
//	        flags (bit 0: currently owned; bit 1: degraded bid)
//	d × 1:  the priority of each degraded bid, in entry order (d = entries
//	        with bit 1 set)
//
// Version 1 is the same without degraded bids (bit 1 and the tail did not
// exist). A degraded bid keeps 0 in the entry's priority byte, so a v1
// reader (which ignores unknown flags and, for a later version, trailing
// bytes) sees no bid from a degraded member but still sees its claim: it
// computes the same owner for every group that has a healthy bid (Assign
// chooses among healthy bids exactly as v1 did) and takes no group only a
// degraded member bids for. A mixed-version cluster is thus consistent; only
// the old members cannot name a degraded member in their reasons.
//
// Later versions may only append; a reader ignores what follows.
//
// Version 3 is for more groups than fit (MaxInlineGroups): the member's group
// table travels outside the meta (table.go) and the meta only says which
// table version is current and what changed lately. It is the v2 layout
// with flag bit 0 set ("table elsewhere") and no entries (n = 0), followed by
//
//	epoch (uint32): the table's lifetime (a random number per process start)
//	seq (uint32): the table's version; every change increments it
//	base (uint32): changes lists every entry changed after version base
//	digest (uint32): FNV-1a of the encoded table at seq, checked after applying
//	groups (uint16): entries in the table
//	k (uint8), k × 10: changes: group ID, VIP-set hash, priority,
//	        flags (bit 0 owned, bit 1 degraded: the priority is a degraded
//	        bid's; bit 2 removed: the group left the table)
//
// A v2 reader sees such a member as bidding for and claiming nothing, so
// every member must run v3 before any is configured with more than
// MaxInlineGroups groups (v2 refuses such configs; docs/gossip.md).
const (
	metaVersion       = 2
	metaTableVersion  = 3
	metaFlagTable     = 1 << 0
	metaTableExtLen   = 4*4 + 2 + 1
	metaChangeLen     = 10
	entryFlagRemoved  = 1 << 2
	metaHeaderLen     = 11
	metaEntryLen      = 10
	metaMaxSize       = 512 // memberlist.MetaMaxSize
	entryFlagOwned    = 1 << 0
	entryFlagDegraded = 1 << 1
	// metaMaxEntries is how many entries fit without degraded bids (what
	// a v1 member with up to 50 groups sends): the decoder's limit.
	metaMaxEntries = (metaMaxSize - metaHeaderLen) / metaEntryLen
)

// MaxInlineGroups is the most groups one node gossips inside its meta (v2):
// every one of them may be a degraded bid (10 + 1 bytes), so 45 (v1 allowed
// 50). More groups are carried in a group table (v3, table.go).
const MaxInlineGroups = (metaMaxSize - metaHeaderLen) / (metaEntryLen + 1)

// MaxGroups is the most groups one node may have in gossip mode. The group
// table (10 bytes a group) goes over TCP, on a join, on memberlist's
// push/pull and to a member that missed changes; Assign over 50 members
// takes ~2 ms per 1,000 groups. 50 members × 1,000 groups are measured
// (docs/benchmark.md); 4,096 keeps a table at 40 kB.
const MaxGroups = 4096

// metaMaxChanges is how many changes a v3 meta carries at most: enough for
// the one or two groups a member takes or releases when another fails,
// leaves or joins, so peers need not fetch its whole table; larger bursts
// (a start, a joiner's claims) are fetched over TCP. Small on purpose: the
// meta travels in every alive message, and memberlist packs gossip into
// 1,400-byte packets: with 32 changes (350 bytes) 50 members releasing and
// claiming at once queued their metas for seconds (BenchmarkGossipScale);
// with 8 a meta is 110 bytes.
const metaMaxChanges = 8

// Fingerprint identifies a configuration's group→VIP set.
type Fingerprint [8]byte

func (f Fingerprint) String() string { return fmt.Sprintf("%x", f[:]) }

// Entry is one group in a member's meta.
type Entry struct {
	ID      GroupID
	VIPHash uint32
	// Priority is the bid's priority; 0: no bid (not eligible).
	Priority int
	// Degraded marks the bid as a last resort (election.Input.Degraded).
	Degraded bool
	Owned    bool
}

// Meta is a decoded node meta.
type Meta struct {
	Version     int
	Fingerprint Fingerprint
	Entries     []Entry
	// Table is set for a v3 meta: the entries are in a group table carried
	// outside the meta, and Entries is empty.
	Table *TableRef
}

// TableRef is what a v3 meta says about its member's group table.
type TableRef struct {
	Epoch, Seq, Base, Digest uint32
	Groups                   int
	// Changes are the entries changed after version Base, with their
	// values at Seq.
	Changes []Change
}

// Change is one entry of a table changed lately; Removed: it left the table.
type Change struct {
	Entry
	Removed bool
}

// Bids returns the healthy bids (group → priority), as Assign wants them.
func (m Meta) Bids() map[GroupID]int {
	b := make(map[GroupID]int, len(m.Entries))
	for _, e := range m.Entries {
		if e.Priority > 0 && !e.Degraded {
			b[e.ID] = e.Priority
		}
	}
	return b
}

// Member returns the member named name as Assign sees it: its healthy and
// degraded bids and its claims.
func (m Meta) Member(name string) Member {
	mb := Member{Name: name, Bids: m.Bids()}
	mb.sorted = sortedEntries(m.Entries)
	for _, e := range m.Entries {
		if e.Priority > 0 && e.Degraded {
			if mb.Degraded == nil {
				mb.Degraded = map[GroupID]int{}
			}
			mb.Degraded[e.ID] = e.Priority
		}
		if e.Owned {
			if mb.Owns == nil {
				mb.Owns = map[GroupID]bool{}
			}
			mb.Owns[e.ID] = true
		}
	}
	return mb
}

// sortedEntries is the healthy bids of entries as Assign walks them; a
// group table is sorted by ID already, so it is not sorted again.
func sortedEntries(entries []Entry) *sortedBids {
	sb := &sortedBids{ids: make([]GroupID, 0, len(entries)), prios: make([]int, 0, len(entries))}
	ordered := true
	for i, e := range entries {
		if i > 0 && e.ID <= entries[i-1].ID {
			ordered = false
		}
		if e.Priority > 0 && !e.Degraded {
			sb.ids = append(sb.ids, e.ID)
			sb.prios = append(sb.prios, e.Priority)
		}
	}
	if !ordered {
		b := make(map[GroupID]int, len(sb.ids))
		for i, id := range sb.ids {
			b[id] = sb.prios[i]
		}
		return sortBids(b)
	}
	return sb
}

// Entry returns the entry for id, if present.
func (m Meta) Entry(id GroupID) (Entry, bool) {
	for _, e := range m.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Encode returns the current (v2) encoding. It fails when the result would
// exceed 512 bytes, on a priority outside 0..255, or on a degraded entry
// without a priority (a degraded bid is still a bid).
func (m Meta) Encode() ([]byte, error) {
	if m.Table != nil {
		return m.encodeTable()
	}
	if len(m.Entries) > metaMaxEntries {
		return nil, fmt.Errorf("%d groups do not fit in gossip node meta (at most %d)", len(m.Entries), MaxInlineGroups)
	}
	b := make([]byte, metaHeaderLen, metaHeaderLen+metaEntryLen*len(m.Entries))
	b[0] = metaVersion
	copy(b[2:10], m.Fingerprint[:])
	b[10] = byte(len(m.Entries))
	var tail []byte
	for _, e := range m.Entries {
		if e.Priority < 0 || e.Priority > 255 {
			return nil, fmt.Errorf("priority %d out of range", e.Priority)
		}
		var flags byte
		if e.Owned {
			flags |= entryFlagOwned
		}
		p := byte(e.Priority)
		if e.Degraded {
			if e.Priority == 0 {
				return nil, fmt.Errorf("group %d: a degraded entry needs a priority", e.ID)
			}
			flags |= entryFlagDegraded
			tail = append(tail, p)
			p = 0
		}
		b = binary.BigEndian.AppendUint32(b, uint32(e.ID))
		b = binary.BigEndian.AppendUint32(b, e.VIPHash)
		b = append(b, p, flags)
	}
	b = append(b, tail...)
	if len(b) > metaMaxSize {
		return nil, fmt.Errorf("gossip node meta of %d groups (%d degraded) takes %d bytes, more than %d (at most %d groups)",
			len(m.Entries), len(tail), len(b), metaMaxSize, MaxInlineGroups)
	}
	return b, nil
}

// encodeTable encodes a v3 meta (the table is elsewhere).
func (m Meta) encodeTable() ([]byte, error) {
	t := m.Table
	if len(m.Entries) > 0 {
		return nil, errors.New("a v3 node meta carries no entries (they are in its group table)")
	}
	if len(t.Changes) > metaMaxChanges || t.Groups < 0 || t.Groups > 0xffff {
		return nil, fmt.Errorf("node meta: %d changes or %d groups out of range", len(t.Changes), t.Groups)
	}
	b := make([]byte, metaHeaderLen, metaHeaderLen+metaTableExtLen+metaChangeLen*len(t.Changes))
	b[0], b[1] = metaTableVersion, metaFlagTable
	copy(b[2:10], m.Fingerprint[:])
	for _, v := range []uint32{t.Epoch, t.Seq, t.Base, t.Digest} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(t.Groups))
	b = append(b, byte(len(t.Changes)))
	for _, c := range t.Changes {
		var err error
		if b, err = appendTableEntry(b, c.Entry, c.Removed); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendTableEntry appends the 10-byte entry of a group table or a v3
// change: unlike v2's entry, the priority byte holds a degraded bid's
// priority too (flag bit 1 says which).
func appendTableEntry(b []byte, e Entry, removed bool) ([]byte, error) {
	if e.Priority < 0 || e.Priority > 255 {
		return nil, fmt.Errorf("group %d: priority %d out of range", e.ID, e.Priority)
	}
	if e.Degraded && e.Priority == 0 {
		return nil, fmt.Errorf("group %d: a degraded entry needs a priority", e.ID)
	}
	var flags byte
	if e.Owned {
		flags |= entryFlagOwned
	}
	if e.Degraded {
		flags |= entryFlagDegraded
	}
	if removed {
		flags |= entryFlagRemoved
	}
	b = binary.BigEndian.AppendUint32(b, uint32(e.ID))
	b = binary.BigEndian.AppendUint32(b, e.VIPHash)
	return append(b, byte(e.Priority), flags), nil
}

// parseTableEntry reads what appendTableEntry wrote (10 bytes at p).
func parseTableEntry(p []byte) (Entry, bool, error) {
	e := Entry{
		ID:       GroupID(binary.BigEndian.Uint32(p)),
		VIPHash:  binary.BigEndian.Uint32(p[4:]),
		Priority: int(p[8]),
		Owned:    p[9]&entryFlagOwned != 0,
		Degraded: p[9]&entryFlagDegraded != 0,
	}
	if e.Degraded && e.Priority == 0 {
		return Entry{}, false, fmt.Errorf("group %d has a degraded bid of priority 0", e.ID)
	}
	return e, p[9]&entryFlagRemoved != 0, nil
}

// decodeTableMeta parses the v3 extension after the (empty) v2 part.
func decodeTableMeta(m Meta, b []byte) (Meta, error) {
	if len(b) < metaTableExtLen {
		return Meta{}, fmt.Errorf("node meta v3 has %d bytes after its header, needs %d", len(b), metaTableExtLen)
	}
	t := &TableRef{
		Epoch:  binary.BigEndian.Uint32(b),
		Seq:    binary.BigEndian.Uint32(b[4:]),
		Base:   binary.BigEndian.Uint32(b[8:]),
		Digest: binary.BigEndian.Uint32(b[12:]),
		Groups: int(binary.BigEndian.Uint16(b[16:])),
	}
	k := int(b[18])
	b = b[metaTableExtLen:]
	if k > metaMaxChanges || len(b) < k*metaChangeLen {
		return Meta{}, fmt.Errorf("node meta v3 lists %d changes in %d bytes", k, len(b))
	}
	if t.Base > t.Seq {
		return Meta{}, fmt.Errorf("node meta v3: changes since version %d, but the table is at version %d", t.Base, t.Seq)
	}
	if m.Version == metaTableVersion && len(b) != k*metaChangeLen {
		return Meta{}, fmt.Errorf("node meta has %d trailing bytes", len(b)-k*metaChangeLen)
	}
	seen := make(map[GroupID]bool, k)
	for i := range k {
		e, removed, err := parseTableEntry(b[i*metaChangeLen:])
		if err != nil {
			return Meta{}, fmt.Errorf("node meta v3: %w", err)
		}
		if seen[e.ID] {
			return Meta{}, fmt.Errorf("node meta v3: group %d changed twice", e.ID)
		}
		seen[e.ID] = true
		t.Changes = append(t.Changes, Change{Entry: e, Removed: removed})
	}
	m.Table = t
	return m, nil
}

var errMetaShort = errors.New("node meta too short")

// DecodeMeta parses node meta from a peer. It never panics on any input
// (fuzzed); an error means the member cannot take part in elections.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) < metaHeaderLen {
		return Meta{}, errMetaShort
	}
	if len(b) > metaMaxSize {
		return Meta{}, fmt.Errorf("node meta has %d bytes, more than %d", len(b), metaMaxSize)
	}
	m := Meta{Version: int(b[0])}
	if m.Version < 1 {
		return Meta{}, fmt.Errorf("node meta version %d unsupported", m.Version)
	}
	copy(m.Fingerprint[:], b[2:10])
	n := int(b[10])
	if m.Version >= metaTableVersion && b[1]&metaFlagTable != 0 {
		if n != 0 {
			return Meta{}, fmt.Errorf("node meta v%d has its group table elsewhere but %d inline entries", m.Version, n)
		}
		return decodeTableMeta(m, b[metaHeaderLen:])
	}
	if n > metaMaxEntries {
		return Meta{}, fmt.Errorf("node meta claims %d groups, at most %d fit", n, metaMaxEntries)
	}
	need := metaHeaderLen + n*metaEntryLen
	if len(b) < need {
		return Meta{}, fmt.Errorf("node meta has %d bytes, %d group entries need %d", len(b), n, need)
	}
	m.Entries = make([]Entry, n)
	tail := need
	for i := range m.Entries {
		p := b[metaHeaderLen+i*metaEntryLen:]
		en := Entry{
			ID:       GroupID(binary.BigEndian.Uint32(p)),
			VIPHash:  binary.BigEndian.Uint32(p[4:]),
			Priority: int(p[8]),
			Owned:    p[9]&entryFlagOwned != 0,
		}
		// v1 defined no degraded bit: a v1 meta with it set is read as v1
		// readers read it (unknown flags ignored).
		if m.Version >= 2 && p[9]&entryFlagDegraded != 0 {
			if en.Priority != 0 {
				return Meta{}, fmt.Errorf("node meta: group %d is degraded but has a healthy priority %d", en.ID, en.Priority)
			}
			if tail >= len(b) {
				return Meta{}, fmt.Errorf("node meta has %d bytes, too few for its degraded bids", len(b))
			}
			en.Degraded, en.Priority = true, int(b[tail])
			tail++
			if en.Priority == 0 {
				return Meta{}, fmt.Errorf("node meta: group %d has a degraded bid of priority 0", en.ID)
			}
		}
		m.Entries[i] = en
	}
	if m.Version <= metaVersion && len(b) != tail {
		return Meta{}, fmt.Errorf("node meta has %d trailing bytes", len(b)-tail)
	}
	return m, nil
}

// GroupSpec is one configured group as gossip sees it.
type GroupSpec struct {
	Name string
	VIPs []netip.Addr
}

// VIPHash hashes a group's VIP set (order-insensitive).
func VIPHash(vips []netip.Addr) uint32 {
	sum := sha256.Sum256([]byte(vipSetString(vips)))
	return binary.BigEndian.Uint32(sum[:4])
}

// ConfigFingerprint hashes the whole group→VIP set (order-insensitive).
func ConfigFingerprint(groups []GroupSpec) Fingerprint {
	lines := make([]string, len(groups))
	for i, g := range groups {
		lines[i] = g.Name + "=" + vipSetString(g.VIPs)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	var f Fingerprint
	copy(f[:], sum[:])
	return f
}

func vipSetString(vips []netip.Addr) string {
	s := make([]string, len(vips))
	for i, v := range vips {
		s[i] = v.String()
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}
