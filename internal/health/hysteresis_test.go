package health

import "testing"

func TestStep(t *testing.T) {
	// seq is a run of attempts ('+' pass, '-' fail); want is the State after
	// each one ('u', 'p', 'f').
	tests := []struct {
		name       string
		rise, fall int
		seq, want  string
	}{
		{"rise 2 from unknown", 2, 2, "++", "up"},
		{"fall 2 from unknown", 2, 2, "--", "uf"},
		{"unknown: alternating never settles", 2, 2, "+-+-+-", "uuuuuu"},
		{"unknown: first threshold wins (fail)", 3, 2, "++--", "uuuf"},
		{"unknown: first threshold wins (pass)", 2, 3, "--++", "uuup"},
		{"one failure does not fail a passing check", 2, 2, "++-+-+", "uppppp"},
		{"fall failures in a row do", 2, 2, "++-+--", "uppppf"},
		{"one pass does not raise a failing check", 2, 2, "--+-+-", "ufffff"},
		{"rise passes in a row do", 2, 2, "--+-++", "uffffp"},
		{"rise 1 fall 1 follows each attempt", 1, 1, "+-+-", "pfpf"},
		{"zero thresholds count as 1", 0, 0, "+-", "pf"},
		{"long run saturates and still falls in fall", 1, 3, "++++++++---", "ppppppppppf"},
		{"rise 3", 3, 1, "-++-+++", "ffffffp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.seq) != len(tc.want) {
				t.Fatalf("bad table: seq %q want %q", tc.seq, tc.want)
			}
			var c counters
			got := make([]byte, len(tc.seq))
			for i := range tc.seq {
				c = step(c, tc.seq[i] == '+', tc.rise, tc.fall)
				got[i] = "upf"[c.State]
			}
			if string(got) != tc.want {
				t.Errorf("seq %s rise %d fall %d: states %s, want %s", tc.seq, tc.rise, tc.fall, got, tc.want)
			}
		})
	}
}
