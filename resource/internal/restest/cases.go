package restest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/resource"
)

// auth sets one Authorization field "scheme token" with token from mk.
func auth(scheme string, mk func(t testing.TB, e *Env) string) func(testing.TB, *Env, *http.Request) {
	return func(t testing.TB, e *Env, r *http.Request) {
		r.Header.Set("Authorization", scheme+" "+mk(t, e))
	}
}

// claims returns a token maker that edits AS's valid claims.
func claims(mod func(e *Env, c map[string]any)) func(testing.TB, *Env) string {
	return func(t testing.TB, e *Env) string {
		c := e.Claims()
		if mod != nil {
			mod(e, c)
		}
		return e.AS.Mint(t, Header(), c)
	}
}

// header returns a token maker with valid claims and an edited header.
func header(mod func(h map[string]any)) func(testing.TB, *Env) string {
	return func(t testing.TB, e *Env) string {
		h := Header()
		mod(h)
		return e.AS.Mint(t, h, e.Claims())
	}
}

// rawPayload signs payload bytes built from the valid claims.
func rawPayload(mk func(e *Env, valid []byte) []byte) func(testing.TB, *Env) string {
	return func(t testing.TB, e *Env) string {
		b, _ := json.Marshal(e.Claims())
		return e.AS.MintRaw(t, Header(), mk(e, b))
	}
}

var valid = claims(nil)

func del(names ...string) func(*Env, map[string]any) {
	return func(_ *Env, c map[string]any) {
		for _, n := range names {
			delete(c, n)
		}
	}
}

func set(name string, v any) func(*Env, map[string]any) {
	return func(_ *Env, c map[string]any) { c[name] = v }
}

func jkt() string { return strings.Repeat("A", 43) }

// BearerCases are the token-validation, scheme and request-shape cases that
// need neither a DPoP proof nor a client certificate. They run over plain
// HTTP ("http" target).
func BearerCases() []Case {
	const B, D = "Bearer", "DPoP"
	bad := func(name string, mk func(testing.TB, *Env) string) Case {
		return Case{Name: name, Build: auth(B, mk), WantStatus: 401, WantScheme: B, WantError: "invalid_token"}
	}
	ok := func(name string, mk func(testing.TB, *Env) string) Case {
		return Case{Name: name, Build: auth(B, mk), WantStatus: 200, WantBinding: resource.BindingBearer}
	}
	cases := []Case{
		{Name: "ERR-01/ERR-02/no credentials", WantStatus: 401},
		{Name: "ERR-17/Proxy-Authorization ignored", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Proxy-Authorization", "Bearer "+valid(t, e))
		}, WantStatus: 401},
		{Name: "ERR-02/unknown scheme Basic", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		}, WantStatus: 401},
		ok("ATV-13/valid ES256 bearer token", valid),
		{Name: "DPOP-RS-20/scheme bearer lower case", Build: auth("bearer", valid), WantStatus: 200},
		{Name: "DPOP-RS-20/scheme BEARER upper case", Build: auth("BEARER", valid), WantStatus: 200},
		ok("ATV-02/RS256 token from second issuer", func(t testing.TB, e *Env) string {
			return e.AS2.Mint(t, Header(), e.AS2.Claims(Audience, e.T0))
		}),
		bad("ATV-10/typ absent", header(func(h map[string]any) { delete(h, "typ") })),
		bad("ATV-10/typ JWT", header(func(h map[string]any) { h["typ"] = "JWT" })),
		bad("ATV-10/typ dpop+jwt", header(func(h map[string]any) { h["typ"] = "dpop+jwt" })),
		bad("ATV-10/typ number", header(func(h map[string]any) { h["typ"] = 1 })),
		ok("ATV-10/typ at+JWT", header(func(h map[string]any) { h["typ"] = "at+JWT" })),
		ok("ATV-10/typ application/at+jwt", header(func(h map[string]any) { h["typ"] = "application/at+jwt" })),
		bad("ATV-11/ADV-96/iss with trailing slash", claims(set("iss", "https://as.example.test/"))),
		bad("ADV-96/iss letter case", claims(set("iss", "https://AS.example.test"))),
		bad("ADV-96/iss http scheme", claims(set("iss", "http://as.example.test"))),
		bad("ATV-11/iss missing", claims(del("iss"))),
		ok("ATV-12/aud array including RS", claims(set("aud", []string{"https://other.example", Audience}))),
		ok("ADV-103/aud with unknown extra audience", claims(set("aud", []string{Audience, "urn:unknown"}))),
		bad("ATV-12/aud without RS", claims(set("aud", "https://rs2.example.test"))),
		bad("ATV-12/aud with trailing slash", claims(set("aud", Audience+"/"))),
		bad("ATV-12/no aud", claims(del("aud"))),
		bad("ATV-12/aud number", claims(set("aud", 7))),
		bad("ATV-13/signed by unknown key", func(t testing.TB, e *Env) string {
			return e.Rogue.Mint(t, Header(), e.Claims())
		}),
		bad("ATV-13/ADV-05/alg none", func(t testing.TB, e *Env) string {
			return Unsigned(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "as-1"}, e.Claims(), nil)
		}),
		bad("ATV-14/ADV-04/HS256 keyed with the issuer public key", func(t testing.TB, e *Env) string {
			return e.AS.HMACWithPublicKey(t, e.Claims())
		}),
		bad("ATV-14/ADV-101/RS256 key under PS256 header", func(t testing.TB, e *Env) string {
			i := *e.AS2
			i.Alg = jose.PS256
			return i.Mint(t, Header(), e.AS2.Claims(Audience, e.T0))
		}),
		bad("ATV-14/ADV-04/HS256 forged for second issuer", func(t testing.TB, e *Env) string {
			return e.AS2.HMACWithPublicKey(t, e.AS2.Claims(Audience, e.T0))
		}),
		bad("ATV-15/exp five minutes ago", claims(func(e *Env, c map[string]any) { c["exp"] = e.T0.Add(-5 * time.Minute).Unix() })),
		ok("ATV-15/exp in five minutes", claims(func(e *Env, c map[string]any) { c["exp"] = e.T0.Add(5 * time.Minute).Unix() })),
		bad("ADV-97/exp exactly now", claims(func(e *Env, c map[string]any) { c["exp"] = e.T0.Unix() })),
		ok("ADV-97/exp one second ahead", claims(func(e *Env, c map[string]any) { c["exp"] = e.T0.Unix() + 1 })),
		bad("ADV-97/exp missing", claims(del("exp"))),
		bad("ADV-97/exp as string", claims(func(e *Env, c map[string]any) { c["exp"] = "1900000300" })),
		bad("ATV-16/ADV-98/nbf in ten minutes", claims(func(e *Env, c map[string]any) { c["nbf"] = e.T0.Add(10 * time.Minute).Unix() })),
		ok("ATV-16/nbf now", claims(func(e *Env, c map[string]any) { c["nbf"] = e.T0.Unix() })),
		bad("ATV-15/iat in the future", claims(func(e *Env, c map[string]any) { c["iat"] = e.T0.Add(time.Hour).Unix() })),
		bad("ATV-17/sub missing", claims(del("sub"))),
		bad("ATV-17/client_id missing", claims(del("client_id"))),
		bad("ATV-17/iat missing", claims(del("iat"))),
		bad("ATV-17/jti missing", claims(del("jti"))),
		bad("ATV-17/sub empty", claims(set("sub", ""))),
		bad("ATV-19/iss AS signed with AS2 key", func(t testing.TB, e *Env) string {
			i := *e.AS2
			return i.Mint(t, Header(), e.Claims())
		}),
		bad("ATV-19/iss AS signed with AS2 key and AS kid", func(t testing.TB, e *Env) string {
			i := *e.AS2
			i.KID = e.AS.KID
			return i.Mint(t, Header(), e.Claims())
		}),
		bad("ATV-19/ADV-96/iss unknown issuer", claims(set("iss", "https://evil.example"))),
		bad("ATV-20/UTF-16 claims", rawPayload(func(_ *Env, b []byte) []byte {
			u := utf16.Encode([]rune(string(b)))
			out := []byte{0xFE, 0xFF}
			for _, c := range u {
				out = append(out, byte(c>>8), byte(c))
			}
			return out
		})),
		bad("ADV-39/invalid UTF-8 in claims", rawPayload(func(_ *Env, b []byte) []byte {
			return append([]byte{0xff}, b...)
		})),
		bad("ATV-22/ADV-100/jku and jwk of an attacker key", func(t testing.TB, e *Env) string {
			h := Header()
			h["jku"] = e.Canary.URL + "/jwks"
			h["x5u"] = e.Canary.URL + "/cert"
			h["jwk"] = e.Rogue.JWK()
			return e.Rogue.Mint(t, h, e.Claims())
		}),
		ok("ATV-22/jku on a genuine token is ignored, not fetched", func(t testing.TB, e *Env) string {
			h := Header()
			h["jku"] = e.Canary.URL + "/jwks"
			return e.AS.Mint(t, h, e.Claims())
		}),
		bad("ATV-23/ADV-34/ID token as access token", func(t testing.TB, e *Env) string {
			c := e.Claims()
			c["aud"] = "client-1"
			c["nonce"] = "n-0S6_WzA2Mj"
			return e.AS.Mint(t, map[string]any{"typ": "JWT"}, c)
		}),
		bad("ATV-23/ADV-33/DPoP-proof-shaped token", func(t testing.TB, e *Env) string {
			c := map[string]any{"jti": "x", "htm": "GET", "htu": "https://rs.example.test/any", "iat": e.T0.Unix()}
			return e.AS.Mint(t, map[string]any{"typ": "dpop+jwt", "jwk": e.AS.JWK()}, c)
		}),
		bad("ATV-24/cnf with only an unknown member", claims(set("cnf", map[string]any{"x-ext": 1}))),
		bad("ATV-24/cnf with only jwk (unsupported method, no downgrade to bearer)", claims(func(e *Env, c map[string]any) {
			c["cnf"] = map[string]any{"jwk": e.K1.PublicJWK()}
		})),
		bad("ATV-24/cnf with only a SHA-1 x5t", claims(set("cnf", map[string]any{"x5t": "ygg_Jp-0_HGSDpQHDqrLcxkp5vk"}))),
		bad("ATV-24/empty cnf", claims(set("cnf", map[string]any{}))),
		bad("ATV-24/cnf with a null jkt", claims(set("cnf", map[string]any{"jkt": nil}))),
		ok("ATV-24/unknown claims ignored", claims(set("x-custom", map[string]any{"a": []int{1}}))),
		bad("ATV-27/ADV-38/duplicate aud", rawPayload(func(_ *Env, b []byte) []byte {
			return append(b[:len(b)-1], []byte(`,"aud":"`+Audience+`"}`)...)
		})),
		bad("ATV-27/ADV-38/duplicate cnf", rawPayload(func(_ *Env, b []byte) []byte {
			return append(b[:len(b)-1], []byte(`,"cnf":{},"cnf":{}}`)...)
		})),
		bad("ADV-40/trailing bytes after claims", rawPayload(func(_ *Env, b []byte) []byte { return append(b, '{', '}') })),
		bad("ADV-40/claims array", rawPayload(func(_ *Env, b []byte) []byte { return []byte(`[` + string(b) + `]`) })),
		bad("ATV-28/ADV-11/crit unknown extension", header(func(h map[string]any) {
			h["crit"] = []string{"x-unknown"}
			h["x-unknown"] = true
		})),
		bad("ADV-11/crit b64", header(func(h map[string]any) {
			h["crit"] = []string{"b64"}
			h["b64"] = true
		})),
		bad("KAT-14/RFC 7515 Appendix E crit", func(testing.TB, *Env) string { return KAT14 }),
		bad("KAT-8/RFC 9449 Figure 8 token (no typ, aud, iat, jti, client_id)", func(testing.TB, *Env) string { return KAT8 }),
		bad("ADV-72/cnf string", claims(set("cnf", "x"))),
		bad("ADV-72/cnf array", claims(set("cnf", []string{"x"}))),
		bad("ADV-72/cnf null", claims(set("cnf", nil))),
		bad("ADV-72/cnf.jkt number", claims(set("cnf", map[string]any{"jkt": 5}))),
		bad("THUMB-13/cnf.x5t#S256 with padding", claims(set("cnf", map[string]any{"x5t#S256": jkt() + "="}))),
		bad("ERR-13/ADV-64/DPoP-bound token under Bearer", claims(set("cnf", map[string]any{"jkt": jkt()}))),
		{Name: "ADV-65/DPoP-bound token under bearer (lower case)", Build: auth("bearer", claims(set("cnf", map[string]any{"jkt": jkt()}))), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "ADV-65/DPoP-bound token under BEARER", Build: auth("BEARER", claims(set("cnf", map[string]any{"jkt": jkt()}))), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		bad("MTLS-CB-10/ADV-84/certificate-bound token without certificate", claims(set("cnf", map[string]any{"x5t#S256": jkt()}))),
		bad("ADV-18/JWE as access token", func(testing.TB, *Env) string {
			return "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"
		}),
		bad("ADV-18/JWS JSON serialization", func(t testing.TB, e *Env) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"payload":"e30","signatures":[]}`))
		}),
		bad("DPOP-RS-02/token one segment", func(testing.TB, *Env) string { return "abc" }),
		{Name: "ATV-26/ERR-07/insufficient scope", Path: "/admin", Build: auth(B, valid), WantStatus: 403, WantScheme: B, WantError: "insufficient_scope",
			After: func(t testing.TB, call *Call) {
				for _, c := range Challenges(t, call.Resp.Header) {
					if c.Scheme == B && c.Params["scope"] != "admin" {
						t.Fatalf("scope = %q, want admin", c.Params["scope"])
					}
				}
			}},
		{Name: "ATV-26/scope present", Path: "/write", Build: auth(B, valid), WantStatus: 200},
		{Name: "ATV-26/scope claim missing", Path: "/write", Build: auth(B, claims(del("scope"))), WantStatus: 403, WantScheme: B, WantError: "insufficient_scope"},
		{Name: "AcceptBound/unbound token refused", Path: "/bound", Build: auth(B, valid), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "AcceptMTLS/unbound token refused", Path: "/mtls", Build: auth(B, valid), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "ERR-12/ADV-74/two Authorization fields", Build: func(t testing.TB, e *Env, r *http.Request) {
			tok := valid(t, e)
			r.Header.Add("Authorization", "Bearer "+tok)
			r.Header.Add("Authorization", "DPoP "+tok)
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ERR-12/two Bearer Authorization fields", Build: func(t testing.TB, e *Env, r *http.Request) {
			tok := valid(t, e)
			r.Header.Add("Authorization", "Bearer "+tok)
			r.Header.Add("authorization", "Bearer "+tok)
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ERR-12/header plus access_token query", Build: func(t testing.TB, e *Env, r *http.Request) {
			tok := valid(t, e)
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "access_token=" + tok
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ADV-66/access_token query only", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.URL.RawQuery = "a=1&access_token=" + valid(t, e)
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ADV-66/access_token query with malformed neighbour", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+valid(t, e))
			r.URL.RawQuery = "a=%zz&access_token=x"
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ADV-66/access_token form parameter", Method: http.MethodPost, Body: "x=1&access_token=abc", Build: auth(B, valid), WantStatus: 400, WantError: "invalid_request"},
		{Name: "ADV-66/ERR-02/access_token form parameter without Authorization: no credentials, body unread", Method: http.MethodPost, Body: "access_token=abc", WantStatus: 401},
		{Name: "ADV-66/form body without access_token passes", Method: http.MethodPost, Body: "x=1&y=access", Build: auth(B, valid), WantStatus: 200},
		{Name: "ADV-104/Authorization of 100 KiB", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 100<<10))
		}, WantStatus: 400, WantError: "invalid_request"},
		bad("ADV-104/token over the size cap", func(t testing.TB, e *Env) string {
			tok := valid(t, e)
			return tok + strings.Repeat("A", 16<<10-len(tok)+10)
		}),
		{Name: "ERR-12/Bearer without token", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer")
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ERR-12/two tokens in one field", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+valid(t, e)+", DPoP x")
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "ERR-12/double space before token", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer  "+valid(t, e))
		}, WantStatus: 400, WantError: "invalid_request"},
	}
	_ = D
	return cases
}

// KAT8 is RFC 9449 Figure 8: no typ, aud, iat, jti or client_id.
const KAT8 = "eyJhbGciOiJFUzI1NiIsImtpZCI6IkJlQUxrYiJ9.eyJzdWIiOiJzb21lb25lQGV4YW1wbGUuY29tIiwiaXNzIjoiaHR0cHM6Ly9zZXJ2ZXIuZXhhbXBsZS5jb20iLCJuYmYiOjE1NjIyNjI2MTEsImV4cCI6MTU2MjI2NjIxNiwiY25mIjp7ImprdCI6IjBaY09DT1JaTll5LURXcHFxMzBqWnlKR0hUTjBkMkhnbEJWM3VpZ3VBNEkifX0.3Tyo8VTcn6u_PboUmAOYUY1kfAavomW_YwYMkmRNizLJoQzWy2fCo79Zi5yObpIzjWb5xW4OGld7ESZrh0fsrA"

// KAT14 is RFC 7515 Appendix E: alg none with an unknown crit member.
const KAT14 = "eyJhbGciOiJub25lIiwNCiAiY3JpdCI6WyJodHRwOi8vZXhhbXBsZS5jb20vVU5ERUZJTkVEIl0sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9VTkRFRklORUQiOnRydWUNCn0.RkFJTA."
