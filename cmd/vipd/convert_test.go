package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

func TestConvertKubeVIP(t *testing.T) {
	in := filepath.Join("..", "..", "internal", "kubevip", "testdata", "arp-static-pod.yaml")
	var out, errOut bytes.Buffer
	if err := dispatch(t.Context(), []string{"convert", "kube-vip", in, "--mode", "vrrp", "--vrid", "7"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "mode: vrrp") || !strings.Contains(out.String(), "vrid: 7") {
		t.Errorf("stdout:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), in+": note: ") {
		t.Errorf("stderr:\n%s", errOut.String())
	}
	// What it printed is a config vipd reads (the kubevip package's tests
	// validate it against a fake host; this one has no eth0 to rely on).
	if _, err := config.Parse(out.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert"}, 2, "say what to convert from"},
		{[]string{"convert", "haproxy"}, 2, `unknown source "haproxy"`},
		{[]string{"convert", "kube-vip"}, 2, "FILE is required"},
		{[]string{"convert", "kube-vip", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"convert", "kube-vip", "--vrid", "300", "a"}, 2, "--vrid 300"},
		{[]string{"convert", "kube-vip", filepath.Join("..", "..", "internal", "kubevip", "testdata", "broken.yaml")}, 1, "broken.yaml: document 1: line 12"},
	} {
		var out, errOut bytes.Buffer
		err := dispatch(t.Context(), tc.args, &out, &errOut)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if err == nil || code != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v (exit %d), want exit %d and %q", tc.args, err, code, tc.code, tc.want)
		}
	}
}
