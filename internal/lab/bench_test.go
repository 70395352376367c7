package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkNewClose: cost of one 3-node lab (build + teardown).
func BenchmarkNewClose(b *testing.B) {
	Require(b)
	for b.Loop() {
		l, err := NewStandalone(context.Background(), Options{Nodes: 3})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeBaseline: a steady VIP probed for 1 s per op; reports loss
// and RTT quantiles, i.e. the resolution of interruption measurements.
func BenchmarkProbeBaseline(b *testing.B) {
	l := New(b, Options{Nodes: 1})
	if err := l.StartResponders(7100); err != nil {
		b.Fatal(err)
	}
	vip := l.VIPv4(10)
	if err := l.Nodes[0].AddAddress(netip.PrefixFrom(vip, 32)); err != nil {
		b.Fatal(err)
	}
	var sent, got int
	var p50, p99 time.Duration
	for b.Loop() {
		p, err := l.StartProbe(context.Background(), vip, 7100, 10*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		r := p.Stop()
		sent += r.Sent
		got += len(r.Replies)
		p50, p99 = max(p50, r.RTT(0.5)), max(p99, r.RTT(0.99))
	}
	b.ReportMetric(float64(sent-got)/float64(sent)*100, "%loss")
	b.ReportMetric(float64(p50.Microseconds()), "p50-rtt-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-rtt-µs")
}
