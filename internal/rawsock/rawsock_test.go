package rawsock

import (
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestRecvfrom(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	s, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		time.Sleep(10 * time.Millisecond) // the reader must wait in the poller first
		_, _ = s.Write([]byte("hello"))
	}()
	buf := make([]byte, 64)
	var from unix.RawSockaddrAny
	n, err := Recvfrom(rc, buf, &from)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Recvfrom = %q, %v", buf[:n], err)
	}
	sa := (*unix.RawSockaddrInet4)(unsafePointer(&from))
	if from.Addr.Family != unix.AF_INET || sa.Addr != [4]byte{127, 0, 0, 1} {
		t.Errorf("from = family %d addr %v", from.Addr.Family, sa.Addr)
	}
	_, _ = s.Write([]byte("x"))
	if n, err := Recvfrom(rc, buf, nil); err != nil || n != 1 {
		t.Errorf("Recvfrom without from = %d, %v", n, err)
	}
	c.Close()
	if _, err := Recvfrom(rc, buf, nil); err == nil {
		t.Error("Recvfrom on a closed socket: no error")
	}
}

func unsafePointer(p *unix.RawSockaddrAny) unsafe.Pointer { return unsafe.Pointer(p) }
