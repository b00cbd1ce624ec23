package jwsverify

import "testing"

// BenchmarkScanner scans the JSON of a typical DPoP proof header, access
// token claims, and an object with upper-case names (which take the
// case-folding comparison), passing over every value.
func BenchmarkScanner(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"proof-header", `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}`},
		{"token-claims", `{"iss":"https://as.example.test","sub":"user-1","aud":"https://rs.example.test","exp":1900000300,"iat":1900000000,"jti":"3f881ef8-da9f-4b0e-81dd-6dd1044e873d","client_id":"c1","scope":"read write","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`},
		{"upper-case-names", `{"Iss":"https://as.example.test","Sub":"user-1","Aud":"https://rs.example.test","Exp":1900000300,"Iat":1900000000,"Jti":"j","Client_Id":"c1","Scope":"read write"}`},
	} {
		in := []byte(tc.in)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				s := Scanner{B: in, MaxDepth: 16, MaxMembers: 64}
				if !s.Top(func([]byte) bool { return s.Skip(1) }) {
					b.Fatal("refused")
				}
			}
		})
	}
}
