package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// checkGossipPeers connects to every configured peer's memberlist port
// (TCP: memberlist's push/pull and join use it, and unlike UDP a refusal
// is visible).
func (r *run) checkGossipPeers(c *config.Config) {
	g := c.Gossip
	_, port, _ := net.SplitHostPort(g.Bind)
	var targets []string
	for _, p := range g.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(p, port)
		}
		targets = append(targets, p)
	}
	if g.DNS != "" {
		ctx, cancel := context.WithTimeout(r.ctx, HTTPClientTimeout)
		addrs, err := r.deps.LookupHost(ctx, g.DNS)
		cancel()
		if err != nil || len(addrs) == 0 {
			r.add(Line{Fail, "gossip dns " + g.DNS, fmt.Sprintf("does not resolve: %v", err), "check the name (a headless Service selecting vipd's pods) and this node's resolver"})
		} else {
			r.add(Line{OK, "gossip dns " + g.DNS, "resolves to " + strings.Join(addrs, ", "), ""})
			for _, a := range addrs {
				targets = append(targets, net.JoinHostPort(a, port))
			}
		}
	}
	if len(targets) == 0 {
		r.add(Line{Warn, "gossip peers", "none configured (gossip.peers, gossip.dns): this node can only be joined by others", "list the other nodes in gossip.peers"})
		return
	}
	for _, t := range targets {
		check := "gossip peer " + t
		host, _, _ := net.SplitHostPort(t)
		if a, err := netip.ParseAddr(host); err == nil && r.deps.LocalAddr(a.Unmap()) {
			r.add(Line{OK, check, "this node's own address (vipd skips it)", ""})
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		err := r.deps.DialTCP(ctx, t)
		cancel()
		switch {
		case err == nil:
			r.add(Line{OK, check, "reachable (TCP)", ""})
		case errors.Is(err, syscall.ECONNREFUSED):
			r.add(Line{Warn, check, "the host answers but nothing listens there (vipd not running yet?)", "start vipd on that node; if it runs, check gossip.bind there"})
		default:
			r.add(Line{Fail, check, "unreachable: " + err.Error(), "open TCP and UDP " + t[strings.LastIndex(t, ":")+1:] + " between the nodes (firewall, security group) and check routing"})
		}
	}
}

// clockReadingSlack is the Date header's resolution: the server's clock
// read anywhere in [Date, Date+1s).
const clockReadingSlack = time.Second

// skewBounds returns the interval that the offset server−local must lie in
// given every answer: the server read its clock at some instant between
// Sent and Received, and truncated the reading to the second, so each
// answer bounds the offset to [Date−Received, Date+1s−Sent]; several
// answers narrow it by intersection. ok is false without a Date header or
// when the answers contradict each other (a clock stepped meanwhile).
func skewBounds(rs []KubeResponse) (lo, hi time.Duration, ok bool) {
	first := true
	for _, x := range rs {
		if x.Date.IsZero() {
			continue
		}
		l := x.Date.Sub(x.Received)
		h := x.Date.Add(clockReadingSlack).Sub(x.Sent)
		if first {
			lo, hi, first = l, h, false
			continue
		}
		lo, hi = max(lo, l), min(hi, h)
	}
	return lo, hi, !first && lo <= hi
}

// SkewWarn is the skew against the API server above which doctor warns:
// nodes kept by NTP agree within milliseconds, so a second means time
// synchronisation is not working.
const SkewWarn = time.Second

// judgeSkew decides the clock offset bounds [lo, hi] against the API
// server for a lease of duration d. vipd's own fencing never compares
// clocks (docs/lease.md: each node measures on its monotonic clock), but
// the Lease's renewTime and acquireTime are written in the writer's wall
// clock and read by anything that judges the Lease by its own clock
// (client-go leader-election readers, kubectl, alerts on a stale Lease):
// such a reader sees a renewal up to the writer−reader skew old or new.
// Measured against one reference, two nodes each within d/2 of the API
// server are within d of each other; beyond it, a reader can see the
// Lease as expired while its owner renews it, or as live for a whole
// duration after the owner stopped: FAIL.
func judgeSkew(lo, hi, d time.Duration) Line {
	const check = "clock skew"
	least := time.Duration(0) // the smallest |offset| the bounds allow
	switch {
	case lo > 0:
		least = lo
	case hi < 0:
		least = -hi
	}
	est := (lo + hi) / 2
	desc := fmt.Sprintf("this node's clock is %s behind the API server's (between %s and %s; the Date header has 1 s resolution)",
		est.Round(10*time.Millisecond), lo.Round(10*time.Millisecond), hi.Round(10*time.Millisecond))
	if est < 0 {
		desc = fmt.Sprintf("this node's clock is %s ahead of the API server's (between %s and %s; the Date header has 1 s resolution)",
			(-est).Round(10*time.Millisecond), (-hi).Round(10*time.Millisecond), (-lo).Round(10*time.Millisecond))
	}
	fix := "synchronise clocks (chrony or systemd-timesyncd on every node and the API server's host; timedatectl shows whether NTP is active)"
	switch {
	case least > d/2:
		return Line{Fail, check, fmt.Sprintf("%s: more than half the lease duration (%s), so readers that judge the Lease by renewTime see it expired while renewed, or live long after its owner stopped", desc, d), fix}
	case least > SkewWarn:
		return Line{Warn, check, desc + ": more than 1 s, time synchronisation is not working", fix}
	}
	return Line{OK, check, fmt.Sprintf("within %s of the API server (at most %s off at this resolution)", SkewWarn, max(-lo, hi).Round(10*time.Millisecond)), ""}
}

// judgeLeaseGet decides one GET of a group's Lease.
func judgeLeaseGet(check string, x KubeResponse, err error) Line {
	if err != nil {
		return Line{Fail, check, "API server unreachable: " + err.Error(),
			"check lease.server / the kubeconfig's server, the network path and the API server; with lease.server unset on a control plane, point it at the local API server (https://127.0.0.1:6443)"}
	}
	switch x.Status {
	case 200:
		var l struct {
			Spec struct {
				Holder *string `json:"holderIdentity"`
			} `json:"spec"`
		}
		holder := "nobody"
		if json.Unmarshal([]byte(x.Body), &l) == nil && l.Spec.Holder != nil && *l.Spec.Holder != "" {
			holder = *l.Spec.Holder
		}
		return Line{OK, check, "authenticated at " + x.Server + "; held by " + holder, ""}
	case 404:
		return Line{OK, check, "authenticated at " + x.Server + "; the Lease does not exist yet (vipd creates it)", ""}
	case 401:
		return Line{Fail, check, "401 Unauthorized from " + x.Server + ": the credentials are not accepted" + bodyHint(x.Body),
			"check lease.kubeconfig (token or client certificate expired or for another cluster), or the pod's service account token"}
	case 403:
		return Line{Fail, check, "403 Forbidden from " + x.Server + ": authenticated but not allowed to read Leases" + bodyHint(x.Body),
			"apply vipd's RBAC (deploy/lease/rbac.yaml: get, watch, create, update on leases in lease.namespace) for this identity"}
	}
	return Line{Fail, check, fmt.Sprintf("unexpected %d from %s%s", x.Status, x.Server, bodyHint(x.Body)), "check the API server's health (kubectl get --raw /readyz)"}
}

func bodyHint(b string) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(b), &st) == nil && st.Message != "" {
		return " (" + st.Message + ")"
	}
	return ""
}

// skewSamples is how many answers the skew estimate intersects.
const skewSamples = 3

func (r *run) checkLease(c *config.Config) {
	l := c.Lease
	var samples []KubeResponse
	reached := false
	for _, g := range c.Groups {
		if g.Lease == nil {
			continue
		}
		path := "/apis/coordination.k8s.io/v1/namespaces/" + l.Namespace + "/leases/" + g.Lease.Name
		ctx, cancel := context.WithTimeout(r.ctx, HTTPClientTimeout)
		x, err := r.deps.KubeGet(ctx, l, path)
		cancel()
		r.add(judgeLeaseGet("api server lease "+l.Namespace+"/"+g.Lease.Name, x, err))
		if err == nil {
			reached = true
			samples = append(samples, x)
		}
	}
	if !reached {
		r.add(Line{Warn, "clock skew", "not measured: the API server did not answer", "fix the API server check above"})
		return
	}
	for len(samples) < skewSamples {
		ctx, cancel := context.WithTimeout(r.ctx, HTTPClientTimeout)
		x, err := r.deps.KubeGet(ctx, l, "/version")
		cancel()
		if err != nil {
			break
		}
		samples = append(samples, x)
	}
	lo, hi, ok := skewBounds(samples)
	if !ok {
		r.add(Line{Warn, "clock skew", "not measured: the API server's answers carry no consistent Date header", "compare `date -u` here with the API server's host"})
		return
	}
	r.add(judgeSkew(lo, hi, l.LeaseDuration))
}

// healthzURL is the /healthz URL of http.listen, a wildcard host replaced
// by loopback (the daemon listens there too).
func healthzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("port %q", port)
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func (r *run) checkHTTP(c *config.Config) Line {
	check := "http " + c.HTTP.Listen
	u, err := healthzURL(c.HTTP.Listen)
	if err != nil {
		return Line{Warn, check, "cannot derive a URL: " + err.Error(), "set http.listen to host:port"}
	}
	ctx, cancel := context.WithTimeout(r.ctx, HTTPClientTimeout)
	defer cancel()
	status, body, err := r.deps.HTTPGet(ctx, u)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Line{OK, check, "not running (nothing listens)", ""}
	case err != nil:
		return Line{Warn, check, "GET /healthz failed: " + err.Error(), "is something else listening on http.listen? vipd status shows a running daemon"}
	case status == 200:
		return Line{OK, check, "vipd running, /healthz healthy", ""}
	}
	return Line{Warn, check, fmt.Sprintf("vipd running, /healthz %d: %s", status, strings.TrimSpace(body)), "vipd status shows which loop or watch failed; see its log"}
}
