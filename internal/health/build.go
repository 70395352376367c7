package health

import (
	"errors"
	"fmt"
)

// Kind names the check's kind ("http", "tcp", ...), "" if none is set.
func (s Spec) Kind() string {
	switch {
	case s.HTTP != nil:
		return "http"
	case s.TCP != nil:
		return "tcp"
	case s.Exec != nil:
		return "exec"
	case s.Endpoints != nil:
		return "endpoints"
	case s.Interface != nil:
		return "interface"
	case s.File != nil:
		return "file"
	}
	return ""
}

// buildCheck makes the Prober or Watcher of s.
func buildCheck(s Spec) (Prober, Watcher, error) {
	n := 0
	for _, set := range []bool{s.HTTP != nil, s.TCP != nil, s.Exec != nil, s.Endpoints != nil, s.Interface != nil, s.File != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, nil, fmt.Errorf("must set exactly one kind of check (has %d)", n)
	}
	var (
		p   Prober
		w   Watcher
		err error
	)
	switch {
	case s.HTTP != nil:
		p, err = newHTTPProber(s)
	case s.TCP != nil:
		p, err = newTCPProber(s)
	case s.Exec != nil:
		p, err = newExecProber(s)
	case s.Endpoints != nil:
		w, err = newEndpointsWatcher(s)
	case s.Interface != nil:
		p, err = newInterfaceProber(s)
	case s.File != nil:
		p, err = newFileProber(s)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Kind(), err)
	}
	if p == nil && w == nil {
		return nil, nil, errors.New(s.Kind() + ": built nothing")
	}
	return p, w, nil
}
