package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Marshal writes c as YAML that Parse reads back to the same values. Keys
// left at their zero value are omitted, so Parse gives them their defaults;
// fields that validation fills in (VIP.Addr, GroupVRRP.Peers, Gossip.Keys)
// are not written. Tests and the benchmark build their configs as a Config
// and write them with Marshal, so a schema change breaks them when they
// compile, not when they run.
func Marshal(c *Config) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var durationType = reflect.TypeFor[time.Duration]()

// integerErrors lists every number with a fraction or an exponent written
// where the schema wants a whole number (groups[].priority: 150.5): the YAML
// library would truncate it to 150 without a word. It walks the document
// alongside Config's type; keys the type does not have are left to the
// decoder, which reports them.
func integerErrors(data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil // the decoder has reported it
	}
	var errs []string
	walkIntegers(&doc, reflect.TypeFor[Config](), "", 0, &errs)
	return errs
}

func walkIntegers(n *yaml.Node, t reflect.Type, path string, depth int, errs *[]string) {
	if n == nil || depth > 64 { // aliases could nest without end
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkIntegers(c, t, path, depth+1, errs)
		}
	case yaml.AliasNode:
		walkIntegers(n.Alias, t, path, depth+1, errs)
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // merge key: its mappings are this mapping's
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						walkIntegers(m, t, path, depth+1, errs)
					}
				} else {
					walkIntegers(v, t, path, depth+1, errs)
				}
				continue
			}
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				continue
			}
			key := k.Value
			if path != "" {
				key = path + "." + k.Value
			}
			walkIntegers(v, f.Type, key, depth+1, errs)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			walkIntegers(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", depth+1, errs)
		}
	case yaml.ScalarNode:
		if !isInteger(t) || n.ShortTag() != "!!float" {
			return
		}
		rule := "must be a whole number, written without a decimal point or exponent"
		if integerRE.MatchString(n.Value) {
			rule = "is too large"
		}
		*errs = append(*errs, fmt.Sprintf("line %d: %s: `%s` %s", n.Line, path, n.Value, rule))
	}
}

func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return t != durationType // a duration is written 3s; the decoder says so
	}
	return false
}

// fieldByKey finds the struct field whose yaml key is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var (
	lineRE    = regexp.MustCompile(`^line (\d+):`)
	integerRE = regexp.MustCompile(`^[-+]?[0-9_]+$`)
	// floatIntoIntRE matches the decoder's own complaint about a number too
	// large for an integer key, which integerErrors reports too.
	floatIntoIntRE = regexp.MustCompile("cannot unmarshal !!float `[^`]*` into u?int(8|16|32|64)?$")
)

// sortByLine orders decode messages ("line N: ...") by line, stably.
func sortByLine(msgs []string) {
	line := func(s string) int {
		m := lineRE.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	slices.SortStableFunc(msgs, func(a, b string) int { return line(a) - line(b) })
}
