package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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
