package lab

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Announcement is a gratuitous ARP (request or reply with sender = VIP) or an
// unsolicited neighbour advertisement for the VIP, seen by the observer.
type Announcement struct {
	At   time.Time
	MAC  net.HardwareAddr
	Node string // lab host owning MAC, "" if none
}

// neighEvent is one ARP/NDP packet about the VIP, timestamped on arrival.
type neighEvent struct {
	at       time.Time
	mac      net.HardwareAddr
	announce bool // gratuitous/unsolicited; otherwise an answer to a request
}

// neighWatcher owns an ARP (v4) or raw ICMPv6 (v6) socket in the observer
// namespace. One goroutine reads continuously (so arrival times are exact and
// announcements between samples are not missed); another sends requests.
type neighWatcher struct {
	request func() error
	read    func() (neighEvent, bool, error) // ok=false: packet not about the VIP
	close   func() error
	closed  atomic.Bool
}

// Close stops the reader. The flag, not the error value, says "closed":
// mdlayher/packet and x/net report a closed socket with different errors.
func (w *neighWatcher) Close() error {
	w.closed.Store(true)
	return w.close()
}

// newNeighWatcher samples from the observer, never the client: answers
// addressed to the client would refresh its own neighbour entry for the VIP
// and hide a missing announcement (see Lab.Observer).
func (l *Lab) newNeighWatcher(vip netip.Addr) (*neighWatcher, error) {
	o := l.Observer
	var ifi *net.Interface
	if vip.Is4() {
		// arp.Client sends the requests; frames are read from its packet
		// socket directly, for the kernel's arrival time.
		var pc *packet.Conn
		var ac *arp.Client
		err := o.Do(func() error {
			var err error
			if ifi, err = net.InterfaceByName(o.Link); err != nil {
				return err
			}
			if pc, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil); err != nil {
				return err
			}
			if err = enableRxTimestamps(pc); err == nil {
				ac, err = arp.New(ifi, pc)
			}
			if err != nil {
				pc.Close()
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		rc, err := pc.SyscallConn()
		if err != nil {
			ac.Close()
			return nil, err
		}
		self := o.IPv4.Addr()
		buf, oob := make([]byte, 1500), make([]byte, 128)
		return &neighWatcher{
			request: func() error { return ac.Request(vip) },
			read: func() (neighEvent, bool, error) {
				var n, oobn int
				var rerr error
				if err := rc.Read(func(fd uintptr) bool {
					n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
					return rerr != unix.EAGAIN
				}); err != nil {
					return neighEvent{}, false, err
				}
				if rerr != nil {
					return neighEvent{}, false, rerr
				}
				at := rxTime(oob[:oobn])
				var f ethernet.Frame
				if f.UnmarshalBinary(buf[:n]) != nil || f.EtherType != ethernet.EtherTypeARP {
					return neighEvent{}, false, nil
				}
				pkt := new(arp.Packet)
				if pkt.UnmarshalBinary(f.Payload) != nil {
					return neighEvent{}, false, nil
				}
				if pkt.SenderIP != vip {
					return neighEvent{}, false, nil
				}
				ev := neighEvent{at: at, mac: append(net.HardwareAddr(nil), pkt.SenderHardwareAddr...)}
				switch {
				case pkt.TargetIP == vip: // gratuitous, request or reply form
					ev.announce = true
				case pkt.Operation == arp.OperationReply && pkt.TargetIP == self:
				default:
					return neighEvent{}, false, nil
				}
				return ev, true, nil
			},
			close: ac.Close,
		}, nil
	}

	self := o.IPv6.Addr()
	var nc *ndpConn
	err := o.Do(func() error {
		var err error
		if ifi, err = net.InterfaceByName(o.Link); err != nil {
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
	snm, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ns := &ndp.NeighborSolicitation{
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: o.MAC}},
	}
	buf := make([]byte, 1500)
	return &neighWatcher{
		request: func() error { return nc.send(ns, snm) },
		read: func() (neighEvent, bool, error) {
			m, dst, at, err := nc.recv(buf)
			if err != nil {
				return neighEvent{}, false, err
			}
			na, ok := m.(*ndp.NeighborAdvertisement)
			if !ok || na.TargetAddress != vip {
				return neighEvent{}, false, nil
			}
			ev := neighEvent{at: at, announce: !na.Solicited}
			if na.Solicited && dst.IsValid() && dst != self {
				return neighEvent{}, false, nil // an answer to someone else
			}
			for _, o := range na.Options {
				if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
					ev.mac = append(net.HardwareAddr(nil), lla.Addr...)
				}
			}
			return ev, ev.mac != nil, nil
		},
		close: nc.Close,
	}, nil
}

// watchNeighbors reads until the socket is closed: announcements go to the
// record, answers wait in p.pending for the sample loop.
func (p *Probe) watchNeighbors(w *neighWatcher) {
	for {
		ev, ok, err := w.read()
		if err != nil {
			if w.closed.Load() {
				return
			}
			time.Sleep(time.Millisecond) // transient error: don't spin
			continue
		}
		if !ok {
			continue
		}
		p.mu.Lock()
		if ev.announce {
			p.rec.Announcements = append(p.rec.Announcements, Announcement{At: ev.at, MAC: ev.mac, Node: p.rec.macs[ev.mac.String()]})
		} else {
			p.pending = append(p.pending, ev)
		}
		p.mu.Unlock()
	}
}

// sampleLoop asks who owns the VIP every NeighborInterval and records the
// MACs that answered within window.
func (p *Probe) sampleLoop(ctx context.Context, w *neighWatcher, window time.Duration) {
	t := time.NewTicker(p.cfg.NeighborInterval)
	defer t.Stop()
	for {
		start := time.Now()
		sendErr := w.request()
		select {
		case <-ctx.Done():
			return
		case <-time.After(window):
		}
		p.mu.Lock()
		s := NeighborSample{At: start}
		for _, ev := range p.pending {
			if !ev.at.Before(start) && !ev.at.After(start.Add(window)) {
				s.MACs = addMAC(s.MACs, ev.mac)
			}
		}
		p.pending = p.pending[:0]
		if sendErr == nil {
			p.rec.Neighbors = append(p.rec.Neighbors, s)
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func addMAC(macs []net.HardwareAddr, m net.HardwareAddr) []net.HardwareAddr {
	for _, x := range macs {
		if bytes.Equal(x, m) {
			return macs
		}
	}
	return append(macs, append(net.HardwareAddr(nil), m...))
}
