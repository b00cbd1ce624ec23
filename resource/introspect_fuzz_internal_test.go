package resource

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// FuzzParseIntrospection feeds hostile introspection answers to the
// parser: it never panics, accepts only one valid JSON object whose
// "active" is a boolean, agrees with encoding/json on that value, and
// judges an accepted answer without panicking.
func FuzzParseIntrospection(f *testing.F) {
	for _, s := range []string{
		`{"active":false}`,
		`{"active": true, "sub": "someone@example.com", "iss": "https://server.example.com", "nbf": 1562262611, "exp": 1562266216, "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`,
		`{"active":true,"iss":"https://as.example.test","aud":["https://rs.example.test"],"exp":1,"token_type":"Bearer","cnf":{"x5t#S256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`,
		`{"active":true,"active":false}`,
		`{"active":"true"}`,
		`{"active":true,"cnf":{"jkt":"a","jkt":"b"}}`,
		`{"active":true,"exp":1e400}`,
		`{"active":true,"":1e700}`,
		`[{"active":true}]`,
		`{"active":true}garbage`,
	} {
		f.Add([]byte(s))
	}
	v := &Verifier{audience: "https://rs.example.test", issuers: []Issuer{{Identifier: "https://as.example.test"}},
		intro: &introspector{cfg: Introspection{Endpoint: "https://as.example.test/introspect"}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a introspectionAnswer
		if !parseIntrospection(b, v.audience, &a) {
			return
		}
		// The grammar is encoding/json's; the range of a number is not a
		// syntax question (a number too large for a float64 in a member
		// the parser ignores is still JSON), so numbers are kept as text.
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("accepted data after the object: %v", err)
		}
		if act, ok := m["active"].(bool); !ok || act != a.active {
			t.Fatalf("active %v, encoding/json says %v", a.active, m["active"])
		}
		tok, err := v.judgeIntrospection(b)
		if (tok == nil) == (err == nil) {
			t.Fatalf("judge returned %v and %v", tok, err)
		}
	})
}
