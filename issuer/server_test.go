package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

const (
	confSecret   = "conf-secret-7c1f2d8e9a0b4c3d5e6f"
	postSecret   = "post-secret-1a2b3c4d5e6f7a8b9c0d"
	dpopSecret   = "dpop-secret-0f1e2d3c4b5a69788796"
	boundSecret  = "bound-secret-a1b2c3d4e5f60718293a"
	rsSecret     = "rs-secret-99887766554433221100aa"
	testGrant    = "urn:example:params:oauth:grant-type:test"
	rsAudience   = "https://rs.example.test/resource"
	rs2Audience  = "https://rs2.example.test/resource"
	attackMarker = "ATTACKER<script>\"'"
)

// harness runs a Server behind two real TLS listeners on loopback: the
// conventional endpoint and its mTLS alias. Both request (but do not
// require) client certificates, as mtlsbound.ServerTLSConfig does.
type harness struct {
	t          testing.TB
	clock      *fixedClock
	signer     crypto.Signer
	is         *Issuer
	server     *Server
	srv, alias *httptest.Server
	ca, ca2    *certs.CA
	c1, c2     *certs.Leaf   // from ca: c1 registered for client "pki"
	c1ca2      *certs.Leaf   // c1's DNS name, from ca2 (not trusted for "pki")
	c1int      *certs.Leaf   // c1's DNS name, from an intermediate of ca
	s1, s2     *certs.Leaf   // self-signed: s1 registered for "selfsigned"
	jwtKey     crypto.Signer // signs "jwtc"'s private_key_jwt assertions (kid c1)
}

type harnessOpts struct {
	realClock  bool // the issuer reads time.Now instead of the fixed clock
	nonces     bool
	algorithms []string
	edit       func(*ServerConfig)
	// accessTokens, when set, makes the issuer mint opaque access tokens
	// kept in it.
	accessTokens RefreshStore
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, clock: &fixedClock{t: time.Now().Truncate(time.Second)}, signer: newES256(t), jwtKey: newES256(t)}
	var err error
	if h.ca, err = certs.NewCA(certs.Options{CommonName: "Test CA"}); err != nil {
		t.Fatal(err)
	}
	if h.ca2, err = certs.NewCA(certs.Options{CommonName: "Other CA"}); err != nil {
		t.Fatal(err)
	}
	issue := func(ca *certs.CA, dns string) *certs.Leaf {
		l, err := ca.Issue(certs.Options{CommonName: dns, DNSNames: []string{dns}, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	h.c1, h.c2, h.c1ca2 = issue(h.ca, "client1.example.test"), issue(h.ca, "client2.example.test"), issue(h.ca2, "client1.example.test")
	inter, err := h.ca.NewIntermediate(certs.Options{CommonName: "Test Intermediate"})
	if err != nil {
		t.Fatal(err)
	}
	h.c1int = issue(inter, "client1.example.test")
	for _, p := range []**certs.Leaf{&h.s1, &h.s2} {
		if *p, err = certs.SelfSigned(certs.Options{CommonName: "self", Client: true}); err != nil {
			t.Fatal(err)
		}
	}

	newTLS := func() *httptest.Server {
		s := httptest.NewUnstartedServer(nil)
		s.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
		return s
	}
	h.srv, h.alias = newTLS(), newTLS()
	base := "https://" + h.srv.Listener.Addr().String()
	aliasBase := "https://" + h.alias.Listener.Addr().String()

	ks, err := NewKeySet(SigningKey{Signer: h.signer})
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now
	if o.realClock {
		now = nil
	}
	icfg := Config{Issuer: base, Keys: ks, Audience: []string{rsAudience}, Now: now}
	if o.accessTokens != nil {
		icfg.AccessTokenFormat, icfg.AccessTokens = FormatOpaque, o.accessTokens
	}
	h.is, err = New(icfg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewMemoryRegistry(
		Client{ID: "conf", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret), Introspect: true, Scopes: []string{"read", "write"},
			Audiences: []string{rsAudience, rs2Audience}, GrantTypes: []string{GrantClientCredentials, GrantRefreshToken, testGrant}},
		Client{ID: "post", AuthMethod: AuthSecretPost, SecretHash: HashSecret(postSecret), Scopes: []string{"read"}},
		Client{ID: "dpop-only", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(dpopSecret), DPoPBoundAccessTokens: true},
		Client{ID: "cert-bound", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(boundSecret), TLSClientCertificateBoundAccessTokens: true},
		Client{ID: "pki", AuthMethod: AuthTLSClient, Introspect: true, Certificate: mtlsbound.PKIAuth{Roots: h.ca.Pool(), SANDNS: "client1.example.test"},
			Scopes: []string{"read"}, GrantTypes: []string{GrantClientCredentials, GrantRefreshToken, testGrant}},
		Client{ID: "selfsigned", AuthMethod: AuthSelfSignedTLSClient, Certificate: SelfSigned(mtlsbound.SelfSignedAuth{Certificates: []*x509.Certificate{h.s1.Cert}}.Authenticate), Scopes: []string{"read"}},
		Client{ID: "public", AuthMethod: AuthNone, Scopes: []string{"read", "write"}},
		Client{ID: "jwtc", AuthMethod: AuthPrivateKeyJWT, Introspect: true, Scopes: []string{"read"},
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: h.jwtKey.Public(), KeyID: "c1", Algorithm: "ES256", Use: "sig"}}}},
		Client{ID: "s6BhdRkqt", AuthMethod: AuthNone},
		Client{ID: "rs", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(rsSecret), Introspect: true, IntrospectAll: true},
		Client{ID: "rs2", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(rsSecret), Introspect: true, Audiences: []string{rs2Audience}},
		Client{ID: "peer", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(rsSecret), Introspect: true, Scopes: []string{"read"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{ReplayStore: testReplay(t, h.is),
		Issuer: h.is, Clients: reg, MTLSBaseURL: aliasBase, DPoPAlgorithms: o.algorithms,
		Grants:        map[string]GrantHandler{testGrant: GrantHandlerFunc(testGrantHandler)},
		RefreshTokens: NewMemoryRefreshStore(h.clock.Now),
	}
	if o.nonces {
		n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{[]byte(strings.Repeat("k", 32))}, Label: base, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Nonces = n
	}
	if o.edit != nil {
		o.edit(&cfg)
	}
	h.server, err = NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = h.server.Handler()
	h.alias.Config.Handler = h.server.Handler()
	h.srv.StartTLS()
	h.alias.StartTLS()
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.alias.Close)
	return h
}

// testGrantHandler stands for an embedding server's own grant (for example
// authorization_code): "subject" names the user, "dpop_jkt" replays the
// authorization request's binding (RFC 9449 §10), and it asks for a refresh
// token.
func testGrantHandler(_ context.Context, req *GrantRequest) (*Grant, error) {
	sub := req.Params["subject"]
	if sub == "" {
		return nil, GrantError(ErrInvalidGrant, "unknown grant")
	}
	return &Grant{Subject: sub, Scope: req.Params["scope"], DPoPJKT: req.Params["dpop_jkt"], RefreshToken: true}, nil
}

// client returns an HTTP client trusting the test servers and presenting
// leaf (nil for none).
func (h *harness) client(leaf *certs.Leaf) *http.Client {
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs.AddCert(h.alias.Certificate())
	if leaf != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{leaf.TLSCertificate()}
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (h *harness) prover(key crypto.Signer) *dpop.Prover {
	h.t.Helper()
	if key == nil {
		key = newES256(h.t)
	}
	p, err := dpop.NewProver(key, &dpop.ProverOptions{Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) proof(p *dpop.Prover, target, nonce string) string {
	h.t.Helper()
	s, err := p.Proof(http.MethodPost, target, dpop.ProofOptions{Nonce: nonce})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

type result struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

// post sends form to target with the given extra headers.
func (h *harness) post(c *http.Client, target string, form url.Values, hdr map[string]string) result {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.do(c, req)
}

func (h *harness) do(c *http.Client, req *http.Request) result {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := result{status: resp.StatusCode, header: resp.Header, raw: raw, body: map[string]any{}}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			h.t.Fatalf("response is not JSON: %q", raw)
		}
	}
	return r
}

func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": formatBasic(id, secret)}
}

func (h *harness) tokenURL() string { return h.server.TokenURL() }
func (h *harness) aliasTokenURL() string {
	return "https://" + h.alias.Listener.Addr().String() + TokenPath
}

// checkTokenResponse asserts the invariants every token endpoint response
// must meet: no-store (DPOP-AS-27, ERR-19), at most one DPoP-Nonce
// (DPOP-AS-17) of NQCHARs (DPOP-AS-18), the RFC 6749 §5.2 shape on errors,
// token_type DPoP exactly when the token has cnf.jkt (DPOP-AS-09), and no
// attacker marker echoed.
func (h *harness) checkTokenResponse(r result) {
	h.t.Helper()
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		h.t.Errorf("DPOP-AS-27/ERR-19: Cache-Control = %q", cc)
	}
	if n := r.header.Values("DPoP-Nonce"); len(n) > 1 {
		h.t.Errorf("DPOP-AS-17: %d DPoP-Nonce fields", len(n))
	} else if len(n) == 1 && !regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`).MatchString(n[0]) {
		h.t.Errorf("DPOP-AS-18: nonce %q", n[0])
	}
	if strings.Contains(string(r.raw), "ATTACKER") {
		h.t.Errorf("response echoes request input: %s", r.raw)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		h.t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
	}
	if r.status != http.StatusOK {
		if r.str("error") == "" {
			h.t.Errorf("ERR-19: error response without error member: %s", r.raw)
		}
		return
	}
	claims := h.verify(r.str("access_token"))
	cnf, _ := claims["cnf"].(map[string]any)
	_, hasJKT := cnf["jkt"]
	if (r.str("token_type") == "DPoP") != hasJKT {
		h.t.Errorf("DPOP-AS-09: token_type %q with cnf %v", r.str("token_type"), cnf)
	}
}

// verify checks an access token's signature through the JWKS endpoint over
// HTTP and returns its claims (ATV-01, ATV-03, ATV-04).
func (h *harness) verify(raw string) map[string]any {
	h.t.Helper()
	res := h.do(h.client(nil), mustGet(h.t, h.srv.URL+JWKSPath))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(res.raw, &set); err != nil {
		h.t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		h.t.Fatalf("ATV-01: %v", err)
	}
	if tok.Headers[0].ExtraHeaders["typ"] != "at+jwt" {
		h.t.Errorf("ATV-03: typ %v", tok.Headers[0].ExtraHeaders["typ"])
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		h.t.Fatalf("ATV-01: kid %q not in JWKS", tok.Headers[0].KeyID)
	}
	claims := map[string]any{}
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		h.t.Fatalf("ATV-01: %v", err)
	}
	for _, c := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
		if _, ok := claims[c]; !ok {
			h.t.Errorf("ATV-04: claim %s missing", c)
		}
	}
	return claims
}

func mustGet(t testing.TB, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func cnfOf(claims map[string]any) map[string]any {
	c, _ := claims["cnf"].(map[string]any)
	return c
}

func TestTokenEndpointDPoP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	cc := url.Values{"grant_type": {"client_credentials"}}

	t.Run("DPOP-AS-01/client_credentials via dpop.Transport", func(t *testing.T) {
		p := h.prover(nil)
		tc := &http.Client{Transport: &dpop.Transport{Base: c.Transport, Prover: p}}
		r := h.post(tc, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("status %d body %s", r.status, r.raw)
		}
		claims := h.verify(r.str("access_token"))
		if cnfOf(claims)["jkt"] != p.Thumbprint() {
			t.Fatalf("DPOP-AS-05: cnf = %v, want jkt %s", claims["cnf"], p.Thumbprint())
		}
		if claims["scope"] != "read" || r.str("scope") != "read" {
			t.Fatalf("ATV-05: scope %v", claims["scope"])
		}
		if claims["sub"] != "conf" || claims["client_id"] != "conf" || claims["aud"] != rsAudience || claims["iss"] != h.is.ID() {
			t.Fatalf("claims %v", claims)
		}
		if exp := r.body["expires_in"].(float64); exp <= 0 || exp > 3600 {
			t.Fatalf("DPOP-AS-28: expires_in %v", exp)
		}
	})

	t.Run("DPOP-AS-02/DPOP-AS-03 invalid proofs", func(t *testing.T) {
		p := h.prover(nil)
		good := func(target string) string { return h.proof(p, target, "") }
		flip := func(s string) string {
			b := []byte(s)
			i := strings.LastIndexByte(s, '.') + 5
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		past := &fixedClock{t: h.clock.Now().Add(-10 * time.Minute)}
		staleP, err := dpop.NewProver(newES256(t), &dpop.ProverOptions{Now: past.Now})
		if err != nil {
			t.Fatal(err)
		}
		typJWT := forgeProof(t, map[string]any{"typ": "JWT"}, map[string]any{"htm": "POST", "htu": h.tokenURL(), "iat": h.clock.Now().Unix(), "jti": "x1"})
		noJWK := forgeProof(t, map[string]any{"typ": "dpop+jwt", "omit_jwk": true}, map[string]any{"htm": "POST", "htu": h.tokenURL(), "iat": h.clock.Now().Unix(), "jti": "x2"})
		stalePr, err := staleP.Proof(http.MethodPost, h.tokenURL(), dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		replayed := good(h.tokenURL())
		if r := h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": replayed}); r.status != 200 {
			t.Fatalf("first use of proof: %d %s", r.status, r.raw)
		}
		tests := []struct {
			name, proof, target string
		}{
			{"bad signature", flip(good(h.tokenURL())), h.tokenURL()},
			{"htu of the resource server", good(rsAudience), h.tokenURL()},
			{"htu of another endpoint", good(h.srv.URL + "/par"), h.tokenURL()},
			{"alias htu at the conventional endpoint", good(h.aliasTokenURL()), h.tokenURL()},
			{"conventional htu at the alias", good(h.tokenURL()), h.aliasTokenURL()},
			{"typ JWT", typJWT, h.tokenURL()},
			{"no jwk", noJWK, h.tokenURL()},
			{"stale iat", stalePr, h.tokenURL()},
			{"replayed proof", replayed, h.tokenURL()},
			{"not a JWS", "x", h.tokenURL()},
			{"attacker text", attackMarker, h.tokenURL()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.post(c, tt.target, cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": tt.proof})
				h.checkTokenResponse(r)
				if r.status != 400 || r.str("error") != "invalid_dpop_proof" {
					t.Fatalf("status %d body %s", r.status, r.raw)
				}
			})
		}
		t.Run("two DPoP headers", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(cc.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", formatBasic("conf", confSecret))
			req.Header.Add("DPoP", good(h.tokenURL()))
			req.Header.Add("DPoP", good(h.tokenURL()))
			r := h.do(c, req)
			h.checkTokenResponse(r)
			if r.status != 400 || r.str("error") != "invalid_dpop_proof" {
				t.Fatalf("status %d body %s", r.status, r.raw)
			}
		})
	})

	t.Run("DPOP-AS-03/alias endpoint with alias htu", func(t *testing.T) {
		p := h.prover(nil)
		r := h.post(h.client(h.c1), h.aliasTokenURL(), cc, map[string]string{"DPoP": h.proof(p, h.aliasTokenURL(), ""), "Authorization": formatBasic("conf", confSecret)})
		h.checkTokenResponse(r)
		if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["jkt"] != p.Thumbprint() {
			t.Fatalf("status %d body %s", r.status, r.raw)
		}
	})

	t.Run("DPOP-AS-11/dpop_bound_access_tokens", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), cc, basic("dpop-only", dpopSecret))
		h.checkTokenResponse(r)
		if r.status != 400 || r.str("error") != "invalid_dpop_proof" {
			t.Fatalf("flagged client without proof: %d %s", r.status, r.raw)
		}
		// Even with a client certificate it never gets a certificate-bound token.
		r = h.post(h.client(h.c1), h.aliasTokenURL(), cc, basic("dpop-only", dpopSecret))
		if r.status != 400 {
			t.Fatalf("flagged client with certificate: %d %s", r.status, r.raw)
		}
		p := h.prover(nil)
		r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("dpop-only", dpopSecret), "DPoP": h.proof(p, h.tokenURL(), "")})
		if r.status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("flagged client with proof: %d %s", r.status, r.raw)
		}
		r = h.post(c, h.tokenURL(), cc, basic("conf", confSecret))
		h.checkTokenResponse(r)
		if r.status != 200 || r.str("token_type") != "Bearer" || cnfOf(h.verify(r.str("access_token"))) != nil {
			t.Fatalf("unflagged client without proof: %d %s", r.status, r.raw)
		}
	})

	t.Run("DPOP-AS-29/DPoP does not authenticate the client", func(t *testing.T) {
		p := h.prover(nil)
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"conf"}}, map[string]string{"DPoP": h.proof(p, h.tokenURL(), "")})
		h.checkTokenResponse(r)
		if r.str("error") != "invalid_client" {
			t.Fatalf("status %d body %s", r.status, r.raw)
		}
		// mTLS client authentication plus a proof: the token is DPoP-bound.
		r = h.post(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, map[string]string{"DPoP": h.proof(p, h.aliasTokenURL(), "")})
		h.checkTokenResponse(r)
		if r.status != 200 || r.str("token_type") != "DPoP" || cnfOf(h.verify(r.str("access_token")))["jkt"] != p.Thumbprint() {
			t.Fatalf("status %d body %s", r.status, r.raw)
		}
	})
}

func TestRefreshBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	k1 := h.prover(nil)
	k2 := h.prover(nil)

	get := func(t *testing.T, cl *http.Client, target string, form url.Values, hdr map[string]string) result {
		t.Helper()
		r := h.post(cl, target, form, hdr)
		h.checkTokenResponse(r)
		return r
	}
	t.Run("DPOP-AS-04/DPOP-AS-06/DPOP-AS-07 public client bound to its DPoP key", func(t *testing.T) {
		r := get(t, c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"alice"}, "scope": {"read write"}}, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 200 || r.str("refresh_token") == "" || r.str("token_type") != "DPoP" {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		rt := r.str("refresh_token")
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {rt}}

		r = get(t, c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k2, h.tokenURL(), "")})
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("DPOP-AS-06 other key: %d %s", r.status, r.raw)
		}
		r = get(t, c, h.tokenURL(), form, nil)
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("DPOP-AS-07 no proof: %d %s", r.status, r.raw)
		}
		r = get(t, c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("DPOP-AS-06 same key: %d %s", r.status, r.raw)
		}
		claims := h.verify(r.str("access_token"))
		if cnfOf(claims)["jkt"] != k1.Thumbprint() || claims["sub"] != "alice" || claims["scope"] != "read write" {
			t.Fatalf("refreshed claims %v", claims)
		}
		// Each refresh redeems its token and returns the successor.
		rt = r.str("refresh_token")
		narrowed := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {rt}, "scope": {"read"}}
		r = get(t, c, h.tokenURL(), narrowed, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 200 || r.str("scope") != "read" {
			t.Fatalf("narrowed scope: %d %s", r.status, r.raw)
		}
		rt = r.str("refresh_token")
		form.Set("refresh_token", rt)
		widened := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {rt}, "scope": {"admin"}}
		r = get(t, c, h.tokenURL(), widened, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 400 || r.str("error") != "invalid_scope" {
			t.Fatalf("widened scope: %d %s", r.status, r.raw)
		}
		other := url.Values{"grant_type": {"refresh_token"}, "client_id": {"s6BhdRkqt"}, "refresh_token": {rt}}
		r = get(t, c, h.tokenURL(), other, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("another client's refresh token: %d %s", r.status, r.raw)
		}
		h.clock.Advance(25 * time.Hour)
		r = get(t, c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("expired refresh token: %d %s", r.status, r.raw)
		}
	})

	t.Run("public client without binding gets no refresh token", func(t *testing.T) {
		r := get(t, c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"bob"}}, nil)
		if r.status != 200 || r.str("refresh_token") != "" || r.str("token_type") != "Bearer" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})

	t.Run("DPOP-AS-08/confidential client refresh follows client authentication", func(t *testing.T) {
		r := get(t, c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"carol"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(k1, h.tokenURL(), "")})
		if r.status != 200 || r.str("refresh_token") == "" {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}}
		r = get(t, c, h.tokenURL(), form, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(k2, h.tokenURL(), "")})
		if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["jkt"] != k2.Thumbprint() {
			t.Fatalf("record: %d %s", r.status, r.raw)
		}
		r = get(t, c, h.tokenURL(), form, basic("conf", "wrong-secret"))
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Fatalf("wrong secret: %d %s", r.status, r.raw)
		}
	})

	t.Run("MTLS-CB-06/MTLS-CB-07 public client bound to its self-signed certificate", func(t *testing.T) {
		r := get(t, h.client(h.s1), h.aliasTokenURL(), url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"dave"}}, nil)
		if r.status != 200 || r.str("token_type") != "Bearer" || r.str("refresh_token") == "" {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		if got := cnfOf(h.verify(r.str("access_token")))["x5t#S256"]; got != mtlsbound.Thumbprint(h.s1.Cert) {
			t.Fatalf("MTLS-CB-06: cnf %v", got)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {r.str("refresh_token")}}
		if r := get(t, h.client(h.s2), h.aliasTokenURL(), form, nil); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("MTLS-CB-07 other certificate: %d %s", r.status, r.raw)
		}
		if r := get(t, h.client(nil), h.aliasTokenURL(), form, nil); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("MTLS-CB-07 no certificate: %d %s", r.status, r.raw)
		}
		if r := get(t, h.client(h.s1), h.aliasTokenURL(), form, nil); r.status != 200 {
			t.Fatalf("MTLS-CB-07 same certificate: %d %s", r.status, r.raw)
		}
	})

	t.Run("MTLS-CB-08/confidential mTLS client re-authenticates", func(t *testing.T) {
		r := get(t, h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {testGrant}, "client_id": {"pki"}, "subject": {"erin"}}, nil)
		if r.status != 200 || r.str("refresh_token") == "" {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"pki"}, "refresh_token": {r.str("refresh_token")}}
		if r := get(t, h.client(h.c2), h.aliasTokenURL(), form, nil); r.str("error") != "invalid_client" {
			t.Fatalf("another client's certificate: %d %s", r.status, r.raw)
		}
		if r := get(t, h.client(h.c1), h.aliasTokenURL(), form, nil); r.status != 200 {
			t.Fatalf("own certificate: %d %s", r.status, r.raw)
		}
	})

	t.Run("DPOP-AS-22/dpop_jkt", func(t *testing.T) {
		form := url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"frank"}, "dpop_jkt": {k1.Thumbprint()}}
		if r := get(t, c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k2, h.tokenURL(), "")}); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("other key: %d %s", r.status, r.raw)
		}
		if r := get(t, c, h.tokenURL(), form, nil); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("no proof: %d %s", r.status, r.raw)
		}
		if r := get(t, c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")}); r.status != 200 {
			t.Fatalf("DPOP-AS-23 matching key: %d %s", r.status, r.raw)
		}
	})
}

// rfc7517RSAKey returns the RFC 7517 Appendix A.2 RSA private key (KR),
// whose private parts the RFC publishes.
func rfc7517RSAKey(t testing.TB) crypto.Signer {
	t.Helper()
	raw, err := readTestdata("rfc7517-a2-rsa.jwk")
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	s, ok := jwk.Key.(crypto.Signer)
	if !ok {
		t.Fatalf("KR is %T", jwk.Key)
	}
	return s
}

func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	const (
		kat5Proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
		kat6Proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA"
		kat3JKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
		kat6RT    = "Q..Zkm29lexi8VnWg2zPW1x-tgGad0Ibc3s3EwM_Ni4-g"
		krJKT     = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	)
	clock := &fixedClock{t: time.Unix(1562262616, 0)}
	ks, err := NewKeySet(SigningKey{Signer: newES256(t)})
	if err != nil {
		t.Fatal(err)
	}
	is, err := New(Config{Issuer: "https://server.example.com", Keys: ks, Audience: []string{"https://resource.example.org"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewMemoryRegistry(Client{ID: "s6BhdRkqt", AuthMethod: AuthNone}, Client{ID: "s6BhdRkqt3", AuthMethod: AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	authCode := GrantHandlerFunc(func(_ context.Context, req *GrantRequest) (*Grant, error) {
		switch req.Params["code"] {
		case "SplxlOBeZQQYbYS6WxSbIA":
			return &Grant{Subject: "someone@example.com", RefreshToken: true}, nil
		case "kat9-code": // an authorization request that carried KAT-9's dpop_jkt
			return &Grant{Subject: "someone@example.com", DPoPJKT: krJKT}, nil
		}
		return nil, GrantError(ErrInvalidGrant, "unknown code")
	})
	store := NewMemoryRefreshStore(clock.Now)
	s, err := NewServer(ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, RefreshTokens: store, Grants: map[string]GrantHandler{"authorization_code": authCode}})
	if err != nil {
		t.Fatal(err)
	}
	handler := s.Handler()
	send := func(body, proof string) result {
		req := httptest.NewRequest(http.MethodPost, "https://server.example.com/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		r := result{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes(), body: map[string]any{}}
		_ = json.Unmarshal(r.raw, &r.body)
		return r
	}
	claimsOf := func(t *testing.T, raw string) map[string]any {
		t.Helper()
		jt, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		c := map[string]any{}
		if err := jt.Claims(ks.active.Load().signer.Public(), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("KAT-5/DPOP-AS-05 RFC 9449 Figure 2 proof", func(t *testing.T) {
		r := send("grant_type=authorization_code&client_id=s6BhdRkqt&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb&code_verifier=bEaL42izcC-o-xBk0K2vuJ6U-y1p9r_wW2dFWIWgjz-", kat5Proof)
		if r.status != 200 || r.str("token_type") != "DPoP" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if got := cnfOf(claimsOf(t, r.str("access_token")))["jkt"]; got != kat3JKT {
			t.Fatalf("cnf.jkt = %v, want %s", got, kat3JKT)
		}
		if r.str("refresh_token") == "" {
			t.Fatal("no refresh token for the public client")
		}
		if r := send("grant_type=authorization_code&client_id=s6BhdRkqt&code=SplxlOBeZQQYbYS6WxSbIA", kat5Proof); r.str("error") != "invalid_dpop_proof" {
			t.Fatalf("replayed KAT-5 proof: %d %s", r.status, r.raw)
		}
	})

	t.Run("KAT-6 RFC 9449 Figure 7 refresh proof", func(t *testing.T) {
		// The RFC's refresh token, as issued with the KAT-5 request.
		if err := store.Put(context.Background(), refreshID(kat6RT), RefreshRecord{
			ClientID: "s6BhdRkqt", Subject: "someone@example.com", Binding: Binding{JKT: kat3JKT}, ExpiresAt: time.Unix(1562262616+86400, 0),
		}); err != nil {
			t.Fatal(err)
		}
		clock.Advance((1562265296 - 1562262616) * time.Second)
		r := send("grant_type=refresh_token&client_id=s6BhdRkqt&refresh_token="+kat6RT, kat6Proof)
		if r.status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if got := cnfOf(claimsOf(t, r.str("access_token")))["jkt"]; got != kat3JKT {
			t.Fatalf("cnf.jkt = %v", got)
		}
	})

	t.Run("KAT-9/DPOP-AS-22 dpop_jkt of the RFC 7517 RSA key", func(t *testing.T) {
		kr := rfc7517RSAKey(t)
		pKR, err := dpop.NewProver(kr, &dpop.ProverOptions{Algorithm: "RS256", Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if pKR.Thumbprint() != krJKT {
			t.Fatalf("KAT-1: KR thumbprint %s", pKR.Thumbprint())
		}
		body := "grant_type=authorization_code&client_id=s6BhdRkqt3&code=kat9-code"
		proofKR, err := pKR.Proof(http.MethodPost, "https://server.example.com/token", dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := dpop.NewProver(newES256(t), &dpop.ProverOptions{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		proofOther, err := other.Proof(http.MethodPost, "https://server.example.com/token", dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := send(body, proofOther); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("other key: %d %s", r.status, r.raw)
		}
		r := send(body, proofKR)
		if r.status != 200 || cnfOf(claimsOf(t, r.str("access_token")))["jkt"] != krJKT {
			t.Fatalf("KR: %d %s", r.status, r.raw)
		}
	})
}

func TestKAT13ExampleContent(t *testing.T) {
	t.Parallel()
	t.Run("KAT-13/ATV-02 RFC 9068 Figure 2 claims signed RS256 with KR", testKAT13)
}

func testKAT13(t *testing.T) {
	kr := rfc7517RSAKey(t)
	clock := &fixedClock{t: time.Unix(1618354090, 0)}
	ks, err := NewKeySet(SigningKey{Signer: kr, Algorithm: "RS256", KeyID: "RjEwOwOA"})
	if err != nil {
		t.Fatal(err)
	}
	is, err := New(Config{
		Issuer: "https://authorization-server.example.com/", Keys: ks, Audience: []string{"https://rs.example.com/"},
		Now: clock.Now, MaxTTL: (1639528912 - 1618354090) * time.Second, DefaultTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := is.Mint(context.Background(), MintRequest{Subject: "5ba552d67", ClientID: "s6BhdRkqt3", Scope: "openid profile reademail", TTL: (1639528912 - 1618354090) * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hdr, claims := parseVerified(t, tok.Raw, "RS256", kr.Public())
	if hdr.KeyID != "RjEwOwOA" || hdr.Algorithm != "RS256" {
		t.Fatalf("header %+v", hdr)
	}
	want := map[string]any{"iss": "https://authorization-server.example.com/", "sub": "5ba552d67", "aud": "https://rs.example.com/",
		"exp": float64(1639528912), "iat": float64(1618354090), "client_id": "s6BhdRkqt3", "scope": "openid profile reademail"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if len(claims) != len(want)+1 { // plus jti
		t.Errorf("unexpected claims %v", claims)
	}
}

// TestRefreshFollowsRegistration checks that a refresh never yields more
// than the client is registered for when it refreshes (RFC 6749 §6): the
// grant's scopes and audiences are narrowed to the current registration.
func TestRefreshFollowsRegistration(t *testing.T) {
	t.Parallel()
	const wideGrant = "urn:example:params:oauth:grant-type:wide"
	var reg *MemoryRegistry
	h := newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
		reg = cfg.Clients.(*MemoryRegistry)
		cfg.Grants[wideGrant] = GrantHandlerFunc(func(_ context.Context, req *GrantRequest) (*Grant, error) {
			return &Grant{Subject: "alice", Scope: "read write", Audience: []string{rsAudience, rs2Audience}, RefreshToken: true}, nil
		})
	}})
	c := h.client(nil)
	register := func(t *testing.T, id string, scopes, audiences []string) {
		t.Helper()
		err := reg.Register(Client{ID: id, AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret),
			Scopes: scopes, Audiences: audiences, GrantTypes: []string{wideGrant, GrantRefreshToken}})
		if err != nil {
			t.Fatal(err)
		}
	}
	both := []string{rsAudience, rs2Audience}
	tests := []struct {
		name         string
		scopes, auds []string // the registration at refresh time
		scope        string   // requested at refresh
		wantErr      string
		wantScope    string
		wantAud      []string
	}{
		{name: "unchanged registration", scopes: []string{"read", "write"}, auds: both, wantScope: "read write", wantAud: both},
		{name: "scope removed", scopes: []string{"read"}, auds: both, wantScope: "read", wantAud: both},
		{name: "removed scope requested", scopes: []string{"read"}, auds: both, scope: "write", wantErr: "invalid_scope"},
		{name: "scope added after the grant is not granted", scopes: []string{"read", "write", "admin"}, auds: both, scope: "admin", wantErr: "invalid_scope"},
		{name: "audience removed", scopes: []string{"read", "write"}, auds: []string{rs2Audience}, wantScope: "read write", wantAud: []string{rs2Audience}},
		{name: "no registered audience left: the issuer default", scopes: []string{"read", "write"}, wantScope: "read write", wantAud: []string{rsAudience}},
		{name: "no scope left", scopes: []string{"admin"}, auds: both, wantErr: "invalid_grant"},
		{name: "no audience left", scopes: []string{"read", "write"}, auds: []string{"https://other.example.test"}, wantErr: "invalid_grant"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("narrow-%d", i)
			register(t, id, []string{"read", "write"}, both)
			r := h.post(c, h.tokenURL(), url.Values{"grant_type": {wideGrant}}, basic(id, confSecret))
			if r.status != 200 || r.str("refresh_token") == "" {
				t.Fatalf("grant: %d %s", r.status, r.raw)
			}
			register(t, id, tt.scopes, tt.auds)
			form := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {r.str("refresh_token")}}
			if tt.scope != "" {
				form.Set("scope", tt.scope)
			}
			r = h.post(c, h.tokenURL(), form, basic(id, confSecret))
			if tt.wantErr != "" {
				if r.status != 400 || r.str("error") != tt.wantErr || r.body["access_token"] != nil {
					t.Fatalf("got %d %s, want %s", r.status, r.raw, tt.wantErr)
				}
				return
			}
			if r.status != 200 || r.str("scope") != tt.wantScope {
				t.Fatalf("got %d %s, want scope %q", r.status, r.raw, tt.wantScope)
			}
			claims := h.verify(r.str("access_token"))
			var aud []string
			switch a := claims["aud"].(type) {
			case string:
				aud = []string{a}
			case []any:
				for _, v := range a {
					s, _ := v.(string)
					aud = append(aud, s)
				}
			}
			if !slices.Equal(aud, tt.wantAud) || claims["scope"] != tt.wantScope {
				t.Fatalf("claims aud %v scope %v, want %v %q", aud, claims["scope"], tt.wantAud, tt.wantScope)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRefusalLogs checks that each refusal is logged with its code, its
// stable reason (client-authentication failures told apart), its fixed
// description and a lower layer's error, and never with the request's
// token, secret, proof or client_id.
func TestRefusalLogs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	var reg *MemoryRegistry
	h := newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
		reg = cfg.Clients.(*MemoryRegistry)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}})
	c := h.client(nil)
	confTok := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("conf", confSecret)).str("access_token")
	rt := h.post(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"alice"}, "scope": {"read"}}, basic("conf", confSecret)).str("refresh_token")
	if confTok == "" || rt == "" {
		t.Fatal("no token to work with")
	}
	if err := reg.Register(Client{ID: "narrowed", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret)}); err != nil {
		t.Fatal(err)
	}
	proof := h.proof(h.prover(nil), h.tokenURL(), "")
	usedProof := h.proof(h.prover(nil), h.tokenURL(), "")
	if r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": usedProof}); r.status != 200 {
		t.Fatalf("first use of the proof: %d %s", r.status, r.raw)
	}
	tests := []struct {
		name     string
		target   string
		form     url.Values
		hdr      map[string]string
		wantLine string
	}{
		{"DPOP-AS-11 dpop_bound_access_tokens client without a proof", h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("dpop-only", dpopSecret),
			`msg="issuer: request refused" endpoint=token error=invalid_dpop_proof status=400 reason=proof_missing description="client requires DPoP-bound access tokens"`},
		{"wrong secret", h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("conf", attackMarker+confSecret),
			`msg="issuer: request refused" endpoint=token error=invalid_client status=401 reason=client_secret_mismatch description="client authentication failed"`},
		{"unknown client", h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic(attackMarker, confSecret),
			`msg="issuer: request refused" endpoint=token error=invalid_client status=401 reason=client_unknown description="client authentication failed"`},
		{"replayed proof", h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": usedProof},
			`msg="issuer: request refused" endpoint=token error=invalid_dpop_proof status=400 reason=proof_replayed description="proof replayed" cause="dpop: invalid_dpop_proof: proof replayed"`},
		{"refresh token of another client", h.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, map[string]string{"Authorization": formatBasic("narrowed", confSecret), "DPoP": proof},
			`msg="issuer: request refused" endpoint=token error=invalid_grant status=400 reason=grant_invalid description="refresh token is invalid or expired"`},
		{"ATV-30 token not visible to the caller", h.srv.URL + IntrospectionPath, url.Values{"token": {confTok}}, basic("peer", rsSecret),
			`msg="issuer: introspection answered inactive" reason=token_not_visible description="token not visible to the caller"`},
		{"introspection without a token", h.srv.URL + IntrospectionPath, url.Values{"token_type_hint": {attackMarker}}, basic("peer", rsSecret),
			`msg="issuer: request refused" endpoint=introspection error=invalid_request status=400 reason=request_malformed description="token is required"`},
		{"tls_client_auth without a certificate", h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil,
			`msg="issuer: request refused" endpoint=token error=invalid_client status=400 reason=certificate_missing description="client authentication failed"`},
		{"tls_client_auth with another client's certificate", h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil,
			`msg="issuer: request refused" endpoint=token error=invalid_client status=400 reason=certificate_subject_mismatch description="client authentication failed" cause="mtlsbound: client certificate does not match: registered subject selector not found in certificate"`},
		{"tls_client_auth with a certificate of an untrusted CA", h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil,
			`msg="issuer: request refused" endpoint=token error=invalid_client status=400 reason=certificate_untrusted description="client authentication failed" cause="mtlsbound: client certificate not trusted: no chain to a trusted root with clientAuth"`},
	}
	clients := map[string]*http.Client{
		"tls_client_auth with another client's certificate":     h.client(h.c2),
		"tls_client_auth with a certificate of an untrusted CA": h.client(h.c1ca2),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			cl := c
			if x, ok := clients[tt.name]; ok {
				cl = x
			}
			h.post(cl, tt.target, tt.form, tt.hdr)
			got := logs.String()[before:]
			if strings.Count(got, "\n") != 1 || !strings.Contains(got, tt.wantLine) {
				t.Fatalf("log %q, want one line with %q", got, tt.wantLine)
			}
		})
	}
	all := logs.String()
	for _, secret := range []string{confTok, rt, confSecret, proof, usedProof, "ATTACKER"} {
		if strings.Contains(all, secret) {
			t.Fatalf("the log holds request data: %s", all)
		}
	}
}

// testReplay returns a fresh in-memory replay store on is's clock.
func testReplay(tb testing.TB, is *Issuer) dpop.ReplayStore {
	tb.Helper()
	s, err := NewMemoryReplayStore(is, 1<<12)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
