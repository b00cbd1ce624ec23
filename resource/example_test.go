package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// exampleKey is a fixed P-256 key (the RFC 7517 Appendix A.2 key), so the
// example is deterministic.
func exampleKey() *ecdsa.PrivateKey {
	d, _ := new(big.Int).SetString("f3bd0c07a81fb932781ed52752f60cc89a6be5e51934fe01938ddb55d8f77801", 16)
	k := &ecdsa.PrivateKey{D: d}
	k.PublicKey.Curve = elliptic.P256()
	k.PublicKey.X, k.PublicKey.Y = elliptic.P256().ScalarBaseMult(d.Bytes())
	return k
}

func Example() {
	now := time.Unix(1_900_000_000, 0)
	key := exampleKey()
	keys, _ := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	}})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: keys}},
		Audience:   "https://api.example.com",
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	// This route also accepts unbound bearer tokens; the default policy
	// (AcceptBound) would insist on DPoP or mTLS binding.
	h := v.Middleware(resource.Policy{Accept: resource.AcceptAny, Scopes: []string{"read"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := resource.PrincipalFromContext(r.Context())
			fmt.Fprintf(w, "hello %s via %s", p.Subject, p.Binding)
		}))

	// Mint an access token the way an authorization server would.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
		"client_id": "app", "jti": "t-1", "scope": "read",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()

	for _, authz := range []string{"", "Bearer " + token} {
		r := httptest.NewRequest("GET", "https://api.example.com/things", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), string(body))
	}
	// Output:
	// 401 Bearer realm="https://api.example.com" {"error":"unauthorized"}
	//
	// 200  hello alice via bearer
}

// This example accepts DPoP-bound tokens only, and shows a replayed proof
// being refused.
func ExampleConfig_dPoP() {
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { return now }
	asKey := exampleKey()
	keys, _ := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &asKey.PublicKey, KeyID: "k1", Algorithm: "ES256"},
	}})
	replay, _ := replaycache.NewLRU(replaycache.Config{Capacity: 10000, Now: clock})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: keys}},
		Audience:   "https://api.example.com",
		PublicURL:  "https://api.example.com",
		Now:        clock,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: replay},
	})
	if err != nil {
		panic(err)
	}
	h := v.Middleware(resource.Policy{Accept: resource.AcceptDPoP})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "%s via %s", p.Subject, p.Binding)
	}))

	// The client's key; the access token is bound to its thumbprint.
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, _ := dpop.NewProver(clientKey, &dpop.ProverOptions{Now: clock})
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: asKey, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
		"client_id": "app", "jti": "t-2", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"cnf": map[string]string{"jkt": prover.Thumbprint()},
	})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()
	proof, _ := prover.Proof("GET", "https://api.example.com/orders", dpop.ProofOptions{AccessToken: token})

	for i := 0; i < 2; i++ { // the second send replays the proof
		r := httptest.NewRequest("GET", "https://api.example.com/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String())
	}
	// Output:
	// 200  alice via dpop
	// 401 DPoP error="invalid_dpop_proof", error_description="DPoP proof invalid", algs="ES256" {"error":"invalid_dpop_proof"}
}
