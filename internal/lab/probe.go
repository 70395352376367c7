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
	cfg   ProbeConfig
	conn  net.PacketConn
	nconn interface{ Close() error } // neighbour sampling socket

	pending []neighEvent // answers not yet assigned to a sample (under mu)
	cancel  context.CancelFunc
	wg      sync.WaitGroup

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
		if p.conn, err = net.ListenPacket(network, ""); err != nil {
			return err
		}
		if err := enableRxTimestamps(p.conn.(*net.UDPConn)); err != nil {
			p.conn.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	var nw *neighWatcher
	if cfg.NeighborInterval > 0 {
		if nw, err = l.newNeighWatcher(vip); err != nil {
			p.conn.Close()
			return nil, fmt.Errorf("probe neighbour sampling: %w", err)
		}
		p.nconn = nw
	}

	// Everything is set up and running before the probe becomes visible to
	// Lab.Close, which may Stop it at any moment after that.
	ctx, p.cancel = context.WithCancel(ctx)
	p.rec.Start = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		p.cancel()
		p.closeSockets()
		return nil, fmt.Errorf("lab %s closed", l.ID)
	}
	dst := &net.UDPAddr{IP: vip.AsSlice(), Port: cfg.Port}
	p.wg.Go(func() { p.send(ctx, dst) })
	p.wg.Go(p.receive)
	if nw != nil {
		p.wg.Go(func() { p.watchNeighbors(nw) })
		p.wg.Go(func() { p.sampleLoop(ctx, nw, min(cfg.NeighborInterval*4/5, 40*time.Millisecond)) })
	}
	l.probes = append(l.probes, p)
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
	oob := make([]byte, 128)
	uc := p.conn.(*net.UDPConn)
	for {
		n, oobn, _, _, err := uc.ReadMsgUDP(buf, oob)
		at := rxTime(oob[:oobn])
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
	r.Announcements = append([]Announcement(nil), r.Announcements...)
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

// LatestN returns the last n replies (fewer if there are fewer), oldest
// first: cheaper than Snapshot for a check polled many times a second.
func (p *Probe) LatestN(n int) []Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.rec.Replies[max(0, len(p.rec.Replies)-n):]
	return append([]Reply(nil), rs...)
}

// WaitReply waits for the first reply from anyone.
func (p *Probe) WaitReply(timeout time.Duration) (Reply, error) {
	deadline := time.Now().Add(timeout)
	for {
		if r, ok := p.Latest(); ok {
			return r, nil
		}
		if time.Now().After(deadline) {
			return Reply{}, fmt.Errorf("probe %s:%d: no reply within %s", p.cfg.VIP, p.cfg.Port, timeout)
		}
		time.Sleep(min(p.cfg.Interval, 10*time.Millisecond))
	}
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
