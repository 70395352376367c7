// Command vipd holds virtual IPs highly available: several nodes elect one
// owner per VIP group, the owner binds the VIPs and announces them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it, the VCS revision Go recorded in the binary is used. It must have no
// initialiser: the linker's -X sets the variable's data, and an initialiser
// that calls a function would overwrite it at start-up.
var version string

func init() {
	if version == "" {
		version = buildVersion()
	}
}

func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "dev"
	case dirty:
		return "dev-" + rev + "-dirty"
	}
	return "dev-" + rev
}

const usage = `vipd holds virtual IPs highly available.

Usage:
  vipd run --config FILE        hold the configured VIPs (needs CAP_NET_ADMIN and CAP_NET_RAW)
  vipd validate --config FILE   check a config without touching any interface
  vipd status [--addr HOST:PORT | --config FILE]
                                show who owns which VIP on this node
  vipd reload [--addr HOST:PORT | --config FILE]
                                make the running daemon re-read its config
                                (SIGHUP; an invalid file changes nothing)
  vipd convert keepalived [--config-id ID] FILE
                                print keepalived.conf as a vipd config
                                (warnings for what is not carried over)
  vipd convert kube-vip [--mode lease|vrrp|gossip] [--vrid N] [--peers A,B] FILE
                                print the vipd config for a kube-vip static pod
                                or DaemonSet manifest; differences on stderr
  vipd manifest static-pod|daemonset --config FILE [--image REF] [--namespace NS]
                                print the Kubernetes manifest that runs vipd with FILE
  vipd doctor --config FILE [--listen 3s]
                                preflight: interfaces, sysctls, capabilities, VRID
                                collisions, peers; exit 0 OK, 1 WARN, 2 FAIL
  vipd demo [--advert 100ms]    failover demo in a throw-away namespace lab (root)
  vipd chaos [--mode vrrp|lease|gossip] [--nodes 3] [--faults 20] [--seed N] [--json FILE]
                                seeded faults against N nodes in a namespace lab, invariants checked (root)
  vipd version                  print the version
`

// exitError carries a process exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vipd:", err)
		}
		os.Exit(code)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("a subcommand is required")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "status":
		return statusCmd(ctx, rest, stdout, stderr)
	case "reload":
		return reloadCmd(ctx, rest, stdout, stderr)
	case "convert":
		return convertCmd(rest, stdout, stderr)
	case "manifest":
		return manifestCmd(rest, stdout, stderr)
	case "doctor":
		return doctorCmd(ctx, rest, stdout, stderr)
	case "demo":
		return demoCmd(ctx, rest, stdout, stderr)
	case "chaos":
		return chaosCmd(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "vipd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q", cmd)}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vipd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
