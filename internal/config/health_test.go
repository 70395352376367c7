package config

import (
	"testing"
	"time"
)

// withChecks is base (mode static, group web) with a checks list; body is
// its items, indented two spaces ("  - name: ..."). Line 9 is "checks:".
func withChecks(body string) string { return base + "checks:\n" + body }

// withGroupKeys adds keys to the group web (lines 7.. before its vips),
// indented four spaces.
func withGroupKeys(keys string) func(string) string {
	return repl("    vips:", keys+"    vips:")
}

// tracked is a valid check set that groups may track: web (http), db
// (tcp) and drain (file).
const tracked = `checks:
  - name: web
    http: {url: "https://127.0.0.1:6443/readyz"}
  - name: db
    tcp: {address: "127.0.0.1:5432"}
  - name: drain
    file: {path: /etc/vipd/drain}
`

// validateErrs parses and validates y, failing the test on a decode error.
func validateErrs(t *testing.T, y string) error {
	t.Helper()
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, y)
	}
	return c.Validate(fakeHost{})
}

// wantLine fails unless err is Errors holding exactly the line want.
func wantLine(t *testing.T, err error, want string) {
	t.Helper()
	errs, ok := err.(Errors)
	if !ok {
		t.Fatalf("err = %v (%T), want Errors with %q", err, err, want)
	}
	for _, e := range errs {
		if e.Error() == want {
			return
		}
	}
	t.Fatalf("errors:\n%v\nwant exactly the line %q", err, want)
}

func TestHealthValidationRules(t *testing.T) {
	tcp := func(keys string) string {
		return withChecks("  - name: db\n" + keys + "    tcp: {address: \"127.0.0.1:5432\"}\n")
	}
	http := func(keys string) string { return withChecks("  - name: web\n    http:\n" + keys) }
	one := func(kind string) string { return withChecks("  - name: k\n    " + kind + "\n") }
	group := func(keys string) string { return withGroupKeys(keys)(base) + tracked }
	tests := []struct {
		name, yaml, want string
	}{
		// Names and kinds.
		{"check name missing", withChecks("  - tcp: {address: \"127.0.0.1:80\"}\n"),
			`checks[0].name: "": must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric`},
		{"check name not a label", withChecks("  - name: Web_1\n    tcp: {address: \"127.0.0.1:80\"}\n"),
			`checks[0].name: "Web_1": must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric`},
		{"duplicate check", withChecks("  - name: a\n    tcp: {address: \"127.0.0.1:80\"}\n  - name: b\n    file: {path: /x}\n  - name: a\n    file: {path: /y}\n"),
			`checks[2].name: "a": duplicates checks[0].name`},
		{"no kind", withChecks("  - name: a\n    interval: 2s\n"),
			`checks[0]: must set exactly one of http, tcp, exec, endpoints, interface, file (has 0)`},
		{"kind left empty", withChecks("  - name: a\n    http:\n"),
			`checks[0]: must set exactly one of http, tcp, exec, endpoints, interface, file (has 0)`},
		{"two kinds", withChecks("  - name: a\n    tcp: {address: \"127.0.0.1:80\"}\n    file: {path: /x}\n"),
			`checks[0]: must set exactly one of http, tcp, exec, endpoints, interface, file (has 2)`},
		{"every kind", withChecks("  - name: a\n    http: {url: \"http://127.0.0.1/\"}\n    tcp: {address: \"127.0.0.1:80\"}\n    exec: {command: [/bin/true]}\n" +
			"    endpoints: {namespace: a, service: b}\n    interface: {name: eth1}\n    file: {path: /x}\n"),
			`checks[0]: must set exactly one of http, tcp, exec, endpoints, interface, file (has 6)`},

		// Timing.
		{"interval too short", tcp("    interval: 49ms\n    timeout: 20ms\n"), `checks[0].interval: 49ms: must be between 50ms and 1h`},
		{"interval too long", tcp("    interval: 61m\n    timeout: 1s\n"), `checks[0].interval: 1h1m0s: must be between 50ms and 1h`},
		{"interval negative", tcp("    interval: -1s\n    timeout: 1s\n"), `checks[0].interval: -1s: must be between 50ms and 1h`},
		{"timeout over the interval", tcp("    interval: 1s\n    timeout: 1001ms\n"),
			`checks[0].timeout: 1.001s: must be between 10ms and the interval (1s), so attempts never overlap`},
		{"timeout over the default interval", tcp("    timeout: 2s\n"),
			`checks[0].timeout: 2s: must be between 10ms and the interval (1s), so attempts never overlap`},
		{"timeout too short", tcp("    timeout: 9ms\n"),
			`checks[0].timeout: 9ms: must be between 10ms and the interval (1s), so attempts never overlap`},
		{"rise negative", tcp("    rise: -1\n"), `checks[0].rise: -1: must be between 1 and 100`},
		{"rise too large", tcp("    rise: 101\n"), `checks[0].rise: 101: must be between 1 and 100`},
		{"fall negative", tcp("    fall: -2\n"), `checks[0].fall: -2: must be between 1 and 100`},
		{"fall too large", tcp("    fall: 101\n"), `checks[0].fall: 101: must be between 1 and 100`},

		// http.
		{"http url missing", http("      caFile: /ca.crt\n"), `checks[0].http.url: "": must be an http:// or https:// URL`},
		{"http url scheme", http("      url: ftp://127.0.0.1/\n"), `checks[0].http.url: "ftp://127.0.0.1/": must be an http:// or https:// URL`},
		{"http url without host", http("      url: \"https:///readyz\"\n"), `checks[0].http.url: "https:///readyz": must be an http:// or https:// URL`},
		{"http url relative", http("      url: /readyz\n"), `checks[0].http.url: "/readyz": must be an http:// or https:// URL`},
		{"http url unparsable", http("      url: \"http://127.0.0.1:80:80/\"\n"), `checks[0].http.url: "http://127.0.0.1:80:80/": must be an http:// or https:// URL`},
		{"http port too large", http("      url: \"http://127.0.0.1:99999/\"\n"), `checks[0].http.url: "http://127.0.0.1:99999/": port must be 1..65535`},
		{"http port 0", http("      url: \"https://[2001:db8::1]:0/\"\n"), `checks[0].http.url: "https://[2001:db8::1]:0/": port must be 1..65535`},
		{"caFile on http", http("      url: http://127.0.0.1/\n      caFile: /ca.crt\n"),
			`checks[0].http.url: "http://127.0.0.1/": is plain http: caFile, certFile and insecureSkipVerify need https`},
		{"insecureSkipVerify on http", http("      url: http://127.0.0.1/\n      insecureSkipVerify: true\n"),
			`checks[0].http.url: "http://127.0.0.1/": is plain http: caFile, certFile and insecureSkipVerify need https`},
		{"client certificate on http", http("      url: http://127.0.0.1/\n      certFile: /c.crt\n      keyFile: /c.key\n"),
			`checks[0].http.url: "http://127.0.0.1/": is plain http: caFile, certFile and insecureSkipVerify need https`},
		{"insecureSkipVerify with caFile", http("      url: https://127.0.0.1/\n      caFile: /ca.crt\n      insecureSkipVerify: true\n"),
			`checks[0].http.insecureSkipVerify: true: contradicts caFile: set one`},
		{"certFile without keyFile", http("      url: https://127.0.0.1/\n      certFile: /c.crt\n"),
			`checks[0].http.keyFile: is required with certFile (the client certificate's key)`},
		{"keyFile without certFile", http("      url: https://127.0.0.1/\n      keyFile: /c.key\n"),
			`checks[0].http.certFile: is required with keyFile (the client certificate)`},
		{"expectStatus reversed", http("      url: https://127.0.0.1/\n      expectStatus: 399-200\n"),
			`checks[0].http.expectStatus: "399-200": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus 600", http("      url: https://127.0.0.1/\n      expectStatus: \"600\"\n"),
			`checks[0].http.expectStatus: "600": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus 99", http("      url: https://127.0.0.1/\n      expectStatus: 99\n"),
			`checks[0].http.expectStatus: "99": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus range to 600", http("      url: https://127.0.0.1/\n      expectStatus: 200-600\n"),
			`checks[0].http.expectStatus: "200-600": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus open range", http("      url: https://127.0.0.1/\n      expectStatus: 200-\n"),
			`checks[0].http.expectStatus: "200-": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus list", http("      url: https://127.0.0.1/\n      expectStatus: \"200,204\"\n"),
			`checks[0].http.expectStatus: "200,204": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus word", http("      url: https://127.0.0.1/\n      expectStatus: abc\n"),
			`checks[0].http.expectStatus: "abc": must be a status (200) or a range (200-399) of 100-599`},
		{"expectStatus 2xx", http("      url: https://127.0.0.1/\n      expectStatus: 2xx\n"),
			`checks[0].http.expectStatus: "2xx": must be a status (200) or a range (200-399) of 100-599`},

		// tcp, exec, endpoints, interface, file.
		{"tcp address missing", one("tcp: {}"), `checks[0].tcp.address: "": must be host:port`},
		{"tcp without port", one("tcp: {address: 127.0.0.1}"), `checks[0].tcp.address: "127.0.0.1": must be host:port`},
		{"tcp empty port", one("tcp: {address: \"127.0.0.1:\"}"), `checks[0].tcp.address: "127.0.0.1:": must be host:port`},
		{"tcp bare IPv6", one("tcp: {address: \"2001:db8::1:80\"}"), `checks[0].tcp.address: "2001:db8::1:80": must be host:port`},
		{"tcp port 0", one("tcp: {address: \"127.0.0.1:0\"}"), `checks[0].tcp.address: "127.0.0.1:0": port must be 1..65535`},
		{"tcp port too large", one("tcp: {address: \"[2001:db8::1]:65536\"}"), `checks[0].tcp.address: "[2001:db8::1]:65536": port must be 1..65535`},
		{"tcp port by name", one("tcp: {address: \"localhost:postgresql\"}"), `checks[0].tcp.address: "localhost:postgresql": port must be 1..65535`},
		{"exec command missing", one("exec: {user: nobody}"), `checks[0].exec.command: must name a program (argv list; no shell unless you name one)`},
		{"exec command empty program", one("exec: {command: [\"\", x]}"), `checks[0].exec.command: must name a program (argv list; no shell unless you name one)`},
		{"endpoints service missing", one("endpoints: {namespace: ingress}"), `checks[0].endpoints.service: "": must be a Service name (a DNS label)`},
		{"endpoints service bad", one("endpoints: {namespace: ingress, service: Ingress_Nginx}"), `checks[0].endpoints.service: "Ingress_Nginx": must be a Service name (a DNS label)`},
		{"endpoints namespace missing", one("endpoints: {service: ingress-nginx}"), `checks[0].endpoints.namespace: "": must be a namespace name (a DNS label)`},
		{"endpoints server", one("endpoints: {namespace: ingress, service: nginx, server: \"127.0.0.1:6443\"}"),
			`checks[0].endpoints.server: "127.0.0.1:6443": must be an http(s) URL`},
		{"interface name missing", one("interface: {}"), `checks[0].interface.name: "": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name too long", one("interface: {name: abcdefghijklmnop}"), `checks[0].interface.name: "abcdefghijklmnop": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name slash", one("interface: {name: eth0/1}"), `checks[0].interface.name: "eth0/1": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name space", one("interface: {name: \"eth 0\"}"), `checks[0].interface.name: "eth 0": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface alias", one("interface: {name: \"eth0:1\"}"), `checks[0].interface.name: "eth0:1": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name tab", one("interface: {name: \"eth\\t0\"}"), `checks[0].interface.name: "eth\t0": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name dot", one("interface: {name: .}"), `checks[0].interface.name: ".": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"interface name dot dot", one("interface: {name: ..}"), `checks[0].interface.name: "..": must be an interface name (1-15 characters, no '/', ':' or whitespace, not '.' or '..')`},
		{"file path missing", one("file: {}"), `checks[0].file.path: "": must be an absolute path`},
		{"file path relative", one("file: {path: drain}"), `checks[0].file.path: "drain": must be an absolute path`},

		// Groups' tracks, policy and hooks.
		{"track names no check", group("    track: [{check: nope}]\n"), `groups[0].track[0].check: "nope": names no check in checks[]`},
		{"track without check", group("    track: [{weight: 10}]\n"), `groups[0].track[0].check: "": names no check in checks[]`},
		{"track with no checks at all", withGroupKeys("    track: [{check: web}]\n")(base), `groups[0].track[0].check: "web": names no check in checks[]`},
		{"check tracked twice", group("    track: [{check: web}, {check: db}, {check: web, weight: 10}]\n"),
			`groups[0].track[2].check: "web": is tracked twice by this group`},
		{"weight too large", group("    track: [{check: web, weight: 254}]\n"), `groups[0].track[0].weight: 254: must be between -253 and 253 (0: the check gates)`},
		{"weight too small", group("    track: [{check: web, weight: -254}]\n"), `groups[0].track[0].weight: -254: must be between -253 and 253 (0: the check gates)`},
		{"whenNoneHealthy", group("    whenNoneHealthy: drop\n"), `groups[0].whenNoneHealthy: "drop": must be "keep" or "release"`},
		{"whenNoneHealthy case", group("    whenNoneHealthy: Keep\n"), `groups[0].whenNoneHealthy: "Keep": must be "keep" or "release"`},
		{"notify empty", group("    notify: {}\n"), `groups[0].notify: names no command: set command, master, backup, fault or stop`},
		{"notify only a timeout", group("    notify: {timeout: 5s}\n"), `groups[0].notify: names no command: set command, master, backup, fault or stop`},
		{"notify empty lists", group("    notify: {command: [], master: []}\n"), `groups[0].notify: names no command: set command, master, backup, fault or stop`},
		{"notify command empty program", group("    notify: {command: [\"\", MASTER]}\n"), `groups[0].notify.command: must start with a program`},
		{"notify master empty program", group("    notify: {master: [\"\"]}\n"), `groups[0].notify.master: must start with a program`},
		{"notify backup empty program", group("    notify: {command: [/n.sh], backup: [\"\"]}\n"), `groups[0].notify.backup: must start with a program`},
		{"notify fault empty program", group("    notify: {fault: [\"\"]}\n"), `groups[0].notify.fault: must start with a program`},
		{"notify stop empty program", group("    notify: {stop: [\"\"]}\n"), `groups[0].notify.stop: must start with a program`},
		{"notify timeout short", group("    notify: {command: [/n.sh], timeout: 99ms}\n"), `groups[0].notify.timeout: 99ms: must be between 100ms and 1h`},
		{"notify timeout long", group("    notify: {command: [/n.sh], timeout: 61m}\n"), `groups[0].notify.timeout: 1h1m0s: must be between 100ms and 1h`},
		{"notify timeout negative", group("    notify: {command: [/n.sh], timeout: -1s}\n"), `groups[0].notify.timeout: -1s: must be between 100ms and 1h`},
		{"second group", base + "  - name: api\n    vips: [{address: 198.51.100.101}]\n    track: [{check: nope}]\n",
			`groups[1].track[0].check: "nope": names no check in checks[]`},

		// Node-wide anti-flap.
		{"startupDelay negative", base + "health: {startupDelay: -1s}\n", `health.startupDelay: -1s: must be between 0 and 1h`},
		{"startupDelay too long", base + "health: {startupDelay: 61m}\n", `health.startupDelay: 1h1m0s: must be between 0 and 1h`},
		{"minMoveInterval negative", base + "health: {minMoveInterval: -1s}\n", `health.minMoveInterval: -1s: must be between 0 (off) and 1h`},
		{"minMoveInterval too long", base + "health: {minMoveInterval: 2h}\n", `health.minMoveInterval: 2h0m0s: must be between 0 (off) and 1h`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantLine(t, validateErrs(t, tc.yaml), tc.want)
		})
	}
}

// TestHealthValid: the edges of every rule, and the forms each key
// accepts, validate.
func TestHealthValid(t *testing.T) {
	one := func(kind string) string { return withChecks("  - name: k\n    " + kind + "\n") }
	group := func(keys string) string { return withGroupKeys(keys)(base) + tracked }
	for _, tc := range []struct{ name, yaml string }{
		{"no checks", base},
		{"interval and timeout at their minimum", one("interval: 50ms\n    timeout: 10ms\n    tcp: {address: \"127.0.0.1:80\"}")},
		{"interval at its maximum, timeout equal", one("interval: 1h\n    timeout: 1h\n    tcp: {address: \"127.0.0.1:80\"}")},
		{"rise and fall bounds", one("rise: 1\n    fall: 100\n    tcp: {address: \"127.0.0.1:80\"}")},
		{"http with a CA, a client certificate, a token and a Host", one("http: {url: \"https://127.0.0.1:6443/readyz\", caFile: /ca.crt, certFile: /c.crt, keyFile: /c.key, bearerTokenFile: /t, host: kubernetes}")},
		{"https without verification", one("http: {url: \"https://127.0.0.1:8443/\", insecureSkipVerify: true}")},
		{"plain http with a token and a Host", one("http: {url: \"http://127.0.0.1:8080/healthz\", bearerTokenFile: /t, host: example}")},
		{"http to an IPv6 host", one("http: {url: \"http://[2001:db8::1]:8080/\"}")},
		{"expectStatus one status, unquoted", one("http: {url: \"http://127.0.0.1/\", expectStatus: 204}")},
		{"expectStatus one status, quoted", one("http: {url: \"http://127.0.0.1/\", expectStatus: \"200\"}")},
		{"expectStatus the widest range", one("http: {url: \"http://127.0.0.1/\", expectStatus: 100-599}")},
		{"expectStatus a range of one", one("http: {url: \"http://127.0.0.1/\", expectStatus: 200-200}")},
		{"tcp to a name", one("tcp: {address: \"localhost:5432\"}")},
		{"tcp port bounds", one("tcp: {address: \"127.0.0.1:1\"}") + "  - name: k2\n    tcp: {address: \"127.0.0.1:65535\"}\n"},
		{"tcp to IPv6", one("tcp: {address: \"[2001:db8::1]:443\"}")},
		{"exec through a shell", one("exec: {command: [/bin/sh, -c, \"pidof haproxy\"], user: nobody}")},
		{"exec by PATH", one("exec: {command: [check_haproxy]}")},
		{"endpoints, in-cluster", one("endpoints: {namespace: ingress-nginx, service: ingress-nginx-controller}")},
		{"endpoints with a server", one("endpoints: {namespace: ingress, service: nginx, server: \"https://127.0.0.1:6443\", kubeconfig: /etc/vipd/kubeconfig}")},
		{"interface of 15 characters", one("interface: {name: abcdefghijklmno}")},
		{"interface with dots and dashes", one("interface: {name: bond0.100-x}")},
		{"file", one("file: {path: /etc/vipd/drain}")},
		// A check no group tracks is fine: it is informational (its state
		// and last error are in /status) and can be tracked by a later reload.
		{"checks tracked by no group", base + tracked},
		{"every effect", group("    track: [{check: web}, {check: db, weight: -253}, {check: drain, weight: 253}]\n")},
		{"two groups track one check", withGroupKeys("    track: [{check: web}]\n")(base) + "  - name: api\n    vips: [{address: 198.51.100.101}]\n    track: [{check: web}]\n" + tracked},
		{"whenNoneHealthy release", group("    whenNoneHealthy: release\n")},
		{"whenNoneHealthy without tracks", withGroupKeys("    whenNoneHealthy: keep\n")(base)},
		{"notify command only", group("    notify: {command: [/etc/keepalived/notify.sh]}\n")},
		{"notify one state only", group("    notify: {fault: [/usr/bin/logger, vip fault]}\n")},
		{"notify timeout bounds", withGroupKeys("    notify: {stop: [/bin/true], timeout: 100ms}\n")(base) + "  - name: api\n    vips: [{address: 198.51.100.101}]\n    notify: {stop: [/bin/true], timeout: 1h}\n"},
		{"health bounds", base + "health: {startupDelay: 1h, minMoveInterval: 1h}\n"},
		{"health off", base + "health: {startupDelay: 0s, minMoveInterval: 0s}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validateErrs(t, tc.yaml); err != nil {
				t.Fatalf("%v\n%s", err, tc.yaml)
			}
		})
	}
}

// TestHealthDecodeErrors: decoding inside checks, tracks, notify and health
// is as strict as elsewhere, naming the key and its line.
func TestHealthDecodeErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key in a check", withChecks("  - name: a\n    retries: 3\n    tcp: {address: \"127.0.0.1:80\"}\n"),
			`decoding: line 11: unknown key "retries"`},
		{"unknown key in http", withChecks("  - name: a\n    http:\n      url: https://127.0.0.1/\n      method: HEAD\n"),
			`decoding: line 13: unknown key "method"`},
		{"keepalived's key in a check", withChecks("  - name: a\n    exec: {script: /etc/keepalived/check.sh}\n"),
			`decoding: line 11: unknown key "script"`},
		{"unknown key in tcp", withChecks("  - name: a\n    tcp: {address: \"127.0.0.1:80\", port: 80}\n"),
			`decoding: line 11: unknown key "port"`},
		{"unknown key in endpoints", withChecks("  - name: a\n    endpoints: {namespace: a, service: b, node: n1}\n"),
			`decoding: line 11: unknown key "node"`},
		{"unknown key in a track", withGroupKeys("    track:\n      - check: web\n        weigth: 10\n")(base),
			`decoding: line 9: unknown key "weigth"`},
		{"unknown key in notify", withGroupKeys("    notify:\n      notify_master: /x.sh\n")(base),
			`decoding: line 8: unknown key "notify_master"`},
		{"unknown key in health", base + "health:\n  startup_delay: 5s\n",
			`decoding: line 10: unknown key "startup_delay"`},
		{"interval without a unit", withChecks("  - name: a\n    interval: 1\n    tcp: {address: \"127.0.0.1:80\"}\n"),
			"decoding: line 11: `1` is not a duration (write e.g. 3s or 200ms)"},
		{"notify timeout without a unit", withGroupKeys("    notify: {command: [/n.sh], timeout: 30}\n")(base),
			"decoding: line 7: `30` is not a duration (write e.g. 3s or 200ms)"},
		{"minMoveInterval without a unit", base + "health:\n  minMoveInterval: ten\n",
			"decoding: line 10: `ten` is not a duration (write e.g. 3s or 200ms)"},
		{"rise with a fraction", withChecks("  - name: a\n    rise: 2.5\n    tcp: {address: \"127.0.0.1:80\"}\n"),
			"decoding: line 11: checks[0].rise: `2.5` must be a whole number, written without a decimal point or exponent"},
		{"weight with a fraction", withGroupKeys("    track: [{check: web, weight: -60.5}]\n")(base),
			"decoding: line 7: groups[0].track[0].weight: `-60.5` must be a whole number, written without a decimal point or exponent"},
		{"fall a word", withChecks("  - name: a\n    fall: two\n    tcp: {address: \"127.0.0.1:80\"}\n"),
			"decoding: line 11: `two` has the wrong type: want a whole number"},
		{"insecureSkipVerify a word", withChecks("  - name: a\n    http: {url: \"https://127.0.0.1/\", insecureSkipVerify: maybe}\n"),
			"decoding: line 11: `maybe` has the wrong type: want true or false"},
		{"exec command as one string", withChecks("  - name: a\n    exec: {command: /etc/keepalived/check.sh}\n"),
			"decoding: line 11: `/etc/ke...` has the wrong type: want a list (write [a, b], or one '- a' per line)"},
		{"notify command as one string", withGroupKeys("    notify:\n      command: /etc/keepalived/notify.sh\n")(base),
			"decoding: line 8: `/etc/ke...` has the wrong type: want a list (write [a, b], or one '- a' per line)"},
		{"track as a string", withGroupKeys("    track: web\n")(base),
			"decoding: line 7: `web` has the wrong type: want a mapping or list as documented"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

func TestHealthDefaults(t *testing.T) {
	y := withGroupKeys("    track: [{check: web}]\n    notify: {command: [/n.sh]}\n")(base) + `checks:
  - name: web
    http: {url: "https://127.0.0.1:6443/readyz"}
  - name: fast
    interval: 200ms
    exec: {command: [/bin/true]}
  - name: set
    interval: 2s
    timeout: 500ms
    rise: 1
    fall: 5
    http: {url: "http://127.0.0.1/", expectStatus: "204"}
`
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	web, fast, set := c.Checks[0], c.Checks[1], c.Checks[2]
	if web.Interval != time.Second || web.Timeout != time.Second || web.Rise != 2 || web.Fall != 2 || web.HTTP.ExpectStatus != "200-399" {
		t.Errorf("web: defaults not applied: %+v %+v", web, *web.HTTP)
	}
	if fast.Interval != 200*time.Millisecond || fast.Timeout != 200*time.Millisecond {
		t.Errorf("fast: the timeout defaults to the interval: %+v", fast)
	}
	if set.Interval != 2*time.Second || set.Timeout != 500*time.Millisecond || set.Rise != 1 || set.Fall != 5 || set.HTTP.ExpectStatus != "204" {
		t.Errorf("set: explicit values changed: %+v %+v", set, *set.HTTP)
	}
	if DefaultCheckInterval != time.Second || DefaultCheckRise != 2 || DefaultCheckFall != 2 ||
		DefaultNotifyTimeout != 30*time.Second || DefaultMinMoveInterval != 10*time.Second {
		t.Errorf("documented defaults changed: docs/config.md and docs/health.md say 1s, 2, 2, 30s, 10s")
	}
	g := c.Groups[0]
	if g.WhenNoneHealthy != PolicyKeep || g.Notify.Timeout != 30*time.Second {
		t.Errorf("group: whenNoneHealthy %q, notify timeout %s; want keep, 30s", g.WhenNoneHealthy, g.Notify.Timeout)
	}
	if c.Health.StartupDelay != 0 || c.Health.MinMoveInterval == nil || *c.Health.MinMoveInterval != 10*time.Second {
		t.Errorf("health: %+v, want startupDelay 0 and minMoveInterval 10s", c.Health)
	}
	if k, ok := c.CheckByName("fast"); !ok || k != &c.Checks[1] {
		t.Errorf("CheckByName(fast) = %p %v, want &Checks[1]", k, ok)
	}
	if _, ok := c.CheckByName("nope"); ok {
		t.Error("CheckByName(nope) found a check")
	}
}

// TestHealthExplicitZero: minMoveInterval 0 turns the hold off; it is not
// replaced by the default (a pointer, like announce.refresh).
func TestHealthExplicitZero(t *testing.T) {
	c, err := Parse([]byte(base + "health: {minMoveInterval: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Health.MinMoveInterval == nil || *c.Health.MinMoveInterval != 0 {
		t.Fatalf("minMoveInterval = %v, want 0", c.Health.MinMoveInterval)
	}
}

// TestEndpointsInheritLeaseAccess: in mode lease an endpoints check uses
// the Lease's kubeconfig and server unless it names its own; in other
// modes it has no default (in-cluster credentials).
func TestEndpointsInheritLeaseAccess(t *testing.T) {
	const checks = `checks:
- name: inherit
  endpoints: {namespace: ingress, service: nginx}
- name: own
  endpoints: {namespace: ingress, service: nginx, kubeconfig: /etc/own.conf, server: "https://198.51.100.1:6443"}
`
	c, err := Parse([]byte(leaseBase + "lease: {kubeconfig: /etc/vipd/kubeconfig, server: \"https://127.0.0.1:6443\"}\n" + checks))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if e := c.Checks[0].Endpoints; e.Kubeconfig != "/etc/vipd/kubeconfig" || e.Server != "https://127.0.0.1:6443" {
		t.Errorf("inherit: %+v, want lease's kubeconfig and server", *e)
	}
	if e := c.Checks[1].Endpoints; e.Kubeconfig != "/etc/own.conf" || e.Server != "https://198.51.100.1:6443" {
		t.Errorf("own: %+v, want its own kubeconfig and server", *e)
	}

	// Mode lease without kubeconfig: both stay empty (in-cluster).
	c, err = Parse([]byte(leaseBase + checks))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Checks[0].Endpoints; e.Kubeconfig != "" || e.Server != "" {
		t.Errorf("lease without access settings: %+v, want in-cluster", *e)
	}

	c, err = Parse([]byte(gossipBase + "gossip: {insecure: true}\n" + checks))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(fakeHost{}); err != nil {
		t.Fatal(err)
	}
	if e := c.Checks[0].Endpoints; e.Kubeconfig != "" || e.Server != "" {
		t.Errorf("mode gossip: %+v, want in-cluster", *e)
	}
}

func TestParseExpectStatus(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"200", 200, 200, true},
		{"200-399", 200, 399, true},
		{"100-599", 100, 599, true},
		{"404-404", 404, 404, true},
		{"399-200", 0, 0, false},
		{"600", 0, 0, false},
		{"099", 0, 0, false},
		{"99", 0, 0, false},
		{"2000", 0, 0, false},
		{"200-", 0, 0, false},
		{"-399", 0, 0, false},
		{"200 - 399", 0, 0, false},
		{"abc", 0, 0, false},
		{"", 0, 0, false},
	} {
		lo, hi, ok := ParseExpectStatus(tc.in)
		if ok != tc.ok || (ok && (lo != tc.lo || hi != tc.hi)) {
			t.Errorf("ParseExpectStatus(%q) = %d, %d, %v; want %d, %d, %v", tc.in, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

// TestHealthReportsEveryError: one broken check yields every rule it
// breaks, and the other checks and groups are still validated.
func TestHealthReportsEveryError(t *testing.T) {
	err := validateErrs(t, withGroupKeys("    track: [{check: nope, weight: 300}]\n    whenNoneHealthy: never\n")(base)+`checks:
  - name: Bad
    interval: 10ms
    rise: 0
    fall: 200
    http: {url: "ftp://x/", expectStatus: "2xx"}
  - name: ok
    file: {path: relative}
health: {startupDelay: -1s}
`)
	errs, _ := err.(Errors)
	want := []string{
		`checks[0].name: "Bad": must be a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric`,
		`checks[0].interval: 10ms: must be between 50ms and 1h`,
		`checks[0].fall: 200: must be between 1 and 100`,
		`checks[0].http.url: "ftp://x/": must be an http:// or https:// URL`,
		`checks[0].http.expectStatus: "2xx": must be a status (200) or a range (200-399) of 100-599`,
		`checks[1].file.path: "relative": must be an absolute path`,
		`groups[0].track[0].check: "nope": names no check in checks[]`,
		`groups[0].track[0].weight: 300: must be between -253 and 253 (0: the check gates)`,
		`groups[0].whenNoneHealthy: "never": must be "keep" or "release"`,
		`health.startupDelay: -1s: must be between 0 and 1h`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("error %d: %q, want %q", i, errs[i].Error(), want[i])
		}
	}
}
