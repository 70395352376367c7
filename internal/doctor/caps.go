package doctor

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Capability bits (linux/capability.h).
const (
	capNetAdmin = 12 // bind VIPs, SO_RCVBUFFORCE
	capNetRaw   = 13 // VRRP raw sockets, ARP and NDP announcements
)

// capSets reads the effective and permitted sets from /proc/<pid>/status.
func capSets(status []byte) (eff, prm uint64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "CapEff" && k != "CapPrm") {
			continue
		}
		n, perr := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("%s: %q is not a hex capability set", k, strings.TrimSpace(v))
		}
		if k == "CapEff" {
			eff = n
		} else {
			prm = n
		}
		found++
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("no CapEff/CapPrm lines")
	}
	return eff, prm, nil
}

// judgeCapabilities decides from the doctor process's own sets: vipd is
// not capability-aware (it never raises a permitted capability), so what it
// can do is its effective set, and a doctor run the way vipd runs has the
// same sets.
func judgeCapabilities(eff, prm uint64) Line {
	const check = "capabilities"
	var missing, notEff []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{capNetAdmin, "CAP_NET_ADMIN"}, {capNetRaw, "CAP_NET_RAW"}} {
		switch {
		case eff&(1<<c.bit) != 0:
		case prm&(1<<c.bit) != 0:
			notEff = append(notEff, c.name)
		default:
			missing = append(missing, c.name)
		}
	}
	if len(missing) == 0 && len(notEff) == 0 {
		return Line{OK, check, "CAP_NET_ADMIN and CAP_NET_RAW are effective in this process (run doctor with the privileges vipd runs with, and this holds for vipd too)", ""}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, strings.Join(missing, " and ")+" missing")
	}
	if len(notEff) > 0 {
		parts = append(parts, strings.Join(notEff, " and ")+" permitted but not effective")
	}
	return Line{Fail, check, strings.Join(parts, "; ") + ": vipd cannot bind VIPs (NET_ADMIN) or send VRRP, ARP and NDP (NET_RAW)",
		"run vipd as root, or grant them: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW (and CapabilityBoundingSet), a pod securityContext.capabilities.add: [NET_ADMIN, NET_RAW] with hostNetwork: true; run doctor the same way"}
}

func (r *run) checkCapabilities() Line {
	b, err := r.deps.ReadFile("/proc/self/status")
	if err == nil {
		var eff, prm uint64
		if eff, prm, err = capSets(b); err == nil {
			return judgeCapabilities(eff, prm)
		}
	}
	return Line{Warn, "capabilities", "cannot read /proc/self/status: " + err.Error(), "check by hand that vipd has CAP_NET_ADMIN and CAP_NET_RAW"}
}
