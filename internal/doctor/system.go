package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/rest"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/kube"
	"github.com/vipd/vipd/vrrp"
)

// SystemDeps is the real machine: files, netlink and sockets of the
// current network namespace, and the API server of the config's Lease
// settings.
func SystemDeps() Deps {
	k := &kubeClients{m: map[string]kubeClient{}}
	return Deps{
		ReadFile:          os.ReadFile,
		Host:              config.LocalHost{},
		Link:              netlinkLink,
		DefaultRouteLinks: defaultRouteLinks,
		RouteGet:          routeGet,
		LocalAddr:         localAddr,
		DialTCP: func(ctx context.Context, addr string) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		},
		LookupHost: net.DefaultResolver.LookupHost,
		HTTPGet: func(ctx context.Context, url string) (int, string, error) {
			resp, err := httpGet(ctx, &http.Client{Timeout: HTTPClientTimeout}, url)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return resp.StatusCode, string(b), nil
		},
		ListenVRRP: listenVRRP,
		KubeGet:    k.get,
	}
}

func netlinkLink(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Link{}, ErrNoLink
		}
		return Link{}, err
	}
	a := l.Attrs()
	out := Link{Name: name, AdminUp: a.Flags&net.FlagUp != 0, OperState: a.OperState.String()}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return Link{}, fmt.Errorf("listing addresses of %s: %w", name, err)
	}
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok {
			continue
		}
		ones, _ := ad.Mask.Size()
		out.Prefixes = append(out.Prefixes, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func linkName(index int) string {
	if l, err := netlink.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("ifindex %d", index)
}

func defaultRouteLinks() ([]string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rt := range routes {
		if rt.Dst != nil {
			if ones, _ := rt.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		idx := rt.LinkIndex
		if idx == 0 && len(rt.MultiPath) > 0 {
			for _, nh := range rt.MultiPath {
				out = append(out, linkName(nh.LinkIndex))
			}
			continue
		}
		if idx != 0 {
			out = append(out, linkName(idx))
		}
	}
	return out, nil
}

func routeGet(dst netip.Addr) (string, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return "", err
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return "", errors.New("no route")
	}
	return linkName(routes[0].LinkIndex), nil
}

func localAddr(a netip.Addr) bool {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap() == a.WithZone("") {
			return true
		}
	}
	return false
}

// listenVRRP opens vipd's own VRRP receive path (vrrp.Open: a raw socket
// bound to the interface and joined to the VRRP group, so multicast and
// unicast adverts to this node arrive) with the kernel filter for our
// VRIDs, and decodes with vipd's decoder. Malformed packets are ignored:
// vipd drops them too.
func listenVRRP(ctx context.Context, ifname string, family int, vrids []uint8, d time.Duration) ([]Heard, error) {
	conn, err := vrrp.Open(ctx, ifname, family)
	if err != nil {
		return nil, err
	}
	if f, ok := conn.(vrrp.Filter); ok {
		if err := f.SetFilter(vrids, nil); err != nil {
			conn.Close()
			return nil, err
		}
	}
	var (
		mu    sync.Mutex
		heard []Heard
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			p, err := conn.Recv()
			if err != nil {
				return
			}
			a, err := vrrp.Decode(p.Payload, p.Src, p.Dst)
			if err != nil {
				continue
			}
			mu.Lock()
			heard = mergeHeard(append(heard, Heard{Src: p.Src.WithZone(""), VRID: a.VRID, Priority: a.Priority, Interval: a.Interval, VIPs: a.Addrs, Count: 1}))
			mu.Unlock()
		}
	}()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	cerr := conn.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		return heard, ctx.Err()
	}
	return heard, cerr
}

// kubeClients caches one HTTP client per credential set, so the several
// requests of a run share one TLS connection (and the skew samples are not
// dominated by handshakes).
type kubeClients struct {
	mu sync.Mutex
	m  map[string]kubeClient
}

type kubeClient struct {
	c    *http.Client
	host string
	err  error
}

func (k *kubeClients) client(l *config.Lease) kubeClient {
	key := l.Kubeconfig + "\x00" + l.Server
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.m[key]; ok {
		return c
	}
	var kc kubeClient
	rc, err := kube.RESTConfig(l.Kubeconfig, l.Server, "vipd-doctor")
	if err == nil {
		rc.Timeout = HTTPClientTimeout
		kc.c, err = rest.HTTPClientFor(rc)
		kc.host = strings.TrimRight(rc.Host, "/")
		if !strings.Contains(kc.host, "://") {
			kc.host = "https://" + kc.host
		}
	}
	kc.err = err
	k.m[key] = kc
	return kc
}

func (k *kubeClients) get(ctx context.Context, l *config.Lease, path string) (KubeResponse, error) {
	kc := k.client(l)
	if kc.err != nil {
		return KubeResponse{}, kc.err
	}
	x := KubeResponse{Server: kc.host, Sent: time.Now()}
	resp, err := httpGet(ctx, kc.c, kc.host+path)
	// The server stamps Date as it writes the headers: the answer's
	// headers, not its body, bound the reading.
	x.Received = time.Now()
	if err != nil {
		return x, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	x.Status, x.Body = resp.StatusCode, string(b)
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		x.Date = d
	}
	return x, nil
}
