// Package gossip elects VIP group owners over a hashicorp/memberlist cluster:
// every member gossips its per-group priority and eligibility in its node
// meta, and every member computes the same owners from the same membership
// with a pure function (Assign). No leader, no quorum store: failure
// detection is memberlist's (SWIM with Lifeguard), tuned by a profile.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vipd/vipd/election"
)

// DefaultPort is memberlist's customary port.
const DefaultPort = 7946

// Options configure an Elector.
type Options struct {
	// Node is this member's unique name.
	Node string
	// Groups are this node's configured groups, with their default priority.
	Groups []GroupSpec
	// BindAddr/BindPort: where memberlist listens (UDP and TCP). Port 0
	// picks a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr/AdvertisePort: the address peers use; empty/0 derives
	// them from the bind address (memberlist picks a private IP when bound
	// to 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int
	// Peers are "host" or "host:port" entries to join (hosts may be names).
	Peers []string
	// DNS is a name whose A/AAAA records are the peers (e.g. a headless
	// Service selecting the DaemonSet's pods); joined on DefaultPort or
	// BindPort.
	DNS string
	// Expect is the expected number of members, this node included (0:
	// unknown). It drives quorum and re-joining.
	Expect int
	// Quorum: own groups only while a majority of Expect members is alive.
	Quorum bool
	// Profile is the failure-detection timing: fast, lan or wan.
	Profile string
	// RejoinInterval is how often configured peers that are not members are
	// joined again (partition heal, restarted peers). Default 1s.
	RejoinInterval time.Duration
	// Settle is how long a node that could join nobody waits before it owns
	// groups alone (it may be the first node up, or peers may be booting).
	// Default 2s.
	Settle time.Duration
	// Keys is the keyring (first = primary, used to encrypt; all decrypt);
	// empty disables encryption.
	Keys [][]byte
	// KeySource, if set, is polled every KeyPollInterval and its keys
	// replace the keyring's (live key rotation of a mounted Secret).
	KeySource       func() ([][]byte, error)
	KeyPollInterval time.Duration
	// KeyFile is the file KeySource reads, if any: Reconfigure compares it
	// (not the keys, which the poller rotates) to tell a changed setting.
	KeyFile string
	// Lookup resolves names (DNS, peers); default net.DefaultResolver.
	Lookup func(ctx context.Context, host string) ([]string, error)
	Log    *slog.Logger

	// tableAlways carries the groups in a group table even when they fit
	// in the node meta (tests of the table path with few groups).
	tableAlways bool
	// transport, if set, makes memberlist's transport (tests cut a member
	// off the network with it).
	transport func(*memberlist.Config) (memberlist.Transport, error)
}

// Elector implements election.Elector over memberlist.
type Elector struct {
	opts   Options
	log    *slog.Logger
	inputs *election.Inputs
	ids    map[string]GroupID
	vipH   map[string]uint32
	fp     Fingerprint
	now    func() time.Time

	changed chan struct{} // membership or peer meta changed (coalesced)
	dirty   chan struct{} // our own meta changed (coalesced)

	mu           sync.Mutex
	members      map[string]*member // alive peers (not self)
	gone         map[string]string  // peer -> "member-failed:x" / "member-left:x"
	leaving      map[string]bool    // peers that said they are leaving
	owned        map[string]bool    // groups reported owned
	keyErrors    int64
	lastKeyErr   string
	keyErrLogged time.Time
	badMsgs      int64         // user messages that are not a "leaving" packet
	lastProbed   time.Time     // a peer last pinged us (so it holds us alive)
	ackWindow    time.Duration // how recent that must be to count
	unacked      bool          // gains held: peers do not probe us
	joinErr      string
	joined       bool
	quorumOK     bool
	waiting      map[string]string // group -> peer still claiming it
	lastOwner    map[string]string // group -> owner computed by the last election
	conflicts    []string
	settled      bool   // elections are running (joined and held off, or alone)
	refused      bool   // last join: peers reachable but refused us
	onJoin       func() // called once after the first successful join
	selfAddr     string // host:port we advertise
	keyring      *memberlist.Keyring
	rejoinBusy   atomic.Bool
	initialJoin  atomic.Bool // the first join is still trying peers
	// addrs: every peer's last known address, so a node coming back from
	// isolation can join members it declared dead (isolation.go).
	addrs map[string]string
	// returned: peers that came back alive after we declared them failed,
	// since the last evaluation (their owners re-announce, isolation.go).
	returned []string
	isolated bool // takes held until membership is re-synced (isolation.go)

	// Group tables (table.go), for more groups than fit in node meta.
	epoch    uint32               // our table's lifetime: random per New
	own      ownTable             // our table, as last gossiped
	tables   map[string]*table    // peers' tables, the newest we have
	needPull map[string]time.Time // peers whose table we miss -> last request
	pushTo   map[string]bool      // peers that asked for our table
	pullCh   chan struct{}

	// crash, closed by tests, makes Run stop like a killed process: no
	// Owner=false reports, no leave.
	crash chan struct{}

	// running is non-nil while Run runs (closed when it ends); reconf
	// carries Reconfigure's requests into Run, which alone reports.
	running chan struct{}
	reconf  chan reconfigure
}

type member struct {
	name    string
	addr    string // host:port
	meta    Meta   // for a v3 meta, Entries come from the member's table
	metaErr error
	// stale: a v3 member whose current table we do not have yet; Entries
	// are the last we had (or none).
	stale bool
	mb    Member // as Assign sees it
}

// index builds mb once per meta, so an election over 1,000 groups does not
// rebuild it.
func (m *member) index() { m.mb = m.meta.Member(m.name) }

// entry is m's entry for id: a table's entries are sorted by ID, a v2
// meta's are few.
func (m *member) entry(id GroupID) (Entry, bool) {
	if m.meta.Table != nil {
		if i, ok := slices.BinarySearchFunc(m.meta.Entries, id, func(e Entry, id GroupID) int { return cmpID(e.ID, id) }); ok {
			return m.meta.Entries[i], true
		}
		return Entry{}, false
	}
	return m.meta.Entry(id)
}

func (m *member) node() *memberlist.Node {
	host, port, _ := net.SplitHostPort(m.addr)
	p, _ := strconv.Atoi(port)
	return &memberlist.Node{Name: m.name, Addr: net.ParseIP(host), Port: uint16(p)}
}

// New checks opts and returns an elector; Run starts it.
func New(opts Options) (*Elector, error) {
	if opts.Node == "" {
		return nil, errors.New("gossip: node name is empty")
	}
	if opts.Profile == "" {
		opts.Profile = ProfileFast
	}
	if _, err := profileConfig(opts.Profile); err != nil {
		return nil, err
	}
	if opts.RejoinInterval <= 0 {
		opts.RejoinInterval = time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 2 * time.Second
	}
	if opts.KeyPollInterval <= 0 {
		opts.KeyPollInterval = 10 * time.Second
	}
	if opts.Lookup == nil {
		opts.Lookup = net.DefaultResolver.LookupHost
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	e := &Elector{
		opts:     opts,
		log:      opts.Log.With("election", "gossip"),
		ids:      map[string]GroupID{},
		now:      time.Now,
		changed:  make(chan struct{}, 1),
		dirty:    make(chan struct{}, 1),
		members:  map[string]*member{},
		gone:     map[string]string{},
		leaving:  map[string]bool{},
		owned:    map[string]bool{},
		waiting:  map[string]string{},
		addrs:    map[string]string{},
		epoch:    rand.Uint32() | 1,
		tables:   map[string]*table{},
		needPull: map[string]time.Time{},
		pushTo:   map[string]bool{},
		pullCh:   make(chan struct{}, 1),
		crash:    make(chan struct{}),
		reconf:   make(chan reconfigure),
	}
	gs, err := newGroupSet(opts.Groups)
	if err != nil {
		return nil, err
	}
	e.ids, e.vipH, e.fp = gs.ids, gs.vipH, gs.fp
	names := make([]string, len(opts.Groups))
	for i, g := range opts.Groups {
		names[i] = g.Name
	}
	e.inputs = election.NewInputs(names)
	return e, nil
}

// groupSet is what the elector derives from its groups.
type groupSet struct {
	ids  map[string]GroupID
	vipH map[string]uint32
	fp   Fingerprint
}

// newGroupSet checks groups (count, unique names, unique wire ids).
func newGroupSet(groups []GroupSpec) (groupSet, error) {
	if len(groups) > MaxGroups {
		return groupSet{}, fmt.Errorf("gossip: %d groups, at most %d are supported", len(groups), MaxGroups)
	}
	gs := groupSet{ids: map[string]GroupID{}, vipH: map[string]uint32{}, fp: ConfigFingerprint(groups)}
	byID := map[GroupID]string{}
	for _, g := range groups {
		if _, dup := gs.ids[g.Name]; dup {
			return groupSet{}, fmt.Errorf("gossip: group %q listed twice", g.Name)
		}
		id := IDOf(g.Name)
		if other, dup := byID[id]; dup {
			return groupSet{}, fmt.Errorf("gossip: groups %q and %q hash to the same id; rename one", other, g.Name)
		}
		byID[id] = g.Name
		gs.ids[g.Name] = id
		gs.vipH[g.Name] = VIPHash(g.VIPs)
	}
	return gs, nil
}

// SetInput implements election.Elector. The new priority/eligibility is
// gossiped (memberlist UpdateNode) and evaluated locally at once. An input
// for a group not configured (yet) is kept: the daemon sets an added
// group's input before the reload that adds it (Mode.Reload).
func (e *Elector) SetInput(group string, in election.Input) {
	e.inputs.Set(group, in)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run implements election.Elector.
func (e *Elector) Run(ctx context.Context, report election.Reporter) error {
	running := make(chan struct{})
	e.mu.Lock()
	e.running = running
	e.mu.Unlock()
	defer func() { // registered first, so it runs after memberlist is down
		e.mu.Lock()
		e.running = nil
		e.mu.Unlock()
		close(running)
	}()
	cfg, err := e.memberlistConfig()
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		if t, ok := cfg.Transport.(*transport); ok {
			_ = t.Shutdown() // memberlist leaves a given transport to its maker
		}
		return fmt.Errorf("gossip: starting memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	// memberlist hands out pointers to Nodes it later rewrites in place
	// (racy), so our own address is read once, before any meta update.
	local := ml.LocalNode()
	self := net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	e.mu.Lock()
	e.selfAddr = self
	e.mu.Unlock()
	e.log.Info("gossip member started", "addr", self,
		"profile", e.opts.Profile, "encrypted", len(e.opts.Keys) > 0, "fingerprint", e.fp.String())

	joinedCh := make(chan struct{}, 1)
	syncedCh := make(chan struct{}, 1)
	syncing := false
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
		if err := ml.Shutdown(); err != nil {
			e.log.Warn("gossip: memberlist shutdown", "err", err)
		}
	}()
	// A meta broadcast is out within a few gossip rounds (40 ms in fast);
	// one not out after ten (or 500 ms) is sent again (metaLoop).
	metaTimeout := min(10*cfg.GossipInterval, 500*time.Millisecond)
	wg.Go(func() { e.metaLoop(bg, ml, metaTimeout) })
	wg.Go(func() { e.tableLoop(bg, ml, 2*cfg.GossipInterval, max(cfg.TCPTimeout, time.Second)) })
	if e.opts.KeySource != nil && e.keyring != nil {
		wg.Go(func() { e.keyLoop(bg) })
	}

	// Join before owning anything: a successful join is a push/pull of the
	// whole member state (with every member's meta), so the first evaluation
	// already sees who owns what. The peer we joined may itself not yet have
	// heard the latest meta updates (a group taken over a moment ago), so
	// the first evaluation waits holdoff (ten gossip rounds) after the join
	// for those to arrive: a new node never takes a group another member has
	// just claimed. A node that can join nobody (it is first, or its peers
	// are booting) elects alone after Settle; one that peers refuse (wrong
	// key) never does. The join runs in the background (it may take a TCP
	// timeout per unreachable peer) so a stop is never held up by it.
	holdoff := 10 * cfg.GossipInterval
	e.mu.Lock()
	e.ackWindow = max(20*cfg.ProbeInterval, time.Second)
	e.mu.Unlock()
	settled := len(e.opts.Peers) == 0 && e.opts.DNS == ""
	var settle <-chan time.Time
	if !settled {
		t := time.NewTimer(e.opts.Settle)
		defer t.Stop()
		settle = t.C
		e.mu.Lock()
		e.onJoin = func() { signal(joinedCh) }
		e.mu.Unlock()
		e.join(bg, &wg, ml, true)
	}
	rejoin := time.NewTicker(e.opts.RejoinInterval)
	defer rejoin.Stop()

	// A node back from isolation re-syncs before it takes a group
	// (isolation.go); resyncBound: how long it tries before it counts as
	// alone.
	resyncBound := resyncBound(cfg)
	resyncDone := make(chan bool, 1)
	resyncing := false
	var reannounceAt <-chan time.Time
	var ev evaluator
	var addedHold <-chan time.Time
	for {
		if settled {
			e.evaluate(report, &ev)
			e.mu.Lock()
			e.settled = true
			e.mu.Unlock()
			if ev.needResync && !resyncing {
				resyncing = true
				e.log.Info("gossip: back from isolation: re-joining the members before taking any group", "bound", resyncBound)
				e.resync(bg, &wg, ml, resyncDone, resyncBound, cfg.ProbeInterval, cfg.ProbeTimeout, holdoff)
			}
			ev.needResync = false
			reannounceAt = nil
			if !ev.nextReannounce.IsZero() {
				reannounceAt = time.After(ev.nextReannounce.Sub(e.now()))
			}
		}
		select {
		case <-ctx.Done():
			e.shutdown(report)
			stopBG()
			wg.Wait()
			// Owner=false for every group has been reported (VIPs gone):
			// only now tell the others, so they take over at once. A direct
			// "leaving" packet to every member first, because memberlist's
			// leave travels by gossip and its NotifyLeave does not say
			// "left" from "failed" (Node.State is stale there in v0.7.0).
			for _, n := range e.peerNodes() {
				if err := ml.SendBestEffort(n, leaveMsg(e.opts.Node)); err != nil {
					e.log.Debug("gossip: sending leave", "member", n.Name, "err", err)
				}
			}
			if err := ml.Leave(time.Second); err != nil {
				e.log.Warn("gossip: leave", "err", err)
			}
			return nil
		case <-e.crash:
			return errors.New("gossip: crashed (test)")
		case <-e.changed:
		case <-e.inputs.Changed():
			signal(e.dirty)
		case <-joinedCh:
			if !settled {
				settle = time.After(holdoff)
			}
		case <-settle:
			switch st := e.Status().(Status); {
			case !st.Joined && e.initialJoin.Load():
				// A join is still trying peers (TCP timeouts): its
				// outcome decides between electing alone and waiting.
				settle = time.After(100 * time.Millisecond)
			case st.Joined && !syncing:
				// Before the first election, one push/pull with every
				// member known now: members that joined after our join
				// (a concurrent start) and claims made during the
				// holdoff reach us by gossip, which under load can take
				// longer than the holdoff; a push/pull brings them in one
				// round trip. Electing on a view without a member that
				// another member already yields to takes a group that
				// member is about to hold (seen under -race and load).
				syncing = true
				e.syncPeers(bg, &wg, ml, syncedCh)
			case st.Joined:
			case st.Refused:
				// Peers answer but refuse us (a different key): owning
				// alone would put the same VIPs on two nodes.
				e.log.Error("gossip peers refuse this node; owning nothing until it can join", "err", st.JoinError)
			default:
				settled = true
				e.log.Warn("no gossip peer reachable; electing among the members known so far", "settle", e.opts.Settle)
			}
		case <-syncedCh:
			settled = true
		case <-rejoin.C:
			e.join(bg, &wg, ml, false)
		case req := <-e.reconf:
			if e.reconfigure(report, &ev, req.gs, req.opts, rejoin, holdoff) {
				addedHold = time.After(holdoff)
			}
			close(req.done)
		case <-addedHold:
			addedHold = nil // the hold on added groups is over: elect again
		case synced := <-resyncDone:
			resyncing = false
			e.mu.Lock()
			alive := len(e.members)
			e.mu.Unlock()
			ev.resynced(synced, alive)
			if synced {
				e.log.Info("gossip: membership re-synced after isolation", "members", ml.NumMembers())
			} else {
				e.log.Warn("gossip: no member reachable after isolation; electing alone", "bound", resyncBound)
			}
		case <-reannounceAt:
			reannounceAt = nil // a rate-limited re-announce is due
		}
	}
}

func (e *Elector) memberlistConfig() (*memberlist.Config, error) {
	cfg, err := profileConfig(e.opts.Profile)
	if err != nil {
		return nil, err
	}
	cfg.Name = e.opts.Node
	cfg.BindAddr = e.opts.BindAddr
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	cfg.BindPort = e.opts.BindPort
	cfg.AdvertiseAddr = e.opts.AdvertiseAddr
	cfg.AdvertisePort = e.opts.AdvertisePort
	if cfg.AdvertisePort == 0 {
		cfg.AdvertisePort = cfg.BindPort
	}
	if cfg.AdvertiseAddr == "" {
		if ip := net.ParseIP(cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
			cfg.AdvertiseAddr = cfg.BindAddr
		}
	}
	if len(e.opts.Keys) > 0 {
		kr, err := memberlist.NewKeyring(e.opts.Keys[1:], e.opts.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		cfg.Keyring = kr
		e.keyring = kr
		// Refuse unencrypted traffic too (these are memberlist's defaults,
		// stated because a wrong-key peer must never be let in).
		cfg.GossipVerifyIncoming, cfg.GossipVerifyOutgoing = true, true
	}
	d := &delegate{e}
	cfg.Delegate = d
	cfg.Events = d
	cfg.Conflict = d
	cfg.Ping = d
	cfg.Logger = log.New(&logWriter{log: e.log.With("component", "memberlist"), decryptFailure: e.keyError}, "", 0)
	cfg.LogOutput = nil
	if e.opts.transport != nil {
		t, err := e.opts.transport(cfg)
		if err != nil {
			return nil, err
		}
		cfg.Transport = t
		return cfg, nil
	}
	// Our transport (transport.go): memberlist's sockets with a cheaper
	// packet path. memberlist fills in a picked port for its own
	// transport only.
	t, err := newTransport(cfg.BindAddr, cfg.BindPort, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("gossip: starting memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	if cfg.BindPort == 0 {
		cfg.BindPort = t.port()
		cfg.AdvertisePort = cfg.BindPort
	}
	cfg.Transport = t
	return cfg, nil
}

// evaluator remembers the previous evaluation, to explain transitions.
type evaluator struct {
	prevOwner   map[string]string // group -> owner computed last time
	prevMembers map[string]bool
	lostQuorum  bool
	waitedOn    map[string]string
	// holdUntil: groups added by a reload are not taken before then.
	holdUntil map[string]time.Time
	// Isolation (isolation.go): isolated holds takes until a re-sync;
	// aloneOK lets the election after a re-sync that reached nobody take
	// (once); needResync asks Run to start a re-sync.
	isolated, aloneOK, needResync bool
	// Re-announcements (isolation.go): the reason each owned group was
	// taken for, the peer also claiming it, when it was last re-announced,
	// the ones waiting for the rate limit and when the first of them is due.
	ownReason      map[string]string
	claimedBy      map[string]string
	reannounced    map[string]time.Time
	reannounceDue  map[string]bool
	nextReannounce time.Time
}

// evaluate computes the owners from the current membership and reports
// every change for this node's groups.
func (e *Elector) evaluate(report election.Reporter, ev *evaluator) {
	if ev.prevOwner == nil {
		ev.prevOwner, ev.prevMembers, ev.waitedOn = map[string]string{}, map[string]bool{}, map[string]string{}
	}
	e.mu.Lock()
	peers := make([]*member, 0, len(e.members))
	for _, m := range e.members {
		peers = append(peers, m)
	}
	gone := make(map[string]string, len(e.gone))
	for k, v := range e.gone {
		gone[k] = v
	}
	e.mu.Unlock()
	slices.SortFunc(peers, func(a, b *member) int { return strings.Compare(a.name, b.name) })

	n := len(e.opts.Groups)
	self := Member{Name: e.opts.Node, Bids: make(map[GroupID]int, n), Degraded: map[GroupID]int{}, Owns: map[GroupID]bool{}}
	inputs := make(map[string]election.Input, n)
	e.mu.Lock()
	for _, g := range e.opts.Groups {
		id := e.ids[g.Name]
		in := e.inputs.Get(g.Name)
		inputs[g.Name] = in
		// The same bid as localMeta gossips.
		if p, degraded := bid(in); degraded {
			self.Degraded[id] = p
		} else if p > 0 {
			self.Bids[id] = p
		}
		if e.owned[g.Name] {
			self.Owns[id] = true
		}
	}
	e.mu.Unlock()
	self.sorted = sortBids(self.Bids)
	ms := []Member{self}
	cur := map[string]bool{e.opts.Node: true}
	pending := "" // a peer whose current group table we do not have yet
	for _, p := range peers {
		cur[p.name] = true
		if p.stale && pending == "" {
			pending = p.name
		}
		if p.metaErr == nil {
			ms = append(ms, p.mb)
		}
	}
	bidding := len(self.Bids) > 0 || len(self.Degraded) > 0
	e.checkIsolation(ev, len(peers), gone, bidding)
	quorumOK := true
	if e.opts.Quorum && e.opts.Expect > 0 {
		quorumOK = 1+len(peers) >= e.opts.Expect/2+1
	}
	e.mu.Lock()
	acked := len(peers) == 0 || e.now().Sub(e.lastProbed) <= e.ackWindow
	wasUnacked := e.unacked
	e.unacked = !acked
	e.mu.Unlock()
	if !acked && !wasUnacked {
		e.log.Warn("gossip peers do not probe this node (they do not hold it as alive yet): taking no group until they do", "window", e.ackWindow)
	}
	owners := Assign(ms)
	// bidOf is name's bid for id: its priority, and whether it is degraded.
	bidOf := func(name string, id GroupID) (int, bool) {
		for _, m := range ms {
			if m.Name == name {
				if p := m.Bids[id]; p > 0 {
					return p, false
				}
				return m.Degraded[id], m.Degraded[id] > 0
			}
		}
		return 0, false
	}
	lastOwner := make(map[string]string, len(e.opts.Groups))

	// claims: group -> the first peer (by name) claiming it; a peer claims
	// few groups, so this is cheaper than asking every peer for every group.
	claims := map[GroupID]string{}
	for _, p := range peers {
		if p.metaErr != nil {
			continue
		}
		for id, owns := range p.mb.Owns {
			if _, seen := claims[id]; owns && !seen {
				claims[id] = p.name
			}
		}
	}
	waiting := map[string]string{}
	taken := map[string]bool{} // announced by their take just now
	for _, g := range e.opts.Groups {
		id := e.ids[g.Name]
		owner := owners[id]
		want := owner == e.opts.Node && quorumOK
		claimant := claims[id]
		e.mu.Lock()
		had := e.owned[g.Name]
		e.mu.Unlock()
		if want && !had && !acked {
			// Our own view has peers, but none of them probes us: they do
			// not hold us as alive (e.g. memberlist refused our new address
			// for a name it holds as dead), so they neither see our claims
			// nor send us theirs. Take nothing until they do.
			waiting[g.Name] = "(not yet acknowledged by peers)"
			want = false
		}
		if want && !had && ev.isolated && !ev.aloneOK {
			// Our view may be the stale one of a node that was cut off
			// (isolation.go): re-join the members before taking anything.
			waiting[g.Name] = "(re-joining the members after isolation)"
			ev.needResync = true
			want = false
		}
		if until, ok := ev.holdUntil[g.Name]; ok && !e.now().Before(until) {
			delete(ev.holdUntil, g.Name)
		} else if ok && want && !had {
			// Added by a reload a moment ago: a peer that added it too
			// may have claimed it already, or bid for it, without our
			// having heard yet (a reload on every node at once). As at
			// start-up, wait a few gossip rounds before taking it.
			waiting[g.Name] = "(added by a reload; waiting for the peers' bids and claims)"
			want = false
		}
		if want && !had && claimant != "" {
			// Another live member still holds the group (it has not yet
			// seen what we see, e.g. that we joined): wait for its meta to
			// show the release, so two nodes never hold the VIPs at once.
			waiting[g.Name] = claimant
			ev.waitedOn[g.Name] = claimant
			want = false
		}
		if want && !had && pending != "" {
			// Its claims are in the table we are still fetching (it changed
			// more groups at once than its meta lists): it may hold this
			// one. Usually one TCP round trip.
			waiting[g.Name] = "(group table of " + pending + " pending)"
			want = false
		}
		lastOwner[g.Name] = owner
		if want != had {
			t := election.Transition{Group: g.Name, Owner: want, Peer: owner, At: e.now()}
			in := inputs[g.Name]
			prev := ev.prevOwner[g.Name]
			// from: the member we take the group from, if any.
			from := ev.waitedOn[g.Name]
			if from == "" && prev != e.opts.Node {
				from = prev
			}
			fromPrio, fromDegraded := bidOf(from, id)
			ownerPrio, ownerDegraded := bidOf(owner, id)
			switch {
			case want && from != "" && cur[from] && fromDegraded:
				t.Reason = "member-degraded:" + from
			case want && ev.waitedOn[g.Name] != "":
				t.Reason = "released-by:" + ev.waitedOn[g.Name]
			case want && ev.lostQuorum:
				t.Reason = "quorum-regained"
			case want && prev != "" && prev != e.opts.Node && gone[prev] != "":
				t.Reason = gone[prev]
			case want && prev != "" && prev != e.opts.Node && cur[prev] && fromPrio == 0:
				t.Reason = "member-ineligible:" + prev
			case want && prev != "" && prev != e.opts.Node && cur[prev]:
				t.Reason = "preferred-over:" + prev
			case want:
				t.Reason = "elected"
			case !quorumOK:
				t.Reason = "lost-quorum"
			case !in.Eligible:
				t.Reason = "ineligible"
				if in.Reason != "" {
					t.Reason += ": " + in.Reason
				}
			case in.Degraded && owner != "" && !ownerDegraded:
				// A healthy member wants it: a degraded owner only keeps
				// a group while no healthy member bids for it.
				t.Reason = "degraded"
				if in.Reason != "" {
					t.Reason += ": " + in.Reason
				}
			case owner != "" && ownerPrio > in.Priority:
				t.Reason = "higher-priority-member"
			case owner != "" && !ev.prevMembers[owner]:
				t.Reason = "member-joined:" + owner
			default:
				t.Reason = "rebalanced:" + owner
			}
			if want {
				t.Peer = ""
			}
			e.log.Debug("gossip transition", "group", g.Name, "owner", want, "reason", t.Reason, "peer", t.Peer)
			// A failed take is no claim: the daemon made the group
			// ineligible, so our next meta withdraws the bid too.
			err := report(t)
			e.mu.Lock()
			e.owned[g.Name] = want && err == nil
			e.mu.Unlock()
			if want && err == nil {
				if ev.ownReason == nil {
					ev.ownReason = map[string]string{}
				}
				ev.ownReason[g.Name] = t.Reason
				taken[g.Name] = true
			}
			delete(ev.waitedOn, g.Name)
			signal(e.dirty)
		}
		if _, still := waiting[g.Name]; !still {
			delete(ev.waitedOn, g.Name)
		}
		ev.prevOwner[g.Name] = owner
	}
	ev.prevMembers = cur
	ev.aloneOK = false // the verdict "alone" allowed this election's takes only
	e.mu.Lock()
	back := e.returned
	e.returned = nil
	e.mu.Unlock()
	e.reannounce(report, ev, back, claims, taken)
	if quorumOK != !ev.lostQuorum {
		if quorumOK {
			e.log.Info("gossip quorum regained", "members", 1+len(peers), "expect", e.opts.Expect)
		} else {
			e.log.Warn("gossip quorum lost: owning nothing", "members", 1+len(peers), "expect", e.opts.Expect)
		}
	}
	ev.lostQuorum = !quorumOK
	e.mu.Lock()
	e.quorumOK = quorumOK
	e.waiting = waiting
	e.lastOwner = lastOwner
	e.mu.Unlock()
}

// bid is the bid an input makes: its priority (0: none), clamped to what
// the meta carries, and whether it is a degraded (last-resort) bid.
func bid(in election.Input) (int, bool) {
	if !in.Eligible || in.Priority <= 0 {
		return 0, false
	}
	return min(in.Priority, 255), in.Degraded
}

// shutdown reports Owner=false for every owned group.
func (e *Elector) shutdown(report election.Reporter) {
	for _, g := range e.opts.Groups {
		e.mu.Lock()
		had := e.owned[g.Name]
		e.mu.Unlock()
		if had {
			_ = report(election.Transition{Group: g.Name, Owner: false, Reason: "shutdown", At: e.now()})
			e.mu.Lock()
			e.owned[g.Name] = false
			e.mu.Unlock()
		}
	}
}

// metaLoop gossips our meta whenever it changed. UpdateNode blocks until the
// broadcast went out, so it runs here and never holds up the election loop.
//
// A broadcast that is not out within the timeout is sent again (a new
// incarnation): when two members update their meta at the same moment, one
// update is sometimes not gossiped at all (seen in TestClusterDegraded: three
// members, two setting their inputs together) and would otherwise reach the
// peers only with the next push/pull, 5 s later in the fast profile; its
// UpdateNode is then the one that times out. Until this retry, a later meta
// change (a claim) usually covered it up.
func (e *Elector) metaLoop(ctx context.Context, ml *memberlist.Memberlist, timeout time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.dirty:
			if err := ml.UpdateNode(timeout); err != nil {
				e.log.Debug("gossip: meta update not out in time; sending it again", "err", err)
				signal(e.dirty)
			}
		}
	}
}

// localMeta encodes what we gossip now.
func (e *Elector) localMeta() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := Meta{Version: metaVersion, Fingerprint: e.fp}
	for _, g := range e.opts.Groups {
		p, degraded := bid(e.inputs.Get(g.Name))
		m.Entries = append(m.Entries, Entry{ID: e.ids[g.Name], VIPHash: e.vipH[g.Name], Priority: p, Degraded: degraded, Owned: e.owned[g.Name]})
	}
	if e.tableModeLocked() {
		// The entries become our table's next version; the meta names it
		// and lists what changed (table.go).
		slices.SortFunc(m.Entries, func(a, b Entry) int { return cmpID(a.ID, b.ID) })
		m.Version, m.Table = metaTableVersion, e.own.update(e.epoch, m.Entries)
		m.Entries = nil
	}
	b, err := m.Encode()
	if err != nil { // New refuses more than MaxGroups; priorities are clamped
		e.log.Error("gossip: encoding node meta", "err", err)
		return nil
	}
	return b
}
