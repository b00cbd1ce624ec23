package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce  sync.Once
	testKeys map[string]crypto.Signer
)

// keys returns one generated key per algorithm family, shared by tests.
func keys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	keyOnce.Do(func() {
		testKeys = map[string]crypto.Signer{}
		must := func(k crypto.Signer, err error) crypto.Signer {
			if err != nil {
				panic(err)
			}
			return k
		}
		testKeys["ES256"] = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		testKeys["ES256b"] = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		testKeys["ES384"] = must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
		testKeys["ES512"] = must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		testKeys["EdDSA"] = must(ed, err)
		testKeys["RSA"] = must(rsa.GenerateKey(rand.Reader, 2048))
		testKeys["RSA1024"] = must(rsa.GenerateKey(rand.Reader, 1024))
	})
	return testKeys
}

func TestProverRoundTrip(t *testing.T) {
	t.Parallel()
	k := keys(t)
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
		want string
	}{
		{"ES256", k["ES256"], "", "ES256"},
		{"ES384", k["ES384"], "", "ES384"},
		{"ES512", k["ES512"], "", "ES512"},
		{"EdDSA", k["EdDSA"], "", "EdDSA"},
		{"PS256", k["RSA"], "", "PS256"},
		{"PS384", k["RSA"], "PS384", "PS384"},
		{"PS512", k["RSA"], "PS512", "PS512"},
		{"RS256", k["RSA"], "RS256", "RS256"},
		{"RS384", k["RSA"], "RS384", "RS384"},
		{"RS512", k["RSA"], "RS512", "RS512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewProver(tc.key, &ProverOptions{Algorithm: tc.alg, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if p.Algorithm() != tc.want {
				t.Fatalf("alg %s, want %s", p.Algorithm(), tc.want)
			}
			proof, err := p.Proof("GET", "https://rs.example.test/resource?a=1#frag", ProofOptions{AccessToken: "tok", Nonce: "n-1"})
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(Config{Algorithms: []string{tc.want}, ReplayStore: newMemStore(), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(context.Background(), proof, Expect{Method: "GET", URL: "https://rs.example.test/resource?b=2", AccessToken: "tok", JKT: p.Thumbprint()})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if got.JKT != p.Thumbprint() || got.URL != "https://rs.example.test/resource" || got.Nonce != "n-1" || got.Algorithm != tc.want || !got.IssuedAt.Equal(now) {
				t.Fatalf("unexpected proof %+v", got)
			}
		})
	}
}

// opaqueSigner hides the concrete key type, like an HSM or KMS signer.
type opaqueSigner struct{ crypto.Signer }

func TestProverOpaqueSigner(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ES256", "EdDSA", "RSA"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := NewProver(opaqueSigner{keys(t)[name]}, &ProverOptions{Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			proof, err := p.Proof("POST", testURL, ProofOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := testVerifier(t, nil).Verify(context.Background(), proof, Expect{Method: "POST", URL: testURL, JKT: p.Thumbprint()}); err != nil {
				t.Fatal(err)
			}
			jwk := p.PublicJWK()
			if !jwk.IsPublic() {
				t.Fatal("PublicJWK is not public")
			}
		})
	}
}

func TestProverErrors(t *testing.T) {
	t.Parallel()
	k := keys(t)
	ctor := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"nil key", nil, ""},
		{"RSA 1024", k["RSA1024"], ""},
		{"RSA e 2^31-1", withExponent(t, k["RSA"].(*rsa.PrivateKey), 1<<31-1), ""},
		{"ES384 on P-256", k["ES256"], "ES384"},
		{"EdDSA on RSA", k["RSA"], "EdDSA"},
		{"HS256", k["ES256"], "HS256"},
		{"none", k["ES256"], "none"},
	}
	for _, tc := range ctor {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewProver(tc.key, &ProverOptions{Algorithm: tc.alg}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	p, err := NewProver(k["ES256"], nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name, method, url string
		opts              ProofOptions
	}{
		{"empty method", "", testURL, ProofOptions{}},
		{"method with space", "G ET", testURL, ProofOptions{}},
		{"relative URL", "GET", "/resource", ProofOptions{}},
		{"userinfo", "GET", "https://u@rs.example.test/", ProofOptions{}},
		{"non-http", "GET", "ftp://rs.example.test/", ProofOptions{}},
		{"nonce outside NQCHAR", "GET", testURL, ProofOptions{Nonce: "a b"}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := p.Proof(tc.method, tc.url, tc.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	bad, err := NewProver(k["ES256"], &ProverOptions{Rand: strings.NewReader("short")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Proof("GET", testURL, ProofOptions{}); err == nil {
		t.Fatal("jti entropy failure ignored")
	}
}

func TestProverJTIAndClaims(t *testing.T) {
	t.Parallel()
	p, err := NewProver(keys(t)["ES256"], &ProverOptions{Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	v := testVerifier(t, nil)
	for i := 0; i < 50; i++ {
		proof, err := p.Proof("GET", testURL+"?q=#f", ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(context.Background(), proof, Expect{Method: "GET", URL: testURL})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(got.JTI)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("jti %q carries fewer than 128 random bits", got.JTI)
		}
		if seen[got.JTI] {
			t.Fatal("repeated jti")
		}
		seen[got.JTI] = true
		if got.URL != testURL {
			t.Fatalf("htu %q keeps query or fragment", got.URL)
		}
	}
}
