package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tcpProber passes when a connection to the address opens; it is closed at
// once (nothing is sent).
type tcpProber struct{ addr string }

func newTCPProber(s Spec) (Prober, error) {
	if _, port, err := net.SplitHostPort(s.TCP.Address); err != nil || port == "" {
		return nil, fmt.Errorf("address %q: must be host:port", s.TCP.Address)
	}
	return tcpProber{s.TCP.Address}, nil
}

func (p tcpProber) Probe(ctx context.Context) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return "", err
	}
	detail := "connected to " + c.RemoteAddr().String()
	c.Close()
	return detail, nil
}

// fileProber fails while the path exists: a drain switch. Lstat, so a
// symlink (even a dangling one) counts as the switch being on.
type fileProber struct{ path string }

func newFileProber(s Spec) (Prober, error) {
	if !strings.HasPrefix(s.File.Path, "/") {
		return nil, fmt.Errorf("path %q: must be absolute", s.File.Path)
	}
	return fileProber{s.File.Path}, nil
}

func (p fileProber) Probe(context.Context) (string, error) {
	_, err := os.Lstat(p.path)
	switch {
	case err == nil:
		return "", fmt.Errorf("drain file %s exists", p.path)
	case errors.Is(err, fs.ErrNotExist):
		return "no drain file " + p.path, nil
	}
	return "", err
}

// interfaceProber passes while the link exists, is administratively up and
// has carrier.
type interfaceProber struct{ name string }

func newInterfaceProber(s Spec) (Prober, error) {
	n := s.Interface.Name
	if n == "" || len(n) > 15 || strings.ContainsAny(n, "/ ") {
		return nil, fmt.Errorf("name %q: must be an interface name", n)
	}
	return interfaceProber{n}, nil
}

func (p interfaceProber) Probe(context.Context) (string, error) {
	// A netlink request answers at once; no need for ctx.
	l, err := netlink.LinkByName(p.name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return "", fmt.Errorf("interface %s not found", p.name)
		}
		return "", fmt.Errorf("interface %s: %w", p.name, err)
	}
	return linkState(l)
}

// linkState reports whether the link is usable, by the same rule as
// internal/node's linkUp: admin up and operationally up, or OperUnknown
// with IFF_RUNNING (drivers that never report an oper state, like lo and
// some virtual links).
func linkState(l netlink.Link) (string, error) {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return "", fmt.Errorf("interface %s is administratively down", a.Name)
	}
	switch a.OperState {
	case netlink.OperUp:
		return "up", nil
	case netlink.OperUnknown:
		if a.RawFlags&unix.IFF_RUNNING != 0 {
			return "up (oper state unknown, running)", nil
		}
	}
	return "", fmt.Errorf("interface %s has no carrier (oper state %s)", a.Name, a.OperState)
}
