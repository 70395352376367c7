package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://198.51.100.1:6443
users:
- name: u
  user:
    token: t0ken
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`

func TestRESTConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // never in a pod here
	for _, tc := range []struct {
		name, kubeconfig, server, host, err string
	}{
		{name: "kubeconfig", kubeconfig: path, host: "https://198.51.100.1:6443"},
		{name: "server override", kubeconfig: path, server: "https://203.0.113.7:6443", host: "https://203.0.113.7:6443"},
		{name: "missing file", kubeconfig: filepath.Join(t.TempDir(), "nope"), err: "kubeconfig"},
		{name: "not in cluster", err: "does not run in a pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := RESTConfig(tc.kubeconfig, tc.server, "vipd-test")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tc.host || rc.UserAgent != "vipd-test" || rc.BearerToken != "t0ken" {
				t.Fatalf("host %q agent %q token %q", rc.Host, rc.UserAgent, rc.BearerToken)
			}
		})
	}
}
