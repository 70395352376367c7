package lab

import (
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// ndpConn is a raw ICMPv6 socket for NDP that never uses IPv6 zones.
//
// Why not ndp.Conn: it addresses every packet with Zone: ifi.Name, and Go
// turns zone names into indexes through a process-wide cache (net's
// ipv6ZoneCache) that is refreshed from whatever namespace the refreshing
// thread happens to be in. After a refresh in the root namespace "eth0" maps
// to the root eth0's index, and a send from a lab namespace fails with
// EINVAL (seen here). So: messages are encoded with ndp.MarshalMessage, and
// the interface is given by index in the control message.
type ndpConn struct {
	ic      *net.IPConn // reads, with the kernel's arrival time
	pc      *ipv6.PacketConn
	ifIndex int
	src     netip.Addr
}

// listenNDP must run inside the target namespace (Host.Do). src must be an
// address on the interface with index ifIndex.
func listenNDP(src netip.Addr, ifIndex int) (*ndpConn, error) {
	c, err := net.ListenPacket("ip6:ipv6-icmp", src.String())
	if err != nil {
		return nil, err
	}
	ic := c.(*net.IPConn)
	pc := ipv6.NewPacketConn(ic)
	// The kernel computes ICMPv6 checksums on raw ICMPv6 sockets itself.
	if err := pc.SetControlMessage(ipv6.FlagDst, true); err != nil {
		c.Close()
		return nil, err
	}
	if err := enableRxTimestamps(ic); err != nil {
		c.Close()
		return nil, err
	}
	return &ndpConn{ic: ic, pc: pc, ifIndex: ifIndex, src: src}, nil
}

func (c *ndpConn) acceptOnly(types ...ipv6.ICMPType) error {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, t := range types {
		f.Accept(t)
	}
	return c.pc.SetICMPFilter(&f)
}

func (c *ndpConn) send(m ndp.Message, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: c.src.AsSlice(), IfIndex: c.ifIndex}
	_, err = c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

// recv returns the next parsable NDP message, the destination address it
// was sent to and the kernel's arrival time.
func (c *ndpConn) recv(buf []byte) (ndp.Message, netip.Addr, time.Time, error) {
	oob := make([]byte, 256)
	for {
		n, oobn, _, _, err := c.ic.ReadMsgIP(buf, oob)
		if err != nil {
			return nil, netip.Addr{}, time.Time{}, err
		}
		at := rxTime(oob[:oobn])
		m, err := ndp.ParseMessage(buf[:n])
		if err != nil {
			continue
		}
		var cm ipv6.ControlMessage
		var dst netip.Addr
		if cm.Parse(oob[:oobn]) == nil {
			dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return m, dst, at, nil
	}
}

func (c *ndpConn) Close() error { return c.pc.Close() }
