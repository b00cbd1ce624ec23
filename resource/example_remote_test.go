package resource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/resource"
)

// ExampleRemoteKeySet discovers an issuer's jwks_uri from its RFC 8414
// metadata and fetches the keys once; the set then serves them to every
// request, refreshes them in the background when their Cache-Control
// lifetime ends, and refetches early (at most once per
// MinRefreshInterval) when a token names a kid it does not know.
func ExampleRemoteKeySet() {
	key := exampleKey()
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	fetches := 0
	mux := http.NewServeMux()
	var issuer string
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		fetches++
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(jwks)
	})
	as := httptest.NewTLSServer(mux)
	defer as.Close()
	issuer = as.URL

	ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
		Issuer:     issuer,      // discovery; or JWKSURL to skip it
		HTTPClient: as.Client(), // trusts the test server's certificate
	})
	if err != nil {
		panic(err)
	}
	for range 3 {
		keys, err := ks.Keys(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Println("keys:", keys.Len())
	}
	fmt.Println("fetches:", fetches)

	// In a verifier: resource.Config{Algorithms: resource.DefaultAlgorithms(), Issuers: []resource.Issuer{{Identifier: issuer, Keys: ks}}, ...}
	_ = resource.Issuer{Identifier: issuer, Keys: ks}

	// Output:
	// keys: 1
	// keys: 1
	// keys: 1
	// fetches: 1
}
