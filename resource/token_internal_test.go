package resource

import (
	"context"
	"crypto/elliptic"
	"math/big"
	"strings"
	"testing"
)

const validClaims = `{"iss":"https://as.example.test","sub":"user-1","aud":"https://rs.example.test","exp":1900000300,"iat":1900000000,"jti":"j1","client_id":"c1","scope":"read write"}`

// claimsWith returns validClaims with extra members appended.
func claimsWith(extra string) string { return strings.TrimSuffix(validClaims, "}") + "," + extra + "}" }

// TestVerifyTokenRules pins the verdict of verifyToken on tokens signed by
// a trusted key, and beside it the verdict of the go-jose reference: the
// rows where they differ are the documented stricter rules (doc.go,
// "Access tokens"); every other row shows a check kept as it was.
func TestVerifyTokenRules(t *testing.T) {
	t.Parallel()
	fx := newTokenFixture(t)
	const es = `{"alg":"ES256","typ":"at+jwt","kid":"ec1"}`
	tests := []struct {
		name      string
		header    string
		payload   string
		mode      uint16
		want      string // reason, "" = accepted
		wantJOSE  string // what the go-jose reference says
		wantSubst string // for accepted tokens: the subject
	}{
		{"valid ES256", es, validClaims, 0, "", "", "user-1"},
		{"valid RS256 without alg on the key", `{"alg":"RS256","typ":"at+jwt","kid":"rsa1"}`, validClaims, 0, "", "", "user-1"},
		{"valid PS512, salt of hash length", `{"alg":"PS512","typ":"at+jwt","kid":"rsa1"}`, validClaims, 0, "", "", "user-1"},
		{"valid PS256, largest salt (as go-jose)", `{"alg":"PS256","typ":"at+jwt","kid":"rsa1"}`, validClaims, modePSSMax, "", "", "user-1"},
		{"valid EdDSA without kid", `{"alg":"EdDSA","typ":"at+jwt"}`, validClaims, 0, "", "", "user-1"},
		{"valid ES384", `{"alg":"ES384","typ":"at+jwt","kid":"ec384"}`, validClaims, 0, "", "", "user-1"},
		{"escaped names and values", `{"\u0061lg":"ES\u0032\u0035\u0036","typ":"AT+JWT","kid":"ec1"}`, strings.Replace(validClaims, `"sub":"user-1"`, `"s\u0075b":"us\u00e9r\ud83d\ude00"`, 1), 0, "", "", "us\u00e9r\U0001F600"},

		// Base64url: canonical only (stricter).
		{"non-canonical header segment", `{"alg":"ES256","typ":"at+jwt","kid":"ec1" }`, validClaims, modeNCHeader, "token_malformed", "", ""},
		{"non-canonical payload segment", es, validClaims, modeNCPayload, "token_malformed", "", ""},
		{"non-canonical signature segment", es, validClaims, modeNCSig, "token_malformed", "", ""},
		{"LF inside a segment", es, validClaims, modeNewline, "token_malformed", "", ""},
		{"padding", "", "", 0, "token_malformed", "token_malformed", ""}, // built below
		{"four segments", es, validClaims, modeExtraDot, "token_malformed", "token_malformed", ""},
		{"empty signature", es, validClaims, modeNoSig, "token_signature", "token_signature", ""},

		// Algorithms and keys.
		{"alg none", `{"alg":"none","typ":"at+jwt"}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"alg HS256", `{"alg":"HS256","typ":"at+jwt"}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"alg case-sensitive", `{"alg":"es256","typ":"at+jwt"}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"alg missing", `{"typ":"at+jwt"}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"alg not a string", `{"alg":["ES256"],"typ":"at+jwt"}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"empty header segment", "", validClaims, modeRawHeader, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"ES384 with a P-256 key", `{"alg":"ES384","typ":"at+jwt","kid":"ec1"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"ES256 with a P-384 key", `{"alg":"ES256","typ":"at+jwt","kid":"ec384"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"RS256 with an EC key", `{"alg":"RS256","typ":"at+jwt","kid":"ec1"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"EdDSA with an RSA key", `{"alg":"EdDSA","typ":"at+jwt","kid":"rsa1"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"ES256 on a key published for another alg", `{"alg":"PS256","typ":"at+jwt","kid":"ec1"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"rogue key, same kid", es, validClaims, modeRogue, "token_signature", "token_signature", ""},
		{"other issuer's key, same kid", es, validClaims, modeSecond, "token_signature", "token_signature", ""},
		{"unknown kid", `{"alg":"ES256","typ":"at+jwt","kid":"nope"}`, validClaims, 0, "token_signature", "token_signature", ""},
		{"kid null tries every key", `{"alg":"ES256","typ":"at+jwt","kid":null}`, validClaims, 0, "", "", "user-1"},
		{"flipped signature bit", es, validClaims, modeFlipSig, "token_signature", "token_signature", ""},
		{"high-s ECDSA accepted (as go-jose)", es, validClaims, modeHighS, "", "", "user-1"},

		// Header members.
		{"duplicate header member", `{"alg":"ES256","alg":"ES256","typ":"at+jwt"}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"duplicate nested header member", `{"alg":"ES256","typ":"at+jwt","x":{"a":1,"a":2}}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"alg and ALG (stricter)", `{"alg":"ES256","ALG":"none","typ":"at+jwt","kid":"ec1"}`, validClaims, 0, "token_malformed", "", ""},
		{"kid and KID (stricter)", `{"alg":"ES256","typ":"at+jwt","kid":"ec1","KID":"rsa1"}`, validClaims, 0, "token_malformed", "", ""},
		{"nested case-folded header names (stricter)", `{"alg":"ES256","typ":"at+jwt","kid":"ec1","x":{"a":1,"A":2}}`, validClaims, 0, "token_malformed", "", ""},
		{"nested duplicate, then a refused alg", `{"alg":"HS256","typ":"at+jwt","x":{"a":1,"a":2}}`, validClaims, 0, "token_alg_not_allowed", "token_alg_not_allowed", ""},
		{"number beyond float64", `{"alg":"ES256","typ":"at+jwt","x":[1e400]}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"kid not a string", `{"alg":"ES256","typ":"at+jwt","kid":1}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"nonce not a string", `{"alg":"ES256","typ":"at+jwt","nonce":{}}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"header not an object", `["alg"]`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"header null", `null`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"crit", `{"alg":"ES256","typ":"at+jwt","crit":["exp"],"exp":1}`, validClaims, 0, "token_crit", "token_crit", ""},
		{"b64", `{"alg":"ES256","typ":"at+jwt","b64":false}`, validClaims, 0, "token_crit", "token_crit", ""},
		{"crit null ignored", `{"alg":"ES256","typ":"at+jwt","crit":null,"b64":null}`, validClaims, 0, "", "", "user-1"},
		{"typ JWT", `{"alg":"ES256","typ":"JWT"}`, validClaims, 0, "token_type", "token_type", ""},
		{"typ not a string", `{"alg":"ES256","typ":7}`, validClaims, 0, "token_type", "token_type", ""},
		{"typ missing", `{"alg":"ES256"}`, validClaims, 0, "token_type", "token_type", ""},
		{"typ missing, untyped allowed", `{"alg":"ES256"}`, validClaims, modeRelaxed, "", "", "user-1"},
		{"typ application/at+jwt", `{"alg":"ES256","typ":"Application/At+Jwt"}`, validClaims, 0, "", "", "user-1"},
		{"public jwk ignored", `{"alg":"ES256","typ":"at+jwt","jwk":"$JWK"}`, validClaims, 0, "", "", "user-1"},
		{"private jwk", `{"alg":"ES256","typ":"at+jwt","jwk":"$PRIVJWK"}`, validClaims, 0, "token_malformed", "token_malformed", ""},
		{"x5c ignored", `{"alg":"ES256","typ":"at+jwt","x5c":"$X5C"}`, validClaims, 0, "", "", "user-1"},
		{"x5c not certificates", `{"alg":"ES256","typ":"at+jwt","x5c":["AAAA"]}`, validClaims, 0, "token_malformed", "token_malformed", ""},

		// Claims.
		{"duplicate iss", es, `{"iss":"https://as.example.test","iss":"https://as2.example.test"}`, 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"duplicate aud after 64 members", es, claimsWith(manyMembers(70) + `,"aud":"x"`), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"nested duplicate in an unknown claim (stricter)", es, claimsWith(`"ext":{"role":"user","role":"admin"}`), 0, "token_claims_malformed", "", ""},
		{"iss and ISS (stricter: names equal under case folding)", es, claimsWith(`"ISS":"https://as2.example.test"`), 0, "token_claims_malformed", "", ""},
		{"sub and Sub (stricter)", es, claimsWith(`"Sub":"x"`), 0, "token_claims_malformed", "", ""},
		{"scope and long-s \u017fcope (stricter)", es, claimsWith(`"\u017fcope":"admin"`), 0, "token_claims_malformed", "", ""},
		{"unknown claims role and Role (stricter)", es, claimsWith(`"role":"user","Role":"admin"`), 0, "token_claims_malformed", "", ""},
		{"nested case-folded names (stricter)", es, claimsWith(`"ext":{"role":"user","ROLE":"admin"}`), 0, "token_claims_malformed", "", ""},
		{"case-variant names without a twin are accepted", es, claimsWith(`"ISSUER":"x","Role":"y"`), 0, "", "", "user-1"},
		{"invalid UTF-8 (stricter)", es, strings.Replace(validClaims, "user-1", "user-\xff", 1), 0, "token_claims_malformed", "", ""},
		{"unpaired surrogate (stricter)", es, strings.Replace(validClaims, "user-1", `user-\ud800`, 1), 0, "token_claims_malformed", "", ""},
		{"nesting beyond 64 (stricter)", es, claimsWith(`"deep":` + strings.Repeat("[", 70) + strings.Repeat("]", 70)), 0, "token_claims_malformed", "", ""},
		{"payload null", es, `null`, 0, "token_issuer_unknown", "token_issuer_unknown", ""},
		{"payload an array", es, `[]`, 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"trailing data", es, validClaims + `{}`, 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"sub not a string", es, strings.Replace(validClaims, `"user-1"`, `1`, 1), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"sub null", es, strings.Replace(validClaims, `"user-1"`, `null`, 1), 0, "token_missing_sub", "token_missing_sub", ""},
		{"iss unknown", es, strings.Replace(validClaims, `as.example.test`, `as.example.test/`, 1), 0, "token_issuer_unknown", "token_issuer_unknown", ""},
		{"aud null", es, strings.Replace(validClaims, `"https://rs.example.test"`, `null`, 1), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"aud with a number", es, strings.Replace(validClaims, `"https://rs.example.test"`, `["https://rs.example.test",1]`, 1), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"aud empty array", es, strings.Replace(validClaims, `"https://rs.example.test"`, `[]`, 1), 0, "token_audience", "token_audience", ""},
		{"aud in an array", es, strings.Replace(validClaims, `"https://rs.example.test"`, `["a","https://rs.example.test"]`, 1), 0, "", "", "user-1"},
		{"exp a string", es, strings.Replace(validClaims, `1900000300`, `"1900000300"`, 1), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"exp null", es, strings.Replace(validClaims, `1900000300`, `null`, 1), 0, "token_no_exp", "token_no_exp", ""},
		{"exp beyond 2^62", es, strings.Replace(validClaims, `1900000300`, `4.7e18`, 1), 0, "token_claims_malformed", "token_claims_malformed", ""},
		{"exp fractional", es, strings.Replace(validClaims, `1900000300`, `1900000300.75`, 1), 0, "", "", "user-1"},
		{"cnf null", es, claimsWith(`"cnf":null`), 0, "token_cnf_malformed", "token_cnf_malformed", ""},
		{"cnf duplicate member", es, claimsWith(`"cnf":{"jkt":"0123456789012345678901234567890123456789abc","jkt":"0123456789012345678901234567890123456789abd"}`), 0, "token_cnf_malformed", "token_cnf_malformed", ""},
		{"cnf jkt and JKT (stricter)", es, claimsWith(`"cnf":{"jkt":"0123456789012345678901234567890123456789abc","JKT":"0123456789012345678901234567890123456789abd"}`), 0, "token_cnf_malformed", "", ""},
		{"cnf nested duplicate (stricter)", es, claimsWith(`"cnf":{"x5t#S256":"0123456789012345678901234567890123456789abc","x":{"a":1,"a":2}}`), 0, "token_cnf_malformed", "", ""},
		{"cnf jkt not a thumbprint", es, claimsWith(`"cnf":{"jkt":"abc"}`), 0, "token_cnf_malformed", "token_cnf_malformed", ""},
		{"cnf without jkt or x5t#S256", es, claimsWith(`"cnf":{"jwk":{}}`), 0, "token_cnf_unsupported", "token_cnf_unsupported", ""},
		{"cnf jkt null", es, claimsWith(`"cnf":{"jkt":null}`), 0, "token_cnf_unsupported", "token_cnf_unsupported", ""},
		{"cnf jkt a number", es, claimsWith(`"cnf":{"jkt":43}`), 0, "token_cnf_malformed", "token_cnf_malformed", ""},
		{"cnf malformed reported after the signature", es, claimsWith(`"cnf":{"jkt":43}`), modeFlipSig, "token_signature", "token_signature", ""},
		{"claims syntax error beats a bad signature", es, validClaims[:len(validClaims)-1], modeFlipSig, "token_claims_malformed", "token_claims_malformed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tok string
			if tc.name == "padding" {
				tok = fx.signToken(t, es, validClaims) + "=="
			} else {
				tok = fx.makeDiffToken(t, []byte(tc.header), []byte(tc.payload), tc.mode)
			}
			v := fx.strict
			if tc.mode&modeRelaxed != 0 {
				v = fx.relaxed
			}
			got, err := v.verifyToken(context.Background(), tok)
			if r := reasonOf(err); r != tc.want {
				t.Fatalf("reason %q, want %q", r, tc.want)
			}
			ref, rerr := refVerifyToken(v, context.Background(), tok)
			if r := reasonOf(rerr); r != tc.wantJOSE {
				t.Fatalf("go-jose reference: reason %q, want %q", r, tc.wantJOSE)
			}
			if err == nil {
				if got.subject != tc.wantSubst {
					t.Fatalf("subject %q, want %q", got.subject, tc.wantSubst)
				}
				if rerr == nil {
					if d := sameToken(got, ref); d != "" {
						t.Fatalf("differs from go-jose in %s", d)
					}
				}
			}
			if tc.want != tc.wantJOSE && stricterRule(tok) == "" && !strings.Contains(tc.name, "(stricter)") {
				t.Fatalf("differs from go-jose without a documented rule")
			}
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m`)
		b.WriteString(big.NewInt(int64(i)).String())
		b.WriteString(`":0`)
	}
	return b.String()
}

// TestVerifyTokenECDSAValues pins the ECDSA signature value rules, which
// are crypto/ecdsa's as before: r and s in [1, n-1], high s accepted,
// exactly 64 bytes for ES256.
func TestVerifyTokenECDSAValues(t *testing.T) {
	t.Parallel()
	fx := newTokenFixture(t)
	good := fx.signToken(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec1"}`, validClaims)
	i := strings.LastIndexByte(good, '.')
	in := good[:i]
	sig, _ := b64url.DecodeString(good[i+1:])
	n := elliptic.P256().Params().N
	fixed := func(r, s *big.Int) []byte {
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	tests := []struct {
		name string
		sig  []byte
		want string
	}{
		{"as signed", sig, ""},
		{"high s", fixed(r, new(big.Int).Sub(n, s)), ""},
		{"s = n", fixed(r, n), "token_signature"},
		{"s = n + s (same residue)", nil, "token_signature"},
		{"r = 0", fixed(big.NewInt(0), s), "token_signature"},
		{"s = 0", fixed(r, big.NewInt(0)), "token_signature"},
		{"63 bytes", sig[1:], "token_signature"},
		{"65 bytes", append([]byte{0}, sig...), "token_signature"},
		{"DER instead of r||s", nil, "token_signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.sig
			switch tc.name {
			case "s = n + s (same residue)":
				b = make([]byte, 64)
				sum := new(big.Int).Add(n, s)
				if sum.BitLen() > 256 {
					t.Skip("does not fit in 32 bytes")
				}
				r.FillBytes(b[:32])
				sum.FillBytes(b[32:])
			case "DER instead of r||s":
				b = encodeDER(sig)
			}
			tok := in + "." + b64url.EncodeToString(b)
			_, err := fx.verify(tok)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q", got, tc.want)
			}
			_, rerr := refVerifyToken(fx.strict, context.Background(), tok)
			if got := reasonOf(rerr); got != tc.want {
				t.Fatalf("go-jose reference: reason %q, want %q", got, tc.want)
			}
		})
	}
}

func encodeDER(sig []byte) []byte {
	var out []byte
	for _, v := range [][]byte{sig[:32], sig[32:]} {
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		if v[0]&0x80 != 0 {
			v = append([]byte{0}, v...)
		}
		out = append(out, 2, byte(len(v)))
		out = append(out, v...)
	}
	return append([]byte{0x30, byte(len(out))}, out...)
}
