package health

import (
	"context"
	"fmt"

	"github.com/vipd/vipd/internal/command"
)

// execDetailMax bounds an exec check's detail (its output, on one line).
const execDetailMax = 256

// execProber runs a command; exit 0 passes (keepalived's vrrp_script).
type execProber struct {
	argv []string
	user string
}

// newExecProber checks at build time what would otherwise fail every
// attempt: that the program exists (as given with '/', or in the child's
// PATH) and that the user exists. Each attempt still resolves both again,
// so a later fix on the system needs no reload.
func newExecProber(s Spec) (Prober, error) {
	if s.Exec == nil || len(s.Exec.Command) == 0 || s.Exec.Command[0] == "" {
		return nil, fmt.Errorf("check %q: exec: no command", s.Name)
	}
	if _, err := command.LookPath(s.Exec.Command[0]); err != nil {
		return nil, fmt.Errorf("check %q: exec: %w", s.Name, err)
	}
	if s.Exec.User != "" {
		if _, err := command.LookupUser(s.Exec.User); err != nil {
			return nil, fmt.Errorf("check %q: exec: %w", s.Name, err)
		}
	}
	return &execProber{argv: append([]string(nil), s.Exec.Command...), user: s.Exec.User}, nil
}

// Probe runs the command bounded by ctx (the runner's per-attempt
// timeout); on expiry the whole process group is killed. detail is the
// start of its output on one line, whether it passed or not.
func (p *execProber) Probe(ctx context.Context) (string, error) {
	r := command.Run(ctx, command.Options{Argv: p.argv, User: p.user})
	// r.Err is nil exactly on exit 0.
	return command.Summary(r.Output, execDetailMax), r.Err
}
