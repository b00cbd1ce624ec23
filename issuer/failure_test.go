package issuer

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/trustedproxy"
)

// failingRegistry is a registry whose backend is down.
type failingRegistry struct{}

func (failingRegistry) Client(context.Context, string) (*Client, error) {
	return nil, errors.New("database unreachable")
}

// failingReplayStore is a replay store whose backend is down.
type failingReplayStore struct{}

func (failingReplayStore) CheckAndStore(context.Context, [32]byte, time.Time) (bool, error) {
	return false, errors.New("redis unreachable")
}

// brokenRefreshStore fails every call.
type brokenRefreshStore struct{}

func (brokenRefreshStore) Put(context.Context, [32]byte, RefreshRecord) error {
	return errors.New("down")
}
func (brokenRefreshStore) Get(context.Context, [32]byte) (*RefreshRecord, error) {
	return nil, errors.New("down")
}
func (brokenRefreshStore) Revoke(context.Context, string, time.Time) error {
	return errors.New("refresh store down")
}

func (brokenRefreshStore) Take(context.Context, [32]byte) (*RefreshRecord, error) {
	return nil, errors.New("down")
}

// laxRefreshStore keeps records past expiry: a valid RefreshStore that
// leaves the expiry decision to the token endpoint.
type laxRefreshStore struct{ recs map[[32]byte]RefreshRecord }

func (l *laxRefreshStore) Put(_ context.Context, id [32]byte, r RefreshRecord) error {
	l.recs[id] = r
	return nil
}

func (l *laxRefreshStore) Get(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	r, ok := l.recs[id]
	if !ok {
		return nil, ErrTokenNotFound
	}
	return &r, nil
}

func (l *laxRefreshStore) Revoke(context.Context, string, time.Time) error { return nil }

func (l *laxRefreshStore) Take(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	r, ok := l.recs[id]
	if !ok {
		return nil, ErrTokenNotFound
	}
	delete(l.recs, id)
	return &r, nil
}

func TestDependencyFailures(t *testing.T) {
	t.Parallel()
	cc := url.Values{"grant_type": {"client_credentials"}}
	t.Run("client registry down", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) { c.Clients = failingRegistry{} }})
		r := h.post(h.client(nil), h.tokenURL(), cc, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 503 || r.str("error") != "temporarily_unavailable" || strings.Contains(string(r.raw), "database") {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("replay store down fails closed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) { c.ReplayStore = failingReplayStore{} }})
		r := h.post(h.client(nil), h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(h.prover(nil), h.tokenURL(), "")})
		h.checkTokenResponse(r)
		if r.status != 503 || r.str("error") != "temporarily_unavailable" || strings.Contains(string(r.raw), "redis") {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("refresh store down", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) { c.RefreshTokens = brokenRefreshStore{} }})
		c := h.client(nil)
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"a"}}, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 503 || r.str("access_token") != "" {
			t.Fatalf("put: %d %s", r.status, r.raw)
		}
		r = h.post(c, h.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 503 {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
	})
	t.Run("expired record from a store that keeps it", func(t *testing.T) {
		t.Parallel()
		store := &laxRefreshStore{recs: map[[32]byte]RefreshRecord{}}
		h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) { c.RefreshTokens = store }})
		_ = store.Put(context.Background(), refreshID("old-token"), RefreshRecord{ClientID: "conf", Subject: "a", ExpiresAt: h.clock.Now().Add(-time.Second)})
		r := h.post(h.client(nil), h.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"old-token"}}, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

func TestGrantHandlerFailures(t *testing.T) {
	t.Parallel()
	handlers := map[string]GrantHandler{
		"urn:test:error": GrantHandlerFunc(func(context.Context, *GrantRequest) (*Grant, error) {
			return nil, errors.New("backend said " + attackMarker)
		}),
		"urn:test:nosubject": GrantHandlerFunc(func(context.Context, *GrantRequest) (*Grant, error) { return &Grant{}, nil }),
		"urn:test:nil":       GrantHandlerFunc(func(context.Context, *GrantRequest) (*Grant, error) { return nil, nil }),
		"urn:test:reserved": GrantHandlerFunc(func(context.Context, *GrantRequest) (*Grant, error) {
			return &Grant{Subject: "a", Claims: map[string]any{"cnf": map[string]string{"jkt": "attacker"}}}, nil
		}),
		"urn:test:scope": GrantHandlerFunc(func(context.Context, *GrantRequest) (*Grant, error) {
			return nil, GrantError(ErrInvalidScope, "scope not granted")
		}),
		"urn:test:params": GrantHandlerFunc(func(_ context.Context, req *GrantRequest) (*Grant, error) {
			if _, ok := req.Params["client_secret"]; ok || req.Params["grant_type"] != "urn:test:params" || req.Client.ID != "post-any" {
				return nil, GrantError(ErrInvalidGrant, "credentials leaked to the grant handler")
			}
			return &Grant{Subject: "a"}, nil
		}),
	}
	h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
		c.Grants = handlers
		reg, err := NewMemoryRegistry(
			Client{ID: "pub-cc", AuthMethod: AuthNone, GrantTypes: []string{GrantClientCredentials}},
			Client{ID: "post-any", AuthMethod: AuthSecretPost, SecretHash: HashSecret(confSecret), GrantTypes: []string{"urn:test:params"}},
			Client{ID: "any", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret), GrantTypes: []string{"urn:test:error", "urn:test:nosubject", "urn:test:nil", "urn:test:reserved", "urn:test:scope"}},
		)
		if err != nil {
			t.Fatal(err)
		}
		c.Clients = reg
	}})
	c := h.client(nil)
	tests := []struct {
		grant  string
		status int
		code   string
	}{
		{"urn:test:error", 500, "server_error"},
		{"urn:test:nosubject", 500, "server_error"},
		{"urn:test:nil", 500, "server_error"},
		{"urn:test:reserved", 500, "server_error"},
		{"urn:test:scope", 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.grant, func(t *testing.T) {
			r := h.post(c, h.tokenURL(), url.Values{"grant_type": {tt.grant}}, basic("any", confSecret))
			h.checkTokenResponse(r)
			if r.status != tt.status || r.str("error") != tt.code || strings.Contains(string(r.raw), "backend") {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	t.Run("grant handler sees no client secret", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"urn:test:params"}, "client_id": {"post-any"}, "client_secret": {confSecret}}, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("public client registered for client_credentials", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub-cc"}}, nil)
		h.checkTokenResponse(r)
		if r.status != 400 || r.str("error") != "unauthorized_client" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

func TestForwardedCertificate(t *testing.T) {
	t.Parallel()
	var h *harness
	h = newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
		loopback, err := trustedproxy.New(trustedproxy.Config{Peers: []string{"127.0.0.1/32", "::1/128"}})
		if err != nil {
			t.Fatal(err)
		}
		src, err := mtlsbound.NewSource(mtlsbound.SourceConfig{TrustedProxies: loopback})
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = src
	}})
	c := h.client(nil)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}
	t.Run("MTLS-CB-01 certificate from a trusted proxy", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), form, map[string]string{"Client-Cert": mtlsbound.FormatClientCertHeader(h.c1.Cert)})
		h.checkTokenResponse(r)
		if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["x5t#S256"] != mtlsbound.Thumbprint(h.c1.Cert) {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("malformed Client-Cert from a trusted proxy", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "Client-Cert": ":" + attackMarker + ":"})
		h.checkTokenResponse(r)
		if r.status != 400 || r.str("error") != "invalid_request" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	// A certificate on a trusted proxy's connection is the proxy's own
	// (upstream mTLS): the client's is the forwarded one, or none.
	t.Run("MTLS-CB-01 trusted proxy with its own certificate forwards the client's", func(t *testing.T) {
		r := h.post(h.client(h.c2), h.aliasTokenURL(), form, map[string]string{"Client-Cert": mtlsbound.FormatClientCertHeader(h.c1.Cert)})
		h.checkTokenResponse(r)
		if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["x5t#S256"] != mtlsbound.Thumbprint(h.c1.Cert) {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("a trusted proxy's own certificate is not the client's", func(t *testing.T) {
		r := h.post(h.client(h.c1), h.aliasTokenURL(), form, nil)
		h.checkTokenResponse(r)
		if r.str("error") != "invalid_client" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

// TestIntrospectionRefusesForeignTokens signs tokens with the issuer's own
// key but breaks one property each; none may introspect as active.
func TestIntrospectionRefusesForeignTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	kid := h.is.Keys().ActiveKeyID()
	now := h.clock.Now()
	good := map[string]any{"iss": h.is.ID(), "sub": "s", "aud": rsAudience, "client_id": "conf", "jti": "j",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	sign := func(t *testing.T, alg jose.SignatureAlgorithm, key crypto.Signer, hdr map[string]any, edit func(map[string]any)) string {
		t.Helper()
		claims := map[string]any{}
		for k, v := range good {
			claims[k] = v
		}
		edit(claims)
		opts := &jose.SignerOptions{}
		for k, v := range hdr {
			opts.WithHeader(jose.HeaderKey(k), v)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	std := map[string]any{"typ": "at+jwt", "kid": kid}
	none := func(map[string]any) {}
	tests := []struct {
		name string
		tok  func(t *testing.T) string
	}{
		{"control: well-formed", nil},
		{"typ JWT", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, map[string]any{"typ": "JWT", "kid": kid}, none)
		}},
		{"no typ", func(t *testing.T) string { return sign(t, jose.ES256, h.signer, map[string]any{"kid": kid}, none) }},
		{"unknown kid", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, map[string]any{"typ": "at+jwt", "kid": "other"}, none)
		}},
		{"other issuer", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, std, func(c map[string]any) { c["iss"] = h.is.ID() + "/" })
		}},
		{"no exp", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, std, func(c map[string]any) { delete(c, "exp") })
		}},
		{"no iat", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, std, func(c map[string]any) { delete(c, "iat") })
		}},
		{"not yet valid", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, std, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })
		}},
		{"expired", func(t *testing.T) string {
			return sign(t, jose.ES256, h.signer, std, func(c map[string]any) { c["exp"] = now.Unix() })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tok string
			if tt.tok == nil {
				tok = sign(t, jose.ES256, h.signer, std, none)
			} else {
				tok = tt.tok(t)
			}
			r := h.post(h.client(nil), h.srv.URL+IntrospectionPath, url.Values{"token": {tok}}, basic("rs", rsSecret))
			if tt.tok == nil {
				if r.body["active"] != true {
					t.Fatalf("control token inactive: %s", r.raw)
				}
				return
			}
			if r.status != http.StatusOK || string(r.raw) != `{"active":false}` {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
}

// assertion signs a private_key_jwt client assertion.
func assertion(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	now := h.clock.Now()
	jti := 0
	claims := func(edit func(map[string]any)) map[string]any {
		jti++
		m := map[string]any{"iss": "jwtc", "sub": "jwtc", "aud": h.tokenURL(), "jti": "jti-" + strings.Repeat("x", jti),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if edit != nil {
			edit(m)
		}
		return m
	}
	good := func(edit func(map[string]any)) string { return assertion(t, h.jwtKey, jose.ES256, "c1", claims(edit)) }
	form := func(a string, extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	replayed := good(nil)
	if r := h.post(c, h.tokenURL(), form(replayed), nil); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.raw)
	}
	hsKey := []byte(strings.Repeat("s", 32))
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hsKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hsRaw, err := jwt.Signed(hs).Claims(claims(nil)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	noneRaw := "eyJhbGciOiJub25lIiwia2lkIjoiYzEifQ." + strings.Split(good(nil), ".")[1] + "."
	tests := []struct {
		name   string
		form   url.Values
		hdr    map[string]string
		status int
		code   string
	}{
		{"valid, aud = token endpoint", form(good(nil)), nil, 200, ""},
		{"valid, aud = issuer, client_id given", form(good(func(m map[string]any) { m["aud"] = h.is.ID() }), "client_id", "jwtc"), nil, 200, ""},
		{"valid, aud array", form(good(func(m map[string]any) { m["aud"] = []string{"https://other.example", h.tokenURL()} })), nil, 200, ""},
		{"replayed jti", form(replayed), nil, 400, "invalid_client"},
		{"aud of another server", form(good(func(m map[string]any) { m["aud"] = "https://evil.example/token" })), nil, 400, "invalid_client"},
		{"aud = introspection endpoint", form(good(func(m map[string]any) { m["aud"] = h.srv.URL + IntrospectionPath })), nil, 400, "invalid_client"},
		{"expired", form(good(func(m map[string]any) { m["exp"] = now.Unix() })), nil, 400, "invalid_client"},
		{"lifetime too long", form(good(func(m map[string]any) { m["exp"] = now.Add(time.Hour).Unix() })), nil, 400, "invalid_client"},
		{"no exp", form(good(func(m map[string]any) { delete(m, "exp") })), nil, 400, "invalid_client"},
		{"no jti", form(good(func(m map[string]any) { delete(m, "jti") })), nil, 400, "invalid_client"},
		{"iat in the future", form(good(func(m map[string]any) { m["iat"] = now.Add(time.Minute).Unix() })), nil, 400, "invalid_client"},
		{"nbf in the future", form(good(func(m map[string]any) { m["nbf"] = now.Add(time.Minute).Unix() })), nil, 400, "invalid_client"},
		{"iss differs from sub", form(good(func(m map[string]any) { m["iss"] = "conf" })), nil, 400, "invalid_client"},
		{"sub of another client", form(good(func(m map[string]any) { m["sub"], m["iss"] = "conf", "conf" })), nil, 400, "invalid_client"},
		{"client_id differs from sub", form(good(nil), "client_id", "conf"), nil, 400, "invalid_client"},
		{"sub differs from the authenticated client", form(good(func(m map[string]any) { m["sub"] = "conf" }), "client_id", "jwtc"), nil, 400, "invalid_client"},
		{"signed by another key", form(assertion(t, newES256(t), jose.ES256, "c1", claims(nil))), nil, 400, "invalid_client"},
		{"unknown kid", form(assertion(t, h.jwtKey, jose.ES256, "c2", claims(nil))), nil, 400, "invalid_client"},
		{"HS256", form(hsRaw), nil, 400, "invalid_client"},
		{"alg none", form(noneRaw), nil, 400, "invalid_client"},
		{"garbage", form(attackMarker), nil, 400, "invalid_client"},
		{"wrong assertion type", form(good(nil), "client_assertion_type", "urn:example:saml"), nil, 400, "invalid_client"},
		{"assertion and Basic", form(good(nil)), basic("conf", confSecret), 400, "invalid_request"},
		{"assertion and client_secret", form(good(nil), "client_id", "jwtc", "client_secret", "x"), nil, 400, "invalid_request"},
		{"MTLS-CA-16 secret client with an assertion", form(good(func(m map[string]any) { m["iss"], m["sub"] = "conf", "conf" })), nil, 400, "invalid_client"},
		{"assertion client with Basic", url.Values{"grant_type": {"client_credentials"}}, basic("jwtc", "guess"), 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(c, h.tokenURL(), tt.form, tt.hdr)
			h.checkTokenResponse(r)
			if r.status != tt.status || r.str("error") != tt.code {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	t.Run("MTLS-CA-15 alias endpoint URL as aud", func(t *testing.T) {
		r := h.post(c, h.aliasTokenURL(), form(good(func(m map[string]any) { m["aud"] = h.aliasTokenURL() })), nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("introspection with private_key_jwt", func(t *testing.T) {
		tok := h.post(c, h.tokenURL(), form(good(nil)), nil).str("access_token")
		intro := url.Values{"token": {tok}, "client_assertion_type": {ClientAssertionType},
			"client_assertion": {good(func(m map[string]any) { m["aud"] = h.srv.URL + IntrospectionPath })}}
		if r := h.post(c, h.srv.URL+IntrospectionPath, intro, nil); r.body["active"] != true {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		intro.Set("client_assertion", good(nil)) // aud = token endpoint
		if r := h.post(c, h.srv.URL+IntrospectionPath, intro, nil); r.status != 401 {
			t.Fatalf("token-endpoint assertion at introspection: %d %s", r.status, r.raw)
		}
	})
	t.Run("replay store down", func(t *testing.T) {
		h2 := newHarness(t, harnessOpts{edit: func(c *ServerConfig) { c.ReplayStore = failingReplayStore{} }})
		a := assertion(t, h2.jwtKey, jose.ES256, "c1", map[string]any{"iss": "jwtc", "sub": "jwtc", "aud": h2.tokenURL(), "jti": "j", "exp": h2.clock.Now().Add(time.Minute).Unix()})
		r := h2.post(h2.client(nil), h2.tokenURL(), form(a), nil)
		if r.status != 503 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

func TestClientJWKSValidation(t *testing.T) {
	t.Parallel()
	k := newES256(t)
	for name, set := range map[string]*jose.JSONWebKeySet{
		"none":        nil,
		"empty":       {},
		"private key": {Keys: []jose.JSONWebKey{{Key: k, KeyID: "a"}}},
		"symmetric":   {Keys: []jose.JSONWebKey{{Key: []byte(strings.Repeat("k", 32)), KeyID: "a"}}},
	} {
		if _, err := NewMemoryRegistry(Client{ID: "x", AuthMethod: AuthPrivateKeyJWT, JWKS: set}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewMemoryRegistry(Client{ID: "x", AuthMethod: AuthNone, JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public()}}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("JWKS on a public client: %v", err)
	}
	is := newTestIssuer(t, SigningKey{Signer: k}, nil)
	reg, _ := NewMemoryRegistry()
	if _, err := NewServer(ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, ClientAssertionAlgorithms: []string{"HS256"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("HS256 assertions: %v", err)
	}
}
