package lab

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// responder answers probe datagrams with "<node> <seq>" from one node.
type responder struct {
	host  *Host
	conns []net.PacketConn
	wg    sync.WaitGroup
}

// StartResponders starts a UDP responder on every node, v4 and v6, on the
// wildcard address. The sockets are created inside each node's namespace by
// this process, so no extra binaries run. Each reply is sent from the
// address the request was sent to (IP_PKTINFO), i.e. from the VIP, as a real
// service would; it carries "<node name> <seq>". Stopped on Close.
func (l *Lab) StartResponders(port int) error {
	for _, h := range l.Nodes {
		if err := l.StartResponder(h, port); err != nil {
			return err
		}
	}
	return nil
}

// StartResponder starts the responder on one host (nodes or extras).
func (l *Lab) StartResponder(h *Host, port int) error {
	r := &responder{host: h}
	err := h.Do(func() error {
		c4, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return err
		}
		r.conns = append(r.conns, c4)
		c6, err := net.ListenPacket("udp6", fmt.Sprintf("[::]:%d", port))
		if err != nil {
			return err
		}
		r.conns = append(r.conns, c6)
		return nil
	})
	if err != nil {
		r.close()
		return fmt.Errorf("responder on %s port %d: %w", h.Name, port, err)
	}
	p4 := ipv4.NewPacketConn(r.conns[0])
	p6 := ipv6.NewPacketConn(r.conns[1])
	if err := p4.SetControlMessage(ipv4.FlagDst, true); err != nil {
		r.close()
		return err
	}
	if err := p6.SetControlMessage(ipv6.FlagDst, true); err != nil {
		r.close()
		return err
	}
	r.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, cm, from, err := p4.ReadFrom(buf)
			if err != nil {
				if isClosed(err) {
					return
				}
				continue
			}
			var reply *ipv4.ControlMessage
			if cm != nil && cm.Dst != nil {
				reply = &ipv4.ControlMessage{Src: cm.Dst}
			}
			// Errors (e.g. the VIP vanished in between) are the probe's to see as loss.
			_, _ = p4.WriteTo(replyPayload(h.Name, buf[:n]), reply, from)
		}
	})
	r.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, cm, from, err := p6.ReadFrom(buf)
			if err != nil {
				if isClosed(err) {
					return
				}
				continue
			}
			var reply *ipv6.ControlMessage
			if cm != nil && cm.Dst != nil {
				reply = &ipv6.ControlMessage{Src: cm.Dst}
			}
			_, _ = p6.WriteTo(replyPayload(h.Name, buf[:n]), reply, from)
		}
	})

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		r.close()
		return fmt.Errorf("lab %s closed", l.ID)
	}
	l.responders = append(l.responders, r)
	return nil
}

func replyPayload(node string, req []byte) []byte {
	seq, ok := parseRequest(req)
	if !ok {
		return []byte(node + " ?")
	}
	return []byte(node + " " + itoa(seq))
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

func (r *responder) close() {
	for _, c := range r.conns {
		c.Close()
	}
	r.wg.Wait()
}
