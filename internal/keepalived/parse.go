// Package keepalived reads keepalived.conf the way keepalived 2.2 does
// (lib/parser.c: read_line, decomment, alloc_strvec_r) into a tree of
// statements that keep their file and line, and converts that tree into a
// vipd config (convert.go).
package keepalived

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Node is one statement: its words, and the block that followed it, if any.
type Node struct {
	// Tokens are the words as keepalived's alloc_strvec_r splits them: on
	// blanks, a "quoted" word without its quotes and with no escapes.
	Tokens []string
	// Raw is the line after comments, definitions and @id were handled:
	// what keepalived re-splits with shell-like quoting for `script`.
	Raw  string
	File string
	Line int
	// HasBlock: a `{ ... }` followed; Block holds its statements.
	HasBlock bool
	Block    []*Node
}

// Pos is file:line for messages.
func (n *Node) Pos() string { return fmt.Sprintf("%s:%d", n.File, n.Line) }

// Key is the first word.
func (n *Node) Key() string { return n.Tokens[0] }

// Args are the words after the first.
func (n *Node) Args() []string { return n.Tokens[1:] }

// SyntaxError is a file keepalived would refuse, at the line it names.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// FS is what the parser reads includes through; OSFS is the real one.
type FS interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// OSFS reads the local filesystem.
type OSFS struct{}

// ReadFile implements FS.
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Glob implements FS.
func (OSFS) Glob(p string) ([]string, error) { return filepath.Glob(p) }

// Options tune parsing.
type Options struct {
	// ConfigID matches `@id` lines (keepalived -i; keepalived's default
	// is the host name).
	ConfigID string
	FS       FS
}

// Limits keep hostile input from hanging or exhausting the parser.
const (
	maxIncludeDepth = 16
	maxLineLen      = 64 << 10
	maxLines        = 1 << 20
	maxExpansions   = 64
	maxFiles        = 256 // file reads in all; stops include fan-out blowing up
)

type line struct {
	text string
	file string
	no   int
}

type parser struct {
	opts  Options
	defs  map[string]string
	multi string // name of a multi-line definition being read
	lines []line
	depth int
	files int
}

// ParseFile reads path and everything it includes.
func ParseFile(path string, opts Options) ([]*Node, error) {
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	p := &parser{opts: opts, defs: map[string]string{}}
	data, err := opts.FS.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := p.readFile(path, data); err != nil {
		return nil, err
	}
	return p.build()
}

// readFile turns one file into logical lines (comments stripped,
// definitions applied, @id filtered, braces split out), following includes.
func (p *parser) readFile(name string, data []byte) error {
	if p.depth > maxIncludeDepth {
		return &SyntaxError{name, 1, fmt.Sprintf("includes nested deeper than %d (an include cycle?)", maxIncludeDepth)}
	}
	for i, l := range strings.Split(string(data), "\n") {
		no := i + 1
		l = strings.TrimRight(l, "\r")
		if len(l) > maxLineLen {
			return &SyntaxError{name, no, "line too long"}
		}
		if err := p.readLine(l, name, no); err != nil {
			return err
		}
		if len(p.lines) > maxLines {
			return &SyntaxError{name, no, "too many lines"}
		}
	}
	p.multi = ""
	return nil
}

func (p *parser) readLine(l, file string, no int) error {
	if p.multi != "" {
		if strings.TrimSpace(l) == "" {
			p.multi = ""
			return nil
		}
	}
	l, cont, err := decomment(l)
	if err != nil {
		return &SyntaxError{file, no, err.Error()}
	}
	if p.multi != "" {
		p.defs[p.multi] += "\n" + l
		if !cont {
			p.multi = ""
		}
		return nil
	}
	if l == "" {
		return nil
	}
	queue := []string{l}
	for n := 0; len(queue) > 0; n++ {
		if n > maxExpansions {
			return &SyntaxError{file, no, "definitions expand too many times (a definition that uses itself?)"}
		}
		l, queue = queue[0], queue[1:]
		l, ok := p.conditional(l)
		if !ok || l == "" {
			continue
		}
		if name, val, ok := definition(l); ok {
			p.defs[name] = val
			if cont {
				p.multi = name
			}
			continue
		}
		if strings.HasPrefix(l, "~") {
			return &SyntaxError{file, no, "~SEQ and ~LST are not supported by vipd convert; expand them by hand"}
		}
		if len(p.defs) > 0 && strings.Contains(l, "$") {
			if exp, changed := p.expand(l); changed {
				if len(exp) > maxLineLen {
					return &SyntaxError{file, no, "definition expands to a line too long"}
				}
				var more []string
				for _, e := range strings.Split(exp, "\n") {
					e, _, err := decomment(e)
					if err != nil {
						return &SyntaxError{file, no, err.Error()}
					}
					if e != "" {
						more = append(more, e)
					}
				}
				queue = append(more, queue...)
				continue
			}
		}
		if pat, ok := includeArg(l); ok {
			if err := p.include(pat, file, no); err != nil {
				return err
			}
			continue
		}
		p.splitBraces(l, file, no)
	}
	return nil
}

// conditional applies `@id` / `@^id`: the line stays (without the prefix)
// only if it is for this node.
func (p *parser) conditional(l string) (string, bool) {
	if !strings.HasPrefix(l, "@") {
		return l, true
	}
	rest, rev := l[1:], false
	if strings.HasPrefix(rest, "^") {
		rest, rev = rest[1:], true
	}
	i := strings.IndexAny(rest, " \t")
	if i < 0 {
		return "", false
	}
	match := p.opts.ConfigID != "" && rest[:i] == p.opts.ConfigID
	if match == rev {
		return "", false
	}
	return strings.TrimLeft(rest[i:], " \t"), true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || c == '_'
}

// definition reads `$NAME=value` (check_definition).
func definition(l string) (name, val string, ok bool) {
	if len(l) < 2 || l[0] != '$' || !(isAlpha(l[1]) || l[1] == '_') {
		return "", "", false
	}
	i := 2
	for i < len(l) && isNameChar(l[i]) {
		i++
	}
	name = l[1:i]
	rest := strings.TrimLeft(l[i:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", false
	}
	return name, strings.TrimLeft(rest[1:], " \t"), true
}

// expand replaces every $NAME and ${NAME} that is defined (replace_param).
// An unbraced name must end at a blank, ',', ')' or the end of the line.
func (p *parser) expand(l string) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(l); i++ {
		if l[i] != '$' || i+1 >= len(l) {
			b.WriteByte(l[i])
			continue
		}
		j, braces := i+1, false
		if l[j] == '{' {
			braces = true
			j++
		}
		k := j
		for k < len(l) && isNameChar(l[k]) {
			k++
		}
		name := l[j:k]
		ok := name != "" && (isAlpha(name[0]) || name[0] == '_')
		end := k
		if ok && braces {
			ok = k < len(l) && l[k] == '}'
			end = k + 1
		} else if ok {
			ok = k == len(l) || strings.IndexByte(" \t,)", l[k]) >= 0
		}
		v, defined := p.defs[name]
		if !ok || !defined {
			b.WriteByte(l[i])
			continue
		}
		b.WriteString(v)
		changed = true
		i = end - 1
	}
	return b.String(), changed
}

// decomment strips a `#` or `!` comment outside double quotes, turns `\#`
// and `\!` into the plain characters, trims blanks, and reports a trailing
// backslash (a multi-line definition continues).
func decomment(l string) (string, bool, error) {
	l = strings.TrimLeft(l, " \t")
	var b strings.Builder
	quote, cont := false, false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\':
			if i+1 == len(l) {
				cont = true
				i++
				continue
			}
			if !quote && (l[i+1] == '#' || l[i+1] == '!') {
				b.WriteByte(l[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(l[i+1])
			}
			i++
			continue
		case !quote && (c == '#' || c == '!'):
			i = len(l)
			continue
		}
		b.WriteByte(c)
	}
	if quote {
		return "", false, fmt.Errorf("unterminated quote in %q", l)
	}
	return strings.TrimRight(b.String(), " \t"), cont, nil
}

// includeArg recognises `include PATTERN` (and keepalived's includer, etc.).
func includeArg(l string) (string, bool) {
	if !strings.HasPrefix(l, "include") || len(l) < 9 {
		return "", false
	}
	switch {
	case l[7] == ' ' || l[7] == '\t':
		return strings.TrimLeft(l[8:], " \t"), true
	case strings.IndexByte("rmwba", l[7]) >= 0 && (l[8] == ' ' || l[8] == '\t'):
		return strings.TrimLeft(l[9:], " \t"), true
	}
	return "", false
}

func (p *parser) include(pat, file string, no int) error {
	pat = strings.TrimSpace(pat)
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(file), pat)
	}
	matches, err := p.opts.FS.Glob(pat)
	if err != nil {
		return &SyntaxError{file, no, fmt.Sprintf("include %s: %v", pat, err)}
	}
	sort.Strings(matches)
	// keepalived warns and goes on when a glob matches nothing.
	for _, m := range matches {
		if p.files++; p.files > maxFiles {
			return &SyntaxError{file, no, fmt.Sprintf("more than %d included files (an include cycle?)", maxFiles)}
		}
		data, err := p.opts.FS.ReadFile(m)
		if err != nil {
			return &SyntaxError{file, no, fmt.Sprintf("include %s: %v", m, err)}
		}
		p.depth++
		err = p.readFile(m, data)
		p.depth--
		if err != nil {
			return err
		}
	}
	return nil
}

// splitBraces makes every `{` and `}` outside double quotes a line of its
// own, as read_line does: `8082{` is `8082` then `{`.
func (p *parser) splitBraces(l, file string, no int) {
	for l != "" {
		i := braceIndex(l)
		switch {
		case i < 0:
			p.lines = append(p.lines, line{l, file, no})
			return
		case i == 0:
			p.lines = append(p.lines, line{l[:1], file, no})
			l = strings.TrimLeft(l[1:], " \t")
		default:
			p.lines = append(p.lines, line{strings.TrimRight(l[:i], " \t"), file, no})
			l = l[i:]
		}
	}
}

func braceIndex(l string) int {
	quote := false
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '"':
			quote = !quote
		case '{', '}':
			if !quote {
				return i
			}
		}
	}
	return -1
}

// tokens splits like alloc_strvec_r.
func tokens(l string) ([]string, error) {
	var out []string
	for {
		l = strings.TrimLeft(l, " \t")
		if l == "" {
			return out, nil
		}
		if l[0] == '"' {
			j := strings.IndexByte(l[1:], '"')
			if j < 0 {
				return nil, errors.New("unmatched quote")
			}
			out = append(out, l[1:1+j])
			l = l[2+j:]
			continue
		}
		j := strings.IndexAny(l, " \t\"")
		if j < 0 {
			j = len(l)
		}
		out = append(out, l[:j])
		l = l[j:]
	}
}

// build nests the lines into blocks.
func (p *parser) build() ([]*Node, error) {
	var root []*Node
	stack := []*[]*Node{&root}
	var owners []*Node
	for _, l := range p.lines {
		cur := stack[len(stack)-1]
		switch l.text {
		case "{":
			if len(*cur) == 0 || (*cur)[len(*cur)-1].HasBlock {
				return nil, &SyntaxError{l.file, l.no, "unexpected '{'"}
			}
			n := (*cur)[len(*cur)-1]
			n.HasBlock = true
			stack = append(stack, &n.Block)
			owners = append(owners, n)
		case "}":
			if len(stack) == 1 {
				return nil, &SyntaxError{l.file, l.no, "extra '}'"}
			}
			stack = stack[:len(stack)-1]
			owners = owners[:len(owners)-1]
		default:
			toks, err := tokens(l.text)
			if err != nil {
				return nil, &SyntaxError{l.file, l.no, err.Error()}
			}
			if len(toks) == 0 {
				continue
			}
			*cur = append(*cur, &Node{Tokens: toks, Raw: l.text, File: l.file, Line: l.no})
		}
	}
	if len(owners) > 0 {
		o := owners[len(owners)-1]
		return nil, &SyntaxError{o.File, o.Line, fmt.Sprintf("block %q is never closed (missing '}')", o.Key())}
	}
	return root, nil
}

// ScriptArgv splits a `script` (or notify) line as keepalived 2.2 does
// (set_script_params_array): the line is split with shell-like quoting
// (alloc_strvec_quoted_escaped: blanks separate words, '…' and "…" quote
// parts of a word, backslash escapes), and then only the word after the
// keyword is split again the same way into the argv. Words after that one
// are ignored by keepalived and returned as ignored.
func ScriptArgv(raw string) (argv, ignored []string, err error) {
	words, err := splitQuoted(raw)
	if err != nil || len(words) < 2 {
		return nil, nil, err
	}
	argv, err = splitQuoted(words[1])
	return argv, words[2:], err
}

func splitQuoted(raw string) ([]string, error) {
	var out []string
	s := raw
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		var w strings.Builder
		var q byte
	word:
		for len(s) > 0 {
			c := s[0]
			switch {
			case c == '\\':
				if len(s) == 1 {
					return nil, errors.New("backslash at end of line")
				}
				r, n := unescape(s[1:])
				w.WriteByte(r)
				s = s[1+n:]
			case q != 0 && c == q:
				q = 0
				s = s[1:]
			case q != 0:
				w.WriteByte(c)
				s = s[1:]
			case c == '"' || c == '\'':
				q = c
				s = s[1:]
			case c == ' ' || c == '\t':
				break word
			default:
				w.WriteByte(c)
				s = s[1:]
			}
		}
		if q != 0 {
			return nil, fmt.Errorf("missing terminating %c", q)
		}
		out = append(out, w.String())
	}
	return out, nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unescape(s string) (byte, int) {
	c := s[0]
	switch {
	case c == 'x' && len(s) > 1 && isHex(s[1]):
		var v byte
		n := 1
		for n < len(s) && isHex(s[n]) {
			d := s[n]
			switch {
			case d <= '9':
				d -= '0'
			case d >= 'a':
				d = d - 'a' + 10
			default:
				d = d - 'A' + 10
			}
			v = v<<4 | d
			n++
		}
		return v, n
	case c == 'c' && len(s) > 1:
		return s[1] & 0x1f, 2
	case c >= '0' && c <= '7':
		v, n := c-'0', 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v<<3 + s[n] - '0'
			n++
		}
		return v, n
	}
	m := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
	if r, ok := m[c]; ok {
		return r, 1
	}
	return c, 1
}
