package keepalived

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// mapFS is an in-memory FS for parser tests and the fuzzer.
type mapFS fstest.MapFS

func (m mapFS) ReadFile(name string) ([]byte, error) {
	f, ok := m[strings.TrimPrefix(name, "/")]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return f.Data, nil
}

func (m mapFS) Glob(p string) ([]string, error) {
	var out []string
	for k := range m {
		if ok, err := path.Match(strings.TrimPrefix(p, "/"), k); err != nil {
			return nil, err
		} else if ok {
			out = append(out, "/"+k)
		}
	}
	return out, nil
}

func parseString(t *testing.T, files map[string]string, id string) ([]*Node, error) {
	t.Helper()
	m := mapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return ParseFile("/main.conf", Options{FS: m, ConfigID: id})
}

// flat renders the tree as "line:tokens" for comparison.
func flat(ns []*Node, depth int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, strings.Repeat(">", depth)+path.Base(n.File)+":"+itoa(n.Line)+":"+strings.Join(n.Tokens, "|"))
		out = append(out, flat(n.Block, depth+1)...)
	}
	return out
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i/10)) + string(rune('0'+i%10)))
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		id    string
		want  []string
	}{
		{"blocks across lines, comments inside", map[string]string{"main.conf": "global_defs\n{\n  router_id n1 # c\n ! whole\n}\n"},
			"", []string{"main.conf:01:global_defs", ">main.conf:03:router_id|n1"}},
		{"brace stuck to a token", map[string]string{"main.conf": "virtual_server 198.51.100.1 8082{\n delay_loop 6 }\n"},
			"", []string{"main.conf:01:virtual_server|198.51.100.1|8082", ">main.conf:02:delay_loop|6"}},
		{"one-line block", map[string]string{"main.conf": "virtual_ipaddress { 198.51.100.1/24 dev eth0 }"},
			"", []string{"main.conf:01:virtual_ipaddress", ">main.conf:01:198.51.100.1/24|dev|eth0"}},
		{"quotes keep blanks and comment chars", map[string]string{"main.conf": "script \"/bin/x -a # b\"\n"},
			"", []string{"main.conf:01:script|/bin/x -a # b"}},
		{"escaped comment char", map[string]string{"main.conf": "a b\\#c\n"}, "", []string{"main.conf:01:a|b#c"}},
		{"definitions", map[string]string{"main.conf": "$IF=eth1\n$P = 150\ninterface $IF\npriority ${P}\nx $IFx\n"},
			"", []string{"main.conf:03:interface|eth1", "main.conf:04:priority|150", "main.conf:05:x|$IFx"}},
		{"multi-line definition", map[string]string{"main.conf": "$B=a 1 \\\nb 2\nx {\n$B\n}\n"},
			"", []string{"main.conf:03:x", ">main.conf:04:a|1", ">main.conf:04:b|2"}},
		{"conditional lines", map[string]string{"main.conf": "@n1 priority 150\n@n2 priority 100\n@^n1 state BACKUP\n"},
			"n1", []string{"main.conf:01:priority|150"}},
		{"include glob relative", map[string]string{"main.conf": "include conf.d/*.conf\nz 1\n", "conf.d/b.conf": "b 2\n", "conf.d/a.conf": "a 1\n"},
			"", []string{"a.conf:01:a|1", "b.conf:01:b|2", "main.conf:02:z|1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := parseString(t, tc.files, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got := flat(ns, 0); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
	}{
		{"extra brace", "a {\n}\n}\n", 3},
		{"unclosed", "x 1\nvrrp_instance V {\n a 1\n", 2},
		{"unterminated quote", "a\nscript \"/bin/true\n", 2},
		{"include cycle", "include main.conf\n", 1},
		{"include fan-out", "include main.conf\ninclude main.conf\ninclude main.conf\n", 1},
		{"self-referencing definition", "$A=$A x\ny $A\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, map[string]string{"main.conf": tc.src}, "")
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line != tc.line {
				t.Fatalf("err = %v, want a syntax error at line %d", err, tc.line)
			}
		})
	}
}

func TestScriptArgv(t *testing.T) {
	for raw, want := range map[string][]string{
		`script "/etc/keepalived/check_apiserver.sh"`: {"/etc/keepalived/check_apiserver.sh"},
		`script "/usr/bin/killall -0 haproxy"`:        {"/usr/bin/killall", "-0", "haproxy"},
		`script "/bin/sh -c 'test -f /x'"`:            {"/bin/sh", "-c", "test -f /x"},
		`script /bin/a\ b c`:                          {"/bin/a", "b"},
	} {
		got, _, err := ScriptArgv(raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ScriptArgv(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"haproxy-pair.conf", "syncgroup.conf", "kubeadm.conf", "lvs.conf"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data), "inc {\n}\n")
	}
	for _, s := range []string{"a {\n b 1\n}\n", "$A=x\n@id y $A{}\n", "include *\n", "script \"a 'b'\"\n", "x 8082{ y }}"} {
		f.Add(s, "inc {\n}\n")
	}
	f.Fuzz(func(t *testing.T, main, inc string) {
		m := mapFS{"main.conf": {Data: []byte(main)}, "inc.conf": {Data: []byte(inc)}}
		ns, err := ParseFile("/main.conf", Options{FS: m, ConfigID: "id"})
		if err == nil {
			_ = flat(ns, 0)
			// The converter and its annotated output must take whatever
			// the parser accepts.
			res, err := Convert(ns)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if _, err := res.YAML(); err != nil {
				t.Fatalf("YAML: %v", err)
			}
		}
		for _, n := range ns {
			_, _, _ = ScriptArgv(n.Raw)
		}
	})
}
