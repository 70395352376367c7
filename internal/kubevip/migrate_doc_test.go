package kubevip

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var backticked = regexp.MustCompile("`([^`]+)`")

// documentedVars returns the variables named (in backticks) in the first
// column of docs/migrate.md's kube-vip table.
func documentedVars(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/migrate.md")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			in = strings.TrimSpace(l) == "### kube-vip variables"
			continue
		}
		if !in || !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") {
			continue
		}
		first, _, _ := strings.Cut(strings.Trim(l, "|"), "|")
		for _, m := range backticked.FindAllStringSubmatch(first, -1) {
			vars[m[1]] = true
		}
	}
	if len(vars) == 0 {
		t.Fatal("docs/migrate.md has no kube-vip variables table")
	}
	return vars
}

// readsOrNames are the converter's methods whose first argument is a
// kube-vip variable's name.
var readsOrNames = map[string]bool{"get": true, "boolVar": true, "intVar": true, "warn": true, "note": true, "warnWhy": true}

// mappedVars collects the variables convert.go names: first arguments of
// readsOrNames, elements of []string literals (variables read in a loop),
// and strings compared with an env var's Name.
func mappedVars(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "convert.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{} // name → position
	add := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, _ := strconv.Unquote(lit.Value)
		if s != "" {
			vars[s] = fset.Position(lit.Pos()).String()
		}
	}
	ast.Inspect(f, func(x ast.Node) bool {
		switch x := x.(type) {
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && readsOrNames[sel.Sel.Name] && len(x.Args) > 0 {
				add(x.Args[0])
			}
		case *ast.CompositeLit:
			if at, ok := x.Type.(*ast.ArrayType); ok {
				if id, ok := at.Elt.(*ast.Ident); ok && id.Name == "string" {
					for _, e := range x.Elts {
						add(e)
					}
				}
			}
		case *ast.BinaryExpr:
			if sel, ok := x.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Name" && x.Op == token.EQL {
				add(x.Y)
			}
		}
		return true
	})
	return vars
}

// TestMigrateTableComplete: every kube-vip variable the converter knows,
// mapped (convert.go) or not carried over (vars.go), has a row in
// docs/migrate.md's kube-vip table.
func TestMigrateTableComplete(t *testing.T) {
	doc := documentedVars(t)
	mapped := mappedVars(t)
	if len(mapped) < 20 {
		t.Errorf("found only %d variables in convert.go: is the test still reading its calls?", len(mapped))
	}
	for v, pos := range mapped {
		if !doc[v] {
			t.Errorf("%s: variable %q is missing from docs/migrate.md's kube-vip table", pos, v)
		}
	}
	for v := range ignored {
		if !doc[v] {
			t.Errorf("vars.go: variable %q is missing from docs/migrate.md's kube-vip table", v)
		}
	}
}
