package vrrp_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

func TestLabDebug(t *testing.T) {
	if os.Getenv("VRRP_DEBUG") == "" {
		t.Skip()
	}
	l := lab.New(t, lab.Options{Nodes: 3})
	bin := lab.BuildVipd(t)
	cap, _ := l.Capture("-c", "40", "proto", "112")
	for i, prio := range []int{150, 100, 50} {
		h := l.Nodes[i]
		if _, err := l.StartVipd(h, bin, vipdConfig(h.Name, prio, l.VIPv4(1), l.VIPv6(1), "")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	for _, h := range l.Nodes {
		r, err := h.HTTPClient().Get("http://127.0.0.1:9610/status")
		if err != nil {
			t.Log(err)
			continue
		}
		b, _ := io.ReadAll(r.Body)
		t.Logf("%s: %s", h.Name, b)
	}
	t.Log(cap.Output())
}
