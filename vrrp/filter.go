package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// skfNetOff is the kernel's SKF_NET_OFF: a classic BPF load at
// skfNetOff+k reads byte k of the network (IP) header, wherever the packet
// data starts.
const skfNetOff = -0x100000

// FilterProgram is the socket filter of a VRRP socket (issue #11, 5): the
// kernel passes only VRRPv3 advertisements (version 3, type 1) whose VRID is
// in vrids and, when peers is not empty, whose IP source is one of peers.
// Everything else is dropped before it reaches the receive buffer, so a
// flood of foreign or malformed packets costs vipd nothing and cannot crowd
// the master's adverts out of the buffer.
//
// A raw IPv4 socket's filter sees the packet from the IPv4 header on; a raw
// IPv6 socket's sees the VRRP message (the kernel has pulled the IPv6
// header), so the IPv6 source is read through SKF_NET_OFF.
func FilterProgram(family int, vrids []uint8, peers []netip.Addr) ([]bpf.RawInstruction, error) {
	if len(vrids) == 0 {
		return nil, fmt.Errorf("vrrp filter: no VRID")
	}
	const (
		pass = 0x40000 // any length above the largest datagram: keep it whole
		drop = 0
	)
	var p []bpf.Instruction
	if family == 4 {
		// X = IPv4 header length; the VRRP message starts at X.
		p = append(p, bpf.LoadMemShift{Off: 0}, bpf.LoadIndirect{Off: 0, Size: 1})
	} else {
		p = append(p, bpf.LoadAbsolute{Off: 0, Size: 1})
	}
	// Version 3, type advertisement: the first byte is 0x31.
	p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: Version<<4 | TypeAdvert, SkipTrue: 1}, bpf.RetConstant{Val: drop})
	if family == 4 {
		p = append(p, bpf.LoadIndirect{Off: 1, Size: 1})
	} else {
		p = append(p, bpf.LoadAbsolute{Off: 1, Size: 1})
	}
	// A list of "if equal, jump to the next check" with 32-bit Jumps, so any
	// number of VRIDs and peers fits the 8-bit conditional skips.
	var toNext []int
	for _, v := range vrids {
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(v), SkipFalse: 1}, bpf.Jump{})
		toNext = append(toNext, len(p)-1)
	}
	p = append(p, bpf.RetConstant{Val: drop})
	resolve := func() {
		for _, i := range toNext {
			p[i] = bpf.Jump{Skip: uint32(len(p) - i - 1)}
		}
		toNext = toNext[:0]
	}
	resolve()
	if len(peers) > 0 {
		for _, a := range peers {
			if a.Is4() != (family == 4) {
				continue
			}
			b := a.As16()
			words := b[:]
			off := uint32(12) // IPv4 source
			if family == 4 {
				w := a.As4()
				words = w[:]
			} else {
				off = uint32(int64(skfNetOff+8) & 0xffffffff) // IPv6 source, via the network header
			}
			// All words equal: the checks fall through to a Jump to the
			// next check; any mismatch skips to the next peer.
			n := len(words) / 4
			for k := range n {
				left := n - 1 - k // word checks after this one
				p = append(p,
					bpf.LoadAbsolute{Off: off + uint32(4*k), Size: 4},
					bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(words[4*k:]), SkipFalse: uint8(2*left + 1)})
			}
			p = append(p, bpf.Jump{})
			toNext = append(toNext, len(p)-1)
		}
		p = append(p, bpf.RetConstant{Val: drop})
		resolve()
	}
	p = append(p, bpf.RetConstant{Val: pass})
	return bpf.Assemble(p)
}
