package kubetest

import (
	"context"
	"sync"
	"time"
)

// One control plane per test package, started by the first test that asks
// (so `go test -run Unit` pays nothing) and stopped by Main.
var shared struct {
	once sync.Once
	cp   *ControlPlane
	err  error
	took time.Duration
}

// Main is the body of TestMain for packages using Shared:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
// (When TestMain returns, the testing package exits with m.Run's code.)
func Main(m interface{ Run() int }) int {
	defer func() {
		if shared.cp != nil {
			shared.cp.Stop()
		}
	}()
	return m.Run()
}

// Shared returns the package's loopback control plane, starting it on first
// use. It skips (or fails under VIPD_REQUIRE_LAB=1) when binaries are missing.
// Tests must not stop or restart it; each test uses its own Lease names.
func Shared(t TB) *ControlPlane {
	t.Helper()
	Require(t)
	shared.once.Do(func() {
		start := time.Now()
		shared.cp, shared.err = Start(context.Background(), Options{})
		shared.took = time.Since(start)
		if shared.err == nil {
			t.Logf("control plane (etcd + kube-apiserver) ready in %s at %s", shared.took.Round(time.Millisecond), shared.cp.URL)
		}
	})
	if shared.err != nil {
		t.Fatalf("starting control plane: %v", shared.err)
	}
	return shared.cp
}
