package resource_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// FuzzCheck drives the whole request path (Authorization parsing, token
// validation, DPoP proof, binding) with attacker-chosen header values: no
// panic, a nil principal exactly when there is an error, every error an
// *resource.Error with a sane status, and a principal only for a token the
// issuer signed.
func FuzzCheck(f *testing.F) {
	e := restest.NewEnv(f, restest.Options{DPoP: true, InsecureHTTP: true})
	good := e.Token(f, nil)
	f.Add("Bearer "+good, "")
	f.Add("DPoP "+good, "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln")
	f.Add("Bearer "+restest.KAT8, "")
	f.Add("Bearer "+restest.KAT14, "")
	f.Add("Bearer a.b.c", "")
	f.Add("DPoP "+good[:len(good)/2], "x")
	f.Add("Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUudGVzdCJ9.", "")
	f.Fuzz(func(t *testing.T, authz, proof string) {
		r := httptest.NewRequest(http.MethodGet, "http://rs.example.test/any", nil)
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		if proof != "" {
			r.Header["Dpop"] = []string{proof}
		}
		p, err := e.Verifier.Check(r, resource.Policy{Accept: resource.AcceptAny})
		if (p == nil) == (err == nil) {
			t.Fatalf("principal %v with error %v", p, err)
		}
		if err != nil {
			var re *resource.Error
			if !errors.As(err, &re) || re.Status < 400 || re.Status > 503 || re.Reason == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if p.Subject != "user-1" || p.Issuer != e.AS.ID {
			t.Fatalf("accepted a token the issuer did not sign: %+v", p)
		}
	})
}

// FuzzTokenClaims signs attacker-chosen claims with the trusted issuer's
// key, so the fuzzer reaches the code after the signature check (claims
// decoding, aud, time, required claims, cnf and binding): no panic, a nil
// principal exactly on error, and a principal only for claims that name
// the issuer and this audience.
func FuzzTokenClaims(f *testing.F) {
	e := restest.NewEnv(f, restest.Options{})
	valid, _ := json.Marshal(e.Claims())
	f.Add(valid)
	f.Add([]byte(`{"iss":"https://as.example.test","aud":"https://rs.example.test","exp":1900000300,"cnf":null}`))
	f.Add([]byte(`{"iss":"https://as.example.test","aud":["https://rs.example.test"],"exp":1.9000003e9,"iat":1900000000,"sub":"s","client_id":"c","jti":"j","cnf":{"jkt":7}}`))
	f.Add([]byte(`{"iss":"https://as.example.test","iss":"https://as.example.test"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 4096 {
			return
		}
		tok := e.AS.MintRaw(t, restest.Header(), payload)
		p, err := e.Verifier.Check(bearerRequest(tok), resource.Policy{Accept: resource.AcceptAny})
		if (p == nil) == (err == nil) {
			t.Fatalf("principal %v with error %v", p, err)
		}
		if p != nil && (p.Issuer != e.AS.ID || p.Binding != resource.BindingBearer) {
			t.Fatalf("unexpected principal %+v", p)
		}
	})
}
