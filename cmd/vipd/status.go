package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/node"
)

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	addrFlag := fs.String("addr", "", "vipd's HTTP address (default: http.listen from --config, else "+config.DefaultHTTPListen+")")
	path := fs.String("config", "", "config file to read http.listen from")
	asJSON := fs.Bool("json", false, "print the raw /status JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := *addrFlag
	if target == "" && *path != "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		target = cfg.HTTP.Listen
	}
	if target == "" {
		target = config.DefaultHTTPListen
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is vipd running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st node.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decoding /status: %w", err)
	}
	printStatus(stdout, st, time.Now())
	return nil
}

func printStatus(w io.Writer, st node.Status, now time.Time) {
	healthy, ready := "yes", "yes"
	if !st.Healthy {
		healthy = "no (" + st.Unhealthy + ")"
	}
	if !st.Ready {
		ready = "no (" + st.NotReady + ")"
	}
	fmt.Fprintf(w, "node %s, mode %s, vipd %s\nhealthy: %s\nready: %s\n", st.Node, st.Mode, st.Version, healthy, ready)
	for _, p := range st.Unauthenticated {
		fmt.Fprintf(w, "WARNING: unauthenticated: %s\n", p)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tOWNER\tSINCE\tREASON\tVIPS")
	for _, g := range st.Groups {
		owner := "no"
		if g.Owner {
			owner = "yes"
		}
		var vips []string
		for _, v := range g.VIPs {
			s := v.Address + " on " + v.Interface
			if v.Bound {
				s += " (bound)"
			}
			if v.Error != "" {
				s += " (error: " + v.Error + ")"
			}
			// Owner verification (docs/verify.md): only what needs a look.
			if vf := v.Verify; vf != nil && vf.Result != "" && vf.Result != node.VerifyOK && vf.Result != node.VerifyUnowned {
				s += " (verify: " + vf.Result
				if len(vf.MACs) > 0 {
					s += " " + strings.Join(vf.MACs, "+")
				}
				s += ")"
			}
			vips = append(vips, s)
		}
		reason := g.Reason
		if g.Peer != "" {
			reason += ", owner " + g.Peer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\n", g.Name, owner, now.Sub(g.Since).Round(time.Second), reason, strings.Join(vips, ", "))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, g := range st.Groups {
		fmt.Fprintf(w, "group %s: %s\n", g.Name, candidacyLine(g))
	}
	if len(st.Checks) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tSTATE\tSINCE\tLAST ERROR / DETAIL")
		for _, c := range st.Checks {
			detail := c.LastError
			if detail == "" {
				detail = c.Detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\n", c.Name, c.State, now.Sub(c.Since).Round(time.Second), detail)
		}
		_ = tw.Flush()
	}
}

// candidacyLine is a group's effective priority and how it came about:
// "priority 40 = 100 base - 60 backend (failing); gate apiserver passing".
func candidacyLine(g node.GroupStatus) string {
	c := g.Candidacy
	var b strings.Builder
	state := "eligible"
	switch {
	case !g.Eligible:
		state = "not eligible"
	case g.Degraded:
		state = "degraded (last resort)"
	}
	fmt.Fprintf(&b, "%s, priority %d = %d base", state, c.Effective, c.Base)
	for _, w := range c.Weights {
		if w.Applied != 0 {
			fmt.Fprintf(&b, " %+d %s (%s)", w.Applied, w.Check, w.State)
		} else {
			fmt.Fprintf(&b, " (%+d %s: %s, not applied)", w.Weight, w.Check, w.State)
		}
	}
	if c.Effective != c.Base+sumApplied(c) {
		b.WriteString(", clamped to 1..254")
	}
	for _, gt := range c.Gates {
		fmt.Fprintf(&b, "; gate %s %s", gt.Check, gt.State)
		if gt.Error != "" {
			fmt.Fprintf(&b, " (%s)", gt.Error)
		}
	}
	if c.Held != "" {
		b.WriteString("; improvement " + c.Held)
	}
	if g.Why != "" {
		b.WriteString("; why: " + g.Why)
	}
	return b.String()
}

func sumApplied(c node.Breakdown) int {
	n := 0
	for _, w := range c.Weights {
		n += w.Applied
	}
	return n
}
