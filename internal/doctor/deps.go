package doctor

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// Deps is every piece of I/O the checks use. SystemDeps fills it with the
// real machine (the current network namespace); tests replace what they need.
type Deps struct {
	// ReadFile reads the config, /proc/self/status and /proc/sys keys.
	ReadFile func(path string) ([]byte, error)
	// Host answers config validation's subnet lookups.
	Host config.Host
	// Link describes an interface; ErrNoLink when it does not exist.
	Link func(name string) (Link, error)
	// DefaultRouteLinks names the interfaces that carry a default route.
	DefaultRouteLinks func() ([]string, error)
	// RouteGet returns the interface the kernel would send to dst on
	// (ip route get).
	RouteGet func(dst netip.Addr) (string, error)
	// LocalAddr reports whether a is an address of this node.
	LocalAddr func(a netip.Addr) bool
	// DialTCP connects to addr (host:port) and closes at once.
	DialTCP func(ctx context.Context, addr string) error
	// LookupHost resolves a name to addresses.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// HTTPGet fetches url with a short timeout (the local /healthz).
	HTTPGet func(ctx context.Context, url string) (status int, body string, err error)
	// ListenVRRP listens on ifname for VRRP adverts of family (4, 6) with
	// one of vrids for d and returns what it heard.
	ListenVRRP func(ctx context.Context, ifname string, family int, vrids []uint8, d time.Duration) ([]Heard, error)
	// KubeGet performs GET path on the API server of the Lease settings
	// with the configured credentials, returning the status, the Date
	// header, and the local times just before sending and after the answer.
	KubeGet func(ctx context.Context, l *config.Lease, path string) (KubeResponse, error)
}

// ErrNoLink is returned by Deps.Link for an interface that does not exist.
var ErrNoLink = errors.New("no such interface")

// Link is what the checks need to know about an interface.
type Link struct {
	Name string
	// AdminUp: IFF_UP is set (ip link set up).
	AdminUp bool
	// OperState is the kernel's operational state ("up", "down",
	// "lowerlayerdown", "unknown", ...).
	OperState string
	// Prefixes are its addresses with their prefix lengths.
	Prefixes []netip.Prefix
}

// Up reports whether the link can carry traffic: admin up and operationally
// up or "unknown" (virtual links without carrier reporting, e.g. dummy).
func (l Link) Up() bool {
	return l.AdminUp && (l.OperState == "up" || l.OperState == "unknown")
}

// Subnet returns the interface's prefix (not a host /32 or /128, which says
// nothing about a subnet: a bound VIP is one) that contains a.
func (l Link) Subnet(a netip.Addr) (netip.Prefix, bool) {
	for _, p := range l.Prefixes {
		if !p.IsSingleIP() && p.Contains(a) {
			return p.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

// Heard is one router heard advertising one of our VRIDs.
type Heard struct {
	Src      netip.Addr
	VRID     uint8
	Priority uint8
	Interval time.Duration
	VIPs     []netip.Addr
	// Count is how many adverts of this router (with these VIPs) were heard.
	Count int
}

// KubeResponse is one API server answer.
type KubeResponse struct {
	Status int
	// Body is the start of the answer (the error message of a 4xx).
	Body string
	// Date is the server's Date header (whole seconds); zero if absent.
	Date time.Time
	// Sent and Received are local clock readings around the request.
	Sent, Received time.Time
	// Server is the URL the request went to.
	Server string
}

// HTTPClientTimeout bounds every probe of a remote endpoint: long enough for
// a slow API server, short enough that a person waits at most seconds.
const HTTPClientTimeout = 3 * time.Second

func httpGet(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}
