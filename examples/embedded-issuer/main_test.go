package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/dpop"
)

const secret = "example-secret-0123456789abcdefghijklmnop"

func TestEmbeddedIssuer(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp("http://127.0.0.1:1", key, "short"); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := newApp("http://example.com", key, secret); err == nil {
		t.Fatal("plain http issuer accepted for a public host")
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	app, err := newApp(base, key, secret)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = app
	ts.Start()
	defer ts.Close()

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get("/healthz"); code != 200 || string(body) != "ok\n" {
		t.Fatalf("application route: %d %q", code, body)
	}
	code, body := get("/.well-known/oauth-authorization-server")
	var md struct {
		Issuer string `json:"issuer"`
		Token  string `json:"token_endpoint"`
		JWKS   string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &md); err != nil || code != 200 || md.Issuer != base || md.Token != base+"/token" {
		t.Fatalf("metadata: %d %s", code, body)
	}

	token := func(hc *http.Client) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, md.Token, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", secret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := token(http.DefaultClient); code != 400 || out["error"] != "invalid_dpop_proof" {
		t.Fatalf("DPoP-bound client without a proof: %d %v", code, out)
	}
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, err := dpop.NewProver(clientKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, out := token(&http.Client{Transport: &dpop.Transport{Prover: prover}})
	if code != 200 || out["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", code, out)
	}

	_, jwksBody := get("/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksBody, &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(out["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != prover.Thumbprint() || claims["scope"] != "read write" {
		t.Fatalf("claims %v", claims)
	}
}
