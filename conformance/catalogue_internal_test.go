package conformance

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestEveryTableInCatalogue: every package-level case table (var x =
// []Case{...}) is joined into the catalogue exactly once, and the
// catalogue joins nothing else, so that a table added in a new file is not
// silently left out of every run.
func TestEveryTableInCatalogue(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var tables, joined []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					if isCaseTable(v) {
						tables = append(tables, vs.Names[i].Name)
					}
					if vs.Names[i].Name == "catalogue" {
						call, ok := v.(*ast.CallExpr)
						if !ok {
							t.Fatalf("%s: catalogue is not a call joining the tables", name)
						}
						for _, a := range call.Args {
							id, ok := a.(*ast.Ident)
							if !ok {
								t.Fatalf("%s: catalogue joins %T, want table names", name, a)
							}
							joined = append(joined, id.Name)
						}
					}
				}
			}
		}
	}
	if len(tables) == 0 {
		t.Fatal("no case tables found")
	}
	slices.Sort(tables)
	sorted := slices.Sorted(slices.Values(joined))
	if !slices.Equal(tables, sorted) {
		t.Errorf("declared tables %v, catalogue joins %v", tables, joined)
	}
	n := 0
	for _, c := range catalogue {
		if c.run == nil {
			t.Errorf("%s has no run function", c.ID)
		}
		n++
	}
	if n != len(Cases()) {
		t.Errorf("catalogue has %d cases, Cases returns %d", n, len(Cases()))
	}
}

// isCaseTable reports whether e is a []Case composite literal.
func isCaseTable(e ast.Expr) bool {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return false
	}
	at, ok := cl.Type.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return false
	}
	id, ok := at.Elt.(*ast.Ident)
	return ok && id.Name == "Case"
}
