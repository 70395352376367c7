package arp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	marp "github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	claimMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	claimV4  = netip.MustParseAddr("198.51.100.100")
	claimV6  = netip.MustParseAddr("2001:db8::100")
)

// naFrame wraps an NA in Ethernet and a minimal IPv6 header (checksum left
// zero: ParseClaim, like the kernel's raw sockets, does not verify it).
func naFrame(t testing.TB, na *ndp.NeighborAdvertisement) []byte {
	t.Helper()
	body, err := ndp.MarshalMessage(na)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, 14+40)
	copy(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(f[6:12], claimMAC)
	f[12], f[13] = 0x86, 0xdd
	f[14] = 0x60
	f[14+4], f[14+5] = byte(len(body)>>8), byte(len(body))
	f[14+6], f[14+7] = 58, 255
	return append(f, body...)
}

func TestParseClaim(t *testing.T) {
	req, rep, err := GratuitousARP(claimMAC, claimV4)
	if err != nil {
		t.Fatal(err)
	}
	na, err := UnsolicitedNA(claimMAC, claimV6, false)
	if err != nil {
		t.Fatal(err)
	}
	probe, _ := marp.NewPacket(marp.OperationRequest, claimMAC, netip.IPv4Unspecified(), Broadcast, claimV4)
	probeBody, _ := probe.MarshalBinary()
	probeFrame := append(append(append([]byte{}, Broadcast...), claimMAC...), 0x08, 0x06)
	probeFrame = append(probeFrame, probeBody...)
	noOption := &ndp.NeighborAdvertisement{Override: true, TargetAddress: claimV6}
	ns := naFrame(t, &ndp.NeighborAdvertisement{TargetAddress: claimV6})
	ns[14+40] = 135 // now a neighbour solicitation type byte: not an NA

	tests := []struct {
		name  string
		frame []byte
		want  Claim
		ok    bool
	}{
		{"GARP request", req, Claim{claimV4, claimMAC}, true},
		{"GARP reply", rep, Claim{claimV4, claimMAC}, true},
		{"unsolicited NA", naFrame(t, na), Claim{claimV6, claimMAC}, true},
		{"NA without option: Ethernet source", naFrame(t, noOption), Claim{claimV6, claimMAC}, true},
		{"ARP probe claims nothing", probeFrame, Claim{}, false},
		{"not an NA", ns, Claim{}, false},
		{"short", []byte{1, 2, 3}, Claim{}, false},
		{"truncated ARP", req[:20], Claim{}, false},
		{"truncated IPv6", naFrame(t, na)[:60], Claim{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseClaim(tc.frame)
			if ok != tc.ok || got.IP != tc.want.IP || !bytes.Equal(got.MAC, tc.want.MAC) {
				t.Fatalf("ParseClaim = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestOnlyNAFilter(t *testing.T) {
	vm, err := bpf.NewVM(mustDisassemble(t, onlyNA))
	if err != nil {
		t.Fatal(err)
	}
	na, _ := UnsolicitedNA(claimMAC, claimV6, false)
	req, _, _ := GratuitousARP(claimMAC, claimV4)
	other := naFrame(t, na)
	other[14+40] = 128 // echo request
	for name, tc := range map[string]struct {
		frame  []byte
		accept bool
	}{
		"NA":           {naFrame(t, na), true},
		"echo request": {other, false},
		"ARP":          {req, false},
	} {
		n, err := vm.Run(tc.frame)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != tc.accept {
			t.Errorf("%s: filter returned %d, want accept=%v", name, n, tc.accept)
		}
	}
}

func mustDisassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("cannot disassemble filter")
	}
	return ins
}

func FuzzParseClaim(f *testing.F) {
	req, rep, _ := GratuitousARP(claimMAC, claimV4)
	na, _ := UnsolicitedNA(claimMAC, claimV6, false)
	f.Add(req)
	f.Add(rep)
	f.Add(naFrame(f, na))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ParseClaim(frame) // must not panic
	})
}
