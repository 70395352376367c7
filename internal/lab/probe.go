package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

const requestPrefix = "vipd-lab-probe "

func requestPayload(seq int) []byte { return []byte(requestPrefix + strconv.Itoa(seq)) }

func parseRequest(b []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(requestPrefix))
	if !ok {
		return 0, false
	}
	seq, err := strconv.Atoi(string(rest))
	return seq, err == nil && seq >= 0
}

// parseReply decodes "<node> <seq>".
func parseReply(b []byte) (node string, seq int, ok bool) {
	n, s, found := bytes.Cut(b, []byte(" "))
	if !found || len(n) == 0 {
		return "", 0, false
	}
	seq, err := strconv.Atoi(string(s))
	if err != nil || seq < 0 {
		return "", 0, false
	}
	return string(n), seq, true
}

// ProbeConfig configures a probe. Zero values take the defaults.
type ProbeConfig struct {
	VIP      netip.Addr
	Port     int
	Interval time.Duration // request interval, default 10 ms
	// NeighborInterval is how often ARP (v4) / NS (v6) asks who owns the VIP;
	// default 50 ms, negative disables neighbour sampling.
	NeighborInterval time.Duration
}

// Probe sends UDP requests to a VIP from the client namespace and records
// who answers. See Lab.StartProbe.
type Probe struct {
	cfg    ProbeConfig
	conn   net.PacketConn
	nconn  interface{ Close() error } // neighbour sampling socket
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	rec Record

	stopOnce sync.Once
	final    Record
}

// StartProbe starts probing vip:port from the client every interval (0 = 10 ms)
// with neighbour sampling every 50 ms. Stop it with Stop (Lab.Close also does).
func (l *Lab) StartProbe(ctx context.Context, vip netip.Addr, port int, interval time.Duration) (*Probe, error) {
	return l.StartProbeConfig(ctx, ProbeConfig{VIP: vip, Port: port, Interval: interval})
}

// StartProbeConfig is StartProbe with all knobs.
func (l *Lab) StartProbeConfig(ctx context.Context, cfg ProbeConfig) (*Probe, error) {
	if !cfg.VIP.IsValid() || cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("probe: need a VIP and a port 1..65535, got %v:%d", cfg.VIP, cfg.Port)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.NeighborInterval == 0 {
		cfg.NeighborInterval = 50 * time.Millisecond
	}
	vip := cfg.VIP.Unmap()
	network := "udp4"
	if vip.Is6() {
		network = "udp6"
	}
	macs := map[string]string{}
	for _, h := range l.hosts {
		macs[h.MAC.String()] = h.Name
	}
	p := &Probe{cfg: cfg, rec: Record{VIP: vip, Port: cfg.Port, Interval: cfg.Interval, macs: macs}}

	// Unconnected socket: replies are accepted whatever their source address,
	// and an ICMP error never sticks to the socket and fails later reads.
	err := l.Client.Do(func() error {
		var err error
		p.conn, err = net.ListenPacket(network, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	var sample func() (NeighborSample, error)
	if cfg.NeighborInterval > 0 {
		if sample, err = l.neighborSampler(p, vip, min(cfg.NeighborInterval*4/5, 40*time.Millisecond)); err != nil {
			p.conn.Close()
			return nil, fmt.Errorf("probe neighbour sampling: %w", err)
		}
	}

	l.mu.Lock()
	if l.isClosed {
		l.mu.Unlock()
		p.closeSockets()
		return nil, fmt.Errorf("lab %s closed", l.ID)
	}
	l.probes = append(l.probes, p)
	l.mu.Unlock()

	ctx, p.cancel = context.WithCancel(ctx)
	p.rec.Start = time.Now()
	dst := &net.UDPAddr{IP: vip.AsSlice(), Port: cfg.Port}
	p.wg.Go(func() { p.send(ctx, dst) })
	p.wg.Go(p.receive)
	if sample != nil {
		p.wg.Go(func() { p.sampleLoop(ctx, sample) })
	}
	return p, nil
}

func (p *Probe) send(ctx context.Context, dst net.Addr) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.mu.Lock()
		seq := len(p.rec.SentAt)
		now := time.Now()
		p.rec.SentAt = append(p.rec.SentAt, now)
		p.mu.Unlock()
		_, err := p.conn.WriteTo(requestPayload(seq), dst)
		p.mu.Lock()
		if err != nil {
			p.rec.SendErrors++
		}
		p.rec.Sent = len(p.rec.SentAt)
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Probe) receive() {
	buf := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an ICMP error: keep reading
		}
		node, seq, ok := parseReply(buf[:n])
		p.mu.Lock()
		if !ok || seq >= len(p.rec.SentAt) {
			p.rec.Bad++
		} else {
			p.rec.Replies = append(p.rec.Replies, Reply{Seq: seq, SentAt: p.rec.SentAt[seq], At: at, Node: node})
		}
		p.mu.Unlock()
	}
}

func (p *Probe) sampleLoop(ctx context.Context, sample func() (NeighborSample, error)) {
	t := time.NewTicker(p.cfg.NeighborInterval)
	defer t.Stop()
	for {
		s, err := sample()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			p.mu.Lock()
			p.rec.Neighbors = append(p.rec.Neighbors, s)
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// neighborSampler opens an ARP (v4) or NDP (v6) socket in the observer
// namespace and returns a function that asks once who owns vip and collects
// answers for window. Only answers addressed to the observer count, so
// gratuitous announcements are not mistaken for answers. (Why not from the
// client: see Lab.Observer.)
func (l *Lab) neighborSampler(p *Probe, vip netip.Addr, window time.Duration) (func() (NeighborSample, error), error) {
	c := l.Observer
	var ifi *net.Interface
	if vip.Is4() {
		var ac *arp.Client
		err := c.Do(func() error {
			var err error
			if ifi, err = net.InterfaceByName(c.Link); err != nil {
				return err
			}
			ac, err = arp.Dial(ifi)
			return err
		})
		if err != nil {
			return nil, err
		}
		p.nconn = ac
		self := c.IPv4.Addr()
		return func() (NeighborSample, error) {
			s := NeighborSample{At: time.Now()}
			if err := ac.Request(vip); err != nil {
				return s, err
			}
			_ = ac.SetReadDeadline(s.At.Add(window))
			for {
				pkt, _, err := ac.Read()
				if err != nil {
					return s, nil // deadline (or closed): sample complete
				}
				if pkt.Operation == arp.OperationReply && pkt.SenderIP == vip && pkt.TargetIP == self {
					s.MACs = addMAC(s.MACs, pkt.SenderHardwareAddr)
				}
			}
		}, nil
	}

	self := c.IPv6.Addr()
	var nc *ndpConn
	err := c.Do(func() error {
		var err error
		if ifi, err = net.InterfaceByName(c.Link); err != nil {
			return err
		}
		if nc, err = listenNDP(self, ifi.Index); err != nil {
			return err
		}
		return nc.acceptOnly(ipv6.ICMPTypeNeighborAdvertisement)
	})
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	p.nconn = nc
	snm, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		return nil, err
	}
	ns := &ndp.NeighborSolicitation{
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: c.MAC}},
	}
	buf := make([]byte, 1500)
	return func() (NeighborSample, error) {
		s := NeighborSample{At: time.Now()}
		if err := nc.send(ns, snm); err != nil {
			return s, err
		}
		_ = nc.setReadDeadline(s.At.Add(window))
		for {
			m, dst, err := nc.recv(buf)
			if err != nil {
				return s, nil // deadline (or closed): sample complete
			}
			na, ok := m.(*ndp.NeighborAdvertisement)
			if !ok || na.TargetAddress != vip || !na.Solicited || (dst.IsValid() && dst != self) {
				continue
			}
			for _, o := range na.Options {
				if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
					s.MACs = addMAC(s.MACs, lla.Addr)
				}
			}
		}
	}, nil
}

func addMAC(macs []net.HardwareAddr, m net.HardwareAddr) []net.HardwareAddr {
	for _, x := range macs {
		if bytes.Equal(x, m) {
			return macs
		}
	}
	return append(macs, append(net.HardwareAddr(nil), m...))
}

func (p *Probe) closeSockets() {
	p.conn.Close()
	if p.nconn != nil {
		p.nconn.Close()
	}
}

// Stop ends probing and returns the record. Safe to call more than once.
func (p *Probe) Stop() Record {
	p.stopOnce.Do(func() {
		p.cancel()
		// Let replies to the last requests arrive before closing.
		time.Sleep(min(5*p.cfg.Interval, 100*time.Millisecond))
		p.closeSockets()
		p.wg.Wait()
		p.final = p.Snapshot()
		p.final.End = time.Now()
	})
	return p.final
}

// Snapshot returns a copy of the record so far, without stopping.
func (p *Probe) Snapshot() Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rec
	r.SentAt = append([]time.Time(nil), r.SentAt...)
	r.Replies = append([]Reply(nil), r.Replies...)
	r.Neighbors = append([]NeighborSample(nil), r.Neighbors...)
	if r.End.IsZero() {
		r.End = time.Now()
	}
	return r
}

// Latest returns the most recent reply.
func (p *Probe) Latest() (Reply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.rec.Replies) == 0 {
		return Reply{}, false
	}
	return p.rec.Replies[len(p.rec.Replies)-1], true
}

// WaitOwner polls until the latest reply came from node, or fails after
// timeout naming who answered last.
func (p *Probe) WaitOwner(node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r, ok := p.Latest()
		if ok && r.Node == node {
			return nil
		}
		if time.Now().After(deadline) {
			if !ok {
				return fmt.Errorf("probe %s:%d: no reply at all within %s (waiting for %s)", p.cfg.VIP, p.cfg.Port, timeout, node)
			}
			return fmt.Errorf("probe %s:%d: latest reply from %s (%s ago), not %s, after %s",
				p.cfg.VIP, p.cfg.Port, r.Node, time.Since(r.At).Round(time.Millisecond), node, timeout)
		}
		time.Sleep(min(p.cfg.Interval, 10*time.Millisecond))
	}
}
