package arp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/rawsock"
)

// Claim is a frame on the wire in which a host says "IP is at MAC": the
// sender of any ARP packet, or the target of a neighbour advertisement.
type Claim struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

const (
	etherTypeIPv6 = 0x86dd
	ethHeaderLen  = 14
	ipv6HeaderLen = 40
	icmpv6NextHdr = 58
	icmpv6TypeNA  = 136
)

// ParseClaim extracts the claim a raw Ethernet frame makes, if any. It never
// panics on malformed input (fuzzed): anything it cannot read is no claim.
func ParseClaim(frame []byte) (Claim, bool) {
	if len(frame) < ethHeaderLen {
		return Claim{}, false
	}
	payload := frame[ethHeaderLen:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		var p marp.Packet
		if err := p.UnmarshalBinary(payload); err != nil {
			return Claim{}, false
		}
		// A sender address of 0.0.0.0 is an ARP probe (RFC 5227): it claims nothing.
		if !p.SenderIP.Is4() || p.SenderIP.IsUnspecified() {
			return Claim{}, false
		}
		return Claim{IP: p.SenderIP, MAC: bytes.Clone(p.SenderHardwareAddr)}, true
	case etherTypeIPv6:
		if len(payload) < ipv6HeaderLen+1 || payload[6] != icmpv6NextHdr || payload[ipv6HeaderLen] != icmpv6TypeNA {
			return Claim{}, false
		}
		m, err := ndp.ParseMessage(payload[ipv6HeaderLen:])
		if err != nil {
			return Claim{}, false
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok {
			return Claim{}, false
		}
		mac := net.HardwareAddr(frame[6:12])
		for _, o := range na.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
				mac = lla.Addr
			}
		}
		return Claim{IP: na.TargetAddress, MAC: bytes.Clone(mac)}, true
	}
	return Claim{}, false
}

// onlyNA keeps ICMPv6 neighbour advertisements (without extension headers,
// which NDP never uses) so the IPv6 socket is not woken for the LAN's traffic.
var onlyNA = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 4},
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6NextHdr, SkipTrue: 2},
		bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6TypeNA, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 0xffff},
	})
	if err != nil {
		panic(err) // constant program; cannot fail
	}
	return raw
}()

// WatchConflicts listens on ifi until ctx is done and calls report for every
// claim on an address for which held returns true that comes from a MAC other
// than ifi's: another host announcing or answering for a VIP this node holds.
// Needs CAP_NET_RAW.
func WatchConflicts(ctx context.Context, ifi *net.Interface, held func(netip.Addr) bool, report func(Claim)) error {
	arpConn, err := packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
	if err != nil {
		return fmt.Errorf("arp: watching ARP on %s: %w", ifi.Name, err)
	}
	naConn, err := packet.Listen(ifi, packet.Raw, etherTypeIPv6, &packet.Config{Filter: onlyNA})
	if err != nil {
		arpConn.Close()
		return fmt.Errorf("arp: watching neighbour advertisements on %s: %w", ifi.Name, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []*packet.Conn{arpConn, naConn} {
		wg.Add(1)
		go func(c *packet.Conn) {
			defer wg.Done()
			buf := make([]byte, ifi.MTU+ethHeaderLen)
			read, err := rawReader(c)
			if err != nil {
				errs <- err
				return
			}
			for {
				n, err := read(buf)
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
						return
					}
					if errors.Is(err, unix.ENETDOWN) {
						// Reported once per link-down; the socket keeps
						// working when the link comes back.
						continue
					}
					errs <- err
					return
				}
				claim, ok := ParseClaim(buf[:n])
				if !ok || bytes.Equal(claim.MAC, ifi.HardwareAddr) || !held(claim.IP) {
					continue
				}
				report(claim)
			}
		}(c)
	}
	var err2 error
	select {
	case <-ctx.Done():
	case err2 = <-errs:
	}
	arpConn.Close()
	naConn.Close()
	wg.Wait()
	if err2 != nil {
		return fmt.Errorf("arp: watching conflicts on %s: %w", ifi.Name, err2)
	}
	return nil
}

// rawReader returns a function that reads one frame from c, waiting in Go's
// poller, with a raw recvfrom: every ARP packet on the LAN reaches this
// socket (the bench's ARP sampling: ~200 reads a second), and packet.Conn's
// ReadFrom enters the scheduler's syscall state, which wakes a sleeping
// sysmon that then polls every 20 µs for a while (issue #15: most of an idle
// gossip member's thread wake-ups). The socket is non-blocking, so a raw
// call never blocks.
func rawReader(c *packet.Conn) (func(buf []byte) (int, error), error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return func(buf []byte) (int, error) { return rawsock.Recvfrom(rc, buf, nil) }, nil
}
