package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestManifestCmd: the YAML goes to stdout (byte for byte the shipped
// deploy/ file for its example), warnings to stderr, and bad input is a
// usage error (exit 2) that says what is wrong.
func TestManifestCmd(t *testing.T) {
	var out, errOut bytes.Buffer
	err := dispatch(context.Background(), []string{"manifest", "static-pod", "--config", "../../examples/vrrp-apiserver.yaml"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	want, err := os.ReadFile("../../deploy/vrrp/static-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The header names the config as given on the command line.
	got := strings.Replace(out.String(), "../../examples/", "examples/", 1)
	if got != string(want) {
		t.Errorf("stdout is not deploy/vrrp/static-pod.yaml:\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	err = dispatch(context.Background(), []string{"manifest", "static-pod", "--config", "../../examples/vrrp-lb-pair.yaml"}, &out, &errOut)
	if err != nil || !strings.Contains(errOut.String(), "warning: checks[1].exec runs /usr/bin/killall") {
		t.Errorf("err %v, stderr %q: want the exec check's warning", err, errOut.String())
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"manifest"}, "say static-pod or daemonset"},
		{[]string{"manifest", "deployment", "--config", "x"}, `unknown kind "deployment"`},
		{[]string{"manifest", "daemonset"}, "--config FILE is required"},
		{[]string{"manifest", "daemonset", "--config", "../../examples/nope.yaml"}, "no such file"},
		{[]string{"manifest", "static-pod", "--config", "../../examples/lease.yaml", "--node-selector", "a=b"}, "are for daemonset"},
		{[]string{"manifest", "daemonset", "--config", "../../examples/lease.yaml"}, `lease.kubeconfig "/etc/vipd/vipd.kubeconfig": a DaemonSet uses its ServiceAccount`},
		{[]string{"manifest", "daemonset", "--config", "../../examples/static.yaml", "--node-selector", "nokey"}, "want key=value"},
		{[]string{"manifest", "daemonset", "--config", "../../examples/static.yaml", "--namespace", "Bad"}, `namespace "Bad"`},
	} {
		out.Reset()
		errOut.Reset()
		err := dispatch(context.Background(), c.args, &out, &errOut)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want exit 2 with %q", c.args, err, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote to stdout on error:\n%s", c.args, out.String())
		}
	}
}
