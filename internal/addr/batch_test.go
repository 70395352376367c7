package addr

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The watch socket's filter passes RTM_DELADDR and drops RTM_NEWADDR (the
// echoes of our own renewals) in the kernel.
func TestDeletedOnlyFilter(t *testing.T) {
	prog := deletedOnly()
	raw := unsafeFilter(prog)
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("2001:db8::100")
	for _, c := range []struct {
		typ  uint16
		pass bool
	}{{unix.RTM_NEWADDR, false}, {unix.RTM_DELADDR, true}, {unix.RTM_NEWLINK, false}} {
		msg := addrMsg(nil, c.typ, 1, 2, a, 3*time.Second)
		n, err := vm.Run(msg)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != c.pass {
			t.Errorf("type %d: filter returned %d, want pass=%v", c.typ, n, c.pass)
		}
	}
}

func unsafeFilter(p *unix.SockFprog) []bpf.Instruction {
	fs := unsafeSlice(p)
	out := make([]bpf.Instruction, len(fs))
	for i, f := range fs {
		out[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	return out
}

// The batched requests are well-formed netlink messages that carry what
// Replace sends: the host prefix, nodad for IPv6, preferred lifetime 0 and
// the valid lifetime; the interface index and address read back.
func TestAddrMsgEncoding(t *testing.T) {
	for _, a := range []netip.Addr{netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("2001:db8::100")} {
		var b []byte
		b = addrMsg(b, unix.RTM_NEWADDR, 7, 3, a, 3*time.Second)
		b = addrMsg(b, unix.RTM_DELADDR, 8, 3, a, 0)
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("%s: %d messages, %v", a, len(msgs), err)
		}
		add, del := msgs[0], msgs[1]
		if add.Header.Type != unix.RTM_NEWADDR || add.Header.Seq != 7 ||
			add.Header.Flags != unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE {
			t.Errorf("%s: add header %+v", a, add.Header)
		}
		if del.Header.Type != unix.RTM_DELADDR || del.Header.Flags != unix.NLM_F_REQUEST|unix.NLM_F_ACK {
			t.Errorf("%s: delete header %+v", a, del.Header)
		}
		for _, m := range msgs {
			idx, got, ok := parseAddrMsg(m.Data)
			if !ok || idx != 3 || got != a {
				t.Errorf("%s: parsed index %d address %s (%v)", a, idx, got, ok)
			}
			if bits := m.Data[1]; int(bits) != a.BitLen() {
				t.Errorf("%s: prefix length %d", a, bits)
			}
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&add)
		if err != nil {
			t.Fatal(err)
		}
		var sawCache, sawFlags bool
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_CACHEINFO:
				ci := (*unix.IfaCacheinfo)(unsafePointer(at.Value))
				sawCache = ci.Prefered == 0 && ci.Valid == 3
			case unix.IFA_FLAGS:
				want := uint32(0)
				if a.Is6() {
					want = unix.IFA_F_NODAD
				}
				sawFlags = len(at.Value) == 4 && binary.NativeEndian.Uint32(at.Value) == want
			}
		}
		if !sawCache || !sawFlags {
			t.Errorf("%s: cacheinfo ok %v, flags ok %v", a, sawCache, sawFlags)
		}
	}
}
