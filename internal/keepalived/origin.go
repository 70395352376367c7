package keepalived

import (
	"bytes"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// origin is where a piece of the output came from: a keepalived block
// (what names it, shown above the item) or one directive (a line comment).
type origin struct {
	what string // "vrrp_instance LB"; empty for a single directive
	pos  string // file:line
	note string // set instead of pos for a value the converter chose
}

func (o origin) text() string {
	if o.note != "" {
		return o.note
	}
	if o.what == "" {
		return o.pos
	}
	return o.what + " (" + o.pos + ")"
}

// origins maps a path in the output YAML to its source. A path is the keys
// from the document root joined by "/"; a list item is named by its name,
// address or check field (groups/lb/vips/198.51.100.10), else its index.
type origins map[string][]origin

func (src origins) add(path string, o origin) {
	for _, have := range src[path] {
		if have == o {
			return
		}
	}
	src[path] = append(src[path], o)
}

func (src origins) directive(path string, n *Node) { src.add(path, origin{pos: n.Pos()}) }

func (src origins) block(path string, n *Node) {
	src.add(path, origin{what: strings.TrimSpace(n.Key() + " " + n.Args0()), pos: n.Pos()})
}

// annotate writes the origins into the YAML as comments, so a reader can go
// from any converted value back to the keepalived line it came from. The
// encoder's own layout is kept: this only decorates the node tree.
func annotate(out []byte, src origins) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 1 {
		annotateNode(doc.Content[0], "", src)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func annotateNode(n *yaml.Node, path string, src origins) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if o := src[p]; len(o) > 0 {
				if v.Kind == yaml.ScalarNode {
					v.LineComment = comment(o, ", ")
				} else {
					k.HeadComment = comment(o, "\n")
				}
			}
			annotateNode(v, p, src)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := join(path, itemName(item, i))
			if o := src[p]; len(o) > 0 {
				if item.Kind == yaml.MappingNode && len(item.Content) >= 2 && o[0].what == "" {
					// One directive per item (a VIP line, a track line):
					// keep it on the item's first line.
					item.Content[1].LineComment = comment(o, ", ")
				} else {
					item.HeadComment = comment(o, "\n")
				}
			}
			annotateNode(item, p, src)
		}
	}
}

func comment(from []origin, sep string) string {
	s := make([]string, len(from))
	for i, o := range from {
		s[i] = o.text()
	}
	return strings.Join(s, sep)
}

func itemName(item *yaml.Node, i int) string {
	if item.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(item.Content); j += 2 {
			switch item.Content[j].Value {
			case "name", "address", "check":
				return item.Content[j+1].Value
			}
		}
	}
	return strconv.Itoa(i)
}

func join(path, key string) string {
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "/" + key
}

// graft copies a group's relative origins under prefix.
func (src origins) graft(prefix string, rel origins) {
	for p, from := range rel {
		for _, o := range from {
			src.add(join(prefix, p), o)
		}
	}
}
