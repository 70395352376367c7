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
	// Lookup resolves names (DNS, peers); default net.DefaultResolver.
	Lookup func(ctx context.Context, host string) ([]string, error)
	Log    *slog.Logger
}

// Elector implements election.Elector over memberlist.
type Elector struct {
	opts   Options
	log    *slog.Logger
	inputs *election.Inputs
	ids    map[string]GroupID
	prio   map[string]int
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
	conflicts    []string
	settled      bool   // elections are running (joined and held off, or alone)
	refused      bool   // last join: peers reachable but refused us
	onJoin       func() // called once after the first successful join
	selfAddr     string // host:port we advertise
	keyring      *memberlist.Keyring
	rejoinBusy   atomic.Bool
	initialJoin  atomic.Bool // the first join is still trying peers

	// crash, closed by tests, makes Run stop like a killed process: no
	// Owner=false reports, no leave.
	crash chan struct{}
}

type member struct {
	name    string
	addr    string // host:port
	meta    Meta
	metaErr error
}

// New checks opts and returns an elector; Run starts it.
func New(opts Options) (*Elector, error) {
	if opts.Node == "" {
		return nil, errors.New("gossip: node name is empty")
	}
	if len(opts.Groups) > MaxGroups {
		return nil, fmt.Errorf("gossip: %d groups, at most %d fit in node meta", len(opts.Groups), MaxGroups)
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
		opts:    opts,
		log:     opts.Log.With("election", "gossip"),
		ids:     map[string]GroupID{},
		prio:    map[string]int{},
		vipH:    map[string]uint32{},
		fp:      ConfigFingerprint(opts.Groups),
		now:     time.Now,
		changed: make(chan struct{}, 1),
		dirty:   make(chan struct{}, 1),
		members: map[string]*member{},
		gone:    map[string]string{},
		leaving: map[string]bool{},
		owned:   map[string]bool{},
		waiting: map[string]string{},
		crash:   make(chan struct{}),
	}
	names := make([]string, len(opts.Groups))
	byID := map[GroupID]string{}
	for i, g := range opts.Groups {
		id := IDOf(g.Name)
		if other, dup := byID[id]; dup {
			return nil, fmt.Errorf("gossip: groups %q and %q hash to the same id; rename one", other, g.Name)
		}
		byID[id] = g.Name
		names[i] = g.Name
		e.ids[g.Name] = id
		e.vipH[g.Name] = VIPHash(g.VIPs)
		p := g.Priority
		if p == 0 {
			p = 100
		}
		e.prio[g.Name] = p
	}
	e.inputs = election.NewInputs(names, election.Input{Eligible: true})
	for _, g := range opts.Groups {
		e.inputs.Set(g.Name, election.Input{Eligible: true, Priority: e.prio[g.Name]})
	}
	return e, nil
}

// SetInput implements election.Elector. The new priority/eligibility is
// gossiped (memberlist UpdateNode) and evaluated locally at once.
func (e *Elector) SetInput(group string, in election.Input) {
	if _, ok := e.ids[group]; !ok {
		return
	}
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
	cfg, err := e.memberlistConfig()
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
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
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
		if err := ml.Shutdown(); err != nil {
			e.log.Warn("gossip: memberlist shutdown", "err", err)
		}
	}()
	wg.Go(func() { e.metaLoop(bg, ml) })
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

	var ev evaluator
	for {
		if settled {
			e.evaluate(report, &ev)
			e.mu.Lock()
			e.settled = true
			e.mu.Unlock()
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
			case st.Joined:
				settled = true
			case st.Refused:
				// Peers answer but refuse us (a different key): owning
				// alone would put the same VIPs on two nodes.
				e.log.Error("gossip peers refuse this node; owning nothing until it can join", "err", st.JoinError)
			default:
				settled = true
				e.log.Warn("no gossip peer reachable; electing among the members known so far", "settle", e.opts.Settle)
			}
		case <-rejoin.C:
			e.join(bg, &wg, ml, false)
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
	return cfg, nil
}

// evaluator remembers the previous evaluation, to explain transitions.
type evaluator struct {
	prevOwner   map[string]string // group -> owner computed last time
	prevMembers map[string]bool
	lostQuorum  bool
	waitedOn    map[string]string
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

	self := Member{Name: e.opts.Node, Bids: map[GroupID]int{}}
	inputs := map[string]election.Input{}
	for name, id := range e.ids {
		in := e.inputs.Get(name)
		inputs[name] = in
		if in.Eligible && in.Priority > 0 {
			self.Bids[id] = in.Priority
		}
	}
	ms := []Member{self}
	cur := map[string]bool{e.opts.Node: true}
	for _, p := range peers {
		cur[p.name] = true
		if p.metaErr == nil {
			ms = append(ms, Member{Name: p.name, Bids: p.meta.Bids()})
		}
	}
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
	bidOf := func(name string, id GroupID) int {
		for _, m := range ms {
			if m.Name == name {
				return m.Bids[id]
			}
		}
		return 0
	}

	waiting := map[string]string{}
	for _, g := range e.opts.Groups {
		id := e.ids[g.Name]
		owner := owners[id]
		want := owner == e.opts.Node && quorumOK
		var claimant string
		for _, p := range peers {
			if en, ok := p.meta.Entry(id); ok && en.Owned && p.metaErr == nil {
				claimant = p.name
				break
			}
		}
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
		if want && !had && claimant != "" {
			// Another live member still holds the group (it has not yet
			// seen what we see, e.g. that we joined): wait for its meta to
			// show the release, so two nodes never hold the VIPs at once.
			waiting[g.Name] = claimant
			ev.waitedOn[g.Name] = claimant
			want = false
		}
		if want != had {
			t := election.Transition{Group: g.Name, Owner: want, Peer: owner, At: e.now()}
			in := inputs[g.Name]
			prev := ev.prevOwner[g.Name]
			switch {
			case want && ev.waitedOn[g.Name] != "":
				t.Reason = "released-by:" + ev.waitedOn[g.Name]
			case want && ev.lostQuorum:
				t.Reason = "quorum-regained"
			case want && prev != "" && prev != e.opts.Node && gone[prev] != "":
				t.Reason = gone[prev]
			case want && prev != "" && prev != e.opts.Node && cur[prev] && bidOf(prev, id) == 0:
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
			case owner != "" && bidOf(owner, id) > in.Priority:
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
			report(t)
			e.mu.Lock()
			e.owned[g.Name] = want
			e.mu.Unlock()
			delete(ev.waitedOn, g.Name)
			signal(e.dirty)
		}
		if _, still := waiting[g.Name]; !still {
			delete(ev.waitedOn, g.Name)
		}
		ev.prevOwner[g.Name] = owner
	}
	ev.prevMembers = cur
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
	e.mu.Unlock()
}

// shutdown reports Owner=false for every owned group.
func (e *Elector) shutdown(report election.Reporter) {
	for _, g := range e.opts.Groups {
		e.mu.Lock()
		had := e.owned[g.Name]
		e.mu.Unlock()
		if had {
			report(election.Transition{Group: g.Name, Owner: false, Reason: "shutdown", At: e.now()})
			e.mu.Lock()
			e.owned[g.Name] = false
			e.mu.Unlock()
		}
	}
}

// metaLoop gossips our meta whenever it changed. UpdateNode blocks until the
// broadcast went out, so it runs here and never holds up the election loop.
func (e *Elector) metaLoop(ctx context.Context, ml *memberlist.Memberlist) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.dirty:
			if err := ml.UpdateNode(500 * time.Millisecond); err != nil {
				e.log.Debug("gossip: meta update", "err", err)
			}
		}
	}
}

// localMeta encodes what we gossip now.
func (e *Elector) localMeta() []byte {
	m := Meta{Version: metaVersion, Fingerprint: e.fp}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.opts.Groups {
		in := e.inputs.Get(g.Name)
		p := 0
		if in.Eligible {
			p = min(max(in.Priority, 0), 255)
		}
		m.Entries = append(m.Entries, Entry{ID: e.ids[g.Name], VIPHash: e.vipH[g.Name], Priority: p, Owned: e.owned[g.Name]})
	}
	b, err := m.Encode()
	if err != nil { // New refuses more than MaxGroups; priorities are clamped
		e.log.Error("gossip: encoding node meta", "err", err)
		return nil
	}
	return b
}

// resolvePeers returns the join addresses (host:port) of configured peers
// and the DNS name, without this node's own address.
func (e *Elector) resolvePeers(ctx context.Context) []string {
	port := e.opts.BindPort
	if port == 0 {
		port = DefaultPort
	}
	e.mu.Lock()
	self := e.selfAddr
	e.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	add := func(host, p string) {
		addr := net.JoinHostPort(host, p)
		if addr != self && !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resolve := func(host, p string) {
		if net.ParseIP(host) != nil {
			add(host, p)
			return
		}
		ips, err := e.opts.Lookup(lctx, host)
		if err != nil {
			e.log.Debug("gossip: resolving peer", "name", host, "err", err)
			return
		}
		slices.Sort(ips)
		for _, ip := range ips {
			add(ip, p)
		}
	}
	for _, p := range e.opts.Peers {
		host, ps, err := net.SplitHostPort(p)
		if err != nil {
			host, ps = p, strconv.Itoa(port)
		}
		resolve(host, ps)
	}
	if e.opts.DNS != "" {
		resolve(e.opts.DNS, strconv.Itoa(port))
	}
	return out
}

// join joins peers in the background. initial: every resolved peer, and
// report failure. Otherwise (every RejoinInterval) only configured peers
// that are not alive members: after a partition both sides have declared
// the other dead and memberlist stops talking to dead members after
// GossipToTheDeadTime, so only a join heals it. While fewer than Expect
// members are alive, everyone is joined again.
func (e *Elector) join(ctx context.Context, wg *sync.WaitGroup, ml *memberlist.Memberlist, initial bool) {
	if !e.rejoinBusy.CompareAndSwap(false, true) {
		return
	}
	if initial {
		e.initialJoin.Store(true)
	}
	wg.Go(func() {
		defer e.rejoinBusy.Store(false)
		if initial {
			defer e.initialJoin.Store(false)
		}
		peers := e.resolvePeers(ctx)
		if ctx.Err() != nil {
			return
		}
		alive := map[string]bool{}
		for _, n := range e.peerNodes() {
			alive[n.Address()] = true
		}
		var todo []string
		e.mu.Lock()
		unacked := e.unacked
		e.mu.Unlock()
		// Unacknowledged: our alive state has not been accepted (say, a new
		// address within the dead-node reclaim time); a join pushes it again.
		below := unacked || e.opts.Expect > 0 && 1+len(alive) < e.opts.Expect
		for _, p := range peers {
			if initial || below || !alive[p] {
				todo = append(todo, p)
			}
		}
		if len(todo) == 0 {
			if initial {
				e.joinFailed(errors.New("no peer address resolved"))
			}
			return
		}
		n, err := ml.Join(todo)
		if n > 0 {
			if !e.isJoined() {
				// The peer we joined passed on what it knew of the
				// others, which may lag (a group claimed a moment ago).
				// Each member's own state about itself is current, so
				// push/pull once with every member before the first
				// election.
				var rest []string
				for _, p := range e.peerNodes() {
					if a := p.Address(); !slices.Contains(todo, a) {
						rest = append(rest, a)
					}
				}
				if len(rest) > 0 {
					_, _ = ml.Join(rest)
				}
				e.log.Info("joined gossip cluster", "contacted", n+len(rest), "members", ml.NumMembers())
			}
			e.setJoined(true, "")
			return
		}
		if initial || len(alive) == 0 {
			e.joinFailed(err)
		}
	})
}

// peerNodes lists alive peers from our own copies (see Run on why not
// memberlist's Members()).
func (e *Elector) peerNodes() []*memberlist.Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*memberlist.Node, 0, len(e.members))
	for _, m := range e.members {
		host, port, _ := net.SplitHostPort(m.addr)
		p, _ := strconv.Atoi(port)
		out = append(out, &memberlist.Node{Name: m.name, Addr: net.ParseIP(host), Port: uint16(p)})
	}
	return out
}

func (e *Elector) setJoined(ok bool, msg string) {
	e.mu.Lock()
	e.joined = ok
	e.joinErr = msg
	e.refused = false
	f := e.onJoin
	e.onJoin = nil
	e.mu.Unlock()
	if f != nil {
		f()
	}
}

func (e *Elector) isJoined() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.joined
}

func (e *Elector) joinFailed(err error) {
	msg := "no peer reachable"
	if err != nil {
		msg = strings.Join(strings.Fields(err.Error()), " ")
	}
	refused := joinRefused(msg)
	e.mu.Lock()
	changed := e.joinErr != msg
	e.joinErr = msg
	e.refused = refused
	e.mu.Unlock()
	switch {
	case !changed:
	case refused:
		e.log.Error("gossip: peers are reachable but refuse this node: a different gossip key (gossip.keyFile) on one side, or encryption on only one side", "err", msg)
	default:
		e.log.Warn("gossip: could not join any peer", "err", msg)
	}
}

// joinRefused tells "a peer answered and refused us" (wrong key, one side
// unencrypted, not a memberlist) from "nobody answered" (peers down, first
// node up): only the latter lets a node elect itself alone.
func joinRefused(msg string) bool {
	if msg == "" || msg == "no peer reachable" {
		return false
	}
	for _, s := range []string{"connection refused", "i/o timeout", "no route to host", "network is unreachable", "host is down", "no such host", "deadline exceeded"} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	return true
}

// keyError counts a memberlist message about undecryptable traffic. A
// wrong-key peer retries every rejoin interval, so the error is logged at most
// once a minute, with the count; memberlist's own line goes to debug.
func (e *Elector) keyError(line string) {
	e.mu.Lock()
	e.keyErrors++
	n := e.keyErrors
	e.lastKeyErr = line
	now := e.now()
	logIt := now.Sub(e.keyErrLogged) >= time.Minute
	if logIt {
		e.keyErrLogged = now
	}
	e.mu.Unlock()
	if logIt {
		e.log.Error("gossip: received traffic this node cannot decrypt or that is unencrypted: a peer uses a different gossip key (gossip.keyFile)",
			"detail", line, "count", n)
	}
}

// keyLoop replaces the keyring when the key source changes: add new keys,
// switch the primary, then drop keys no longer listed.
func (e *Elector) keyLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.KeyPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := e.opts.KeySource()
		if err != nil {
			e.log.Warn("gossip: reading keys; keeping the current keyring", "err", err)
			continue
		}
		if err := e.applyKeys(keys); err != nil {
			e.log.Warn("gossip: updating keyring", "err", err)
		}
	}
}

func (e *Elector) applyKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("no keys: keeping the current keyring (disabling encryption needs a restart)")
	}
	kr := e.keyring
	have := kr.GetKeys()
	same := len(have) == len(keys) && string(kr.GetPrimaryKey()) == string(keys[0])
	for _, k := range keys {
		if !slices.ContainsFunc(have, func(h []byte) bool { return string(h) == string(k) }) {
			same = false
		}
	}
	if same {
		return nil
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	for _, h := range kr.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return string(h) == string(k) }) {
			if err := kr.RemoveKey(h); err != nil {
				return err
			}
		}
	}
	e.log.Info("gossip keyring updated", "keys", len(keys))
	return nil
}

// Status is the gossip part of /status.
type Status struct {
	Profile     string `json:"profile"`
	Encrypted   bool   `json:"encrypted"`
	Fingerprint string `json:"fingerprint"`
	Joined      bool   `json:"joined"`
	// Settled: this node takes part in elections (false while it waits to
	// join, or for the first gossip rounds after joining).
	Settled bool `json:"settled"`
	// Unacknowledged: peers do not probe this node (they do not hold it as
	// alive), so it takes no group.
	Unacknowledged bool   `json:"unacknowledged,omitempty"`
	JoinError      string `json:"joinError,omitempty"`
	// Refused: peers answered but refused this node (see JoinError); it
	// owns nothing until it can join.
	Refused bool     `json:"refused,omitempty"`
	Members []string `json:"members"`
	Expect  int      `json:"expect,omitempty"`
	Quorum  *bool    `json:"quorum,omitempty"`
	// KeyErrors counts packets/streams from peers this node could not
	// decrypt (or unencrypted ones): a peer with a different key.
	KeyErrors    int64  `json:"keyErrors,omitempty"`
	LastKeyError string `json:"lastKeyError,omitempty"`
	// BadMessages counts gossip user messages that were not understood
	// (dropped).
	BadMessages int64             `json:"badMessages,omitempty"`
	Mismatches  []Mismatch        `json:"mismatches,omitempty"`
	Waiting     map[string]string `json:"waitingForRelease,omitempty"`
	Conflicts   []string          `json:"nameConflicts,omitempty"`
}

// Mismatch is a peer whose configuration differs from ours.
type Mismatch struct {
	Member string `json:"member"`
	// Fingerprint is the peer's config fingerprint.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Groups whose VIP set differs (same name, other VIPs).
	Groups []string `json:"groups,omitempty"`
	// Error: the peer's meta could not be read (it cannot own anything).
	Error string `json:"error,omitempty"`
}

// Status returns a snapshot for /status.
func (e *Elector) Status() any {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{
		Profile: e.opts.Profile, Encrypted: len(e.opts.Keys) > 0, Fingerprint: e.fp.String(),
		Joined: e.joined, Settled: e.settled, Unacknowledged: e.unacked, JoinError: e.joinErr, Refused: e.refused, Members: []string{e.opts.Node}, Expect: e.opts.Expect,
		KeyErrors: e.keyErrors, LastKeyError: e.lastKeyErr, BadMessages: e.badMsgs, Conflicts: slices.Clone(e.conflicts),
	}
	if e.opts.Quorum {
		q := e.quorumOK
		st.Quorum = &q
	}
	if len(e.waiting) > 0 {
		st.Waiting = map[string]string{}
		for k, v := range e.waiting {
			st.Waiting[k] = v
		}
	}
	for _, m := range e.members {
		st.Members = append(st.Members, m.name)
		if mm, ok := e.mismatchLocked(m); ok {
			st.Mismatches = append(st.Mismatches, mm)
		}
	}
	slices.Sort(st.Members)
	slices.SortFunc(st.Mismatches, func(a, b Mismatch) int { return strings.Compare(a.Member, b.Member) })
	return st
}

func (e *Elector) mismatchLocked(m *member) (Mismatch, bool) {
	if m.metaErr != nil {
		return Mismatch{Member: m.name, Error: m.metaErr.Error()}, true
	}
	if m.meta.Fingerprint == e.fp {
		return Mismatch{}, false
	}
	mm := Mismatch{Member: m.name, Fingerprint: m.meta.Fingerprint.String()}
	for _, g := range e.opts.Groups {
		if en, ok := m.meta.Entry(e.ids[g.Name]); ok && en.VIPHash != e.vipH[g.Name] {
			mm.Groups = append(mm.Groups, g.Name)
		}
	}
	return mm, true
}

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

// NotifyMsg receives "leaving" packets (the only user message).
func (d *delegate) NotifyMsg(b []byte) {
	name, ok := parseLeaveMsg(b)
	e := d.e
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
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

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
	old := e.members[n.Name]
	e.members[n.Name] = m
	delete(e.gone, n.Name)
	mm, bad := e.mismatchLocked(m)
	var oldMM Mismatch
	oldBad := false
	if old != nil {
		oldMM, oldBad = e.mismatchLocked(old)
	}
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
				"member", n.Name, "fingerprint", mm.Fingerprint, "ours", e.fp.String(), "groups_differing", mm.Groups)
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
