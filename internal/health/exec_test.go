package health

import (
	"context"
	"os/user"
	"strings"
	"testing"
	"time"
)

func execSpec(user string, argv ...string) Spec {
	return Spec{Name: "x", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, Exec: &Exec{Command: argv, User: user}}
}

func TestExecProber(t *testing.T) {
	for _, tc := range []struct {
		name       string
		argv       []string
		timeout    time.Duration
		wantErr    string
		wantDetail string
	}{
		{"pass", []string{"/bin/sh", "-c", "echo '  all good'; echo second line"}, time.Minute, "", "all good second line"},
		{"fail", []string{"sh", "-c", "echo 'apiserver down' >&2; exit 2"}, time.Minute, "exit status 2", "apiserver down"},
		{"timeout", []string{"sh", "-c", "echo trying; sleep 1000"}, 200 * time.Millisecond, "timed out after", "trying"},
		{"long output", []string{"sh", "-c", "head -c 10000 /dev/zero | tr '\\0' y"}, time.Minute, "", strings.Repeat("y", execDetailMax)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newExecProber(execSpec("", tc.argv...))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			detail, err := p.Probe(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if detail != tc.wantDetail {
				t.Errorf("detail %q, want %q", detail, tc.wantDetail)
			}
		})
	}
}

func TestExecProberTimeoutMessage(t *testing.T) {
	p, err := newExecProber(execSpec("", "sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "process group killed") {
		t.Errorf("err %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("probe took %s", took)
	}
}

func TestExecProberBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Spec
		want string
	}{
		{"missing absolute", execSpec("", "/nonexistent/check.sh"), "/nonexistent/check.sh"},
		{"missing in PATH", execSpec("", "vipd-no-such-check"), "vipd-no-such-check"},
		{"unknown user", execSpec("vipd-no-such-user", "true"), "vipd-no-such-user"},
		{"no command", execSpec(""), "no command"},
		{"no exec", Spec{Name: "x"}, "no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newExecProber(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to name %q", err, tc.want)
			}
		})
	}
	if _, err := user.Lookup("nobody"); err == nil {
		if _, err := newExecProber(execSpec("nobody", "true")); err != nil {
			t.Errorf("user nobody: %v", err)
		}
	}
}
