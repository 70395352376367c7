// Package rawsock reads datagrams with raw system calls while waiting in
// Go's poller. The net package's reads enter the scheduler's syscall state,
// which wakes a sleeping sysmon that then polls every 20 µs for a while;
// on an idle node that receives a packet every few milliseconds (gossip
// pings, every ARP packet on the LAN) those wake-ups were most of its
// cost (issue #15, docs/benchmark.md). The socket must be non-blocking
// (everything from net and mdlayher/packet is), so a raw call never
// blocks.
package rawsock

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recvfrom reads one datagram from rc into buf, waiting in the poller until
// one is queued. With from non-nil it receives the sender's address.
func Recvfrom(rc syscall.RawConn, buf []byte, from *unix.RawSockaddrAny) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			var fromPtr, lenPtr uintptr
			fl := uint32(unsafe.Sizeof(unix.RawSockaddrAny{}))
			if from != nil {
				fromPtr, lenPtr = uintptr(unsafe.Pointer(from)), uintptr(unsafe.Pointer(&fl))
			}
			r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
				unix.MSG_DONTWAIT, fromPtr, lenPtr)
			switch e {
			case 0:
				n, rerr = int(r), nil
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing queued: wait in the poller
			default:
				n, rerr = 0, e
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}
