package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// referenceDoc is the configuration reference this test keeps complete.
const referenceDoc = "../../docs/config-reference.md"

// refKey is one YAML key of the schema: its dotted path (a list of
// mappings adds "[]": groups[].vips[].address) and its type as the
// reference writes it.
type refKey struct {
	path, typ string
}

var (
	refDurationType = reflect.TypeFor[time.Duration]()
	// Types decoded from one YAML scalar although Go sees a struct.
	refLeafStructs = map[string]bool{"net/netip.Addr": true, "net/netip.Prefix": true, "net/netip.AddrPort": true, "time.Time": true}
)

// referenceKeys walks t's YAML keys depth first, in field order.
func referenceKeys(t reflect.Type, prefix string) []refKey {
	var out []refKey
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			out = append(out, referenceKeys(ft, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // the YAML library's default
		}
		path := prefix + name
		typ, elem := refYAMLType(ft)
		out = append(out, refKey{path, typ})
		switch typ {
		case "mapping":
			out = append(out, referenceKeys(ft, path+".")...)
		case "list":
			out = append(out, referenceKeys(elem, path+"[].")...)
		}
	}
	return out
}

// refYAMLType names t as the reference does; for a list of mappings it also
// returns the element struct type.
func refYAMLType(t reflect.Type) (string, reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == refDurationType {
		return "duration", nil
	}
	if refLeafStructs[t.PkgPath()+"."+t.Name()] {
		return "string", nil
	}
	switch t.Kind() {
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "bool", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int", nil
	case reflect.Float32, reflect.Float64:
		return "number", nil
	case reflect.Struct:
		return "mapping", nil
	case reflect.Slice, reflect.Array:
		et := t.Elem()
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if typ, _ := refYAMLType(et); typ == "mapping" {
			return "list", et
		}
		typ, _ := refYAMLType(et)
		return "list of " + typ + "s", nil
	case reflect.Map:
		return "map", nil
	}
	return t.String(), nil
}

// referenceRowRE is a row of a reference table: the first cell is one
// dotted key path in backticks, the second its type.
var referenceRowRE = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*([^|]*?)\\s*\\|")

// documentedKeys reads the reference's rows: key path → type, and the
// paths listed twice.
func documentedKeys(t *testing.T) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]string{}
	var dups []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := referenceRowRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			dups = append(dups, m[1])
		}
		rows[m[1]] = m[2]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, dups
}

// TestReferenceDocumentsEveryKey keeps docs/config-reference.md complete and
// true: every YAML key of Config (recursing into sections and lists) has a
// row with its full path and type, and every row names a key.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	keys := referenceKeys(reflect.TypeFor[Config](), "")
	// A walker that lost its way would pass vacuously.
	if len(keys) < 80 {
		t.Fatalf("the schema walk found only %d keys: %v", len(keys), keys)
	}
	for _, want := range []refKey{
		{"groups[].track[].weight", "int"},
		{"groups[].vrrp.unicastPeers", "list of strings"},
		{"checks[].http.url", "string"},
		{"binding.lifetime", "duration"},
		{"groups", "list"},
		{"lease", "mapping"},
	} {
		if !slices.Contains(keys, want) {
			t.Fatalf("the schema walk misses %v", want)
		}
	}

	rows, dups := documentedKeys(t)
	for _, d := range dups {
		t.Errorf("%s: %s has two rows", referenceDoc, d)
	}
	inSchema := map[string]bool{}
	for _, k := range keys {
		inSchema[k.path] = true
		typ, ok := rows[k.path]
		switch {
		case !ok:
			t.Errorf("%s: key `%s` (%s) is not documented: add a row | `%s` | %s | default | meaning |", referenceDoc, k.path, k.typ, k.path, k.typ)
		case typ != k.typ:
			t.Errorf("%s: key `%s` is documented as %q but its type is %q", referenceDoc, k.path, typ, k.typ)
		}
	}
	for path := range rows {
		if !inSchema[path] {
			t.Errorf("%s: row `%s` names no key of the schema (stale docs, or a typo)", referenceDoc, path)
		}
	}
}

// TestReferenceWalker pins the walker's rules on a small schema, so the
// completeness test checks what it claims to.
func TestReferenceWalker(t *testing.T) {
	type leaf struct {
		A string `yaml:"a,omitempty"`
	}
	type inner struct {
		Leaf   leaf   `yaml:",inline"`
		Weight int    `yaml:"weight"`
		Skip   string `yaml:"-"`
	}
	type schema struct {
		Name     string        `yaml:"name,omitempty"`
		Every    time.Duration `yaml:"every"`
		Opt      *bool         `yaml:"opt"`
		Items    []inner       `yaml:"items"`
		PtrItems []*inner      `yaml:"ptrItems"`
		Args     []string      `yaml:"args"`
		Sect     *leaf         `yaml:"sect"`
		Untagged int
		hidden   int
	}
	_ = schema{}.hidden
	got := referenceKeys(reflect.TypeFor[schema](), "")
	want := []refKey{
		{"name", "string"}, {"every", "duration"}, {"opt", "bool"},
		{"items", "list"}, {"items[].a", "string"}, {"items[].weight", "int"},
		{"ptrItems", "list"}, {"ptrItems[].a", "string"}, {"ptrItems[].weight", "int"},
		{"args", "list of strings"},
		{"sect", "mapping"}, {"sect.a", "string"},
		{"untagged", "int"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("referenceKeys:\n got %v\nwant %v", got, want)
	}

	for _, tc := range []struct {
		line, key, typ string
	}{
		{"| `groups[].name` | string | — | x |", "groups[].name", "string"},
		{"|`a.b`|list of strings|x|", "a.b", "list of strings"},
		{"| key | type | default | meaning |", "", ""},
		{"| `a` and `b` | string | | |", "", ""},
		{"text `a` | string |", "", ""},
	} {
		m := referenceRowRE.FindStringSubmatch(tc.line)
		var key, typ string
		if m != nil {
			key, typ = m[1], m[2]
		}
		if key != tc.key || typ != tc.typ {
			t.Errorf("row %q: got (%q, %q), want (%q, %q)", tc.line, key, typ, tc.key, tc.typ)
		}
	}
}
