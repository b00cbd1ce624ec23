package oautherr

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"testing"
)

// TestConstantsDistinct: every code and every reason is a distinct,
// lower-case snake_case word, so no two checks share a reason by accident
// and no reason needs quoting in a log line.
func TestConstantsDistinct(t *testing.T) {
	t.Parallel()
	word := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, file := range []string{"codes.go", "reason.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		n := 0
		ast.Inspect(f, func(node ast.Node) bool {
			vs, ok := node.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: %s is not a string literal", file, name.Name)
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if !word.MatchString(v) {
					t.Errorf("%s: %s = %q is not a snake_case word", file, name.Name, v)
				}
				if prev, dup := seen[v]; dup {
					t.Errorf("%s: %s and %s are both %q", file, prev, name.Name, v)
				}
				seen[v] = name.Name
				n++
			}
			return true
		})
		if n < 10 {
			t.Errorf("%s: only %d constants found", file, n)
		}
	}
	if ReasonProofReplayed.String() != "proof_replayed" {
		t.Error("Reason.String")
	}
}
