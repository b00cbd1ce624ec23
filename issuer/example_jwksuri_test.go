package issuer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/issuer"
)

// A private_key_jwt client registered with a jwks_uri: the server fetches
// the client's keys from there on first use (and again when the client
// rotates them), so registering the client needs no key.
func ExampleClient_jwksURI() {
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: clientKey.Public(), KeyID: "2026-01", Use: "sig"}}})
	// The client's key host; in production an https URL on the public
	// internet, here a loopback test server.
	keyHost := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(set)
	}))
	defer keyHost.Close()

	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, _ := issuer.NewKeySet(issuer.SigningKey{Signer: signer})
	is, _ := issuer.New(issuer.Config{Issuer: "https://as.example.com", Keys: ks, Audience: []string{"https://api.example.com"}})
	reg, err := issuer.NewMemoryRegistry(issuer.Client{ID: "svc", AuthMethod: issuer.AuthPrivateKeyJWT, JWKSURI: keyHost.URL + "/jwks.json"})
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(keyHost.Certificate())
	replay, _ := issuer.NewMemoryReplayStore(is, 0)
	srv, err := issuer.NewServer(issuer.ServerConfig{Issuer: is, Clients: reg, ReplayStore: replay,
		ClientJWKS: issuer.ClientJWKSConfig{
			RootCAs: roots,
			// Only because the key host is on loopback in this example.
			InsecureAllowPrivateAddresses: true,
		}})
	if err != nil {
		panic(err)
	}

	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: clientKey}, (&jose.SignerOptions{}).WithHeader("kid", "2026-01"))
	now := time.Now()
	assertion, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "svc", Subject: "svc", Audience: jwt.Audience{srv.TokenURL()},
		ID: "a-1", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {issuer.ClientAssertionType}, "client_assertion": {assertion}}
	req := httptest.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	var resp struct {
		TokenType string `json:"token_type"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	fmt.Println(rec.Code, resp.TokenType)
	// Output: 200 Bearer
}
