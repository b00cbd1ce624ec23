package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// checkProof verifies proof independently of this package's parser, with
// go-jose and the jwk embedded in its header, and checks that its header
// and claims are exactly what Proof(method, target, opts) must produce at
// now; then it verifies proof with this package's Verifier.
func checkProof(tb testing.TB, p *Prover, proof, method, target string, opts ProofOptions, now time.Time) {
	tb.Helper()
	jws, err := jose.ParseSigned(proof, allAlgs)
	if err != nil {
		tb.Fatalf("go-jose parse: %v", err)
	}
	if len(jws.Signatures) != 1 {
		tb.Fatal("not one signature")
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != p.Algorithm() || h.ExtraHeaders["typ"] != ProofType || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		tb.Fatalf("header %+v", h)
	}
	if jkt, err := Thumbprint(h.JSONWebKey); err != nil || jkt != p.Thumbprint() {
		tb.Fatalf("embedded jwk thumbprint %q (%v), want %q", jkt, err, p.Thumbprint())
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		tb.Fatalf("go-jose verify with the embedded jwk: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatalf("claims: %v", err)
	}
	jti, _ := claims["jti"].(string)
	if raw, err := base64.RawURLEncoding.Strict().DecodeString(jti); err != nil || len(raw) != jtiBytes {
		tb.Fatalf("jti %q is not %d random bytes", jti, jtiBytes)
	}
	htu := target
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	want := map[string]any{"jti": jti, "htm": method, "htu": htu, "iat": float64(now.Unix())}
	if opts.AccessToken != "" {
		sum := sha256.Sum256([]byte(opts.AccessToken))
		want["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if opts.Nonce != "" {
		want["nonce"] = opts.Nonce
	}
	if !reflect.DeepEqual(claims, want) {
		tb.Fatalf("claims\n got %v\nwant %v", claims, want)
	}

	v, err := NewVerifier(Config{
		Algorithms:    []string{p.Algorithm()},
		ReplayStore:   newMemStore(),
		Now:           func() time.Time { return now },
		MaxProofBytes: 64 << 10,
	})
	if err != nil {
		tb.Fatal(err)
	}
	got, err := v.Verify(context.Background(), proof, Expect{Method: method, URL: target, AccessToken: opts.AccessToken, JKT: p.Thumbprint()})
	if err != nil {
		tb.Fatalf("Verifier: %v", err)
	}
	if got.JTI != jti || got.Method != method || got.URL != htu || got.Nonce != opts.Nonce || got.Algorithm != p.Algorithm() || !got.IssuedAt.Equal(now) {
		tb.Fatalf("Verifier returned %+v", got)
	}
}

func TestProofInterop(t *testing.T) {
	t.Parallel()
	k := keys(t)
	now := time.Unix(testNow, 0)
	requests := []struct {
		method, target string
		opts           ProofOptions
	}{
		{"GET", testURL, ProofOptions{}},
		{"POST", "https://as.example.test/token", ProofOptions{Nonce: "eyJ7S_zG.eyJH0-Z.HX4w-7v"}},
		{"GET", "https://rs.example.test/a/b?x=1#f", ProofOptions{AccessToken: testToken, Nonce: "n"}},
		{"PATCH", "http://127.0.0.1:8080/r%2Fs/~x", ProofOptions{AccessToken: strings.Repeat("t", 4000)}},
		{"M-SEARCH", "https://[::1]:8443/", ProofOptions{AccessToken: "tok\"en\\\x00é\xff"}},
		// The hardest nonce and URL characters the syntax allows.
		{"!#$%&'*+-.^_`|~", "https://rs.example.test/!$&'()*+,;=:@-._~%7e%22", ProofOptions{Nonce: "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}},
	}
	for _, tc := range []struct{ key, alg string }{
		{"ES256", "ES256"}, {"ES384", "ES384"}, {"ES512", "ES512"}, {"EdDSA", "EdDSA"},
		{"RSA", "PS256"}, {"RSA", "PS384"}, {"RSA", "PS512"},
		{"RSA", "RS256"}, {"RSA", "RS384"}, {"RSA", "RS512"},
	} {
		for _, wrap := range []string{"memory", "opaque"} {
			t.Run(tc.alg+"/"+wrap, func(t *testing.T) {
				t.Parallel()
				var key crypto.Signer = k[tc.key]
				if wrap == "opaque" {
					key = opaqueSigner{key}
				}
				p, err := NewProver(key, &ProverOptions{Algorithm: tc.alg, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range requests {
					proof, err := p.Proof(r.method, r.target, r.opts)
					if err != nil {
						t.Fatalf("Proof(%q, %q, %+v): %v", r.method, r.target, r.opts, err)
					}
					checkProof(t, p, proof, r.method, r.target, r.opts, now)
				}
			})
		}
	}
}

// TestProofRefusesHostileInput checks that a method, URL or nonce that
// could not travel in a proof unchanged is refused, not escaped or
// rewritten.
func TestProofRefusesHostileInput(t *testing.T) {
	t.Parallel()
	p, err := NewProver(keys(t)["ES256"], nil)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{`"`, `\`, "\x00", "\n", "\x7f", "é", "\xff", "\u2028", " ", `","htm":"POST`}
	for _, h := range hostile {
		if s, err := p.Proof("GET"+h, testURL, ProofOptions{}); err == nil || s != "" {
			t.Errorf("method with %q accepted", h)
		}
		if s, err := p.Proof("GET", testURL+h, ProofOptions{}); err == nil || s != "" {
			t.Errorf("URL with %q accepted", h)
		}
		if s, err := p.Proof("GET", "https://rs"+h+".example.test/", ProofOptions{}); err == nil || s != "" {
			t.Errorf("host with %q accepted", h)
		}
		if s, err := p.Proof("GET", testURL, ProofOptions{Nonce: "n" + h}); err == nil || s != "" {
			t.Errorf("nonce with %q accepted", h)
		}
	}
}

// FuzzProof feeds arbitrary request data to Prover.Proof: it either
// refuses it or returns a proof that go-jose verifies with the embedded
// jwk, whose claims decode to exactly the inputs, and that the Verifier
// accepts.
func FuzzProof(f *testing.F) {
	f.Add("GET", testURL, "", "")
	f.Add("POST", "https://as.example.test/token?x=1#y", "nonce-1", testToken)
	f.Add("GET", "https://rs.example.test/\"\\", "n\"\\", "tok\"\\\x00\xff")
	f.Add("G\x00T", "HTTPS://RS.EXAMPLE.TEST:443/a/../b/%7e", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "é")
	f.Add("GET", "http://[::1]:80", "\u2028", "")
	now := time.Unix(testNow, 0)
	p, err := NewProver(keys(f)["ES256"], &ProverOptions{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, nonce, token string) {
		opts := ProofOptions{Nonce: nonce, AccessToken: token}
		proof, err := p.Proof(method, target, opts)
		if err != nil {
			if proof != "" {
				t.Fatal("proof with error")
			}
			return
		}
		checkProof(t, p, proof, method, target, opts, now)
	})
}
