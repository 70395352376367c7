package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestIntegerKeysRefuseFractions: the YAML library decodes 150.5 into an int
// as 150; every integer key refuses it instead, naming the key and the line.
func TestIntegerKeysRefuseFractions(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"priority", strings.Replace(base, "    vips:", "    priority: 150.5\n    vips:", 1),
			"decoding: line 7: groups[0].priority: `150.5` must be a whole number, written without a decimal point or exponent"},
		{"announce.count", base + "announce:\n  count: 2.0\n",
			"decoding: line 10: announce.count: `2.0` must be a whole number, written without a decimal point or exponent"},
		{"vrid", vrrpHead + "groups:\n- name: web\n  vips: [{address: 198.51.100.100}]\n  vrrp: {vrid: 51.7}\n",
			"decoding: line 8: groups[0].vrrp.vrid: `51.7` must be a whole number, written without a decimal point or exponent"},
		{"gossip.expect", gossipBase + "gossip: {expect: 3.5}\n",
			"decoding: line 8: gossip.expect: `3.5` must be a whole number, written without a decimal point or exponent"},
		{"exponent", strings.Replace(base, "    vips:", "    priority: 1e2\n    vips:", 1),
			"decoding: line 7: groups[0].priority: `1e2` must be a whole number, written without a decimal point or exponent"},
		{"infinity", base + "announce: {count: .inf}\n",
			"decoding: line 9: announce.count: `.inf` must be a whole number, written without a decimal point or exponent"},
		{"too large", base + "announce: {count: 99999999999999999999}\n",
			"decoding: line 9: announce.count: `99999999999999999999` is too large"},
		{"second group, through an alias", base + "  - name: api\n    priority: &p 7.5\n    vips: [{address: 198.51.100.101}]\n  - name: db\n    priority: *p\n    vips: [{address: 198.51.100.102}]\n",
			"decoding: line 10: groups[1].priority: `7.5` must be a whole number, written without a decimal point or exponent\n" +
				"  line 10: groups[2].priority: `7.5` must be a whole number, written without a decimal point or exponent"},
		{"through a merge key", base + "announce:\n  <<: {count: 4.5}\n",
			"decoding: line 10: announce.count: `4.5` must be a whole number, written without a decimal point or exponent"},
		{"in file order with other decode errors", strings.Replace(base, "    vips:", "    priority: 150.5\n    colour: red\n    vips:", 1) + "announce: {count: many}\n",
			"decoding: line 7: groups[0].priority: `150.5` must be a whole number, written without a decimal point or exponent\n" +
				"  line 8: unknown key \"colour\"\n" +
				"  line 11: `many` has the wrong type: want a whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed as %+v, want error %q", c, tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("err:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
	// Whole numbers in any YAML integer form stay valid; so do durations,
	// whose fractions are theirs (1.5s).
	for _, ok := range []string{
		strings.Replace(base, "    vips:", "    priority: 0x64\n    vips:", 1),
		base + "announce: {count: +3, interval: 1.5s}\n",
		base + "announce: {count: ~}\n",
	} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// fullConfigs are one config per mode with every key set (to a value other
// than its default where that is allowed), built fresh on every call.
func fullConfigs(t *testing.T) map[string]func() *Config {
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	head := func(mode string) *Config {
		return &Config{
			APIVersion: APIVersion, Kind: Kind, Node: "n1", Mode: mode,
			HTTP:     HTTP{Listen: "127.0.0.1:9611"},
			Binding:  Binding{Lifetime: 4 * time.Second, Refresh: 2 * time.Second},
			Announce: Announce{Count: 3, Interval: 100 * time.Millisecond, Refresh: ptr(time.Duration(0))},
			Verify:   Verify{Interval: ptr(5 * time.Second), Window: 100 * time.Millisecond, MaxRate: 50, Reaction: VerifyReactionStepdown},
		}
	}
	return map[string]func() *Config{
		ModeStatic: func() *Config {
			c := head(ModeStatic)
			c.Groups = []Group{
				{Name: "web", Priority: 150, VIPs: []VIP{{Address: "198.51.100.100"}, {Address: "2001:db8::100/64", Interface: "eth0"}},
					Track:           []Track{{Check: "web"}, {Check: "drain"}, {Check: "backend", Weight: -60}, {Check: "uplink", Weight: 20}},
					WhenNoneHealthy: PolicyRelease,
					Notify: &Notify{Command: []string{"/etc/vipd/notify.sh"}, Master: []string{"/bin/true", "master"}, Backup: []string{"/bin/true"},
						Fault: []string{"/bin/true"}, Stop: []string{"/bin/true"}, Timeout: 5 * time.Second}},
				{Name: "api", VIPs: []VIP{{Address: "203.0.113.7", Interface: "eth1"}}, Track: []Track{{Check: "ingress"}}},
			}
			c.Checks = []Check{
				{Name: "web", Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 3, Fall: 4,
					HTTP: &HTTPCheck{URL: "https://127.0.0.1:6443/readyz", CAFile: "/etc/kubernetes/pki/ca.crt", CertFile: "/c.crt", KeyFile: "/c.key",
						BearerTokenFile: "/token", Host: "kubernetes", ExpectStatus: "200"}},
				{Name: "insecure", HTTP: &HTTPCheck{URL: "https://127.0.0.1:8443/", InsecureSkipVerify: true}},
				{Name: "backend", TCP: &TCPCheck{Address: "127.0.0.1:8080"}},
				{Name: "script", Exec: &ExecCheck{Command: []string{"/etc/keepalived/check.sh", "-v"}, User: "nobody"}},
				{Name: "ingress", Endpoints: &EndpointsCheck{Namespace: "ingress", Service: "ingress-nginx", Kubeconfig: "/etc/vipd/kubeconfig", Server: "https://127.0.0.1:6443"}},
				{Name: "uplink", Interface: &InterfaceCheck{Name: "eth1"}},
				{Name: "drain", File: &FileCheck{Path: "/etc/vipd/drain"}},
			}
			c.Health = HealthPolicy{StartupDelay: 30 * time.Second, MinMoveInterval: ptr(time.Duration(0))}
			return c
		},
		ModeVRRP: func() *Config {
			c := head(ModeVRRP)
			c.VRRP = &VRRP{AdvertInterval: 200 * time.Millisecond, Preempt: ptr(false), PreemptDelay: 2 * time.Second}
			c.Groups = []Group{
				{Name: "web", Priority: 200, VIPs: []VIP{{Address: "198.51.100.100"}, {Address: "2001:db8::100"}, {Address: "2001:db8::101", Excluded: true}},
					VRRP: &GroupVRRP{VRID: 51, AdvertInterval: 100 * time.Millisecond, Preempt: ptr(true), PreemptDelay: ptr(time.Duration(0)),
						Interface: "eth0", UnicastPeers: []string{"198.51.100.11", "2001:db8::11"}, UnicastSource: []string{"198.51.100.10", "2001:db8::10"},
						MinPeerAdvertInterval: ptr(50 * time.Millisecond), MaxPeerAdvertInterval: ptr(200 * time.Millisecond)}},
				{Name: "api", VIPs: []VIP{{Address: "203.0.113.7"}}, VRRP: &GroupVRRP{VRID: 52}},
			}
			return c
		},
		ModeLease: func() *Config {
			c := head(ModeLease)
			c.Binding.Lifetime, c.Binding.Refresh = 2*time.Second, time.Second
			c.Lease = &Lease{Namespace: "vipd", Kubeconfig: "/etc/vipd/kubeconfig", Server: "https://127.0.0.1:6443",
				LeaseDuration: 6 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 400 * time.Millisecond}
			c.Groups = []Group{
				{Name: "web", Priority: 254, VIPs: []VIP{{Address: "198.51.100.100"}}, Lease: &GroupLease{Name: "web-vip"}},
				{Name: "api", VIPs: []VIP{{Address: "198.51.100.101"}}},
			}
			return c
		},
		ModeGossip: func() *Config {
			c := head(ModeGossip)
			c.Gossip = &Gossip{Bind: "198.51.100.10:7000", Advertise: "198.51.100.10", Peers: []string{"198.51.100.11", "198.51.100.12:7000"},
				DNS: "vipd.kube-system.svc.cluster.local", Expect: 3, Quorum: true, Profile: "lan", RejoinInterval: 5 * time.Second, KeyFile: key}
			c.Groups = []Group{{Name: "web", Priority: 1, VIPs: []VIP{{Address: "198.51.100.100"}}}}
			return c
		},
		// Insecure excludes keyFile, so it gets a config of its own.
		ModeGossip + "-insecure": func() *Config {
			c := head(ModeGossip)
			c.Gossip = &Gossip{Insecure: true}
			c.Groups = []Group{{Name: "web", VIPs: []VIP{{Address: "198.51.100.100"}}}}
			return c
		},
	}
}

// TestMarshalRoundTrip: what Marshal writes parses and validates back to the
// same values as the Config it was given, in every mode.
func TestMarshalRoundTrip(t *testing.T) {
	for mode, build := range fullConfigs(t) {
		t.Run(mode, func(t *testing.T) {
			data, err := Marshal(build())
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			if err := got.Validate(fakeHost{}); err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			want := build()
			want.applyDefaults()
			if err := want.Validate(fakeHost{}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read back:\n%+v\nwant:\n%+v\nYAML:\n%s", got, want, data)
			}
		})
	}
}

// TestMarshalCoversEveryKey: fullConfigs sets every key of the schema, so a
// key added to Config without a place in the round trip fails here.
func TestMarshalCoversEveryKey(t *testing.T) {
	set := map[string]bool{}
	for _, build := range fullConfigs(t) {
		markSet(reflect.ValueOf(build()), set)
	}
	for _, k := range schemaKeys(reflect.TypeFor[Config](), map[reflect.Type]bool{}) {
		if !set[k] {
			t.Errorf("%s is never set in fullConfigs: add it so TestMarshalRoundTrip covers it", k)
		}
	}
}

// markSet records Type.Field for every field holding a non-zero value.
func markSet(v reflect.Value, set map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			markSet(v.Elem(), set)
		}
	case reflect.Slice:
		for i := range v.Len() {
			markSet(v.Index(i), set)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && !v.Field(i).IsZero() {
				set[v.Type().Name()+"."+f.Name] = true
				markSet(v.Field(i), set)
			}
		}
	}
}

// schemaKeys lists Type.Field for every field written to YAML.
func schemaKeys(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType || seen[t] {
		return nil
	}
	seen[t] = true
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("yaml") == "-" {
			continue
		}
		keys = append(keys, t.Name()+"."+f.Name)
		keys = append(keys, schemaKeys(f.Type, seen)...)
	}
	return keys
}

// TestMarshalMinimal: keys left at their zero value are not written.
func TestMarshalMinimal(t *testing.T) {
	data, err := Marshal(&Config{APIVersion: APIVersion, Kind: Kind, Node: "n1", Mode: ModeStatic,
		Groups: []Group{{Name: "web", VIPs: []VIP{{Address: "198.51.100.100"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != base {
		t.Fatalf("got:\n%s\nwant:\n%s", data, base)
	}
}
