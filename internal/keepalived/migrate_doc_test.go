package keepalived

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// blockOf names the keepalived block whose directives each function of
// convert.go reads in its switch statements; notify's cases repeat its
// callers'. A new function with directive cases must be added here, so
// the table cannot silently miss a block.
var blockOf = map[string]string{
	"Convert":      "top level",
	"globalDefs":   "global_defs",
	"vrrpScript":   "vrrp_script",
	"trackFile":    "vrrp_track_file",
	"vrrpInstance": "vrrp_instance",
	"vip":          "virtual_ipaddress",
	"syncGroup":    "vrrp_sync_group",
	"notify":       "",
}

var backticked = regexp.MustCompile("`([^`]+)`")

// docTable returns the cells of the table rows in the section of
// docs/migrate.md headed by heading (up to the next heading).
func docTable(t *testing.T, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/migrate.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			in = strings.TrimSpace(l) == heading
			continue
		}
		if !in || !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("docs/migrate.md has no table under %q", heading)
	}
	return rows
}

func names(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestMigrateTableComplete: every directive convert.go handles by name
// (a string in a case of its switches) has a row in docs/migrate.md's
// keepalived table, under its block.
func TestMigrateTableComplete(t *testing.T) {
	documented := map[[2]string]bool{}
	for _, row := range docTable(t, "### keepalived directives") {
		if len(row) < 2 {
			continue
		}
		blocks := names(row[0])
		if row[0] == "top level" {
			blocks = []string{"top level"}
		}
		for _, b := range blocks {
			for _, d := range names(row[1]) {
				documented[[2]string{b, d}] = true
			}
		}
	}

	fset := token.NewFileSet()
	f, err := goparser.ParseFile(fset, "convert.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		ast.Inspect(fn, func(x ast.Node) bool {
			cc, ok := x.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				lit, ok := e.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				d, _ := strconv.Unquote(lit.Value)
				block, known := blockOf[fn.Name.Name]
				if !known {
					t.Errorf("%s: func %s handles directive %q: add it to blockOf", fset.Position(lit.Pos()), fn.Name.Name, d)
					continue
				}
				if block == "" {
					continue
				}
				n++
				if !documented[[2]string{block, d}] {
					t.Errorf("%s: %s directive %q is missing from docs/migrate.md's keepalived table", fset.Position(lit.Pos()), block, d)
				}
			}
			return true
		})
	}
	if n < 50 {
		t.Errorf("found only %d directives in convert.go: is the test still reading its switches?", n)
	}
}
