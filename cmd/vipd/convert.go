package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vipd/vipd/internal/keepalived"
)

// convertCmd dispatches `vipd convert SOURCE FILE`: each source format has
// its own function and one line here.
func convertCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("convert: say what to convert from: keepalived or kube-vip")}
	}
	switch args[0] {
	case "keepalived":
		return convertKeepalivedCmd(args[1:], stdout, stderr)
	case "kube-vip":
		return convertKubeVIPCmd(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("convert: unknown source %q", args[0])}
}

// convertKeepalivedCmd: vipd convert keepalived [--config-id ID] FILE. The
// YAML goes to stdout, every directive not carried over to stderr.
func convertKeepalivedCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert keepalived", stderr)
	host, _ := os.Hostname()
	id := fs.String("config-id", host, "keepalived's -i: which @id lines apply (default: the host name, as keepalived)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("usage: vipd convert keepalived [--config-id ID] FILE")}
	}
	tree, err := keepalived.ParseFile(fs.Arg(0), keepalived.Options{ConfigID: *id})
	if err != nil {
		return err
	}
	res, err := keepalived.Convert(tree)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	out, err := res.YAML()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
