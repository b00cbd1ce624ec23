package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// hostileStrings are claim values an encoder gets wrong if it escapes
// carelessly.
var hostileStrings = []string{
	`quote " and backslash \ and \" and \\"`,
	"controls \x00\x01\x08\x0c\n\r\t\x1f\x7f",
	"non-ASCII é ü 日本 🙂 \u2028\u2029 \ufffd",
	`</script><script>alert(1)</script> & <>`,
	`","iss":"https://evil.example","x":"`,
	`\u0022 \ud800 \/`,
	"invalid UTF-8 \xff\xfe \xed\xa0\x80 \xe6\x97",
}

// jsonRoundTrip returns what v becomes after encoding/json encodes and
// decodes it into an any: the value a token's claim must decode to.
func jsonRoundTrip(tb testing.TB, v any) any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// wantClaims returns the claims Mint must produce for req at now with the
// test issuer's defaults, as decoded JSON.
func wantClaims(tb testing.TB, req MintRequest, tok *Token, now time.Time) map[string]any {
	tb.Helper()
	m := map[string]any{
		"iss": "https://as.example.test", "sub": req.Subject, "client_id": req.ClientID,
		"exp": tok.ExpiresAt.Unix(), "iat": now.Unix(), "jti": tok.ID,
	}
	aud := req.Audience
	if len(aud) == 0 {
		aud = []string{"https://rs.example.test/resource"}
	}
	if len(aud) == 1 {
		m["aud"] = aud[0]
	} else {
		m["aud"] = aud
	}
	if req.Scope != "" {
		m["scope"] = req.Scope
	}
	if req.Binding.Bound() {
		m["cnf"] = cnfClaim{JKT: req.Binding.JKT, X5TS256: req.Binding.X5TS256}
	}
	for k, v := range req.Claims {
		m[k] = v
	}
	return jsonRoundTrip(tb, m).(map[string]any)
}

// verifyRoundTrip verifies raw with go-jose and checks that its claims
// decode to exactly what req asked for.
func verifyRoundTrip(tb testing.TB, raw, alg string, is *Issuer, req MintRequest, tok *Token, now time.Time) {
	tb.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		tb.Fatalf("go-jose parse: %v", err)
	}
	payload, err := jws.Verify(is.Keys().active.Load().signer.Public())
	if err != nil {
		tb.Fatalf("go-jose verify: %v", err)
	}
	if !json.Valid(payload) {
		tb.Fatalf("payload is not JSON: %q", payload)
	}
	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		tb.Fatal(err)
	}
	if want := wantClaims(tb, req, tok, now); !reflect.DeepEqual(got, want) {
		tb.Fatalf("claims differ\n got %v\nwant %v", got, want)
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != alg || h.KeyID != tok.KeyID || h.ExtraHeaders["typ"] != "at+jwt" {
		tb.Fatalf("header %+v", h)
	}
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			is := newTestIssuer(t, SigningKey{Signer: testSigner(t, alg), Algorithm: alg}, func() time.Time { return now })
			for i, s := range hostileStrings {
				req := MintRequest{
					Subject: s, ClientID: s + "c", Scope: s, Audience: []string{s, "https://rs.example.test/" + s},
					Claims: map[string]any{
						s:        s,
						"nested": map[string]any{s: []any{s, 1.5, true, nil}},
						"n":      float64(i),
					},
				}
				switch i % 3 {
				case 0:
					req.Binding = Binding{JKT: benchJKT}
				case 1:
					req.Binding = Binding{X5TS256: benchJKT}
					req.Audience = req.Audience[:1]
				}
				tok, err := is.Mint(context.Background(), req)
				if err != nil {
					t.Fatalf("%q: %v", s, err)
				}
				verifyRoundTrip(t, tok.Raw, alg, is, req, tok, now)
			}
		})
	}
}

// FuzzMint feeds arbitrary strings to every string field of a MintRequest
// and an extra claim: Mint either refuses the request or returns a token
// that go-jose verifies and whose claims decode to exactly the request's.
func FuzzMint(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, s, s, s, s)
	}
	f.Add("alice", "client-1", "read write", "https://rs.example.test/resource", "tenant", "t1")
	f.Add("", "c", "", "", "", "")
	f.Add("s", "c", "", "", "iss", "x")
	signer := testSigner(f, "ES256")
	now := time.Unix(1_700_000_000, 0)
	is := newTestIssuer(f, SigningKey{Signer: signer}, func() time.Time { return now })
	f.Fuzz(func(t *testing.T, sub, clientID, scope, aud, claim, value string) {
		req := MintRequest{Subject: sub, ClientID: clientID, Scope: scope}
		if aud != "" {
			req.Audience = []string{aud, aud + "/2"}
			if len(aud)%2 == 0 {
				req.Audience = req.Audience[:1]
			}
		}
		if claim != "" {
			req.Claims = map[string]any{claim: value, claim + "[]": []string{value, sub}}
		}
		tok, err := is.Mint(context.Background(), req)
		if err != nil {
			if tok != nil {
				t.Fatal("token with error")
			}
			if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrReservedClaim) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		verifyRoundTrip(t, tok.Raw, "ES256", is, req, tok, now)
	})
}
