package jwsverify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestScannerCaseFolding pins the refusal of member names that are equal
// under case folding, at every level and in both the linear and the map
// mode of the duplicate check.
func TestScannerCaseFolding(t *testing.T) {
	t.Parallel()
	// many returns an object of n members m0..m(n-1) followed by extra.
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `"m%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	const (
		okOut   = "ok=true dup=false nested=false float=false"
		foldOut = "ok=false dup=false nested=false float=false fold=true"
		dupOut  = "ok=false dup=true nested=false float=false"
	)
	tests := []struct {
		name string
		s    Scanner
		in   string
		want string
	}{
		{"alg and ALG", Scanner{}, `{"alg":"ES256","ALG":"none"}`, foldOut},
		{"Alg before alg", Scanner{}, `{"Alg":"none","alg":"ES256"}`, foldOut},
		{"escaped upper case", Scanner{}, `{"alg":1,"\u0041LG":2}`, foldOut},
		{"Kelvin sign", Scanner{}, `{"kid":1,"` + "\u212a" + `id":2}`, foldOut},
		{"Kelvin sign escaped", Scanner{}, `{"\u212aid":1,"kid":2}`, foldOut},
		{"long s", Scanner{}, `{"scope":1,"` + "\u017f" + `cope":2}`, foldOut},
		{"non-ASCII letters", Scanner{}, `{"é":1,"É":2}`, foldOut},
		{"two upper-case spellings", Scanner{}, `{"AUD":1,"Aud":2}`, foldOut},
		{"nested", Scanner{}, `{"cnf":{"jkt":"a","JKT":"b"}}`, foldOut},
		{"in an array", Scanner{}, `{"x":[{"a":1,"A":2}]}`, foldOut},
		{"nested deferred", Scanner{DeferNestedDup: true}, `{"cnf":{"jkt":"a","Jkt":"b"}}`, "ok=true dup=false nested=true float=false"},
		{"top not deferred", Scanner{DeferNestedDup: true}, `{"iss":"a","ISS":"b"}`, foldOut},
		{"exact duplicate wins", Scanner{}, `{"a":1,"A":2,"a":3}`, foldOut},
		{"exact duplicate after a folded name", Scanner{}, `{"A":1,"b":2,"b":3}`, dupOut},
		{"no duplicate check", Scanner{NoDupCheck: true}, `{"a":1,"A":2}`, okOut},
		{"map mode", Scanner{}, many(100, `"Scope":1,"scope":2`), foldOut},
		{"map mode, Kelvin sign", Scanner{}, many(100, `"kid":1,"`+"\u212a"+`ID":2`), foldOut},
		{"map mode, exact", Scanner{}, many(100, `"Scope":1,"Scope":2`), dupOut},
		{"map mode, upper-case first", Scanner{}, many(30, `"M5":1`), foldOut},
		{"crossing into map mode", Scanner{}, many(64, `"M63":1`), foldOut},
		{"map mode, distinct", Scanner{}, many(100, `"Scope":1,"scopes":2,"ſcopes2":3`), okOut},
		{"distinct", Scanner{}, `{"ab":1,"Ac":2,"bé":3,"BÈ":4,"k":5,"s":6}`, okOut},
	}
	for _, tc := range tests {
		if got := scan(tc.s, tc.in); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestFoldRuleIsEncodingJSONs shows why the rule exists: encoding/json
// fills a field from a member whose name only folds to the field's name.
func TestFoldRuleIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"ALG":"none"}`, `{"Alg":"none"}`, `{"` + "\u212a" + `ID":"none"}`} {
		var v struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatal(err)
		}
		if v.Alg != "none" && v.Kid != "none" {
			t.Fatalf("encoding/json no longer folds %s; the rule stays, this witness needs updating", in)
		}
	}
}

func TestFoldKey(t *testing.T) {
	t.Parallel()
	pairs := [][2]string{{"kid", "KID"}, {"kid", "\u212aid"}, {"scope", "\u017fCOPE"}, {"é", "É"}, {"x5t#S256", "X5T#s256"}}
	for _, p := range pairs {
		if FoldKey([]byte(p[0])) != FoldKey([]byte(p[1])) {
			t.Errorf("FoldKey(%q) != FoldKey(%q)", p[0], p[1])
		}
	}
	for _, s := range []string{"kid", "x5t#s256", "cnf"} {
		if FoldKey([]byte(s)) != s || !foldsToItself([]byte(s)) {
			t.Errorf("%q is not its own key", s)
		}
	}
}

// FuzzFoldKey holds FoldKey to bytes.EqualFold.
func FuzzFoldKey(f *testing.F) {
	for _, p := range [][2]string{{"kid", "KID"}, {"k", "\u212a"}, {"s", "\u017f"}, {"ǅ", "ǆ"}, {"Σ", "ς"}, {"ß", "ẞ"}, {"a", "b"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		eq := bytes.EqualFold([]byte(a), []byte(b))
		if got := FoldKey([]byte(a)) == FoldKey([]byte(b)); got != eq {
			t.Fatalf("FoldKey equality %v, EqualFold %v for %q, %q", got, eq, a, b)
		}
		// The scanner agrees: an object with both names is refused
		// exactly when the names are equal or fold-equal.
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		s := Scanner{B: []byte("{" + string(ja) + ":1," + string(jb) + ":2}")}
		ok := s.Top(func([]byte) bool { return s.Skip(1) })
		if ok == eq {
			t.Fatalf("scanner ok=%v for %q, %q (EqualFold %v)", ok, a, b, eq)
		}
	})
}
