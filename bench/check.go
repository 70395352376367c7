package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lab"
)

// Health-check scenarios (issue #12): every node runs two small HTTP
// services (internal/lab.Service); each implementation tracks one as a gate
// and the other with weight -60. A round turns one of them 503 on node1 and
// measures from that moment until the new owner answers.
const (
	gatePort   = 7401
	weightPort = 7402
	// checkWeight is keepalived's classic weight: 150-60 = 90 puts node1
	// below node2 (100) in VRRP and gossip.
	checkWeight = -60
)

// checkSettings are the checks' timing and policy, the same for every
// implementation (keepalived: vrrp_script interval, timeout, fall, rise).
type checkSettings struct {
	interval, timeout time.Duration
	fall, rise        int
	// policy is the groups' whenNoneHealthy (vipd only): "release" makes a
	// failing gate ineligible (VRRP priority 0, Lease release, gossip
	// withdraw), "keep" makes it a degraded last resort.
	policy string
}

func (c checkSettings) String() string {
	return fmt.Sprintf("HTTP check every %s (timeout %s), fall %d, rise %d; vipd whenNoneHealthy %s, health.minMoveInterval 0",
		c.interval, c.timeout, c.fall, c.rise, c.policy)
}

// checkServices are the services the checks probe: [node] on each port.
type checkServices struct {
	gate, weight []*lab.Service
}

// startCheckServices starts both services, healthy, on every node.
func startCheckServices(l *lab.Lab) (*checkServices, error) {
	s := &checkServices{}
	for _, h := range l.Nodes {
		g, err := h.StartService(gatePort)
		if err != nil {
			return nil, err
		}
		w, err := h.StartService(weightPort)
		if err != nil {
			return nil, err
		}
		s.gate, s.weight = append(s.gate, g), append(s.weight, w)
	}
	return s, nil
}

// healthy makes every service answer 200 (a mode starts from there).
func (s *checkServices) healthy() {
	for i := range s.gate {
		s.gate[i].SetHealthy(true)
		s.weight[i].SetHealthy(true)
	}
}

// checkScenarios are the two health-check rows; their names carry the
// check timing.
func checkScenarios(cs checkSettings, svc *checkServices) []Scenario {
	tag := fmt.Sprintf("%s×%d", cs.interval, cs.fall)
	return []Scenario{
		{
			Key:     "check-gate",
			Name:    "check gate " + tag,
			Do:      func(*lab.Lab, Mode) (time.Time, error) { dephase(cs); return svc.gate[0].SetHealthy(false), nil },
			Restore: func(*lab.Lab, Mode) error { svc.gate[0].SetHealthy(true); return nil },
		},
		{
			Key:     "check-weight",
			Name:    fmt.Sprintf("check weight %d %s", checkWeight, tag),
			Do:      func(*lab.Lab, Mode) (time.Time, error) { dephase(cs); return svc.weight[0].SetHealthy(false), nil },
			Restore: func(*lab.Lab, Mode) error { svc.weight[0].SetHealthy(true); return nil },
		},
	}
}

// dephase waits a random part of a check interval before the service
// turns bad. Without it the rounds are phase-locked to node1's checks: the
// previous round ends when node1 takes the VIP back, which happens just
// after one of its check attempts, and the next event follows at once, so
// every round would measure the same (worst or best) detection delay for
// one implementation and a different one for another.
func dephase(cs checkSettings) {
	time.Sleep(rand.N(max(cs.interval, time.Second)))
}

// addChecks gives a vipd config both checks and the group's track list:
// the gate service as a gate, the weight service with checkWeight.
func addChecks(c *config.Config, cs checkSettings) {
	check := func(name string, port int) config.Check {
		return config.Check{Name: name, Interval: cs.interval, Timeout: cs.timeout, Fall: cs.fall, Rise: cs.rise,
			HTTP: &config.HTTPCheck{URL: fmt.Sprintf("http://127.0.0.1:%d/healthz", port)}}
	}
	c.Checks = append(c.Checks, check("svc", gatePort), check("svcw", weightPort))
	// A health-caused move back to node1 must not wait out the default 10s
	// damper between rounds.
	zero := time.Duration(0)
	c.Health.MinMoveInterval = &zero
	for i := range c.Groups {
		g := &c.Groups[i]
		g.Track = append(g.Track, config.Track{Check: "svc"}, config.Track{Check: "svcw", Weight: checkWeight})
		g.WhenNoneHealthy = cs.policy
	}
}

// keepalivedSeconds is how keepalived 2.2.7 reads a vrrp_script interval
// or timeout: whole seconds (read_unsigned_strvec; "0.1" is read as 0 and
// then set to 1). Millisecond resolution came with keepalived 2.3.2. So we
// write what it will run, rounded up, at least 1.
func keepalivedSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// keepalivedChecks adds the equivalent vrrp_scripts (curl, as kubeadm's
// check_apiserver.sh does) and a track_script to every instance of a
// KeepalivedConfig.
func keepalivedChecks(conf string, cs checkSettings) string {
	script := func(name string, port, weight int) string {
		var w string
		if weight != 0 {
			w = fmt.Sprintf("  weight %d\n", weight)
		}
		return fmt.Sprintf("vrrp_script %s {\n  script \"/usr/bin/curl -sf -o /dev/null -m %s http://127.0.0.1:%d/healthz\"\n  interval %d\n  timeout %d\n  fall %d\n  rise %d\n%s}\n",
			name, strconv.FormatFloat(cs.timeout.Seconds(), 'f', -1, 64), port,
			keepalivedSeconds(cs.interval), keepalivedSeconds(cs.timeout), cs.fall, cs.rise, w)
	}
	scripts := script("chk_svc", gatePort, 0) + script("chk_svcw", weightPort, checkWeight)
	// Scripts run as root (no keepalived_script user in the lab).
	conf = strings.Replace(conf, "global_defs {\n", "global_defs {\n  script_user root\n", 1)
	conf = strings.Replace(conf, "vrrp_instance ", scripts+"vrrp_instance ", 1)
	return strings.ReplaceAll(conf, "  virtual_ipaddress {\n", "  track_script {\n    chk_svc\n    chk_svcw\n  }\n  virtual_ipaddress {\n")
}

// keepalivedCheckSettings describes what keepalived runs for cs.
func keepalivedCheckSettings(cs checkSettings) string {
	s := fmt.Sprintf("vrrp_script curl -sf -m %s, interval %d, timeout %d, fall %d, rise %d (gate: no weight; weight %d)",
		strconv.FormatFloat(cs.timeout.Seconds(), 'f', -1, 64), keepalivedSeconds(cs.interval), keepalivedSeconds(cs.timeout), cs.fall, cs.rise, checkWeight)
	if time.Duration(keepalivedSeconds(cs.interval))*time.Second != cs.interval {
		s += fmt.Sprintf("; keepalived 2.2.7 reads whole seconds only, so interval %s runs as %ds", cs.interval, keepalivedSeconds(cs.interval))
	}
	return s
}
