package gossip

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate adapts memberlist's callbacks. They run on memberlist's
// goroutines, some with its node lock held: they only copy data and signal.
type delegate struct{ e *Elector }

func (d *delegate) NodeMeta(limit int) []byte {
	b := d.e.localMeta()
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg receives "leaving" packets and, for group tables, table requests
// and tables.
func (d *delegate) NotifyMsg(b []byte) {
	e := d.e
	if name, ok := parsePullMsg(b); ok {
		e.mu.Lock()
		e.pushTo[name] = true
		e.mu.Unlock()
		signal(e.pullCh)
		return
	}
	if name, t, err := decodeTableMsg(b); err == nil {
		e.storeTable(name, t)
		return
	}
	name, ok := parseLeaveMsg(b)
	if !ok {
		e.mu.Lock()
		e.badMsgs++
		e.mu.Unlock()
		return
	}
	if name == e.opts.Node {
		return
	}
	e.mu.Lock()
	_, known := e.members[name]
	e.leaving[name] = true
	delete(e.members, name)
	e.gone[name] = "member-left:" + name
	e.mu.Unlock()
	if known {
		e.log.Info("gossip member leaving", "member", name)
	}
	signal(e.changed)
}

// leaveMsg is the "leaving" packet: a tag, a version, the node name.
func leaveMsg(node string) []byte { return append([]byte("vipd-leave\x01"), node...) }

func parseLeaveMsg(b []byte) (string, bool) {
	const tag = "vipd-leave\x01"
	if len(b) <= len(tag) || string(b[:len(tag)]) != tag {
		return "", false
	}
	return string(b[len(tag):]), true
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState is our group table (nil while the groups fit in the meta) on a
// join's push/pull: the joiner (and we, of it) needs every table at once.
// The periodic push/pull leaves it out (10 bytes a group): a peer whose
// copy is behind knows from our meta and pulls it.
func (d *delegate) LocalState(join bool) []byte {
	if !join {
		return nil
	}
	return d.e.ownTableMsg()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	name, t, err := decodeTableMsg(buf)
	if err != nil {
		d.e.mu.Lock()
		d.e.badMsgs++
		d.e.mu.Unlock()
		return
	}
	d.e.storeTable(name, t)
}

// AckPayload is called when we answer a ping: a peer holds us as alive.
func (d *delegate) AckPayload() []byte {
	e := d.e
	e.mu.Lock()
	now := e.now()
	stale := now.Sub(e.lastProbed) > e.ackWindow
	e.lastProbed = now
	e.mu.Unlock()
	if stale {
		signal(e.changed)
	}
	return nil
}

func (d *delegate) NotifyPingComplete(*memberlist.Node, time.Duration, []byte) {}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	d.e.mu.Lock()
	delete(d.e.leaving, n.Name) // a new life
	d.e.mu.Unlock()
	d.upsert(n, true)
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.upsert(n, false) }

func (d *delegate) upsert(n *memberlist.Node, joined bool) {
	e := d.e
	if n.Name == e.opts.Node {
		return
	}
	meta, err := DecodeMeta(n.Meta)
	m := &member{name: n.Name, addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), meta: meta, metaErr: err}
	e.mu.Lock()
	if e.leaving[n.Name] {
		e.mu.Unlock()
		return // its last meta update, overtaken by its "leaving"
	}
	e.resolveLocked(m)
	old := e.members[n.Name]
	e.members[n.Name] = m
	e.addrs[n.Name] = m.addr
	if joined && strings.HasPrefix(e.gone[n.Name], "member-failed:") {
		// Back after we declared it failed: it may have held our groups
		// on its side of a partition (owners re-announce, isolation.go).
		e.returned = append(e.returned, n.Name)
	}
	delete(e.gone, n.Name)
	mm, bad := e.mismatchLocked(m)
	var oldMM Mismatch
	oldBad := false
	if old != nil {
		oldMM, oldBad = e.mismatchLocked(old)
	}
	ours := e.fp // a reload may change it
	e.mu.Unlock()
	if joined {
		e.log.Info("gossip member joined", "member", n.Name, "addr", m.addr)
		// A peer that joins us did a push/pull with us: we are part of
		// the cluster even if our own join found nobody (we came up first).
		if !e.isJoined() {
			e.setJoined(true, "")
		}
	}
	if bad && (!oldBad || fmt.Sprint(oldMM) != fmt.Sprint(mm)) {
		if err != nil {
			e.log.Warn("gossip member's meta is unreadable: it cannot own any group", "member", n.Name, "err", err)
		} else {
			e.log.Warn("gossip member has a different VIP configuration; the group's owner binds its own VIP set",
				"member", n.Name, "fingerprint", mm.Fingerprint, "ours", ours.String(), "groups_differing", mm.Groups)
		}
	}
	signal(e.changed)
}

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	e := d.e
	if n.Name == e.opts.Node {
		return
	}
	why := "member-failed:" + n.Name
	e.mu.Lock()
	if e.leaving[n.Name] {
		why = "member-left:" + n.Name
	}
	delete(e.members, n.Name)
	e.gone[n.Name] = why
	e.mu.Unlock()
	e.log.Info("gossip member gone", "member", n.Name, "why", strings.SplitN(why, ":", 2)[0])
	signal(e.changed)
}

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	msg := fmt.Sprintf("%s at %s and %s", existing.Name, existing.Address(), other.Address())
	d.e.mu.Lock()
	if !slices.Contains(d.e.conflicts, msg) && len(d.e.conflicts) < 16 {
		d.e.conflicts = append(d.e.conflicts, msg)
	}
	d.e.mu.Unlock()
	d.e.log.Error("gossip: two members use the same node name; node names must be unique", "name", existing.Name,
		"existing", existing.Address(), "other", other.Address())
}
