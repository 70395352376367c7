// Package vrrp implements VRRP version 3 (RFC 5798) for IPv4 and IPv6: the
// advertisement codec, the per-virtual-router state machine and the raw-socket
// transport, wire-compatible with keepalived (vrrp_version 3).
//
// It is hand-written rather than taken from a library because no maintained
// Go VRRP library exists in go.mod, and the protocol is small: one 8-byte
// header, an address list and an Internet checksum.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants (RFC 5798 §5).
const (
	IPProtocol    = 112 // IP protocol number (IPv4 protocol / IPv6 next header)
	Version       = 3
	TypeAdvert    = 1
	TTL           = 255 // required TTL / hop limit of every advert
	headerLen     = 8
	maxAddrs      = 255
	centisecond   = 10 * time.Millisecond
	maxIntervalCS = 0x0fff // 12 bits of centiseconds = 40.95s

	// PriorityOwner is the IP address owner's priority; PriorityStop is sent
	// by a master that leaves, so backups take over after Skew_Time.
	PriorityOwner = 255
	PriorityStop  = 0
)

// Multicast groups adverts are sent to (RFC 5798 §5.1.1.2, §5.1.2.2).
var (
	GroupV4 = netip.MustParseAddr("224.0.0.18")
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// Limits of the advertisement interval: 12 bits of centiseconds.
const (
	MinInterval = centisecond
	MaxInterval = maxIntervalCS * centisecond
)

// Advert is a decoded VRRPv3 advertisement.
type Advert struct {
	VRID     uint8
	Priority uint8
	// Interval is the sender's Max Advertise Interval, a whole number of
	// centiseconds (10ms..40.95s; 0 only in malformed packets).
	Interval time.Duration
	// Addrs are the IPvX addresses of the virtual router, all of one family.
	Addrs []netip.Addr
}

// DropReason names why a received packet was discarded. The values are
// stable: they are metric labels.
type DropReason string

// Drop reasons for Decode and the receive path (RFC 5798 §7.1).
const (
	DropShort     DropReason = "short"            // shorter than header or address list
	DropVersion   DropReason = "version"          // not version 3
	DropType      DropReason = "type"             // not an advertisement
	DropChecksum  DropReason = "checksum"         // bad checksum
	DropCount     DropReason = "count"            // count field disagrees with the length
	DropInterval  DropReason = "interval"         // max advert interval 0
	DropFamily    DropReason = "family"           // addresses not plain addresses of the packet's family
	DropTTL       DropReason = "ttl"              // TTL / hop limit not 255
	DropVRID      DropReason = "unknown-vrid"     // no virtual router with this VRID on this interface
	DropPeer      DropReason = "unknown-peer"     // unicast mode: source is not a configured peer
	DropOwn       DropReason = "own"              // our own packet (looped back)
	DropAddrs     DropReason = "address-mismatch" // address list differs from ours: another virtual router uses our VRID
	DropInterface DropReason = "interface"        // arrived on another interface
	// DropDst: multicast mode, not sent to the VRRP group (224.0.0.18 /
	// ff02::12); unicast mode, sent to a multicast or broadcast address.
	DropDst DropReason = "destination"
	// DropIntervalRange: the Max Advertise Interval is outside what the
	// group accepts from other routers (GroupSpec.MinPeerInterval..MaxPeerInterval).
	DropIntervalRange DropReason = "interval-range"
	// DropRecvBuffer counts what the kernel dropped because the socket's
	// receive buffer was full (read from the socket, not counted by vipd).
	DropRecvBuffer DropReason = "receive-buffer"
)

// DecodeError is returned by Decode; Reason is the metric label.
type DecodeError struct {
	Reason DropReason
	Detail string
}

func (e *DecodeError) Error() string { return "vrrp: " + string(e.Reason) + ": " + e.Detail }

func dropf(r DropReason, format string, args ...any) error {
	return &DecodeError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the drop reason carried by err, or "" if it has none.
func ReasonOf(err error) DropReason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// Encode builds the VRRP part of an advertisement (the IP payload) sent
// from src to dst; both are needed for the pseudo-header checksum, which
// VRRPv3 uses for IPv4 as well as IPv6 (RFC 5798 §5.2.8; keepalived does the
// same unless configured with v3_checksum_as_v2).
func Encode(a Advert, src, dst netip.Addr) ([]byte, error) {
	if src.Is4() != dst.Is4() || !src.IsValid() || !dst.IsValid() {
		return nil, fmt.Errorf("vrrp: source %s and destination %s must be valid addresses of one family", src, dst)
	}
	if a.VRID == 0 {
		return nil, errors.New("vrrp: VRID 0 is invalid")
	}
	if len(a.Addrs) == 0 || len(a.Addrs) > maxAddrs {
		return nil, fmt.Errorf("vrrp: %d addresses; need 1..%d", len(a.Addrs), maxAddrs)
	}
	cs := a.Interval / centisecond
	if a.Interval%centisecond != 0 || cs < 1 || cs > maxIntervalCS {
		return nil, fmt.Errorf("vrrp: interval %s is not a whole number of centiseconds in 10ms..40.95s", a.Interval)
	}
	alen := 4
	if src.Is6() {
		alen = 16
	}
	b := make([]byte, headerLen, headerLen+alen*len(a.Addrs))
	b[0] = Version<<4 | TypeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	binary.BigEndian.PutUint16(b[4:], uint16(cs))
	for _, ip := range a.Addrs {
		if ip.Is4() != src.Is4() || ip.Is4In6() || ip.Zone() != "" {
			return nil, fmt.Errorf("vrrp: address %s is not of the packet's family", ip)
		}
		b = append(b, ip.AsSlice()...)
	}
	binary.BigEndian.PutUint16(b[6:], checksum(b, src, dst))
	return b, nil
}

// Decode parses and checks a VRRP payload received from src to dst (the IP
// header's addresses): version, type, length, count, interval, checksum and
// the address family. It never panics on any input; errors are *DecodeError.
func Decode(b []byte, src, dst netip.Addr) (Advert, error) {
	return decodeInto(b, src, dst, nil)
}

// decodeInto is Decode with the address list in addrs' storage when it is
// large enough (the elector's scratch: no allocation per advert).
func decodeInto(b []byte, src, dst netip.Addr, addrs []netip.Addr) (Advert, error) {
	if len(b) < headerLen {
		return Advert{}, dropf(DropShort, "%d bytes, header is %d", len(b), headerLen)
	}
	if v := b[0] >> 4; v != Version {
		return Advert{}, dropf(DropVersion, "version %d", v)
	}
	if t := b[0] & 0x0f; t != TypeAdvert {
		return Advert{}, dropf(DropType, "type %d", t)
	}
	if b[1] == 0 {
		return Advert{}, dropf(DropVRID, "VRID 0")
	}
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return Advert{}, dropf(DropFamily, "source %s, destination %s", src, dst)
	}
	alen := 4
	if src.Is6() {
		alen = 16
	}
	n := int(b[3])
	if want := headerLen + n*alen; len(b) != want {
		if len(b) < want {
			return Advert{}, dropf(DropShort, "count %d needs %d bytes, have %d", n, want, len(b))
		}
		return Advert{}, dropf(DropCount, "count %d needs %d bytes, have %d", n, want, len(b))
	}
	if n == 0 {
		return Advert{}, dropf(DropCount, "no addresses")
	}
	cs := binary.BigEndian.Uint16(b[4:]) & maxIntervalCS
	if cs == 0 {
		return Advert{}, dropf(DropInterval, "max advert interval 0")
	}
	if c := checksum(b, src, dst); c != 0 {
		return Advert{}, dropf(DropChecksum, "checksum 0x%04x does not verify (residue 0x%04x)", binary.BigEndian.Uint16(b[6:]), c)
	}
	if cap(addrs) < n {
		addrs = make([]netip.Addr, n)
	}
	a := Advert{VRID: b[1], Priority: b[2], Interval: time.Duration(cs) * centisecond, Addrs: addrs[:n]}
	for i := range n {
		p := b[headerLen+i*alen : headerLen+(i+1)*alen]
		ip, _ := netip.AddrFromSlice(p)
		a.Addrs[i] = ip
	}
	return a, nil
}

// checksum is the Internet checksum (RFC 1071) of the VRRP message b and the
// IPv4 or IPv6 pseudo-header. Computing it over a message whose checksum
// field is set yields 0 when it verifies; over one whose field is 0 it yields
// the value to store.
func checksum(b []byte, src, dst netip.Addr) uint16 {
	var sum uint32
	add := func(p []byte) {
		for len(p) >= 2 {
			sum += uint32(p[0])<<8 | uint32(p[1])
			p = p[2:]
		}
		if len(p) == 1 {
			sum += uint32(p[0]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	// IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, 3 zero bytes,
	// next header. Both sum to the same 16-bit words.
	sum += IPProtocol
	sum += uint32(len(b)) & 0xffff
	sum += uint32(len(b)) >> 16
	add(b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
