package addr

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func unsafeSlice(p *unix.SockFprog) []unix.SockFilter { return unsafe.Slice(p.Filter, p.Len) }

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
