package main

import (
	"errors"
	"fmt"
	"io"
)

// convertCmd dispatches `vipd convert SOURCE FILE`: each source format has
// its own file (convert_*.go) and one line here.
func convertCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("convert: say what to convert from: kube-vip")}
	}
	switch args[0] {
	case "kube-vip":
		return convertKubeVIPCmd(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("convert: unknown source %q", args[0])}
}
