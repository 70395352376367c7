package config

import (
	"strings"
	"testing"
	"time"
)

func TestVerifyDefaults(t *testing.T) {
	c, err := Parse([]byte(leaseBase))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	v := c.Verify
	if *v.Interval != 2*time.Second || v.Window != 200*time.Millisecond || v.MaxRate != 20 || v.Reaction != "reannounce" {
		t.Errorf("defaults: %+v (interval %v)", v, *v.Interval)
	}
}

func TestVerifyValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"verify: {interval: 0s}", ""},
		{"verify: {interval: 1s, window: 50ms, maxRate: 1000, reaction: stepdown}", ""},
		{"verify: {reaction: none}", ""},
		{"verify: {interval: 100ms}", "verify.interval: 100ms: must be 0 (off) or between 500ms and 1h"},
		{"verify: {interval: 2h}", "verify.interval: 2h0m0s: must be 0 (off) or between 500ms and 1h"},
		{"verify: {window: 1ms}", "verify.window: 1ms: must be between 10ms and 5s"},
		{"verify: {interval: 1s, window: 1s}", "verify.window: 1s: must be less than verify.interval (1s)"},
		{"verify: {maxRate: -1}", "verify.maxRate: -1: must be between 1 and 1000"},
		{"verify: {maxRate: 5000}", "verify.maxRate: 5000: must be between 1 and 1000"},
		{"verify: {reaction: shoot}", `verify.reaction: "shoot": must be none, reannounce or stepdown`},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			c, err := Parse([]byte(leaseBase + tc.yaml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(fakeHost{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
