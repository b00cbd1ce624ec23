package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

const (
	testSecret   = "example-secret-0123456789abcdefghijklmnop"
	testRedirect = "https://app.example.test/callback"
)

// testClock is a settable clock for code expiry.
type testClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}

// testServer runs the example behind real TLS on loopback, with an https
// issuer, and a resource server that trusts it. wrap, when set, wraps the
// example's handler (to build broken variants).
type testServer struct {
	as, rs *httptest.Server
	key    *ecdsa.PrivateKey
	clock  *testClock
	client *flowClient
}

func newTestServer(t *testing.T, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	key := newKey(t)
	ts := &testServer{key: key, clock: &testClock{}}
	ts.as = httptest.NewUnstartedServer(nil)
	base := "https://" + ts.as.Listener.Addr().String()
	h, err := newServer(config{Issuer: base, Key: key, Secret: testSecret, RedirectURI: testRedirect, User: "alice", Now: ts.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	ts.as.Config.Handler = h
	ts.as.StartTLS()
	t.Cleanup(ts.as.Close)
	hc := ts.as.Client()
	t.Cleanup(hc.CloseIdleConnections)
	ts.client = &flowClient{Server: base, ClientID: clientID, Secret: testSecret, RedirectURI: testRedirect, HTTP: hc, Now: ts.clock.now}

	// The resource server, on its own TLS listener: the same certificate
	// authority as httptest's, so one client trusts both.
	ts.rs = httptest.NewUnstartedServer(nil)
	keys, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: base, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(), Audience: audience, PublicURL: "https://" + ts.rs.Listener.Addr().String(),
		Issuers: []resource.Issuer{{Identifier: base, Keys: keys}},
		DPoP:    &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: replay},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.rs.Config.Handler = v.Middleware(resource.Policy{Scopes: []string{"read"}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.PrincipalFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": p.Subject, "binding": string(p.Binding)})
	}))
	ts.rs.StartTLS()
	t.Cleanup(ts.rs.Close)
	return ts
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jkt(t testing.TB, k crypto.Signer) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// claims verifies an access token with the issuer's key.
func (ts *testServer) claims(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := tok.Claims(ts.key.Public(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNewServerConfig: a short client secret is refused.
func TestNewServerConfig(t *testing.T) {
	t.Parallel()
	if _, err := newServer(config{Issuer: "https://as.example.test", Key: newKey(t), Secret: "short", RedirectURI: testRedirect}); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := newServer(config{Issuer: "http://as.example.test", Key: newKey(t), Secret: testSecret, RedirectURI: testRedirect}); err == nil {
		t.Fatal("plain http issuer accepted for a public host")
	}
}

// TestFlowEndToEnd drives the example over real TLS: the code is bound by a
// PAR proof, a PAR dpop_jkt or a query dpop_jkt (RFC 9449 §10, §10.1;
// DPOP-AS-22..25), redeemed with the same key (200, cnf.jkt, accepted by
// the resource) or another (400 invalid_grant), or left unbound.
func TestFlowEndToEnd(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		opts   func(k1 crypto.Signer) flowOptions
		bound  bool
		redeem string // "same", "other", "none"
		status int
		code   string
	}{
		{"PAR with proof, same key", func(crypto.Signer) flowOptions { return flowOptions{PAR: true, Proof: true} }, true, "same", 200, ""},
		{"PAR with proof, other key", func(crypto.Signer) flowOptions { return flowOptions{PAR: true, Proof: true} }, true, "other", 400, "invalid_grant"},
		{"PAR with proof, no proof at the token endpoint", func(crypto.Signer) flowOptions { return flowOptions{PAR: true, Proof: true} }, true, "none", 400, "invalid_grant"},
		{"PAR with dpop_jkt, same key", func(k crypto.Signer) flowOptions { return flowOptions{PAR: true, JKT: jkt(t, k)} }, true, "same", 200, ""},
		{"PAR with dpop_jkt, other key", func(k crypto.Signer) flowOptions { return flowOptions{PAR: true, JKT: jkt(t, k)} }, true, "other", 400, "invalid_grant"},
		{"query dpop_jkt, same key", func(k crypto.Signer) flowOptions { return flowOptions{JKT: jkt(t, k)} }, true, "same", 200, ""},
		{"query dpop_jkt, other key", func(k crypto.Signer) flowOptions { return flowOptions{JKT: jkt(t, k)} }, true, "other", 400, "invalid_grant"},
		{"unbound code, any key", func(crypto.Signer) flowOptions { return flowOptions{} }, false, "other", 200, ""},
		{"unbound PAR, any key", func(crypto.Signer) flowOptions { return flowOptions{PAR: true} }, false, "other", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k1, k2 := newKey(t), newKey(t)
			o := tt.opts(k1)
			verifier := oauth2.GenerateVerifier()
			params := ts.client.authorizationParams(verifier)
			if o.JKT != "" {
				params.Set(issuer.ParamDPoPJKT, o.JKT)
			}
			if o.PAR {
				var pk crypto.Signer
				if o.Proof {
					pk = k1
				}
				status, body, err := ts.client.push(ctx, params, pk)
				if err != nil || status != 201 {
					t.Fatalf("PAR: %d %v %v", status, body, err)
				}
				params = url.Values{"client_id": {clientID}, "request_uri": {body["request_uri"].(string)}}
			}
			code, err := ts.client.authorize(ctx, params)
			if err != nil || code == "" {
				t.Fatalf("authorize: %q %v", code, err)
			}
			var key crypto.Signer
			switch tt.redeem {
			case "same":
				key = k1
			case "other":
				key = k2
			}
			tok, err := ts.client.token(ctx, code, verifier, key)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Status != tt.status || tok.Error != tt.code {
				t.Fatalf("token: %d %q, want %d %q", tok.Status, tok.Error, tt.status, tt.code)
			}
			if tt.status != 200 {
				return
			}
			c := ts.claims(t, tok.AccessToken)
			cnf, _ := c["cnf"].(map[string]any)
			if tok.TokenType != "DPoP" || cnf["jkt"] != jkt(t, key) || c["sub"] != "alice" || c["scope"] != "read" {
				t.Fatalf("token %s with claims %v", tok.TokenType, c)
			}
			body, err := ts.client.call(ctx, key, ts.rs.URL, tok.AccessToken)
			if err != nil || !strings.Contains(string(body), `"binding":"dpop"`) {
				t.Fatalf("resource: %s %v", body, err)
			}
		})
	}
}

// TestFlowRefusals: PKCE (S256 only, verifier checked), exact
// redirect_uri, single-use short-lived codes and request_uri values, and
// malformed dpop_jkt values, each refused where RFC 6749, RFC 7636,
// RFC 9126 and RFC 9449 §10 say.
func TestFlowRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	ctx := context.Background()
	c := ts.client
	// authorizeWith edits a fresh plain authorization request.
	authorizeWith := func(edit func(url.Values)) (string, string, error) {
		v := oauth2.GenerateVerifier()
		p := c.authorizationParams(v)
		edit(p)
		code, err := c.authorize(ctx, p)
		return code, v, err
	}
	redirectErr := func(want string) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			var re *redirectError
			if !errors.As(err, &re) || re.Code != want {
				t.Fatalf("got %v, want a redirect with error %s", err, want)
			}
		}
	}
	noRedirect := func(t *testing.T, err error) {
		if err == nil || !strings.Contains(err.Error(), "answered 400") {
			t.Fatalf("got %v, want 400 without a redirect", err)
		}
	}
	authzCases := []struct {
		name  string
		edit  func(url.Values)
		check func(*testing.T, error)
	}{
		{"PKCE plain", func(p url.Values) { p.Set("code_challenge_method", "plain") }, redirectErr("invalid_request")},
		{"PKCE method missing", func(p url.Values) { p.Del("code_challenge_method") }, redirectErr("invalid_request")},
		{"PKCE challenge missing", func(p url.Values) { p.Del("code_challenge") }, redirectErr("invalid_request")},
		{"PKCE challenge too short", func(p url.Values) { p.Set("code_challenge", "abc") }, redirectErr("invalid_request")},
		{"response_type token", func(p url.Values) { p.Set("response_type", "token") }, redirectErr("unsupported_response_type")},
		{"scope not allowed", func(p url.Values) { p.Set("scope", "admin") }, redirectErr("invalid_scope")},
		{"dpop_jkt malformed", func(p url.Values) { p.Set("dpop_jkt", "not-a-thumbprint") }, redirectErr("invalid_request")},
		{"dpop_jkt repeated", func(p url.Values) { p["dpop_jkt"] = []string{jkt(t, ts.key), jkt(t, ts.key)} }, redirectErr("invalid_request")},
		{"redirect_uri of another site", func(p url.Values) { p.Set("redirect_uri", "https://attacker.example/cb") }, noRedirect},
		{"redirect_uri with a suffix", func(p url.Values) { p.Set("redirect_uri", testRedirect+"/x") }, noRedirect},
		{"unknown client", func(p url.Values) { p.Set("client_id", "other") }, noRedirect},
		{"unknown request_uri", func(p url.Values) { p.Set("request_uri", issuer.RequestURIPrefix+"x") }, noRedirect},
	}
	for _, tt := range authzCases {
		t.Run("authorize/"+tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := authorizeWith(tt.edit)
			tt.check(t, err)
		})
	}

	k1 := newKey(t)
	tokenCases := []struct {
		name   string
		redeem func(t *testing.T, code, verifier string) *tokenAnswer
		status int
		code   string
	}{
		{"wrong code_verifier", func(t *testing.T, code, _ string) *tokenAnswer {
			return mustToken(t, c, code, oauth2.GenerateVerifier(), k1)
		}, 400, "invalid_grant"},
		{"no code_verifier", func(t *testing.T, code, _ string) *tokenAnswer { return mustToken(t, c, code, "", k1) }, 400, "invalid_grant"},
		{"challenge as verifier", func(t *testing.T, code, v string) *tokenAnswer {
			return mustToken(t, c, code, oauth2.S256ChallengeFromVerifier(v), k1)
		}, 400, "invalid_grant"},
		{"code reused", func(t *testing.T, code, v string) *tokenAnswer {
			if tok := mustToken(t, c, code, v, k1); tok.Status != 200 {
				t.Fatalf("first use: %d %s", tok.Status, tok.Error)
			}
			return mustToken(t, c, code, v, k1)
		}, 400, "invalid_grant"},
		{"code spent by a failed attempt", func(t *testing.T, code, v string) *tokenAnswer {
			mustToken(t, c, code, "wrong-"+v, k1)
			return mustToken(t, c, code, v, k1)
		}, 400, "invalid_grant"},
		{"other redirect_uri", func(t *testing.T, code, v string) *tokenAnswer {
			other := *c
			other.RedirectURI = testRedirect + "/x"
			return mustToken(t, &other, code, v, k1)
		}, 400, "invalid_grant"},
		{"unknown code", func(t *testing.T, _, v string) *tokenAnswer { return mustToken(t, c, "AAAA", v, k1) }, 400, "invalid_grant"},
		{"wrong client secret", func(t *testing.T, code, v string) *tokenAnswer {
			other := *c
			other.Secret = "wrong-" + testSecret
			return mustToken(t, &other, code, v, k1)
		}, 401, "invalid_client"},
		{"no DPoP proof for a DPoP-bound client", func(t *testing.T, code, v string) *tokenAnswer { return mustToken(t, c, code, v, nil) }, 400, "invalid_dpop_proof"},
	}
	for _, tt := range tokenCases {
		t.Run("token/"+tt.name, func(t *testing.T) {
			t.Parallel()
			code, v, err := authorizeWith(func(url.Values) {})
			if err != nil {
				t.Fatal(err)
			}
			tok := tt.redeem(t, code, v)
			if tok.Status != tt.status || tok.Error != tt.code {
				t.Fatalf("got %d %q, want %d %q", tok.Status, tok.Error, tt.status, tt.code)
			}
		})
	}

	parCases := []struct {
		name, code string
		edit       func(url.Values)
	}{
		{"unregistered redirect_uri", "invalid_request", func(p url.Values) { p.Set("redirect_uri", "https://attacker.example/cb") }},
		{"PKCE plain", "invalid_request", func(p url.Values) { p.Set("code_challenge_method", "plain") }},
		{"scope not allowed", "invalid_scope", func(p url.Values) { p.Set("scope", "admin") }},
		{"response_type token", "invalid_request", func(p url.Values) { p.Set("response_type", "token") }},
		{"dpop_jkt malformed", "invalid_request", func(p url.Values) { p.Set("dpop_jkt", "x") }},
		{"request_uri pushed", "invalid_request", func(p url.Values) { p.Set("request_uri", issuer.RequestURIPrefix+"x") }},
	}
	for _, tt := range parCases {
		t.Run("PAR/"+tt.name, func(t *testing.T) {
			t.Parallel()
			p := c.authorizationParams(oauth2.GenerateVerifier())
			tt.edit(p)
			status, body, err := c.push(ctx, p, newKey(t))
			if err != nil || status != 400 || body["error"] != tt.code {
				t.Fatalf("got %d %v %v, want 400 %s", status, body, err, tt.code)
			}
		})
	}

	t.Run("request_uri used twice", func(t *testing.T) {
		t.Parallel()
		status, body, err := c.push(ctx, c.authorizationParams(oauth2.GenerateVerifier()), nil)
		if err != nil || status != 201 {
			t.Fatalf("PAR: %d %v", status, err)
		}
		p := url.Values{"client_id": {clientID}, "request_uri": {body["request_uri"].(string)}}
		if _, err := c.authorize(ctx, p); err != nil {
			t.Fatal(err)
		}
		_, err = c.authorize(ctx, p)
		noRedirect(t, err)
	})
}

// TestCodeExpiry: a code older than a minute is refused (the clock is
// shared, so this test runs alone).
func TestCodeExpiry(t *testing.T) {
	ts := newTestServer(t, nil)
	v := oauth2.GenerateVerifier()
	code, err := ts.client.authorize(context.Background(), ts.client.authorizationParams(v))
	if err != nil {
		t.Fatal(err)
	}
	ts.clock.advance(codeLifetime + time.Second)
	if tok := mustToken(t, ts.client, code, v, newKey(t)); tok.Status != 400 || tok.Error != "invalid_grant" {
		t.Fatalf("expired code: %d %q", tok.Status, tok.Error)
	}
}

// TestClientCommand: the client subcommand's flow reaches the resource
// with a DPoP-bound token.
func TestClientCommand(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	k := newKey(t)
	tok, err := ts.client.run(context.Background(), k, flowOptions{PAR: true, Proof: true})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ts.client.call(context.Background(), k, ts.rs.URL, tok)
	if err != nil || !strings.Contains(string(body), `"binding":"dpop"`) {
		t.Fatalf("%s %v", body, err)
	}
}

func mustToken(t *testing.T, c *flowClient, code, verifier string, key crypto.Signer) *tokenAnswer {
	t.Helper()
	tok, err := c.token(context.Background(), code, verifier, key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
