package redisrefresh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/issuer/redisrefresh"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

const (
	instanceSecret = "instance-secret-0123456789abcdef"
	codeGrant      = "urn:example:params:oauth:grant-type:code"
)

// codeGrantHandler stands for an embedding server's authorization_code
// grant: it grants "subject" and asks for a refresh token.
func codeGrantHandler(_ context.Context, req *issuer.GrantRequest) (*issuer.Grant, error) {
	sub := req.Params["subject"]
	if sub == "" {
		return nil, issuer.GrantError(issuer.ErrInvalidGrant, "unknown grant")
	}
	return &issuer.Grant{Subject: sub, Scope: "read", RefreshToken: true}, nil
}

// startInstances starts n instances of one issuer (one identifier, one
// signing key, one client registry) on loopback, sharing the replay store
// and the refresh tokens through the Redis of srv, and returns their base
// URLs. With opaque, the instances mint opaque access tokens kept in the
// same Redis under a prefix of their own.
func startInstances(t *testing.T, srv *redistest.Server, n int, opaque bool) []string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const id = "http://127.0.0.1:1" // the load balancer's URL
	var urls []string
	for range n {
		rdb := srv.Client()
		keys, err := issuer.NewKeySet(issuer.SigningKey{Signer: key, Algorithm: "ES256"})
		if err != nil {
			t.Fatal(err)
		}
		icfg := issuer.Config{Issuer: id, Keys: keys, Audience: []string{"https://rs.example.test"}, InsecureAllowHTTP: true}
		if opaque {
			icfg.AccessTokenFormat = issuer.FormatOpaque
			icfg.AccessTokens = newStore(t, rdb, redisrefresh.Config{Prefix: "as:access:"})
		}
		is, err := issuer.New(icfg)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := issuer.NewMemoryRegistry(issuer.Client{ID: "app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(instanceSecret),
			Scopes: []string{"read"}, GrantTypes: []string{codeGrant, issuer.GrantRefreshToken}},
			issuer.Client{ID: "rs", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(instanceSecret), Introspect: true, IntrospectAll: true})
		if err != nil {
			t.Fatal(err)
		}
		replay, err := redisstore.New(rdb, redisstore.Config{Prefix: "as:jti:"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := issuer.NewServer(issuer.ServerConfig{
			Issuer: is, Clients: reg, ReplayStore: replay,
			RefreshTokens: newStore(t, rdb, redisrefresh.Config{Prefix: "as:refresh:"}),
			Grants:        map[string]issuer.GrantHandler{codeGrant: issuer.GrantHandlerFunc(codeGrantHandler)},
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL)
	}
	return urls
}

// tokenRequest posts form as client "app" to base's token endpoint and
// returns the status and the decoded answer.
func tokenRequest(t *testing.T, base string, form url.Values) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+issuer.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", instanceSecret)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	out := map[string]string{}
	for k, v := range body {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return resp.StatusCode, out
}

// TestTwoIssuerInstances: a refresh token issued by instance A is redeemed
// at instance B once, and its successor works at A. A redeemed token
// replayed at A is reuse (RFC 9700 §4.14.2): refused, and its family is
// revoked at both instances, so the live successor is refused at A and at
// B; another grant's family is unaffected. Of concurrent redemptions
// spread over both instances exactly one succeeds.
func TestTwoIssuerInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls := startInstances(t, srv, 2, false)
	a, b := urls[0], urls[1]
	refresh := func(base, rt string) (int, map[string]string) {
		t.Helper()
		return tokenRequest(t, base, url.Values{"grant_type": {issuer.GrantRefreshToken}, "refresh_token": {rt}})
	}

	status, body := tokenRequest(t, a, url.Values{"grant_type": {codeGrant}, "subject": {"alice"}})
	rt := body["refresh_token"]
	if status != http.StatusOK || rt == "" {
		t.Fatalf("grant at A: %d %v", status, body)
	}
	status, body = refresh(b, rt)
	next := body["refresh_token"]
	if status != http.StatusOK || body["access_token"] == "" || next == "" {
		t.Fatalf("A's refresh token at B: %d %v", status, body)
	}
	status, body = refresh(a, next)
	live := body["refresh_token"]
	if status != http.StatusOK || live == "" {
		t.Fatalf("B's successor at A: %d %v", status, body)
	}
	_, body = tokenRequest(t, b, url.Values{"grant_type": {codeGrant}, "subject": {"carol"}})
	other := body["refresh_token"]
	if other == "" {
		t.Fatalf("second grant at B: %v", body)
	}
	// The token redeemed at B, replayed at A, then at B: reuse each time.
	for _, base := range []string{a, b} {
		if status, body := refresh(base, rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["error_description"] != "refresh token was already used" {
			t.Fatalf("replay at %s: %d %v, want 400 invalid_grant (reuse)", base, status, body)
		}
	}
	for _, base := range []string{a, b} {
		if status, body := refresh(base, live); status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["access_token"] != "" {
			t.Fatalf("live token of a revoked family at %s: %d %v, want 400 invalid_grant", base, status, body)
		}
	}
	if status, body := refresh(a, other); status != http.StatusOK || body["refresh_token"] == "" {
		t.Fatalf("another family at A after the revocation: %d %v", status, body)
	}

	_, body = tokenRequest(t, b, url.Values{"grant_type": {codeGrant}, "subject": {"bob"}})
	rt = body["refresh_token"]
	// Concurrent redemptions of one token at two instances: at most one
	// succeeds. A request that reads the token after another redeemed it
	// sees a reused token and revokes the family, the winner's successor
	// included, so none may succeed; every refusal is invalid_grant, and
	// then at least one of them names the reuse.
	const n = 16
	statuses := make([]int, n)
	bodies := make([]map[string]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], bodies[i] = tokenRequest(t, urls[i%2], url.Values{"grant_type": {issuer.GrantRefreshToken}, "refresh_token": {rt}})
		}()
	}
	wg.Wait()
	ok, reused := 0, 0
	for i, s := range statuses {
		switch {
		case s == http.StatusOK:
			ok++
		case s == http.StatusBadRequest && bodies[i]["error"] == "invalid_grant":
			if bodies[i]["error_description"] == "refresh token was already used" {
				reused++
			}
		default:
			t.Errorf("status %d %v", s, bodies[i])
		}
	}
	if ok > 1 || ok == 0 && reused == 0 {
		t.Fatalf("%d of %d concurrent redemptions at two instances succeeded, %d refused as reuse; want one success, or none with the family revoked for reuse (%v)", ok, n, reused, statuses)
	}
	for _, base := range []string{a, b} {
		if status, body := refresh(base, rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("the raced token afterwards at %s: %d %v, want 400 invalid_grant", base, status, body)
		}
	}
}

// TestTwoIssuerInstancesOpaque: an opaque access token minted by instance
// A is active at instance B's introspection endpoint, with its claims; the
// refresh token issued with it, kept in the same Redis, is inactive to the
// resource server.
func TestTwoIssuerInstancesOpaque(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls := startInstances(t, srv, 2, true)
	a, b := urls[0], urls[1]
	status, body := tokenRequest(t, a, url.Values{"grant_type": {codeGrant}, "subject": {"alice"}})
	at, rt := body["access_token"], body["refresh_token"]
	if status != http.StatusOK || len(at) != 43 || strings.Contains(at, ".") || rt == "" {
		t.Fatalf("grant at A: %d %v", status, body)
	}
	introspect := func(base, tok string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+issuer.IntrospectionPath, strings.NewReader(url.Values{"token": {tok}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", instanceSecret)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
			t.Fatalf("introspection at %s: %d", base, resp.StatusCode)
		}
		return m
	}
	for _, base := range []string{a, b} {
		m := introspect(base, at)
		if m["active"] != true || m["sub"] != "alice" || m["client_id"] != "app" || m["token_type"] != "Bearer" || m["scope"] != "read" {
			t.Fatalf("A's opaque token at %s: %v", base, m)
		}
	}
	if m := introspect(b, rt); m["active"] != false {
		t.Fatalf("the refresh token answered %v to the resource server", m)
	}
}
