package resource

import "testing"

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
