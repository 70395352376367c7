package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// bodySnippet is how much of a failing response's body goes into Detail.
const bodySnippet = 128

// httpProber GETs a URL. Each attempt opens a new connection (no
// keep-alive): a health check should see what a new client sees (a
// listener that stopped accepting must fail even if an old connection
// still answers), the server keeps no idle connection per checker, and
// nothing pooled outlives the attempt's deadline, so a hung server costs
// one connection per attempt and attempts (never overlapping, each bounded
// by its context) cannot pile up.
type httpProber struct {
	spec HTTP
	url  string

	// The TLS files are re-read when one's modification time or size
	// changes (certificates rotate; re-parsing them every second would
	// waste CPU for nothing). Only the runner's one goroutine probes, but
	// the lock keeps the prober safe to share.
	mu     sync.Mutex
	stamps []fileStamp
	client *http.Client
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func newHTTPProber(s Spec) (Prober, error) {
	h := *s.HTTP
	u, err := url.Parse(h.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: must be http:// or https:// with a host", h.URL)
	}
	if (h.CertFile == "") != (h.KeyFile == "") {
		return nil, errors.New("certFile and keyFile must be set together")
	}
	if h.StatusMin == 0 && h.StatusMax == 0 {
		h.StatusMin, h.StatusMax = 200, 399
	}
	if h.StatusMin < 100 || h.StatusMax > 599 || h.StatusMin > h.StatusMax {
		return nil, fmt.Errorf("expected status %d-%d: must be a range within 100-599", h.StatusMin, h.StatusMax)
	}
	p := &httpProber{spec: h, url: h.URL}
	// Load the files once now so a typo fails the build (and a reload)
	// instead of only every attempt.
	if _, err := p.getClient(); err != nil {
		return nil, err
	}
	return p, nil
}

// tlsFiles are the files the TLS setup reads, in a fixed order.
func (p *httpProber) tlsFiles() []string {
	var fs []string
	for _, f := range []string{p.spec.CAFile, p.spec.CertFile, p.spec.KeyFile} {
		if f != "" {
			fs = append(fs, f)
		}
	}
	return fs
}

// getClient returns the client for the current TLS files, rebuilding it
// when one of them changed.
func (p *httpProber) getClient() (*http.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	files := p.tlsFiles()
	stamps := make([]fileStamp, len(files))
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		stamps[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	if p.client != nil && sameStamps(stamps, p.stamps) {
		return p.client, nil
	}
	tc, err := p.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		// No proxy from the environment: the check is about this target,
		// usually on this host, never about a proxy.
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   tc,
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	p.client = &http.Client{
		Transport: tr,
		// The first response's status counts: a redirect to a login page
		// must not turn a 302 from a broken backend into a 200.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.stamps = stamps
	return p.client, nil
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

func (p *httpProber) tlsConfig() (*tls.Config, error) {
	h := p.spec
	tc := &tls.Config{InsecureSkipVerify: h.InsecureSkipVerify} //nolint:gosec // the user asked for it
	if h.Host != "" {
		if host, _, err := net.SplitHostPort(h.Host); err == nil {
			tc.ServerName = host
		} else {
			tc.ServerName = h.Host
		}
	}
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s: no PEM certificate in it", h.CAFile)
		}
		tc.RootCAs = pool
	}
	if h.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Probe implements Prober.
func (p *httpProber) Probe(ctx context.Context) (string, error) {
	client, err := p.getClient()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "vipd-health-check")
	if p.spec.Host != "" {
		req.Host = p.spec.Host
	}
	if f := p.spec.BearerTokenFile; f != "" {
		// Re-read every attempt: tokens rotate (projected service account
		// tokens every hour) and the file is tiny.
		tok, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("bearer token: %w", err)
		}
		t := strings.TrimSpace(string(tok))
		if t == "" {
			return "", fmt.Errorf("bearer token file %s is empty", f)
		}
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	detail := "HTTP " + resp.Status
	if resp.StatusCode >= p.spec.StatusMin && resp.StatusCode <= p.spec.StatusMax {
		return detail, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, bodySnippet))
	if b := printable(body); b != "" {
		detail += ": " + b
	}
	return detail, fmt.Errorf("status %d, want %d-%d", resp.StatusCode, p.spec.StatusMin, p.spec.StatusMax)
}

// printable makes b one line of valid text for logs and /status.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
