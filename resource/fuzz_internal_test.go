package resource

import (
	"strings"
	"testing"
)

// FuzzParseJWKS feeds arbitrary bytes to the JWK Set parser used for
// fetched key sets: no panic, and a snapshot only with at least one key.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1","alg":"ES256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseJWKS(b)
		if (k == nil) == (err == nil) {
			t.Fatalf("keys %v with error %v", k, err)
		}
		if k != nil && k.Len() == 0 {
			t.Fatal("empty snapshot accepted")
		}
	})
}

// FuzzParseAuthorization: no panic; on success the parts round-trip to the
// input and the token is token68.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "DPoP eyJhbGciOiJFUzI1NiJ9.e30.sig", "bearer a=", "Bearer", "Bearer ", "Bearer  a",
		"Bearer a b", "Bearer a, DPoP b", " Bearer a", "Bearer a=b", "Basic dXNlcjpwYXNz", "Bearer \x00",
		"DPoP a.b.c==", "B\u00e9arer x", "Bearer a\r\nX: y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		scheme, tok, ok := parseAuthorization(value)
		if !ok {
			if scheme != "" || tok != "" {
				t.Fatal("parts returned on failure")
			}
			return
		}
		if scheme+" "+tok != value {
			t.Fatalf("round trip: %q + %q != %q", scheme, tok, value)
		}
		if strings.ContainsAny(tok, " \t\r\n,\"") || strings.ContainsAny(scheme, " \t\r\n,\"=") {
			t.Fatalf("separator inside a part: %q %q", scheme, tok)
		}
	})
}
