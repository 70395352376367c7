package health

import (
	"encoding/json"
	"testing"
	"time"
)

// /status carries states by name; `vipd status` and `vipd reload` decode
// them back.
func TestStateJSONRoundTrip(t *testing.T) {
	for _, st := range []State{Unknown, Passing, Failing} {
		in := Result{Name: "svc", State: st, Since: time.Unix(1, 0).UTC(), LastError: "status 503"}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Result
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if out != in {
			t.Errorf("round trip of %s: got %+v, want %+v", b, out, in)
		}
	}
	var s State
	if err := json.Unmarshal([]byte(`"sick"`), &s); err == nil {
		t.Error(`decoding "sick" as a State: no error`)
	}
}
