package arp

import (
	"testing"

	"github.com/mdlayher/ndp"
)

// Announcing is not a hot path (a handful per second at most); these only
// show that building and sending costs microseconds, not milliseconds.

func BenchmarkGratuitousARP(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := GratuitousARP(testMAC, testV4); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnsolicitedNA(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		na, err := UnsolicitedNA(testMAC, testV6, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ndp.MarshalMessage(na); err != nil {
			b.Fatal(err)
		}
	}
}
