package vrrplab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/vrrp"
)

// Sender sends hand-made VRRP adverts from a lab host (a client playing a
// rogue router, or a flooder). IPv4 uses IPPROTO_RAW, so any source address
// can be written; IPv6 sends from one of the host's own addresses.
type Sender struct {
	h      *lab.Host
	family int
	fd     int
	ifi    int
}

// NewSender opens a raw socket in h's namespace, bound to its interface;
// for IPv6 it sends from src6 (an address of h, link-local or global).
func NewSender(h *lab.Host, family int, src6 netip.Addr) (*Sender, error) {
	s := &Sender{h: h, family: family, fd: -1}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		s.ifi = ifi.Index
		if family == 4 {
			s.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		} else {
			s.fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.IPProtocol)
		}
		if err != nil {
			return err
		}
		if err := unix.SetsockoptString(s.fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, h.Link); err != nil {
			return err
		}
		if family == 4 {
			return unix.SetsockoptInt(s.fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
		}
		// The kernel computes the checksum at this offset, over the
		// pseudo-header with the real source: what vrrp.Encode does too.
		for _, o := range [][2]int{{unix.IPV6_MULTICAST_HOPS, vrrp.TTL}, {unix.IPV6_UNICAST_HOPS, vrrp.TTL}, {unix.IPV6_MULTICAST_LOOP, 0}} {
			if err := unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, o[0], o[1]); err != nil {
				return err
			}
		}
		sa := &unix.SockaddrInet6{Addr: src6.As16()}
		if src6.IsLinkLocalUnicast() {
			sa.ZoneId = uint32(s.ifi)
		}
		return unix.Bind(s.fd, sa)
	})
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return nil, fmt.Errorf("VRRP sender on %s: %w", h.Name, err)
	}
	return s, nil
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

// Packet encodes a with src and dst (IPv4: with the IP header).
func (s *Sender) Packet(a vrrp.Advert, src, dst netip.Addr) ([]byte, error) {
	b, err := vrrp.Encode(a, src, dst)
	if err != nil || s.family == 6 {
		return b, err
	}
	h := ipv4.Header{Version: 4, Len: ipv4.HeaderLen, TOS: 0xc0, TotalLen: ipv4.HeaderLen + len(b),
		TTL: vrrp.TTL, Protocol: vrrp.IPProtocol, Src: src.AsSlice(), Dst: dst.AsSlice()}
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	// Marshal leaves the header checksum to the kernel, which fills it in
	// for IPPROTO_RAW; total length in network order as Linux wants it.
	return append(hb, b...), nil
}

// SendPacket sends a packet made by Packet to dst.
func (s *Sender) SendPacket(pkt []byte, dst netip.Addr) error {
	if s.family == 4 {
		return unix.Sendto(s.fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	}
	sa := &unix.SockaddrInet6{Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		sa.ZoneId = uint32(s.ifi)
	}
	return unix.Sendto(s.fd, pkt, 0, sa)
}

// Send sends one advert a from src to dst.
func (s *Sender) Send(a vrrp.Advert, src, dst netip.Addr) error {
	pkt, err := s.Packet(a, src, dst)
	if err != nil {
		return err
	}
	return s.SendPacket(pkt, dst)
}

// Flood sends a from src to dst at rate packets per second for d (or until
// ctx ends), paced against the clock so a late wake-up catches up; it is
// bounded: at most rate × d packets. It returns how many were sent.
func (s *Sender) Flood(ctx context.Context, a vrrp.Advert, src, dst netip.Addr, rate int, d time.Duration) (int, error) {
	pkt, err := s.Packet(a, src, dst)
	if err != nil {
		return 0, err
	}
	total := int(int64(rate) * int64(d) / int64(time.Second))
	start := time.Now()
	sent := 0
	for sent < total && ctx.Err() == nil {
		due := min(total, int(int64(rate)*int64(time.Since(start))/int64(time.Second)))
		for ; sent < due; sent++ {
			if err := s.SendPacket(pkt, dst); err != nil && err != unix.ENOBUFS && err != unix.EAGAIN {
				return sent, err
			}
		}
		time.Sleep(time.Millisecond)
	}
	return sent, ctx.Err()
}

// Advert is one advert seen by a Watcher.
type Advert struct {
	At       time.Time
	Src      netip.Addr
	Priority uint8
}

// Watcher records every VRRP packet (of one family) a lab host receives,
// with a receive buffer large enough for a flood.
type Watcher struct {
	pc   net.PacketConn
	mu   sync.Mutex
	seen []Advert
	done chan struct{}
}

// Watch starts a Watcher in h; it runs until Stop.
func Watch(h *lab.Host, family int) (*Watcher, error) {
	w := &Watcher{done: make(chan struct{})}
	err := h.Do(func() error {
		var err error
		if family == 4 {
			w.pc, err = net.ListenPacket("ip4:112", "0.0.0.0")
		} else {
			w.pc, err = net.ListenPacket("ip6:112", "::")
		}
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		grp := &net.IPAddr{IP: vrrp.GroupV4.AsSlice()}
		if family == 6 {
			grp = &net.IPAddr{IP: vrrp.GroupV6.AsSlice()}
		}
		if family == 4 {
			err = ipv4.NewPacketConn(w.pc).JoinGroup(ifi, grp)
		} else {
			err = joinV6(w.pc, ifi, grp)
		}
		if err != nil {
			return err
		}
		if uc, ok := w.pc.(*net.IPConn); ok {
			_ = uc.SetReadBuffer(8 << 20)
		}
		return nil
	})
	if err != nil {
		if w.pc != nil {
			w.pc.Close()
		}
		return nil, fmt.Errorf("VRRP watcher on %s: %w", h.Name, err)
	}
	go func() {
		defer close(w.done)
		buf := make([]byte, 1500)
		for {
			n, from, err := w.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			at := time.Now()
			ia, ok := from.(*net.IPAddr)
			if !ok || n < 4 {
				continue
			}
			src, _ := netip.AddrFromSlice(ia.IP)
			w.mu.Lock()
			w.seen = append(w.seen, Advert{At: at, Src: src.Unmap(), Priority: buf[2]})
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// Stop ends the watcher and returns what it saw.
func (w *Watcher) Stop() []Advert {
	w.pc.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// Seen returns what the watcher saw so far.
func (w *Watcher) Seen() []Advert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Advert(nil), w.seen...)
}

// FloodStats summarises adverts seen during a flood window.
type FloodStats struct {
	// MasterAdverts and MaxGap: adverts from the master and the longest
	// silence between two of them (from the window's start to its end).
	MasterAdverts int
	MaxGap        time.Duration
	// Takeovers counts episodes in which another router (not the master,
	// not the flooder) advertised with a priority above 0: a backup that
	// became master. Episodes more than a second apart count separately.
	Takeovers int
	// Takers lists the routers that did.
	Takers []string
}

// Summarise computes FloodStats for the window [from, to].
func Summarise(seen []Advert, master, flooder netip.Addr, from, to time.Time) FloodStats {
	var st FloodStats
	last := from
	var lastOther time.Time
	takers := map[string]bool{}
	for _, a := range seen {
		if a.At.Before(from) || a.At.After(to) {
			continue
		}
		switch {
		case a.Src == master:
			st.MasterAdverts++
			st.MaxGap = max(st.MaxGap, a.At.Sub(last))
			last = a.At
		case a.Src != flooder && a.Priority > 0:
			if lastOther.IsZero() || a.At.Sub(lastOther) > time.Second {
				st.Takeovers++
			}
			lastOther = a.At
			takers[a.Src.String()] = true
		}
	}
	st.MaxGap = max(st.MaxGap, to.Sub(last))
	for t := range takers {
		st.Takers = append(st.Takers, t)
	}
	sort.Strings(st.Takers)
	return st
}

func joinV6(pc net.PacketConn, ifi *net.Interface, grp *net.IPAddr) error {
	return ipv6.NewPacketConn(pc).JoinGroup(ifi, grp)
}

// RawDrops sums the kernel's receive drops (receive buffer full) of every
// raw protocol-112 socket in the network namespace of process pid.
func RawDrops(pid int) (uint64, error) {
	m, err := RawDropsBySocket(pid)
	var n uint64
	for _, d := range m {
		n += d
	}
	return n, err
}

// RawDropsBySocket reads the receive drops of each raw protocol-112 socket
// (by inode) in the network namespace of process pid from /proc/PID/net/raw
// and raw6: the same figure for vipd and keepalived. keepalived sends on a
// socket of its own that it never reads, which drops every datagram once
// its buffer is full; the socket it reads is the one that drops least.
func RawDropsBySocket(pid int) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, f := range []string{"raw", "raw6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return m, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 13 || !strings.HasSuffix(fs[1], ":0070") {
				continue
			}
			d, err := strconv.ParseUint(fs[len(fs)-1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("%s: %q: %w", f, line, err)
			}
			m[f+":"+fs[9]] = d // inode
		}
	}
	return m, nil
}

// LeastDrops is the smallest increase of a socket's drops from before to
// after (sockets present in both).
func LeastDrops(before, after map[string]uint64) uint64 {
	least, any := uint64(0), false
	for k, a := range after {
		b, ok := before[k]
		if !ok {
			continue
		}
		if d := a - b; !any || d < least {
			least, any = d, true
		}
	}
	return least
}

// CPUTime is the CPU time all threads of process pid have run, from the
// scheduler's exact accounting (/proc/PID/task/*/schedstat, nanoseconds).
// The tick-sampled utime+stime of /proc/PID/stat overstates a process that
// wakes often (it is more likely on the CPU when a tick samples): under a
// flood it showed twice what perf stat's cpu-clock measured.
func CPUTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("schedstat of %d/%s: %q", pid, t.Name(), b)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}
