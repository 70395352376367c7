// Package kubetest runs a real Kubernetes control plane (Debian's etcd and a
// kube-apiserver built by tools/kube-apiserver/build.sh) for Lease-mode
// integration and lab tests.
//
// It is hand-written rather than controller-runtime's envtest (which works
// with the same binaries) to keep controller-runtime out of go.mod, and
// because the lab needs things envtest does not offer: start the servers
// inside a network namespace, bind a lab address, stop and restart the API
// server under running clients.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Process is a started server process; *lab.Process satisfies it.
type Process interface {
	Signal(os.Signal) error
	Wait(timeout time.Duration) (exited bool, err error)
}

// Starter starts a long-running process (e.g. inside a lab namespace).
type Starter func(name string, args ...string) (Process, error)

// Options configures a control plane. The zero value runs everything on
// 127.0.0.1 with free ports, as children of the test process.
type Options struct {
	// Address the servers listen on. Default 127.0.0.1 (free ports are picked);
	// otherwise fixed ports 2379/2380/2381 and 6443 are used.
	Address string
	// Start starts etcd and kube-apiserver. Default: exec as a child of this
	// process, killed if this process dies, output to Dir/<name>.log.
	Start Starter
	// Dial, when set, is how clients (and the readiness check) reach the
	// API server, e.g. from inside a lab namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Dir holds certificates, data and logs. Default: a new temporary
	// directory removed by Stop.
	Dir string
}

// Users with static tokens (tokens.csv). Tokens are random per control plane.
const (
	// AdminUser is in system:masters.
	AdminUser = "admin"
	// VipdUser is what the ServiceAccount "vipd" in kube-system authenticates
	// as, so deploy/lease/rbac.yaml's RoleBinding applies to its token.
	VipdUser = "system:serviceaccount:kube-system:vipd"
)

// ControlPlane is a running etcd + kube-apiserver.
type ControlPlane struct {
	// URL of the API server, e.g. https://127.0.0.1:41234.
	URL string
	// CAFile verifies the API server's self-signed serving certificate.
	CAFile string
	// AdminToken and VipdToken authenticate AdminUser and VipdUser.
	AdminToken, VipdToken string
	// AdminKubeconfig and VipdKubeconfig are kubeconfig files for them.
	AdminKubeconfig, VipdKubeconfig string

	o         Options
	ownDir    bool
	apiArgs   []string
	apiBin    string
	mu        sync.Mutex
	etcd, api Process
}

// Binaries locates etcd and kube-apiserver: env VIPD_ETCD or `etcd` on PATH;
// env VIPD_KUBE_APISERVER or the cache path tools/kube-apiserver/build.sh
// writes. The error says how to get what is missing.
func Binaries() (etcd, apiserver string, err error) {
	etcd = os.Getenv("VIPD_ETCD")
	if etcd == "" {
		if etcd, err = exec.LookPath("etcd"); err != nil {
			return "", "", errors.New("etcd not found: install Debian's etcd-server (apt-get install etcd-server) or set VIPD_ETCD")
		}
	}
	apiserver = os.Getenv("VIPD_KUBE_APISERVER")
	if apiserver == "" {
		apiserver, err = cachedAPIServer()
		if err != nil {
			return "", "", err
		}
	}
	if _, err := os.Stat(apiserver); err != nil {
		return "", "", fmt.Errorf("kube-apiserver: %w", err)
	}
	return etcd, apiserver, nil
}

// cachedAPIServer mirrors build.sh: the cache key is sha256(go.mod+go.sum).
func cachedAPIServer() (string, error) {
	dir, err := toolsDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	bin := filepath.Join(cache, "vipd", "kube-apiserver-"+hex.EncodeToString(h.Sum(nil))[:16], "kube-apiserver")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kube-apiserver not built: run tools/kube-apiserver/build.sh (≈4 min once, then cached) or set VIPD_KUBE_APISERVER (looked for %s)", bin)
	}
	return bin, nil
}

// toolsDir finds tools/kube-apiserver by walking up from the working
// directory (go test runs in the package directory).
func toolsDir() (string, error) {
	root, err := repoDir("tools/kube-apiserver/build.sh")
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "tools", "kube-apiserver"), nil
}

// repoDir finds the nearest directory at or above the working directory
// that holds rel.
func repoDir(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, rel)); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s not found above %s", rel, wd)
		}
	}
}

// TB is the part of testing.TB this package uses; *testing.T and *testing.B
// satisfy it. Declared here so that vipd's binary, which starts a control
// plane for `vipd chaos --mode lease`, does not link the testing package.
type TB interface {
	Helper()
	Context() context.Context
	Logf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
}

// Require returns nil if the binaries are present; otherwise it skips tb with
// the reason, or fails it when VIPD_REQUIRE_LAB=1 (CI must not skip).
func Require(tb TB) {
	tb.Helper()
	if os.Getenv("VIPD_SKIP_LAB") == "1" { // unit-test-only pass (scripts/test, -race)
		tb.Skip("VIPD_SKIP_LAB=1: real control plane tests skipped")
	}
	if _, _, err := Binaries(); err != nil {
		if os.Getenv("VIPD_REQUIRE_LAB") == "1" {
			tb.Fatalf("real control plane required (VIPD_REQUIRE_LAB=1): %v", err)
		}
		tb.Skipf("no real control plane: %v", err)
	}
}

// Start starts etcd and kube-apiserver and waits until /readyz is ok.
func Start(ctx context.Context, o Options) (_ *ControlPlane, err error) {
	etcdBin, apiBin, err := Binaries()
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{o: o, apiBin: apiBin}
	if cp.o.Dir == "" {
		if cp.o.Dir, err = os.MkdirTemp("", "vipd-kubetest-"); err != nil {
			return nil, err
		}
		cp.ownDir = true
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if cp.o.Address == "" {
		cp.o.Address = "127.0.0.1"
	}
	if cp.o.Start == nil {
		cp.o.Start = cp.execStart
	}
	ports := []int{2379, 2380, 2381, 6443}
	if cp.o.Address == "127.0.0.1" {
		if ports, err = freePorts(4); err != nil {
			return nil, err
		}
	}
	dir := cp.o.Dir
	if err := cp.writeCredentials(); err != nil {
		return nil, err
	}

	a := cp.o.Address
	client := fmt.Sprintf("http://%s:%d", a, ports[0])
	peer := fmt.Sprintf("http://%s:%d", a, ports[1])
	if cp.etcd, err = cp.o.Start(etcdBin,
		"--name=vipd-test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=vipd-test="+peer,
		fmt.Sprintf("--listen-metrics-urls=http://%s:%d", a, ports[2]),
		"--log-level=warn",
	); err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	cp.URL = fmt.Sprintf("https://%s", net.JoinHostPort(a, strconv.Itoa(ports[3])))
	cp.CAFile = filepath.Join(dir, "certs", "apiserver.crt")
	cp.apiArgs = []string{
		"--etcd-servers=" + client,
		"--bind-address=" + a, "--advertise-address=" + a, "--secure-port=" + strconv.Itoa(ports[3]),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := cp.writeKubeconfigs(); err != nil {
		return nil, err
	}
	return cp, nil
}

// StartAPIServer (re)starts kube-apiserver with the same port, certificates
// and etcd, and waits until it is ready. Used to take the API server away
// from running clients and give it back.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.api != nil {
		return errors.New("kube-apiserver is already running")
	}
	p, err := cp.o.Start(cp.apiBin, cp.apiArgs...)
	if err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	cp.api = p
	return cp.waitReady(ctx, p)
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after 10s); etcd keeps
// the state.
func (cp *ControlPlane) StopAPIServer() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	stop(cp.api)
	cp.api = nil
}

// KillAPIServer stops kube-apiserver with SIGKILL (connections reset, no
// graceful termination).
func (cp *ControlPlane) KillAPIServer() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.api != nil {
		_ = cp.api.Signal(syscall.SIGKILL)
		_, _ = cp.api.Wait(10 * time.Second)
	}
	cp.api = nil
}

// Stop stops both servers and removes the directory if Start created it.
func (cp *ControlPlane) Stop() {
	cp.mu.Lock()
	stop(cp.api)
	stop(cp.etcd)
	cp.api, cp.etcd = nil, nil
	cp.mu.Unlock()
	if cp.ownDir {
		_ = os.RemoveAll(cp.o.Dir)
	}
}

func stop(p Process) {
	if p == nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	if exited, _ := p.Wait(10 * time.Second); !exited {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait(5 * time.Second)
	}
}

// RESTConfig returns a client config for the given token (AdminToken,
// VipdToken), honouring Options.Dial.
func (cp *ControlPlane) RESTConfig(token string) *rest.Config {
	c := &rest.Config{Host: cp.URL, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: cp.CAFile}, QPS: 100, Burst: 200}
	if cp.o.Dial != nil {
		c.Dial = cp.o.Dial
	}
	return c
}

// Client returns a clientset for the given token.
func (cp *ControlPlane) Client(token string) (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(cp.RESTConfig(token))
}

func (cp *ControlPlane) waitReady(ctx context.Context, p Process) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	if cp.o.Dial != nil {
		tr.DialContext = cp.o.Dial
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var last string
	for {
		if exited, err := p.Wait(0); exited {
			return fmt.Errorf("kube-apiserver exited: %v%s", err, cp.logTail("kube-apiserver"))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+cp.AdminToken)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (last: %s)%s", last, cp.logTail("kube-apiserver"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (cp *ControlPlane) writeCredentials() error {
	dir := cp.o.Dir
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return err
	}
	cp.AdminToken, cp.VipdToken = randToken(), randToken()
	tokens := fmt.Sprintf("%s,%s,admin-uid,system:masters\n%s,%s,vipd-uid,\"system:serviceaccounts,system:serviceaccounts:kube-system\"\n",
		cp.AdminToken, AdminUser, cp.VipdToken, VipdUser)
	return os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600)
}

func (cp *ControlPlane) writeKubeconfigs() error {
	for _, u := range []struct {
		name, token string
		path        *string
	}{{"admin", cp.AdminToken, &cp.AdminKubeconfig}, {"vipd", cp.VipdToken, &cp.VipdKubeconfig}} {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: cp.URL, CertificateAuthority: cp.CAFile}
		cfg.AuthInfos[u.name] = &clientcmdapi.AuthInfo{Token: u.token}
		cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: u.name}
		cfg.CurrentContext = "test"
		*u.path = filepath.Join(cp.o.Dir, u.name+".kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, *u.path); err != nil {
			return err
		}
	}
	return nil
}

func randToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// execProcess is the default Starter's process: a child that gets SIGKILL
// when this process dies, so a crashed test leaves no server behind.
type execProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (cp *ControlPlane) execStart(name string, args ...string) (Process, error) {
	log, err := os.OpenFile(filepath.Join(cp.o.Dir, filepath.Base(name)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig fires when the forking thread exits; pin it for the fork.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &execProcess{cmd: cmd, done: make(chan struct{})}
	started := make(chan error)
	go func() {
		// The forking thread stays locked and alive until the child exits,
		// so Pdeathsig means "the test process died" (golang/go#27505).
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err != nil {
			return
		}
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		log.Close()
		return nil, err
	}
	return p, nil
}

func (p *execProcess) Signal(s os.Signal) error { return p.cmd.Process.Signal(s) }

func (p *execProcess) Wait(timeout time.Duration) (bool, error) {
	if timeout <= 0 {
		select {
		case <-p.done:
			return true, p.err
		default:
			return false, nil
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		return false, nil
	}
}

func (cp *ControlPlane) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(cp.o.Dir, name+".log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\n--- " + name + " log tail ---\n" + strings.TrimSpace(string(b))
}
