// Package arp makes the LAN learn a new VIP owner at once: gratuitous ARP for
// IPv4 and unsolicited Neighbour Advertisements for IPv6, sent in a burst when
// a node takes a VIP and refreshed periodically while it keeps it.
package arp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// Broadcast is the Ethernet broadcast address, the destination of every GARP.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// AllNodes is ff02::1, the destination of an unsolicited NA (RFC 4861 7.2.6).
var AllNodes = netip.MustParseAddr("ff02::1")

// ErrBadAddr is returned (wrapped) for an address that cannot be announced.
var ErrBadAddr = errors.New("address cannot be announced")

func checkMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("interface hardware address %q: must be a 6-byte Ethernet MAC", mac.String())
	}
	return nil
}

// checkIP rejects the zero Addr, the unspecified, multicast and broadcast
// addresses: announcing any of them would poison neighbour tables or is
// meaningless. IPv4-mapped IPv6 (::ffff:a.b.c.d) is unmapped by callers.
func checkIP(ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: zero address", ErrBadAddr)
	case ip.IsUnspecified(), ip.IsMulticast(), ip == netip.IPv4Unspecified(),
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: %s is unspecified, multicast or broadcast", ErrBadAddr, ip)
	}
	return nil
}

// GratuitousARP builds the two Ethernet frames of an IPv4 announcement, both
// broadcast from mac with sender IP = target IP = ip:
//
//   - request (op=1), target MAC ff:ff:ff:ff:ff:ff. This is exactly what
//     keepalived sends (vrrp_arp.c); networks that run keepalived today
//     demonstrably accept it. Linux updates an existing entry on any request
//     from the VIP (and treats sip==tip as gratuitous, overriding the 1 s
//     locktime); routers that ignore unsolicited replies honour requests.
//   - reply (op=2), target MAC = mac. Some devices only learn from replies
//     (MetalLB sends both forms for that reason). The target MAC equals the
//     sender MAC because Linux's arp_is_garp() only treats a reply as
//     gratuitous when tha == sha; with a broadcast tha it would be an
//     ordinary unsolicited reply, subject to locktime.
//
// The frames are padded to the 60-byte Ethernet minimum.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) (request, reply []byte, err error) {
	if err := checkMAC(mac); err != nil {
		return nil, nil, err
	}
	if err := checkIP(ip); err != nil {
		return nil, nil, err
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil, nil, fmt.Errorf("%w: gratuitous ARP needs an IPv4 address, got %s", ErrBadAddr, ip)
	}
	request, err = arpFrame(marp.OperationRequest, mac, ip, Broadcast)
	if err != nil {
		return nil, nil, err
	}
	reply, err = arpFrame(marp.OperationReply, mac, ip, mac)
	if err != nil {
		return nil, nil, err
	}
	return request, reply, nil
}

func arpFrame(op marp.Operation, mac net.HardwareAddr, ip netip.Addr, tha net.HardwareAddr) ([]byte, error) {
	p, err := marp.NewPacket(op, mac, ip, tha, ip)
	if err != nil {
		return nil, fmt.Errorf("building ARP %s for %s: %w", op, ip, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshalling ARP %s for %s: %w", op, ip, err)
	}
	f := ethernet.Frame{
		Destination: Broadcast,
		Source:      mac,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     pb,
	}
	return f.MarshalBinary()
}

// UnsolicitedNA builds the Neighbour Advertisement of an IPv6 announcement
// (RFC 4861 7.2.6): Override=1 so receivers replace a cached MAC,
// Solicited=0 (Linux drops solicited NAs sent to multicast), target = ip and
// a Target Link-Layer Address option carrying mac. Router must say whether
// the node routes IPv6 on that interface (as keepalived derives it from the
// forwarding sysctl): a host that uses the VIP as its default gateway drops
// it from its default router list on an NA with R=0 (RFC 4861 7.2.5), and
// R=1 from a non-router would wrongly make hosts treat it as one. The IPv6
// header (hop limit 255, source = link-local, destination ff02::1) and the
// checksum are supplied by the ndp connection / kernel.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) (*ndp.NeighborAdvertisement, error) {
	if err := checkMAC(mac); err != nil {
		return nil, err
	}
	if err := checkIP(ip); err != nil {
		return nil, err
	}
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("%w: neighbour advertisement needs an IPv6 address, got %s", ErrBadAddr, ip)
	}
	if ip.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("%w: %s is link-local, not a VIP", ErrBadAddr, ip)
	}
	return &ndp.NeighborAdvertisement{
		Router:        router,
		Override:      true,
		TargetAddress: ip.WithZone(""),
		Options: []ndp.Option{&ndp.LinkLayerAddress{
			Direction: ndp.Target,
			Addr:      mac,
		}},
	}, nil
}
