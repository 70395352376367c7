package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type src struct {
	healthy, ready bool
}

func (s src) Healthy() (bool, string) { return s.healthy, "VIP refresh loop is stuck" }
func (s src) Ready() (bool, string)   { return s.ready, "not eligible: web: link eth0 down" }
func (s src) Status() any             { return map[string]any{"node": "n1"} }

func TestEndpoints(t *testing.T) {
	tests := []struct {
		src      src
		metrics  bool
		path     string
		code     int
		contains string
	}{
		{src{true, true}, false, "/healthz", 200, "ok"},
		{src{false, true}, false, "/healthz", 503, "VIP refresh loop is stuck"},
		{src{true, true}, false, "/readyz", 200, "ok"},
		{src{true, false}, false, "/readyz", 503, "link eth0 down"},
		{src{true, false}, false, "/status", 200, `"node": "n1"`},
		{src{true, true}, false, "/nope", 404, ""},
		{src{true, true}, false, "/metrics", 404, ""},
		{src{true, true}, true, "/metrics", 200, "vipd_up 1"},
	}
	for _, tc := range tests {
		var mh http.Handler
		if tc.metrics {
			mh = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "vipd_up 1\n") })
		}
		srv := httptest.NewServer(Handler(tc.src, mh))
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s (%+v): %d %q, want %d containing %q", tc.path, tc.src, resp.StatusCode, body, tc.code, tc.contains)
		}
	}
}
