package dpop

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestVerifyAdversarial(t *testing.T) {
	t.Parallel()
	k := keys(t)
	rsaPub := k["RSA"].Public().(*rsa.PublicKey)
	// RSA jwk with non-minimal e "AAEAAQ" (THUMB-10) and n with a leading zero.
	rsaJWK := func(edit func(m map[string]any)) func(*testing.T, *pb) {
		return func(t *testing.T, b *pb) {
			useKey("RSA", "PS256")(t, b)
			edit(b.hdr["jwk"].(map[string]any))
		}
	}
	runVerifyCases(t, []verifyCase{
		// Algorithms and JOSE header.
		{name: "ADV-01/alg none empty signature", proof: enc(`{"typ":"dpop+jwt","alg":"none","jwk":{"kty":"EC"}}`) + "." + enc(`{"jti":"a","htm":"GET","htu":"`+testURL+`","iat":1800000000}`) + ".", want: ErrInvalidProof, why: rSegments},
		{name: "ADV-02/None", edit: setHdr("alg", "None"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-02/NONE", edit: setHdr("alg", "NONE"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-02/nOnE", edit: setHdr("alg", "nOnE"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-02/es256 lower-case", edit: setHdr("alg", "es256"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-03/HS256 keyed with jwk JSON", proof: hmacSign(`{"typ":"dpop+jwt","alg":"HS256","jwk":`+jwkJSON(t, k["ES256"])+`}`, `{"jti":"a","htm":"GET","htu":"`+testURL+`","iat":1800000000}`, []byte(jwkJSON(t, k["ES256"]))), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-06/ES256 with RSA jwk", edit: func(t *testing.T, b *pb) { useKey("RSA", "PS256")(t, b); b.hdr["alg"] = "ES256"; b.alg = "PS256" }, want: ErrInvalidProof, why: rKeyAlgMismatch},
		{name: "ADV-06/ES384 with P-256 jwk", edit: func(t *testing.T, b *pb) { b.hdr["alg"] = "ES384" }, cfg: func(c *Config) { c.Algorithms = []string{"ES256", "ES384"} }, want: ErrInvalidProof, why: rKeyAlgMismatch},
		{name: "ADV-06/RS256 with EC jwk", edit: func(t *testing.T, b *pb) { b.hdr["alg"] = "RS256"; b.alg = "ES256" }, want: ErrInvalidProof, why: rKeyAlgMismatch},
		{name: "ADV-06/EdDSA with P-256 jwk", edit: func(t *testing.T, b *pb) { b.hdr["alg"] = "EdDSA"; b.alg = "ES256" }, want: ErrInvalidProof, why: rKeyAlgMismatch},
		{name: "ADV-06/PS256 on RS256 signature", edit: func(t *testing.T, b *pb) { useKey("RSA", "PS256")(t, b); b.alg = "RS256" }, want: ErrInvalidProof, why: rSignature},
		{name: "ADV-07/PS512 not configured", edit: useKey("RSA", "PS512"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "ADV-11/crit unknown", edit: func(t *testing.T, b *pb) { b.hdr["crit"] = []string{"x-unknown"}; b.hdr["x-unknown"] = true }, want: ErrInvalidProof, why: rCrit},
		{name: "ADV-11/crit b64", edit: func(t *testing.T, b *pb) { b.hdr["crit"] = []string{"b64"}; b.hdr["b64"] = true }, want: ErrInvalidProof, why: rCrit},
		{name: "ADV-11/KAT-14", proof: "eyJhbGciOiJub25lIiwNCiAiY3JpdCI6WyJodHRwOi8vZXhhbXBsZS5jb20vVU5ERUZJTkVEIl0sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9VTkRFRklORUQiOnRydWUNCn0.RkFJTA.", want: ErrInvalidProof, why: rSegments},
		{name: "ADV-14/jku without jwk", edit: func(t *testing.T, b *pb) { delete(b.hdr, "jwk"); b.hdr["jku"] = "https://canary.example.test/jwks" }, want: ErrInvalidProof, why: rKeyRef},
		{name: "ADV-14/x5u without jwk", edit: func(t *testing.T, b *pb) { delete(b.hdr, "jwk"); b.hdr["x5u"] = "https://canary.example.test/cert" }, want: ErrInvalidProof, why: rKeyRef},
		{name: "ADV-14/jku beside jwk", edit: setHdr("jku", "https://canary.example.test/jwks"), want: ErrInvalidProof, why: rKeyRef},
		{name: "ADV-14/x5c beside jwk", edit: setHdr("x5c", []string{"MIIB"}), want: ErrInvalidProof, why: rKeyRef},
		{name: "ADV-15/kid instead of jwk", edit: func(t *testing.T, b *pb) { delete(b.hdr, "jwk"); b.hdr["kid"] = "k1" }, want: ErrInvalidProof, why: rKeyRef},
		{name: "ADV-15/kid beside jwk accepted", edit: setHdr("kid", "k1")},
		{name: "ADV-17/flattened JSON serialization", proof: `{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"e30","signature":"AAAA"}`, want: ErrInvalidProof, why: rSegments},
		{name: "ADV-17/general JSON serialization", proof: `{"payload":"e30","signatures":[{"protected":"e30","signature":"AA"}]}`, want: ErrInvalidProof, why: rSegments},
		{name: "ADV-18/JWE", proof: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ", want: ErrInvalidProof, why: rSegments},
		// Key material in jwk.
		{name: "ADV-20/d", edit: setJWK("d", "AAAA"), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "ADV-21/p q dp dq qi", edit: rsaJWK(func(m map[string]any) {
			m["p"], m["q"], m["dp"], m["dq"], m["qi"] = "AQAB", "AQAB", "AQAB", "AQAB", "AQAB"
		}), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "ADV-21/oth", edit: rsaJWK(func(m map[string]any) { m["oth"] = []any{} }), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "ADV-22/oct", proof: signRaw(t, k["ES256"], "ES256", `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"oct"}}`, okPayloadFixed()), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "ADV-22/k", edit: setJWK("k", "c2VjcmV0"), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "ADV-23/point not on curve", edit: func(t *testing.T, b *pb) {
			j := b.hdr["jwk"].(map[string]any)
			y, _ := base64.RawURLEncoding.DecodeString(j["y"].(string))
			y[31] ^= 1
			j["y"] = b64u(y)
		}, want: ErrInvalidProof, why: rECPoint},
		{name: "ADV-23/zero point", edit: func(t *testing.T, b *pb) {
			j := b.hdr["jwk"].(map[string]any)
			j["x"], j["y"] = b64u(make([]byte, 32)), b64u(make([]byte, 32))
		}, want: ErrInvalidProof, why: rECPoint},
		{name: "ADV-25/RSA 1024", edit: useKey("RSA1024", "PS256"), want: ErrInvalidProof, why: rRSASize},
		{name: "ADV-28/jwk alg RS256 under ES256", edit: setJWK("alg", "RS256"), want: ErrInvalidProof, why: rKeyAlgMismatch},
		{name: "ADV-28/jwk use enc", edit: setJWK("use", "enc"), want: ErrInvalidProof, why: rJWKInvalid},
		{name: "ADV-28/jwk key_ops sign only", edit: setJWK("key_ops", []string{"sign"}), want: ErrInvalidProof, why: rJWKInvalid},
		{name: "ADV-28/jwk use sig, key_ops verify, alg ES256 accepted", edit: func(t *testing.T, b *pb) {
			setJWK("use", "sig")(t, b)
			setJWK("key_ops", []string{"verify"})(t, b)
			setJWK("alg", "ES256")(t, b)
		}},
		{name: "ADV-30/jwk set", edit: func(t *testing.T, b *pb) { b.hdr["jwk"] = map[string]any{"keys": []any{jwkMap(t, k["ES256"])}} }, want: ErrInvalidProof, why: rJWKInvalid},
		{name: "ADV-30/jwk array", edit: func(t *testing.T, b *pb) { b.hdr["jwk"] = []any{jwkMap(t, k["ES256"])} }, want: ErrInvalidProof, why: rJWKInvalid},
		{name: "ADV-30/jwk string", edit: func(t *testing.T, b *pb) { b.hdr["jwk"] = jwkJSON(t, k["ES256"]) }, want: ErrInvalidProof, why: rJWKInvalid},
		{name: "ADV-30/jwk null", edit: func(t *testing.T, b *pb) {
			b.hdr["jwk"] = nil
			b.rawHeader = `{"typ":"dpop+jwt","alg":"ES256","jwk":null}`
		}, want: ErrInvalidProof, why: rJWKInvalid},
		{name: "THUMB-10/e AAEAAQ", edit: rsaJWK(func(m map[string]any) { m["e"] = "AAEAAQ" }), want: ErrInvalidProof, why: rJWKInvalid},
		{name: "THUMB-10/leading zero in n", edit: rsaJWK(func(m map[string]any) { m["n"] = b64u(append([]byte{0}, rsaPub.N.Bytes()...)) }), want: ErrInvalidProof, why: rJWKInvalid},
		{name: "THUMB-10/short EC x", edit: func(t *testing.T, b *pb) {
			j := b.hdr["jwk"].(map[string]any)
			x, _ := base64.RawURLEncoding.DecodeString(j["x"].(string))
			j["x"] = b64u(new(big.Int).SetBytes(x[:31]).Bytes())
		}, want: ErrInvalidProof, why: rJWKInvalid},
		{name: "THUMB-09/escaped crv", edit: func(t *testing.T, b *pb) {
			b.rawHeader = strings.Replace(`{"typ":"dpop+jwt","alg":"ES256","jwk":$JWK}`, "$JWK", strings.Replace(jwkJSON(t, k["ES256"]), `"P-256"`, `"P\u002d256"`, 1), 1)
		}, expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }},
		{name: "THUMB-06/kid and use do not change jkt", edit: func(t *testing.T, b *pb) { setJWK("kid", "k1")(t, b); setJWK("use", "sig")(t, b) }, expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }},
		// Type confusion.
		{name: "ADV-31/typ JWT", edit: setHdr("typ", "JWT"), want: ErrInvalidProof, why: rTyp},
		{name: "ADV-31/typ absent", edit: setHdr("typ", nil), want: ErrInvalidProof, why: rTyp},
		{name: "ADV-31/typ at+jwt", edit: setHdr("typ", "at+jwt"), want: ErrInvalidProof, why: rTyp},
		// Claims and JSON parsing.
		{name: "ADV-36/htm array", edit: setCl("htm", []string{"GET"}), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/htu object", edit: setCl("htu", map[string]any{"u": testURL}), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/iat string", edit: setCl("iat", "1800000000"), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/iat bool", edit: setCl("iat", true), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/iat negative", edit: setCl("iat", -1), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/jti number", edit: setCl("jti", 123), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/ath array", edit: setCl("ath", []string{AccessTokenHash(testToken)}), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-36/nonce number", edit: setCl("nonce", 7), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-38/htu twice", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://evil.example.test/","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rDuplicate},
		{name: "ADV-38/alg twice", edit: raw(`{"typ":"dpop+jwt","alg":"none","alg":"ES256","jwk":$JWK}`, okPayload), want: ErrInvalidProof, why: rDuplicate},
		{name: "ADV-38/jwk member twice", edit: func(t *testing.T, b *pb) {
			j := jwkJSON(t, k["ES256"])
			b.rawHeader = `{"typ":"dpop+jwt","alg":"ES256","jwk":` + strings.Replace(j, `"kty":"EC"`, `"kty":"EC","kty":"EC"`, 1) + `}`
			b.rawPayload = okPayload
		}, want: ErrInvalidProof, why: rDuplicate},
		{name: "ADV-38/duplicate in nested extension", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH","ext":{"a":1,"a":2}}`), want: ErrInvalidProof, why: rDuplicate},
		{name: "ADV-38/case-variant names are refused like duplicates", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","HTM":"POST","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "ADV-39/UTF-16 payload", edit: raw(okHeader, utf16le(`{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000}`)), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-39/UTF-32 payload", edit: raw(okHeader, "\x00\x00\x00{"), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-39/BOM payload", edit: raw(okHeader, "\ufeff"+okPayload), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-39/BOM header", edit: raw("\ufeff"+okHeader, okPayload), want: ErrInvalidProof, why: rHeaderJSON},
		{name: "ADV-39/invalid UTF-8 in jti", edit: raw(okHeader, `{"jti":"a`+"\xff"+`b","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-39/lone surrogate in jti", edit: raw(okHeader, `{"jti":"a\ud800","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-39/escaped surrogate pair accepted", edit: raw(okHeader, `{"jti":"$JTI\ud83d\ude00","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`)},
		{name: "ADV-40/trailing bytes after payload", edit: raw(okHeader, okPayload+"x"), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-40/second object", edit: raw(okHeader, okPayload+"{}"), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-40/trailing bytes after header", edit: raw(okHeader+" {", okPayload), want: ErrInvalidProof, why: rHeaderJSON},
		{name: "ADV-40/payload array", edit: raw(okHeader, `[1]`), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-40/payload string", edit: raw(okHeader, `"x"`), want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-40/whitespace around object accepted", edit: raw(" \n"+okHeader+"\t", "\r\n"+okPayload+" ")},
		{name: "ADV-41/10000-deep arrays", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH","x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), cfg: func(c *Config) { c.MaxProofBytes = 1 << 20 }, want: ErrInvalidProof, why: rPayloadJSON},
		{name: "ADV-41/1 MiB proof", edit: setCl("pad", strings.Repeat("p", 1<<20)), want: ErrInvalidProof, why: rSize},
		{name: "ADV-43/fractional iat accepted", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000.25,"ath":"$ATH"}`)},
		{name: "ADV-43/exponent iat accepted", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1.8e9,"ath":"$ATH"}`)},
		{name: "ADV-43/huge iat", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1e400,"ath":"$ATH"}`), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-44/iat T0+1d", edit: setCl("iat", testNow+86400), want: ErrInvalidProof, why: rIATFuture},
		{name: "ADV-44/iat T0-1d", edit: setCl("iat", testNow-86400), want: ErrInvalidProof, why: rIATPast},
		{name: "ADV-45/jti empty", edit: setCl("jti", ""), want: ErrInvalidProof, why: rJTI},
		{name: "ADV-45/jti whitespace", edit: setCl("jti", "   "), want: ErrInvalidProof, why: rJTI},
		{name: "ADV-45/jti control character", edit: setCl("jti", "a\nb"), want: ErrInvalidProof, why: rJTI},
		{name: "ADV-45/jti 64 KiB", edit: setCl("jti", strings.Repeat("j", 64<<10)), cfg: func(c *Config) { c.MaxProofBytes = 1 << 20 }, want: ErrInvalidProof, why: rJTI},
		// htm and htu.
		{name: "ADV-48/htm get", edit: setCl("htm", "get"), want: ErrInvalidProof, why: rHTM},
		{name: "ADV-50/http on https", edit: setCl("htu", "http://rs.example.test/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-51/other host", edit: setCl("htu", "https://other.example.test/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-51/sibling subdomain", edit: setCl("htu", "https://rs2.example.test/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-51/IP literal", edit: setCl("htu", "https://192.0.2.1/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-52/explicit :8443", edit: setCl("htu", "https://rs.example.test:8443/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-52/explicit :443", edit: setCl("htu", "https://rs.example.test:443/resource")},
		{name: "ADV-53/upper-case scheme and host", edit: setCl("htu", "HTTPS://RS.EXAMPLE.TEST/resource")},
		{name: "ADV-54/path case", edit: setCl("htu", "https://rs.example.test/RESOURCE"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-55/trailing slash added", edit: setCl("htu", testURL+"/"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-55/trailing slash removed", edit: setCl("htu", testURL), expect: func(e *Expect) { e.URL = testURL + "/" }, want: ErrInvalidProof, why: rHTU},
		{name: "ADV-55/empty path vs / at root", edit: setCl("htu", "https://rs.example.test"), expect: func(e *Expect) { e.URL = "https://rs.example.test/" }},
		{name: "ADV-58/htu with query", edit: setCl("htu", testURL+"?a=1"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-58/htu with fragment", edit: setCl("htu", testURL+"#f"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-58/request query, clean htu", expect: func(e *Expect) { e.URL = testURL + "?a=1" }},
		{name: "ADV-59/userinfo", edit: setCl("htu", "https://u:p@rs.example.test/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-60/relative", edit: setCl("htu", "/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-60/empty", edit: setCl("htu", ""), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-60/non-string", edit: setCl("htu", 42), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-60/100 KiB", edit: setCl("htu", testURL+"/"+strings.Repeat("a", 100<<10)), cfg: func(c *Config) { c.MaxProofBytes = 1 << 20 }, want: ErrInvalidProof, why: rHTU},
		{name: "ADV-60/ftp scheme", edit: setCl("htu", "ftp://rs.example.test/resource"), want: ErrInvalidProof, why: rHTU},
		{name: "ADV-70/ath missing", edit: setCl("ath", nil), want: ErrInvalidProof, why: rATH},
		{name: "ADV-70/ath with padding", edit: setCl("ath", AccessTokenHash(testToken)+"="), want: ErrInvalidProof, why: rATH},
		{name: "ADV-70/ath standard alphabet", edit: setCl("ath", base64.StdEncoding.EncodeToString(mustDecode(AccessTokenHash(testToken)))), want: ErrInvalidProof, why: rATH},
		{name: "ADV-70/ath over DPoP prefix", edit: setCl("ath", AccessTokenHash("DPoP "+testToken)), want: ErrInvalidProof, why: rATH},
		{name: "ADV-70/ath case flipped", edit: setCl("ath", flipCase(AccessTokenHash(testToken))), want: ErrInvalidProof, why: rATH},
		// ADV-76: header value dressing.
		{name: "ADV-76/DPoP prefix", edit: post(func(p string) string { return "DPoP " + p }), want: ErrInvalidProof, why: rBase64},
		{name: "ADV-76/surrounding spaces", edit: post(func(p string) string { return " " + p + " " }), want: ErrInvalidProof, why: rBase64},
		{name: "ADV-76/trailing dot", edit: post(func(p string) string { return p + "." }), want: ErrInvalidProof, why: rSegments},
		{name: "ADV-76/padding", edit: post(func(p string) string { return padFirst(p) }), want: ErrInvalidProof, why: rBase64},
		{name: "ADV-76/plus and slash", edit: post(func(p string) string { return strings.NewReplacer("-", "+", "_", "/").Replace(p) + "+/" }), want: ErrInvalidProof, why: rBase64},
		{name: "ADV-76/embedded CR LF", edit: post(func(p string) string { return p[:10] + "\r\n" + p[10:] }), want: ErrInvalidProof, why: rBase64},
		// Nonces without a NonceSource: the claim is ignored if well-formed,
		// and makes the proof invalid if not.
		{name: "ADV-80/nonce outside NQCHAR", edit: setCl("nonce", "a\"b"), want: ErrInvalidProof, why: rClaimType},
		{name: "nonce ignored without NonceSource", edit: setCl("nonce", "anything")},
	})
}

func okPayloadFixed() string {
	return `{"jti":"fixed","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000}`
}

func mustDecode(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// padFirst adds base64 padding to the first segment (whose length is made
// not a multiple of 4 by construction of JSON headers, or padded anyway).
func padFirst(p string) string {
	i := strings.IndexByte(p, '.')
	return p[:i] + "==" + p[i:]
}

func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r))
		b.WriteByte(0)
	}
	return b.String()
}
