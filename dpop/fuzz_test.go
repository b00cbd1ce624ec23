package dpop

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// proofSeeds are real and malformed proofs shared by the proof fuzz targets.
// Files under testdata/fuzz hold the same kind of inputs, including freshly
// signed ES256, EdDSA and PS256 proofs.
var proofSeeds = []string{
	kat5Proof, kat6Proof, kat7Proof, kat7HighS, kat7NonCan,
	"eyJhbGciOiJub25lIiwNCiAiY3JpdCI6WyJodHRwOi8vZXhhbXBsZS5jb20vVU5ERUZJTkVEIl0sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9VTkRFRklORUQiOnRydWUNCn0.RkFJTA.",
	"a.b.c", "x", "..", "e30.e30.AA", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA",
}

var allAlgs = []jose.SignatureAlgorithm{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

func FuzzVerify(f *testing.F) {
	for _, s := range proofSeeds {
		f.Add(s)
	}
	kat7Want := Expect{Method: "GET", URL: "https://resource.example.org/protectedresource", AccessToken: kat7Token}
	f.Fuzz(func(t *testing.T, proof string) {
		v, err := NewVerifier(Config{
			Algorithms:    []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"},
			ReplayStore:   newMemStore(),
			Now:           fixedClock(1562262618),
			MaxAge:        time.Hour,
			MaxProofBytes: 16 << 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(context.Background(), proof, kat7Want)
		if err != nil {
			if p != nil {
				t.Fatal("non-nil proof with error")
			}
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || e.Err == nil {
				t.Fatalf("untyped error %v", err)
			}
			if len(proof) >= 16 && strings.Contains(err.Error(), proof) {
				t.Fatal("error echoes the proof")
			}
			return
		}
		if p.JKT == "" || p.JTI == "" || p.PublicKey == nil {
			t.Fatalf("accepted with empty fields: %+v", p)
		}
		if _, err := v.Verify(context.Background(), proof, kat7Want); !errors.Is(err, ErrReplay) {
			t.Fatalf("accepted twice: %v", err)
		}
	})
}

// FuzzDifferential checks the purpose-built parser against go-jose: every
// input the strict parser accepts, go-jose accepts with the same payload and
// the same RFC 7638 thumbprint; every input go-jose accepts and the strict
// parser rejects is rejected for one of the documented stricter rules.
func FuzzDifferential(f *testing.F) {
	for _, s := range proofSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		if len(proof) > DefaultMaxProofBytes {
			return
		}
		var p parsed
		r := parseAndVerify(proof, func(string) bool { return true }, "", false, nil, &p)
		mineJKT := p.jkt
		release(&p)

		joseOK := false
		var josePayload []byte
		var joseJKT string
		if jws, err := jose.ParseSignedCompact(proof, allAlgs); err == nil && len(jws.Signatures) == 1 {
			if k := jws.Signatures[0].Header.JSONWebKey; k != nil {
				if payload, err := jws.Verify(k); err == nil {
					joseOK = true
					josePayload = payload
					joseJKT, _ = Thumbprint(k)
				}
			}
		}
		switch {
		case r == rOK && !joseOK:
			t.Fatalf("strict parser accepts what go-jose rejects")
		case r != rOK && joseOK && !r.stricterThanJOSE():
			t.Fatalf("go-jose accepts, strict parser rejects for %q", r)
		case r == rOK:
			parts := strings.Split(proof, ".")
			mine, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
			if err != nil || string(mine) != string(josePayload) {
				t.Fatal("payloads differ")
			}
			if mineJKT != joseJKT {
				t.Fatalf("thumbprints differ: %s vs %s", mineJKT, joseJKT)
			}
		}
	})
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{testURL, "HTTPS://RS.Example.TEST:443/resource", "http://a:80", "https://[::1]:8443/a/../b?x#y", "https://a/%7e%2f", "/x", "https://u@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeURL(s)
		if err != nil {
			if n != "" {
				t.Fatal("result with error")
			}
			return
		}
		again, err := normalizeURL(n)
		if err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, again, err)
		}
		rest := n[strings.Index(n, "://")+3:]
		authority, _, _ := strings.Cut(rest, "/")
		if strings.ContainsAny(n, "?# ") || strings.Contains(authority, "@") || !strings.HasPrefix(n, "http") || !strings.Contains(rest, "/") {
			t.Fatalf("normal form %q has a forbidden character", n)
		}
		// A query-free input is a valid htu claim with the same normal form.
		if !strings.ContainsAny(s, "?#") {
			c, err := appendNormalizedURL(nil, s, false)
			if err != nil || string(c) != n {
				t.Fatalf("claim and request normal forms differ for %q", s)
			}
		}
	})
}

func FuzzCheckNonce(f *testing.F) {
	// A fixed salt source makes the valid seed the same in every fuzzing
	// worker process.
	n, err := NewNonces(NonceConfig{Secrets: [][]byte{secret(1), secret(2)}, Label: "rs", Now: fixedClock(testNow), Rand: zeroReader{}})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := n.NewNonce()
	f.Add(good)
	f.Add("eyJ7S_zG.eyJH0-Z.HX4w-7v")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := n.CheckNonce(s)
		if err == nil {
			// Only nonces minted with our secret validate; the fuzzer
			// cannot forge a MAC, so the only valid input is the seed.
			if s != good {
				t.Fatalf("forged nonce accepted")
			}
			if !validNonceSyntax(s) {
				t.Fatal("valid nonce outside NQCHAR")
			}
			return
		}
		if !errors.Is(err, ErrUseNonce) {
			t.Fatalf("error %v does not wrap ErrUseNonce", err)
		}
		if !n.Due(s) {
			t.Fatal("invalid nonce not due")
		}
	})
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`DPoP algs="ES256 PS256"`,
		`Bearer, DPoP algs="ES256 PS256"`,
		`Bearer error="invalid_request", error_description="Multiple methods used to include access token", DPoP algs="ES256 PS256", error="invalid_request", error_description="Multiple methods used to include access token"`,
		`Basic dXNlcjpwYXNz==`, `DPoP error="a\"b"`, `,,,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseChallenges(s)
		if err != nil {
			if cs != nil {
				t.Fatal("result with error")
			}
			return
		}
		for _, c := range cs {
			if c.Scheme == "" {
				t.Fatal("challenge without scheme")
			}
			// Rendering yields a header that parses to one challenge with
			// the same scheme.
			back, err := ParseChallenges(c.String())
			if err != nil || len(back) != 1 || back[0].Scheme != c.Scheme {
				t.Fatalf("render/parse round trip failed for %+v: %q %v", c, c.String(), err)
			}
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// FuzzX5C feeds protected headers to the x5c path of the header parser
// with the caller's opt-in: no panic, and every accepted value re-encodes
// to exactly the string it came from (one encoding per certificate).
func FuzzX5C(f *testing.F) {
	for _, s := range []string{
		`{"x5c":["AQID"]}`,
		`{"x5c":["AQID","+/8="]}`,
		`{"x5c":[]}`,
		`{"x5c":[""]}`,
		`{"x5c":"AQID"}`,
		`{"x5c":["AQ\nID=="]}`,
		`{"x5c":["AQ\u000aID=="]}`,
		`{"x5c":["-_-_"]}`,
		`{"x5c":["AQJ="]}`,
		`{"x5c":["AQ==AQID"]}`,
		`{"x5c":["AQID"],"x5c":["AQID"]}`,
		`{"x5c":["A","A","A","A","A","A","A","A","A"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hdr string) {
		var h header
		if parseHeader([]byte(hdr), true, &h) != rOK || !h.hasX5C {
			return
		}
		if h.nX5C > MaxX5C {
			t.Fatalf("%d x5c values kept", h.nX5C)
		}
		der, r := decodeX5C(&h)
		if h.nX5C > 0 {
			// The deferred path (Expect.X5CEncoded, then DecodeX5C) agrees.
			enc := copyX5C(&h)
			for i, s := range enc {
				if s != string(h.x5c[i]) {
					t.Fatalf("string %d not copied as sent", i)
				}
			}
			der2, err := DecodeX5C(enc)
			if (err == nil) != (r == rOK) || len(der2) != len(der) {
				t.Fatalf("DecodeX5C: %v, %d values; decodeX5C: %s, %d values", err, len(der2), r, len(der))
			}
			for i := range der2 {
				if !bytes.Equal(der2[i], der[i]) {
					t.Fatalf("value %d differs between the paths", i)
				}
			}
		}
		if r != rOK {
			if der != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if len(der) != h.nX5C || len(der) == 0 {
			t.Fatalf("%d values decoded from %d", len(der), h.nX5C)
		}
		for i, d := range der {
			if len(d) == 0 || len(d) > MaxX5CCertBytes {
				t.Fatalf("value %d has %d bytes", i, len(d))
			}
			if base64.StdEncoding.EncodeToString(d) != string(h.x5c[i]) {
				t.Fatalf("value %d does not re-encode to its input", i)
			}
		}
	})
}

// FuzzHeaderCache checks a proof on a verifier whose header cache holds
// the header of a valid proof with x5c, and on a fresh one: both agree,
// accepted with the same key, claims and strings, or refused with the
// same error. Seeds are that valid proof and edits of its claims and
// signature, which keep the cached header.
func FuzzHeaderCache(f *testing.F) {
	b := x5cPB(f, "ES256", "ES256", "AQID", "+/8=")
	warm := b.build(f)
	f.Add(warm)
	b.cl["jti"] = "another"
	f.Add(b.build(f))
	b.cl["htm"] = "POST"
	f.Add(b.build(f))
	f.Add(warm[:strings.LastIndexByte(warm, '.')+1] + "AAAA")
	f.Add(warm[:strings.IndexByte(warm, '.')] + ".e30.AAAA")
	for _, s := range proofSeeds {
		f.Add(s)
	}
	want := encodedExpect()
	f.Fuzz(func(t *testing.T, proof string) {
		cached := testVerifier(t, nil)
		if _, err := cached.Check(warm, want); err != nil {
			t.Fatal(err)
		}
		got, err := cached.Check(proof, want)
		ref, errRef := testVerifier(t, nil).Check(proof, want)
		if (err == nil) != (errRef == nil) {
			t.Fatalf("cached: %v; fresh: %v", err, errRef)
		}
		if err != nil {
			if err.Error() != errRef.Error() || got != nil {
				t.Fatalf("cached: %v; fresh: %v", err, errRef)
			}
			return
		}
		if got.JKT != ref.JKT || got.JTI != ref.JTI || got.Algorithm != ref.Algorithm || !slices.Equal(got.X5CEncoded, ref.X5CEncoded) {
			t.Fatalf("cached %+v, fresh %+v", got, ref)
		}
	})
}
