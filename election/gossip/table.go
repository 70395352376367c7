package gossip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Group tables carry a member's bids and claims when it has more groups than
// fit in its node meta (MaxInlineGroups). The meta (v3, meta.go) then only
// names the current table version and lists the entries changed lately, so:
//
//   - a change (a claim, a release, a priority) still travels in the meta,
//     by memberlist's own gossip, as fast as before: a peer whose copy of the
//     table is at least at the meta's Base applies the listed changes;
//   - the whole table (10 bytes a group) travels over TCP: in memberlist's
//     push/pull (LocalState / MergeRemoteState: on every join and every
//     PushPullInterval) and on request, when a peer's copy is missing or too
//     old for the meta's changes (a "pull" message answered with a "table"
//     message, both memberlist user messages sent over TCP);
//   - membership and failure detection stay memberlist's, untouched.
//
// A peer's table that is missing or behind is used as it is (missing: the
// member bids for nothing, claims nothing) until the current one arrives,
// usually one TCP round trip later; Status lists such members as
// tablesPending.

const (
	tableMsgTag = "vipd-table\x01"
	pullMsgTag  = "vipd-pull\x01"
	// tableLogMax is how many logged changes the own table keeps to fill
	// the meta's change list.
	tableLogMax = 4 * metaMaxChanges
)

// table is a member's group table at one version. Immutable once built.
type table struct {
	epoch, seq uint32
	entries    []Entry // sorted by ID, unique
}

// digest is FNV-1a over the encoded entries (what a v3 meta's Digest says).
func (t *table) digest() uint32 {
	h := fnv.New32a()
	b := make([]byte, 0, metaChangeLen)
	for _, e := range t.entries {
		b, _ = appendTableEntry(b[:0], e, false)
		h.Write(b)
	}
	return h.Sum32()
}

// apply returns the table ref describes, built from t and ref's changes; false
// when t cannot get there (none, another epoch, older than ref.Base, or the
// result does not match ref's digest). A t at or beyond ref's version is
// returned as it is: the meta lags behind the table a push/pull brought.
func (t *table) apply(ref *TableRef) (*table, bool) {
	if t == nil || t.epoch != ref.Epoch || t.seq < ref.Base {
		return nil, false
	}
	if t.seq >= ref.Seq {
		return t, true
	}
	entries := slices.Clone(t.entries)
	for _, c := range ref.Changes {
		i, found := slices.BinarySearchFunc(entries, c.ID, func(e Entry, id GroupID) int { return cmpID(e.ID, id) })
		switch {
		case c.Removed && found:
			entries = slices.Delete(entries, i, i+1)
		case c.Removed:
		case found:
			entries[i] = c.Entry
		default:
			entries = slices.Insert(entries, i, c.Entry)
		}
	}
	nt := &table{epoch: ref.Epoch, seq: ref.Seq, entries: entries}
	if len(entries) != ref.Groups || nt.digest() != ref.Digest {
		return nil, false
	}
	return nt, true
}

func cmpID(a, b GroupID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encodeTableMsg is the "table" message: tag, name length (uint8), name,
// epoch, seq (uint32), n (uint16), n × 10 bytes of entries (appendTableEntry).
func encodeTableMsg(name string, t *table) []byte {
	b := make([]byte, 0, len(tableMsgTag)+1+len(name)+10+metaChangeLen*len(t.entries))
	b = append(b, tableMsgTag...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, t.epoch)
	b = binary.BigEndian.AppendUint32(b, t.seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.entries)))
	for _, e := range t.entries {
		b, _ = appendTableEntry(b, e, false) // built from checked bids
	}
	return b
}

// decodeTableMsg parses a "table" message. It never panics (fuzzed).
func decodeTableMsg(b []byte) (string, *table, error) {
	if len(b) < len(tableMsgTag)+1 || string(b[:len(tableMsgTag)]) != tableMsgTag {
		return "", nil, errors.New("not a table message")
	}
	b = b[len(tableMsgTag):]
	nl := int(b[0])
	b = b[1:]
	if nl == 0 || len(b) < nl+10 {
		return "", nil, fmt.Errorf("table message of %d bytes too short", len(b))
	}
	name := string(b[:nl])
	b = b[nl:]
	t := &table{epoch: binary.BigEndian.Uint32(b), seq: binary.BigEndian.Uint32(b[4:])}
	n := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if n > MaxGroups || len(b) != n*metaChangeLen {
		return "", nil, fmt.Errorf("table message of %s: %d entries in %d bytes (at most %d entries)", name, n, len(b), MaxGroups)
	}
	t.entries = make([]Entry, n)
	for i := range t.entries {
		e, removed, err := parseTableEntry(b[i*metaChangeLen:])
		if err != nil {
			return "", nil, fmt.Errorf("table message of %s: %w", name, err)
		}
		if removed || i > 0 && e.ID <= t.entries[i-1].ID {
			return "", nil, fmt.Errorf("table message of %s: entry %d removed or out of order", name, i)
		}
		t.entries[i] = e
	}
	return name, t, nil
}

func pullMsg(node string) []byte { return append([]byte(pullMsgTag), node...) }

func parsePullMsg(b []byte) (string, bool) {
	if len(b) <= len(pullMsgTag) || string(b[:len(pullMsgTag)]) != pullMsgTag {
		return "", false
	}
	return string(b[len(pullMsgTag):]), true
}

// ownTable is this node's table and the log of its recent changes.
type ownTable struct {
	cur *table
	log []logged // oldest first
	// floor: changes at or before this version may be missing from log.
	floor uint32
}

type logged struct {
	seq uint32
	id  GroupID
}

// update makes entries (sorted by ID) the current table, a new version if
// anything changed, and returns what the meta says about it.
func (o *ownTable) update(epoch uint32, entries []Entry) *TableRef {
	if o.cur == nil || o.cur.epoch != epoch {
		o.cur = &table{epoch: epoch, seq: 1, entries: entries}
		o.log, o.floor = nil, 1
	} else if changed := diffEntries(o.cur.entries, entries); len(changed) > 0 {
		seq := o.cur.seq + 1
		o.cur = &table{epoch: epoch, seq: seq, entries: entries}
		if len(changed) > metaMaxChanges {
			// Too many for any meta: peers behind seq fetch the table.
			o.log, o.floor = o.log[:0], seq
		} else {
			for _, id := range changed {
				o.log = append(o.log, logged{seq, id})
			}
			for len(o.log) > tableLogMax {
				drop := o.log[0].seq
				for len(o.log) > 0 && o.log[0].seq == drop {
					o.log = o.log[1:]
				}
				o.floor = drop
			}
		}
	}
	return o.ref()
}

// ref lists the changes of the newest versions that fit in a meta, whole
// versions only: every entry changed after Base is listed.
func (o *ownTable) ref() *TableRef {
	t := o.cur
	r := &TableRef{Epoch: t.epoch, Seq: t.seq, Base: o.floor, Digest: t.digest(), Groups: len(t.entries)}
	ids := map[GroupID]bool{}
	for i := len(o.log); i > 0; {
		seq := o.log[i-1].seq
		j := i
		for j > 0 && o.log[j-1].seq == seq {
			j--
		}
		add := 0
		for _, l := range o.log[j:i] {
			if !ids[l.id] {
				add++
			}
		}
		if len(ids)+add > metaMaxChanges {
			r.Base = seq
			break
		}
		for _, l := range o.log[j:i] {
			ids[l.id] = true
		}
		i = j
	}
	for id := range ids {
		i, found := slices.BinarySearchFunc(t.entries, id, func(e Entry, id GroupID) int { return cmpID(e.ID, id) })
		if found {
			r.Changes = append(r.Changes, Change{Entry: t.entries[i]})
		} else {
			r.Changes = append(r.Changes, Change{Entry: Entry{ID: id}, Removed: true})
		}
	}
	slices.SortFunc(r.Changes, func(a, b Change) int { return cmpID(a.ID, b.ID) })
	return r
}

// diffEntries lists the IDs whose entry differs between a and b (both
// sorted by ID): changed, added or removed.
func diffEntries(a, b []Entry) []GroupID {
	var out []GroupID
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].ID < b[j].ID:
			out = append(out, a[i].ID)
			i++
		case i == len(a) || b[j].ID < a[i].ID:
			out = append(out, b[j].ID)
			j++
		default:
			if a[i] != b[j] {
				out = append(out, a[i].ID)
			}
			i++
			j++
		}
	}
	return out
}

// resolveLocked fills m's entries from its table when its meta is v3 (e.mu
// held): the table the meta describes if we have it or can build it from the
// meta's changes, else the last one we have of the same epoch (stale) and a
// pull is scheduled. It then indexes m.
func (e *Elector) resolveLocked(m *member) {
	if ref := m.meta.Table; ref != nil && m.metaErr == nil {
		t := e.tables[m.name]
		if nt, ok := t.apply(ref); ok {
			e.tables[m.name] = nt
			m.meta.Entries = nt.entries
			delete(e.needPull, m.name)
		} else {
			if t != nil && t.epoch == ref.Epoch {
				m.meta.Entries = t.entries
			}
			m.stale = true
			if _, ok := e.needPull[m.name]; !ok {
				e.needPull[m.name] = time.Time{}
			}
			signal(e.pullCh)
		}
	} else {
		delete(e.needPull, m.name) // back to (or always) a v2 meta
	}
	m.index()
}

// storeTable keeps a table received from name (push/pull or a pull answer)
// and, if name is a member whose meta it serves, updates the member.
func (e *Elector) storeTable(name string, t *table) {
	if name == e.opts.Node {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.members[name]
	if m != nil && m.meta.Table != nil && m.meta.Table.Epoch != t.epoch {
		return // another life of the member than its meta says
	}
	if cur := e.tables[name]; cur != nil && cur.epoch == t.epoch && cur.seq >= t.seq {
		return
	}
	e.tables[name] = t
	if m == nil || m.meta.Table == nil {
		return
	}
	nm := &member{name: m.name, addr: m.addr, meta: m.meta}
	nm.meta.Entries = nil
	e.resolveLocked(nm)
	e.members[name] = nm
	signal(e.changed)
}

// ownTableMsg is our table as a "table" message; nil unless this node uses a
// table (more groups than fit in its meta).
func (e *Elector) ownTableMsg() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.tableModeLocked() || e.own.cur == nil {
		return nil
	}
	return encodeTableMsg(e.opts.Node, e.own.cur)
}

func (e *Elector) tableModeLocked() bool {
	return len(e.opts.Groups) > MaxInlineGroups || e.opts.tableAlways
}

// tableLoop sends pull requests for the tables we miss and answers the
// requests of others. delay lets a push/pull that is under way deliver the
// table before we ask for it; a request unanswered after retry is sent
// again.
func (e *Elector) tableLoop(ctx context.Context, ml *memberlist.Memberlist, delay, retry time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 8) // a dead peer holds a send for TCPTimeout
	send := func(n *memberlist.Node, msg []byte, what string) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := ml.SendReliable(n, msg); err != nil {
				e.log.Debug("gossip: sending "+what, "member", n.Name, "err", err)
			}
		})
	}
	var again <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.pullCh:
		case <-again:
			again = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		now := time.Now()
		var pulls, pushes []*memberlist.Node
		e.mu.Lock()
		for name, sent := range e.needPull {
			m := e.members[name]
			switch {
			case m == nil:
				delete(e.needPull, name) // gone; a new life brings a new meta
			case !sent.IsZero() && now.Sub(sent) < retry:
			default:
				e.needPull[name] = now
				pulls = append(pulls, m.node())
			}
		}
		if len(e.needPull) > 0 && again == nil {
			again = time.After(retry)
		}
		var own []byte
		if len(e.pushTo) > 0 && e.tableModeLocked() && e.own.cur != nil {
			own = encodeTableMsg(e.opts.Node, e.own.cur)
			for name := range e.pushTo {
				if m := e.members[name]; m != nil {
					pushes = append(pushes, m.node())
				}
			}
		}
		clear(e.pushTo)
		e.mu.Unlock()
		for _, n := range pulls {
			send(n, pullMsg(e.opts.Node), "table request")
		}
		for _, n := range pushes {
			send(n, own, "table")
		}
	}
}
