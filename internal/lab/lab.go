package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options configures a lab.
type Options struct {
	Nodes int      // number of node namespaces (default 3, at most 89)
	Extra []string // extra host names (e.g. "api"), also on the bridge; [a-z][a-z0-9]*, ≤15 chars

	// KeepSignals, if set, installs no SIGINT/SIGTERM handler; the caller must
	// Close the lab on its own signal path (e.g. `vipd demo` with a signal context).
	KeepSignals bool
}

// Lab is one running instance of the namespace network.
type Lab struct {
	ID     string // unique short id of this instance, part of every namespace name
	Switch string // netns name holding the bridge "br0"
	Client *Host
	Nodes  []*Host
	Extra  map[string]*Host
	// Observer is a silent host (198.51.100.3, 2001:db8::3) from which the
	// probe samples ARP/NDP, so answers to the samples never reach Client's
	// kernel: sampling from Client would refresh its neighbour entry for the
	// VIP and so hide a missing gratuitous ARP/NA. Also handy for tcpdump.
	Observer *Host

	hosts    []*Host // client, nodes, extras, observer (creation order)
	swNS     netns.NsHandle
	swNL     *netlink.Handle
	tmpDir   string
	spawner  *spawner
	closeErr error
	closed   sync.Once

	mu         sync.Mutex
	isClosed   bool
	procs      []*Process
	responders []*responder
	probes     []*Probe
}

// Host is one namespace attached to the lab's bridge.
type Host struct {
	Name  string           // "node1".., "client", or the extra name
	NetNS string           // namespace name (unique per lab instance)
	Link  string           // its interface inside its namespace: "eth0"
	Port  string           // the switch-side interface (in Lab.Switch), named like the host
	MAC   net.HardwareAddr // distinct, locally administered: 02:<3 id bytes>:00:<IPv4 last octet>
	IPv4  netip.Prefix     // node i: 198.51.100.(10+i)/24; client .2; extras .201, .202, ...
	IPv6  netip.Prefix     // 2001:db8::(10+i)/64 etc., added with nodad

	lab *Lab
	ns  netns.NsHandle
	nl  *netlink.Handle
}

const (
	nsPrefix     = "vl-"
	observerName = "observer"
	bridgeName   = "br0"
	hostLink     = "eth0"
	netnsDir     = "/run/netns"
)

var (
	hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)
	// vl-<6 hex id>-<pid>-<host>
	nsNameRE = regexp.MustCompile(`^vl-([0-9a-f]{6})-([0-9]+)-([a-z0-9]+)$`)
)

// TB is the part of testing.TB the lab uses; *testing.T and *testing.B
// satisfy it. Declared here so that vipd's binary, which runs the lab for
// `vipd demo`, does not link the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Require skips t with a clear message when the lab cannot run (not root, no
// `ip netns`), but fails t instead when env VIPD_REQUIRE_LAB=1 (CI).
func Require(t TB) {
	t.Helper()
	if err := available(); err != nil {
		if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
			t.Fatalf("network lab required (VIPD_REQUIRE_LAB=1) but unavailable: %v", err)
		}
		t.Skipf("network lab unavailable (%v); run as root with iproute2, set VIPD_REQUIRE_LAB=1 to make this fatal", err)
	}
}

// Unavailable skips t because something a test needs is missing (err says
// what), or fails it when VIPD_REQUIRE_LAB=1: in CI nothing may skip.
func Unavailable(t TB, err error) {
	t.Helper()
	if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
		t.Fatalf("required (VIPD_REQUIRE_LAB=1) but unavailable: %v", err)
	}
	t.Skipf("skipping: %v (set VIPD_REQUIRE_LAB=1 to make this a failure)", err)
}

// RequireTool is Unavailable unless the command name is on the PATH.
func RequireTool(t TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Unavailable(t, fmt.Errorf("%s not installed: %w", name, err))
	}
}

// SkipEnv, set to 1, makes every lab (and real control plane) test skip even
// as root: scripts/test sets it for its `go test -race` pass over the unit
// tests, next to the full pass that runs the labs.
const SkipEnv = "VIPD_SKIP_LAB"

func available() error {
	if os.Getenv(SkipEnv) == "1" {
		return errors.New(SkipEnv + "=1: unit tests only")
	}
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("`ip` (iproute2) not in PATH")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("no network namespace support: %v", err)
	}
	if err := canUnshareNet(); err != nil {
		return fmt.Errorf("cannot create a network namespace: %v", err)
	}
	return nil
}

// New builds a lab for a test (calling Require first) and registers
// t.Cleanup to tear it down, also when the test fails. On failure the output
// of processes started in the lab is logged.
func New(t TB, opts Options) *Lab {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := NewStandalone(ctx, opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.logOutputs(t)
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab %s teardown: %v", l.ID, err)
		}
	})
	return l
}

// NewStandalone builds a lab without TB; the caller must Close it.
// Unless opts.KeepSignals, SIGINT/SIGTERM close all open labs and then
// re-deliver the signal so the process dies as it would have.
func NewStandalone(ctx context.Context, opts Options) (l *Lab, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > 89 {
		return nil, fmt.Errorf("lab: Options.Nodes=%d: must be 1..89", opts.Nodes)
	}
	names := []string{"client"}
	for i := 1; i <= opts.Nodes; i++ {
		names = append(names, "node"+strconv.Itoa(i))
	}
	if len(opts.Extra) > 54 {
		return nil, fmt.Errorf("lab: %d extra hosts: at most 54", len(opts.Extra))
	}
	seen := map[string]bool{"sw": true, observerName: true} // reserved: switch namespace, observer
	for _, n := range names {
		seen[n] = true
	}
	for _, e := range opts.Extra {
		if !hostNameRE.MatchString(e) || e == bridgeName {
			return nil, fmt.Errorf("lab: Options.Extra %q: must match %s and not be %q", e, hostNameRE, bridgeName)
		}
		if seen[e] {
			return nil, fmt.Errorf("lab: Options.Extra %q: duplicate or reserved host name", e)
		}
		seen[e] = true
	}

	if err := available(); err != nil {
		return nil, fmt.Errorf("lab unavailable: %w", err)
	}
	sweepStale()

	var idb [3]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	// swNS must start as None: the zero NsHandle is fd 0, which Close would close.
	l = &Lab{ID: hex.EncodeToString(idb[:]), Extra: map[string]*Host{}, swNS: netns.None()}
	pid := os.Getpid()
	nsName := func(host string) string { return fmt.Sprintf("%s%s-%d-%s", nsPrefix, l.ID, pid, host) }
	l.Switch = nsName("sw")

	for i, n := range names {
		var v4 byte
		switch {
		case n == "client":
			v4 = 2
		default:
			v4 = byte(10 + i) // names[i] == "node<i>"
		}
		l.hosts = append(l.hosts, newHost(l, n, nsName(n), idb, v4))
	}
	for j, e := range opts.Extra {
		h := newHost(l, e, nsName(e), idb, byte(201+j))
		l.hosts = append(l.hosts, h)
		l.Extra[e] = h
	}
	l.Client = l.hosts[0]
	l.Nodes = l.hosts[1 : 1+opts.Nodes]
	l.Observer = newHost(l, observerName, nsName(observerName), idb, 3)
	l.hosts = append(l.hosts, l.Observer)

	if !opts.KeepSignals {
		register(l)
	}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	if l.tmpDir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-%s-", tmpDirPrefix, pid, l.ID)); err != nil {
		return l, err
	}
	l.spawner = newSpawner()
	if err := l.build(ctx); err != nil {
		return l, fmt.Errorf("lab %s: %w", l.ID, err)
	}
	return l, nil
}

func newHost(l *Lab, name, ns string, id [3]byte, v4 byte) *Host {
	return &Host{
		Name:  name,
		NetNS: ns,
		Link:  hostLink,
		Port:  name,
		MAC:   net.HardwareAddr{0x02, id[0], id[1], id[2], 0x00, v4},
		IPv4:  netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, v4}), 24),
		IPv6:  netip.PrefixFrom(docV6(int(v4)), 64),
		lab:   l,
		ns:    netns.None(),
	}
}

// docV6 returns 2001:db8::<n> with n's decimal digits used as hex digits
// (docV6(11) = 2001:db8::11), so v4 and v6 host parts read the same.
func docV6(n int) netip.Addr {
	return netip.MustParseAddr("2001:db8::" + strconv.Itoa(n))
}

// VIPv4 returns the conventional i-th VIP (1..99): 198.51.100.(100+i).
func (l *Lab) VIPv4(i int) netip.Addr {
	if i < 1 || i > 99 {
		panic(fmt.Sprintf("lab: VIPv4(%d): index must be 1..99", i))
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)})
}

// VIPv6 returns the conventional i-th IPv6 VIP (1..99): 2001:db8::(100+i),
// written with decimal digits (VIPv6(1) = 2001:db8::101, i.e. 0x101).
func (l *Lab) VIPv6(i int) netip.Addr {
	if i < 1 || i > 99 {
		panic(fmt.Sprintf("lab: VIPv6(%d): index must be 1..99", i))
	}
	return docV6(100 + i)
}

// Hosts returns all hosts: client, nodes, extras, observer.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Host returns the host with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// NodeByMAC returns the name of the host owning mac, or "".
func (l *Lab) NodeByMAC(mac net.HardwareAddr) string {
	for _, h := range l.hosts {
		if bytes.Equal(h.MAC, mac) {
			return h.Name
		}
	}
	return ""
}

// TempDir is a directory removed on Close (config files etc.).
func (l *Lab) TempDir() string { return l.tmpDir }

func (l *Lab) build(ctx context.Context) error {
	all := []string{l.Switch}
	for _, h := range l.hosts {
		all = append(all, h.NetNS)
	}
	var batch strings.Builder
	for _, n := range all {
		fmt.Fprintf(&batch, "netns add %s\n", n)
	}
	if err := ipBatch(ctx, batch.String()); err != nil {
		return fmt.Errorf("create namespaces: %w", err)
	}

	// Switch: the bridge only forwards frames; it has no addresses and, with
	// IPv6 disabled in its namespace, never sends RS/MLD of its own.
	var err error
	if l.swNS, err = netns.GetFromName(l.Switch); err != nil {
		return err
	}
	if l.swNL, err = netlink.NewHandleAt(l.swNS); err != nil {
		return err
	}
	if err := setSysctls(l.swNS, map[string]string{
		"net/ipv6/conf/all/disable_ipv6":     "1",
		"net/ipv6/conf/default/disable_ipv6": "1",
	}); err != nil {
		return err
	}
	// br_netfilter (if loaded by someone on this machine) would pass bridged
	// frames through the switch namespace's (empty) iptables; keep it out.
	_ = setSysctls(l.swNS, map[string]string{
		"net/bridge/bridge-nf-call-iptables":  "0",
		"net/bridge/bridge-nf-call-ip6tables": "0",
		"net/bridge/bridge-nf-call-arptables": "0",
	})
	// No STP and forward_delay 0: ports forward the moment they are up.
	// Multicast snooping off: NS to solicited-node groups is always flooded, so
	// IPv6 failover never depends on the bridge having seen an MLD report (a
	// lab artefact, not a property of vipd). Default ageing (300 s) is fine:
	// MACs never move between ports here, only IPs move between MACs.
	if out, err := exec.CommandContext(ctx, "ip", "-n", l.Switch, "link", "add", bridgeName, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0").CombinedOutput(); err != nil {
		return fmt.Errorf("create bridge: %v: %s", err, bytes.TrimSpace(out))
	}
	br, err := l.swNL.LinkByName(bridgeName)
	if err != nil {
		return err
	}
	if err := l.swNL.LinkSetUp(br); err != nil {
		return err
	}

	for _, h := range l.hosts {
		if err := h.setup(br.Attrs().Index); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	// Only now, so the addrconf work of all hosts overlaps: New returns a lab
	// whose IPv6 addresses (fixed and link-local) answer NS at once.
	for _, h := range l.hosts {
		if err := h.waitLinkReady(5 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) setup(brIndex int) error {
	var err error
	if h.ns, err = netns.GetFromName(h.NetNS); err != nil {
		return err
	}
	if h.nl, err = netlink.NewHandleAt(h.ns); err != nil {
		return err
	}
	// Before any link exists, so eth0 inherits them: no DAD (fixed addresses and
	// link-local usable at once), no router solicitations (noise).
	//
	// A new namespace copies the root namespace's IPv4 settings (conf/all and
	// conf/default, unless net.core.devconf_inherit_init_net=2), so on a host
	// with ip_forward=1 (Docker, podman, Kubernetes) every lab host forwarded:
	// a node that gave a VIP up routed the client's packets on to the new
	// owner, and TestMissingAnnouncementIsNotHidden/v4 failed with "client
	// found the new owner without any announcement". Forwarding and the ARP
	// knobs are set to the kernel's defaults here, whatever the host has.
	if err := setSysctls(h.ns, map[string]string{
		"net/ipv6/conf/all/accept_dad":               "0",
		"net/ipv6/conf/default/accept_dad":           "0",
		"net/ipv6/conf/all/accept_ra":                "0",
		"net/ipv6/conf/default/accept_ra":            "0",
		"net/ipv6/conf/default/router_solicitations": "0",
		"net/ipv4/conf/all/forwarding":               "0",
		"net/ipv4/conf/default/forwarding":           "0",
		"net/ipv6/conf/all/forwarding":               "0",
		"net/ipv6/conf/default/forwarding":           "0",
		"net/ipv4/conf/all/arp_accept":               "0",
		"net/ipv4/conf/default/arp_accept":           "0",
		"net/ipv4/conf/all/arp_ignore":               "0",
		"net/ipv4/conf/default/arp_ignore":           "0",
		"net/ipv4/conf/all/arp_announce":             "0",
		"net/ipv4/conf/default/arp_announce":         "0",
		"net/ipv4/conf/all/arp_filter":               "0",
		"net/ipv4/conf/default/arp_filter":           "0",
	}); err != nil {
		return err
	}
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetUp(lo); err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: h.Port, MasterIndex: brIndex},
		PeerName:         h.Link,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(int(h.ns)),
	}
	if err := h.lab.swNL.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s<->%s/%s: %w", h.Port, h.NetNS, h.Link, err)
	}
	port, err := h.lab.swNL.LinkByName(h.Port)
	if err != nil {
		return err
	}
	if port.Attrs().MasterIndex != brIndex {
		if err := h.lab.swNL.LinkSetMasterByIndex(port, brIndex); err != nil {
			return err
		}
	}
	if err := h.lab.swNL.LinkSetUp(port); err != nil {
		return err
	}
	eth, err := h.nl.LinkByName(h.Link)
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetUp(eth); err != nil {
		return err
	}
	return h.addFixedAddrs(eth)
}

func (h *Host) addFixedAddrs(eth netlink.Link) error {
	for _, p := range []netip.Prefix{h.IPv4, h.IPv6} {
		a := &netlink.Addr{IPNet: prefixToIPNet(p)}
		if p.Addr().Is6() {
			a.Flags = nodadFlag
		}
		if err := h.nl.AddrReplace(eth, a); err != nil {
			return fmt.Errorf("add %s to %s: %w", p, h.Link, err)
		}
	}
	return nil
}

// Close tears the lab down: probes and responders stop, processes are
// killed, namespaces deleted. Safe to call more than once and concurrently.
func (l *Lab) Close() error {
	l.closed.Do(func() {
		unregister(l)
		l.mu.Lock()
		l.isClosed = true
		probes, resps, procs := l.probes, l.responders, l.procs
		l.mu.Unlock()

		var errs []error
		for _, p := range probes {
			p.Stop()
		}
		for _, r := range resps {
			r.close()
		}
		for _, p := range procs {
			p.killGroup()
		}
		for _, p := range procs {
			if exited, _ := p.Wait(5 * time.Second); !exited {
				errs = append(errs, fmt.Errorf("process %d (%s) did not exit after SIGKILL", p.PID, p.name))
			}
		}
		if l.spawner != nil {
			l.spawner.stop()
		}
		for _, h := range l.hosts {
			if h.nl != nil {
				h.nl.Close()
			}
			if h.ns.IsOpen() {
				h.ns.Close()
			}
		}
		if l.swNL != nil {
			l.swNL.Close()
		}
		if l.swNS.IsOpen() {
			l.swNS.Close()
		}
		if err := deleteNamespaces(l.nsNames()); err != nil {
			errs = append(errs, err)
		}
		if l.tmpDir != "" {
			if err := os.RemoveAll(l.tmpDir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

func (l *Lab) nsNames() []string {
	names := []string{}
	for _, h := range l.hosts {
		names = append(names, h.NetNS)
	}
	return append(names, l.Switch)
}

// deleteNamespaces deletes those of names that exist (one `ip -batch`).
func deleteNamespaces(names []string) error {
	var batch strings.Builder
	var left []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
			fmt.Fprintf(&batch, "netns del %s\n", n)
			left = append(left, n)
		}
	}
	if len(left) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ipBatch(ctx, batch.String()); err != nil {
		return fmt.Errorf("delete namespaces %v: %w", left, err)
	}
	return nil
}

// ipBatch runs `ip -batch -`; -force keeps going after an error so a
// teardown removes as much as it can.
func ipBatch(ctx context.Context, cmds string) error {
	cmd := exec.CommandContext(ctx, "ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// sweepStale deletes lab namespaces whose creator process is gone (a test
// binary killed by a timeout never runs its cleanups). Namespaces of live
// processes (other engineers' parallel labs) are never touched.
func sweepStale() {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	var stale []string
	for _, e := range ents {
		m := nsNameRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || pidAlive(pid) {
			continue
		}
		stale = append(stale, e.Name())
	}
	if len(stale) > 0 {
		_ = deleteNamespaces(stale)
	}
	sweepStaleDirs()
}

// Namespaces lists the namespace names of this lab that currently exist
// (for tests asserting teardown).
func (l *Lab) Namespaces() []string {
	var out []string
	for _, n := range l.nsNames() {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Topology describes the lab in a few lines (for `vipd demo` and logs).
func (l *Lab) Topology() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s: bridge %s in netns %s\n", l.ID, bridgeName, l.Switch)
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "  %-9s netns %-28s %s %-18s %-20s %s\n", h.Name, h.NetNS, h.Link, h.IPv4, h.IPv6, h.MAC)
	}
	fmt.Fprintf(&b, "  VIPs by convention: %s.., %s..\n", l.VIPv4(1), l.VIPv6(1))
	return b.String()
}
