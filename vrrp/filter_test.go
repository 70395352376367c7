package vrrp

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// ipv4Packet is an IPv4 header (with options when ihl > 5) and payload, as a
// raw IPv4 socket's filter sees it.
func ipv4Packet(src netip.Addr, ihl int, payload []byte) []byte {
	h := make([]byte, 4*ihl)
	h[0] = 0x40 | byte(ihl)
	h[8], h[9] = 255, IPProtocol
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], GroupV4.AsSlice())
	return append(h, payload...)
}

func runFilter(t *testing.T, prog []bpf.RawInstruction, pkt []byte) bool {
	t.Helper()
	var ins []bpf.Instruction
	for _, r := range prog {
		ins = append(ins, r.Disassemble())
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestFilterProgram checks the kernel filter in x/net's BPF VM: VRRPv3
// adverts of configured VRIDs (and peers) pass whole, nothing else does.
func TestFilterProgram(t *testing.T) {
	peer, other := netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.99")
	vips := []netip.Addr{netip.MustParseAddr("198.51.100.100")}
	advert := func(vrid uint8) []byte {
		b, err := Encode(Advert{VRID: vrid, Priority: 100, Interval: MinInterval, Addrs: vips}, peer, GroupV4)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v2 := advert(51)
	v2 = append([]byte{0x21}, v2[1:]...) // version 2
	query := advert(51)
	query = append([]byte{0x32}, query[1:]...) // type 2

	multicast, err := FilterProgram(4, []uint8{7, 51, 200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unicast, err := FilterProgram(4, []uint8{51}, []netip.Addr{netip.MustParseAddr("2001:db8::12"), peer, netip.MustParseAddr("198.51.100.13")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		prog []bpf.RawInstruction
		pkt  []byte
		want bool
	}{
		{"advert", multicast, ipv4Packet(other, 5, advert(51)), true},
		{"first vrid", multicast, ipv4Packet(other, 5, advert(7)), true},
		{"last vrid", multicast, ipv4Packet(other, 5, advert(200)), true},
		{"header with options", multicast, ipv4Packet(other, 6, advert(51)), true},
		{"unknown vrid", multicast, ipv4Packet(other, 5, advert(52)), false},
		{"version 2", multicast, ipv4Packet(other, 5, v2), false},
		{"not an advert", multicast, ipv4Packet(other, 5, query), false},
		{"empty", multicast, ipv4Packet(other, 5, nil), false},
		{"unicast from a peer", unicast, ipv4Packet(peer, 5, advert(51)), true},
		{"unicast from a stranger", unicast, ipv4Packet(other, 5, advert(51)), false},
		{"unicast from a peer, unknown vrid", unicast, ipv4Packet(peer, 5, advert(9)), false},
	} {
		if got := runFilter(t, c.prog, c.pkt); got != c.want {
			t.Errorf("%s: passed %v, want %v", c.name, got, c.want)
		}
	}

	// IPv6: the filter sees the VRRP message itself (the source is checked
	// through SKF_NET_OFF, which x/net's VM does not model: lab tests).
	six, err := FilterProgram(6, []uint8{51}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !runFilter(t, six, advert(51)) || runFilter(t, six, advert(52)) || runFilter(t, six, v2) {
		t.Error("IPv6 filter: wrong verdicts on VRID 51 / 52 / version 2")
	}
	many := make([]uint8, 255)
	for i := range many {
		many[i] = uint8(i + 1)
	}
	all, err := FilterProgram(4, many, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !runFilter(t, all, ipv4Packet(other, 5, advert(1))) || !runFilter(t, all, ipv4Packet(other, 5, advert(255))) {
		t.Error("255 VRIDs: an advert for VRID 1 or 255 was dropped")
	}
}
