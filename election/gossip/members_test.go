package gossip

import (
	"maps"
	"testing"
)

func TestMembersByState(t *testing.T) {
	e, err := New(Options{Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"alive": 1, "left": 0, "failed": 0}
	if got := e.MembersByState(); !maps.Equal(got, want) {
		t.Errorf("alone: %v, want %v", got, want)
	}
	e.mu.Lock()
	e.members["b"] = &member{name: "b"}
	e.members["c"] = &member{name: "c"}
	e.gone["d"] = "member-left:d"
	e.gone["e"] = "member-failed:e"
	e.gone["f"] = "member-failed:f"
	e.mu.Unlock()
	want = map[string]int{"alive": 3, "left": 1, "failed": 2}
	if got := e.MembersByState(); !maps.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}
