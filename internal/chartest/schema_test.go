package chartest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
)

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), chart, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return s
}

// TestSchemaClosed: every object with properties refuses the ones it does
// not list, so a typo anywhere in the values is an error. (Maps of strings
// such as nodeSelector, and Kubernetes' own affinity and tolerations, which
// the API server checks, are the open ones.)
func TestSchemaClosed(t *testing.T) {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["properties"]; ok && v["additionalProperties"] != false {
				t.Errorf("%s: an object with properties but without additionalProperties: false", path)
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"/[]", c)
			}
		}
	}
	walk("#", loadSchema(t))
}

// TestSchemaMatchesConfig: the values schema's vipd sections (groups,
// checks, config) list exactly the keys of internal/config's types, so a new
// config key is either offered by the chart or the test says it is missing.
func TestSchemaMatchesConfig(t *testing.T) {
	s := loadSchema(t)
	defs := s["definitions"].(map[string]any)
	resolve := func(n map[string]any) map[string]any {
		if ref, ok := n["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		}
		return n
	}
	// Keys the chart writes itself, never the user.
	chartOwned := map[string]bool{
		"config.apiVersion": true, "config.kind": true, "config.node": true, "config.mode": true,
		"config.groups": true, "config.checks": true, // top-level values groups, checks
		"config.gossip.keyFile":  true, // the mounted Secret
		"config.gossip.insecure": true, // never: the chart always mounts a key
	}
	var compare func(path string, typ reflect.Type, n map[string]any)
	compare = func(path string, typ reflect.Type, n map[string]any) {
		n = resolve(n)
		props, _ := n["properties"].(map[string]any)
		var want []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || name == "" || chartOwned[path+"."+name] {
				continue
			}
			want = append(want, name)
			p, ok := props[name].(map[string]any)
			if !ok {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				if ft.Kind() == reflect.Slice {
					if ft.Elem().Kind() == reflect.Uint8 {
						break
					}
					if items, ok := resolve(p)["items"].(map[string]any); ok {
						p = items
					}
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeFor[config.Config]().PkgPath() {
				compare(path+"."+name, ft, p)
			}
		}
		var got []string
		for k := range props {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("values.schema.json lacks %s.%s (a key of internal/config)", path, k)
			}
		}
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("values.schema.json offers %s.%s, which internal/config does not have", path, k)
			}
		}
	}
	compare("config", reflect.TypeFor[config.Config](), defs["config"].(map[string]any))
	compare("groups[]", reflect.TypeFor[config.Group](), defs["group"].(map[string]any))
	compare("checks[]", reflect.TypeFor[config.Check](), defs["check"].(map[string]any))
}
