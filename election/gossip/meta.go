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
// JSON so its size is fixed and known: 11 + 10 bytes per group.
//
// Version 1 layout (big endian):
//
//	[0]     version (1)
//	[1]     flags (none defined yet; ignored)
//	[2:10]  config fingerprint: hash of this node's whole group→VIP set
//	[10]    number of group entries n
//	n × 10: group ID (uint32), VIP-set hash of the group (uint32),
//	        priority (0 = not eligible), flags (bit 0: currently owned)
//
// Later versions may only append; a v1 reader ignores what follows.
const (
	metaVersion    = 1
	metaHeaderLen  = 11
	metaEntryLen   = 10
	metaMaxSize    = 512 // memberlist.MetaMaxSize
	entryFlagOwned = 1 << 0
)

// MaxGroups is the most groups one node can gossip in its meta.
const MaxGroups = (metaMaxSize - metaHeaderLen) / metaEntryLen

// Fingerprint identifies a configuration's group→VIP set.
type Fingerprint [8]byte

func (f Fingerprint) String() string { return fmt.Sprintf("%x", f[:]) }

// Entry is one group in a member's meta.
type Entry struct {
	ID       GroupID
	VIPHash  uint32
	Priority int // 0: not eligible
	Owned    bool
}

// Meta is a decoded node meta.
type Meta struct {
	Version     int
	Fingerprint Fingerprint
	Entries     []Entry
}

// Bids returns the eligible groups and priorities, as Assign wants them.
func (m Meta) Bids() map[GroupID]int {
	b := make(map[GroupID]int, len(m.Entries))
	for _, e := range m.Entries {
		if e.Priority > 0 {
			b[e.ID] = e.Priority
		}
	}
	return b
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

// Encode returns the v1 encoding. It fails with more than MaxGroups entries or
// a priority outside 0..255.
func (m Meta) Encode() ([]byte, error) {
	if len(m.Entries) > MaxGroups {
		return nil, fmt.Errorf("%d groups do not fit in gossip node meta (at most %d)", len(m.Entries), MaxGroups)
	}
	b := make([]byte, metaHeaderLen, metaHeaderLen+metaEntryLen*len(m.Entries))
	b[0] = metaVersion
	copy(b[2:10], m.Fingerprint[:])
	b[10] = byte(len(m.Entries))
	for _, e := range m.Entries {
		if e.Priority < 0 || e.Priority > 255 {
			return nil, fmt.Errorf("priority %d out of range", e.Priority)
		}
		var flags byte
		if e.Owned {
			flags |= entryFlagOwned
		}
		b = binary.BigEndian.AppendUint32(b, uint32(e.ID))
		b = binary.BigEndian.AppendUint32(b, e.VIPHash)
		b = append(b, byte(e.Priority), flags)
	}
	return b, nil
}

var errMetaShort = errors.New("node meta too short")

// DecodeMeta parses node meta from a peer. It never panics on any input
// (fuzzed); an error means the member cannot take part in elections.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) < metaHeaderLen {
		return Meta{}, errMetaShort
	}
	m := Meta{Version: int(b[0])}
	if m.Version < 1 {
		return Meta{}, fmt.Errorf("node meta version %d unsupported", m.Version)
	}
	copy(m.Fingerprint[:], b[2:10])
	n := int(b[10])
	if n > MaxGroups {
		return Meta{}, fmt.Errorf("node meta claims %d groups, at most %d fit", n, MaxGroups)
	}
	need := metaHeaderLen + n*metaEntryLen
	if len(b) < need {
		return Meta{}, fmt.Errorf("node meta has %d bytes, %d group entries need %d", len(b), n, need)
	}
	if m.Version == metaVersion && len(b) != need {
		return Meta{}, fmt.Errorf("node meta has %d trailing bytes", len(b)-need)
	}
	m.Entries = make([]Entry, n)
	for i := range m.Entries {
		p := b[metaHeaderLen+i*metaEntryLen:]
		m.Entries[i] = Entry{
			ID:       GroupID(binary.BigEndian.Uint32(p)),
			VIPHash:  binary.BigEndian.Uint32(p[4:]),
			Priority: int(p[8]),
			Owned:    p[9]&entryFlagOwned != 0,
		}
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
