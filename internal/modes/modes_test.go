package modes

import (
	"slices"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

// The config's mode table and this registry are the two places a mode is
// listed; they must agree.
func TestRegistryMatchesConfig(t *testing.T) {
	if got, want := Names(), config.ModeNames(); !slices.Equal(got, want) {
		t.Fatalf("modes registry %v, config mode table %v: register the mode in both", got, want)
	}
}
