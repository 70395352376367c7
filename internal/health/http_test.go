package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf for dnsName (server) or a client certificate.
func (ca *testCA) issue(t *testing.T, dnsName string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: dnsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{dnsName},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func probeOnce(t *testing.T, p Prober, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func httpSpec(h HTTP) Spec {
	return Spec{Name: "web", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, HTTP: &h}
}

// TestHTTPTLS: the apiserver case: https with the cluster CA, a client
// certificate the server requires, a rotating bearer token, and a Host
// that names the certificate while the URL names 127.0.0.1.
func TestHTTPTLS(t *testing.T) {
	const host = "api.internal.test"
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, "server ca"), newTestCA(t, "client ca"), newTestCA(t, "other ca")
	srvCert, srvKey := serverCA.issue(t, host, false)
	cliCert, cliKey := clientCA.issue(t, "vipd", true)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPool := x509.NewCertPool()
	clientPool.AddCert(clientCA.cert)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != host {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		want, _ := os.ReadFile(filepath.Join(dir, "server-token"))
		if r.Header.Get("Authorization") != "Bearer "+string(want) {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("ok"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	srv.StartTLS()
	defer srv.Close()

	caFile := writeFile(t, dir, "ca.pem", serverCA.pem)
	certFile := writeFile(t, dir, "client.pem", cliCert)
	keyFile := writeFile(t, dir, "client-key.pem", cliKey)
	tokenFile := writeFile(t, dir, "token", []byte("tok1\n"))
	writeFile(t, dir, "server-token", []byte("tok1"))
	full := HTTP{URL: srv.URL + "/readyz", CAFile: caFile, CertFile: certFile, KeyFile: keyFile, BearerTokenFile: tokenFile, Host: host}

	for _, tc := range []struct {
		name    string
		mod     func(h *HTTP)
		wantErr string // "" passes
	}{
		{"all set", func(*HTTP) {}, ""},
		{"no host: the certificate does not name 127.0.0.1", func(h *HTTP) { h.Host = "" }, "certificate"},
		{"no client certificate", func(h *HTTP) { h.CertFile, h.KeyFile = "", "" }, "certificate required"},
		{"system roots do not know the CA", func(h *HTTP) { h.CAFile = "" }, "unknown authority"},
		{"insecureSkipVerify", func(h *HTTP) { h.CAFile, h.Host, h.InsecureSkipVerify = "", host, true }, ""},
		{"no token", func(h *HTTP) { h.BearerTokenFile = "" }, "status 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := full
			tc.mod(&h)
			p, err := newHTTPProber(httpSpec(h))
			if err != nil {
				t.Fatal(err)
			}
			detail, err := probeOnce(t, p, 5*time.Second)
			if tc.wantErr == "" {
				if err != nil || detail != "HTTP 200 OK" {
					t.Errorf("probe: %q, %v; want a pass", detail, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("probe: %q, %v; want an error with %q", detail, err, tc.wantErr)
			}
		})
	}

	t.Run("token rotates", func(t *testing.T) {
		p, err := newHTTPProber(httpSpec(full))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "server-token", []byte("tok2"))
		detail, err := probeOnce(t, p, 5*time.Second)
		if err == nil || detail != "HTTP 401 Unauthorized: bad token" {
			t.Errorf("stale token: %q, %v; want HTTP 401 with the body", detail, err)
		}
		writeFile(t, dir, "token", []byte("tok2"))
		if detail, err := probeOnce(t, p, 5*time.Second); err != nil {
			t.Errorf("rotated token: %q, %v", detail, err)
		}
		writeFile(t, dir, "token", nil)
		if _, err := probeOnce(t, p, 5*time.Second); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("empty token file: %v", err)
		}
		writeFile(t, dir, "token", []byte("tok1"))
		writeFile(t, dir, "server-token", []byte("tok1"))
	})

	t.Run("CA file replaced", func(t *testing.T) {
		h := full
		h.CAFile = writeFile(t, dir, "rotating-ca.pem", otherCA.pem)
		p, err := newHTTPProber(httpSpec(h))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := probeOnce(t, p, 5*time.Second); err == nil {
			t.Fatal("the wrong CA verified the server")
		}
		writeFile(t, dir, "rotating-ca.pem", serverCA.pem)
		// Same size is likely (same key type): make the mtime differ for sure.
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(h.CAFile, later, later); err != nil {
			t.Fatal(err)
		}
		if detail, err := probeOnce(t, p, 5*time.Second); err != nil {
			t.Errorf("after the CA file changed: %q, %v", detail, err)
		}
		os.Remove(h.CAFile)
		if _, err := probeOnce(t, p, 5*time.Second); err == nil {
			t.Error("passed with the CA file gone")
		}
	})
}

func TestHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if code >= 300 && code < 400 {
			http.Redirect(w, r, "/200", code)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(strings.Repeat("line one\nline two é\x00 ", 20)))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		code, lo, hi int
		pass         bool
	}{
		{200, 0, 0, true}, // defaults 200-399
		{204, 0, 0, true},
		{302, 0, 0, true}, // not followed: the 302 counts
		{302, 200, 299, false},
		{404, 0, 0, false},
		{503, 0, 0, false},
		{503, 500, 503, true},
		{200, 204, 204, false},
	} {
		t.Run(strconv.Itoa(tc.code)+"in"+strconv.Itoa(tc.lo)+"-"+strconv.Itoa(tc.hi), func(t *testing.T) {
			p, err := newHTTPProber(httpSpec(HTTP{URL: srv.URL + "/" + strconv.Itoa(tc.code), StatusMin: tc.lo, StatusMax: tc.hi}))
			if err != nil {
				t.Fatal(err)
			}
			detail, err := probeOnce(t, p, 5*time.Second)
			if (err == nil) != tc.pass {
				t.Fatalf("detail %q err %v, want pass %v", detail, err, tc.pass)
			}
			if !strings.HasPrefix(detail, "HTTP "+strconv.Itoa(tc.code)) {
				t.Errorf("detail %q does not start with the first response's status", detail)
			}
			if !tc.pass && tc.code >= 400 {
				body := strings.TrimPrefix(detail, "HTTP "+strconv.Itoa(tc.code)+" "+http.StatusText(tc.code)+": ")
				if !strings.HasPrefix(body, "line one line two é") || len(body) > bodySnippet || strings.ContainsAny(body, "\n\x00") {
					t.Errorf("detail body %q: want the first %d bytes on one line", body, bodySnippet)
				}
			}
		})
	}
}

func TestHTTPHungServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p, err := newHTTPProber(httpSpec(HTTP{URL: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = probeOnce(t, p, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("hung server: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("attempt took %s with a 200ms timeout", d)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p, err := newTCPProber(Spec{TCP: &TCP{Address: ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	if detail, err := probeOnce(t, p, 5*time.Second); err != nil || detail != "connected to "+ln.Addr().String() {
		t.Errorf("open port: %q, %v", detail, err)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	p, err = newTCPProber(Spec{TCP: &TCP{Address: addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probeOnce(t, p, 5*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed port: %v, want connection refused", err)
	}
}
