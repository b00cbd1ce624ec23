package issuer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
)

// A server with its own grant logic mints a DPoP-bound token for a proof
// key it has verified.
func ExampleIssuer_Mint() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key, KeyID: "key-2026-01"})
	if err != nil {
		panic(err)
	}
	is, err := issuer.New(issuer.Config{
		Issuer:   "https://as.example.com",
		Keys:     ks,
		Audience: []string{"https://api.example.com"},
		Now:      func() time.Time { return time.Unix(1767225600, 0) },
		Rand:     bytes.NewReader(make([]byte, 64)), // fixed jti for the example only
	})
	if err != nil {
		panic(err)
	}
	tok, err := is.Mint(context.Background(), issuer.MintRequest{
		Subject:  "alice",
		ClientID: "app",
		Scope:    "read",
		Binding:  issuer.Binding{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
	})
	if err != nil {
		panic(err)
	}
	parts := strings.Split(tok.Raw, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	fmt.Println(tok.Type)
	fmt.Println(string(header))
	fmt.Println(string(claims))
	// Output:
	// DPoP
	// {"alg":"ES256","kid":"key-2026-01","typ":"at+jwt"}
	// {"iss":"https://as.example.com","sub":"alice","aud":"https://api.example.com","exp":1767225900,"iat":1767225600,"jti":"00000000-0000-4000-8000-000000000000","client_id":"app","scope":"read","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
}

// The Server mounts the token endpoint, JWKS, metadata and introspection;
// a client using dpop.Transport gets a DPoP-bound token.
func ExampleServer() {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, _ := issuer.NewKeySet(issuer.SigningKey{Signer: signer})

	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	is, err := issuer.New(issuer.Config{
		Issuer: base, Keys: ks, Audience: []string{"https://api.example.com"},
		InsecureAllowHTTP: true, // loopback example only
	})
	if err != nil {
		panic(err)
	}
	clients, _ := issuer.NewMemoryRegistry(issuer.Client{
		ID:         "svc",
		AuthMethod: issuer.AuthSecretBasic,
		SecretHash: issuer.HashSecret("s3cr3t-generated-with-128-bits-of-entropy"),
		Scopes:     []string{"read"},
	})
	// One instance: an in-memory replay store. Instances behind one load
	// balancer share a replaycache/redisstore.Store instead.
	replay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		panic(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{Issuer: is, Clients: clients, ReplayStore: replay})
	if err != nil {
		panic(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, _ := dpop.NewProver(clientKey, nil)
	hc := &http.Client{Transport: &dpop.Transport{Prover: prover}}
	req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "s3cr3t-generated-with-128-bits-of-entropy")
	resp, err := hc.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var body struct {
		TokenType string `json:"token_type"`
		Scope     string `json:"scope"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"), body.TokenType, body.Scope)
	// Output:
	// 200 no-store DPoP read
}
