package resource_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
	"github.com/senderbound/senderbound/trustedproxy"
)

// proxySet returns the trusted proxies at peers whose header family is h.
func proxySet(t testing.TB, h trustedproxy.Headers, peers ...string) *trustedproxy.Set {
	t.Helper()
	s, err := trustedproxy.New(trustedproxy.Config{Peers: peers, Headers: h})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

var anyPolicy = resource.Policy{Accept: resource.AcceptAny}

// TestCheckReasons pins the reason of rejections whose status alone would
// not show which check fired.
func TestCheckReasons(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	tests := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		reason oautherr.Reason
		class  error
	}{
		{"ADV-104/size cap before parsing", func(t *testing.T) *http.Request {
			tok := e.Token(t, nil)
			return bearerRequest(tok + strings.Repeat("A", 16<<10-len(tok)+1))
		}, "token_too_large", resource.ErrInvalidToken},
		{"ATV-14/alg outside the allow-list", func(t *testing.T) *http.Request {
			return bearerRequest(e.AS.HMACWithPublicKey(t, e.Claims()))
		}, "token_alg_not_allowed", resource.ErrInvalidToken},
		{"ATV-28/crit", func(t *testing.T) *http.Request {
			return bearerRequest(e.AS.Mint(t, map[string]any{"typ": "at+jwt", "crit": []string{"exp"}}, e.Claims()))
		}, "token_crit", resource.ErrInvalidToken},
		{"ATV-10/typ", func(t *testing.T) *http.Request {
			return bearerRequest(e.AS.Mint(t, map[string]any{"typ": "JWT"}, e.Claims()))
		}, "token_type", resource.ErrInvalidToken},
		{"ATV-19/foreign key", func(t *testing.T) *http.Request {
			i := *e.AS2
			i.KID = e.AS.KID
			return bearerRequest(i.Mint(t, restest.Header(), e.Claims()))
		}, "token_signature", resource.ErrInvalidToken},
		{"ERR-13/bearer downgrade", func(t *testing.T) *http.Request {
			return bearerRequest(e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()} }))
		}, "bearer_downgrade", resource.ErrInvalidToken},
		{"CCERT-04/malformed Client-Cert from the trusted proxy", func(t *testing.T) *http.Request {
			r := bearerRequest(e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} }))
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Client-Cert", ":not base64 !:")
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"CCERT-05/two Client-Cert fields from the trusted proxy", func(t *testing.T) *http.Request {
			r := bearerRequest(e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} }))
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Add("Client-Cert", mtlsbound.FormatClientCertHeader(e.C1.Cert))
			r.Header.Add("Client-Cert", mtlsbound.FormatClientCertHeader(e.C1.Cert))
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"CCERT-06/ADV-89/Client-Cert-Chain without Client-Cert", func(t *testing.T) *http.Request {
			r := trustedCertRequest(t, e)
			r.Header.Set("Client-Cert-Chain", mtlsbound.FormatClientCertHeader(e.CA.Cert))
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"ADV-89/Client-Cert holding a CA certificate", func(t *testing.T) *http.Request {
			r := trustedCertRequest(t, e)
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(e.CA.Cert))
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"ADV-89/Client-Cert whose DER is not a certificate", func(t *testing.T) *http.Request {
			r := trustedCertRequest(t, e)
			r.Header.Set("Client-Cert", ":MIIBAA==:")
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"CCERT-13/Client-Cert of 128 KiB", func(t *testing.T) *http.Request {
			r := trustedCertRequest(t, e)
			r.Header.Set("Client-Cert", ":"+strings.Repeat("A", 128<<10)+":")
			return r
		}, "client_cert_header_invalid", resource.ErrInvalidRequest},
		{"CCERT-02/Client-Cert from the trusted proxy accepted", func(t *testing.T) *http.Request {
			r := bearerRequest(e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} }))
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(e.C1.Cert))
			return r
		}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := e.Verifier.Check(tc.req(t), anyPolicy)
			if tc.class == nil {
				if err != nil || p == nil {
					t.Fatalf("Check = %v, %v", p, err)
				}
				return
			}
			var re *resource.Error
			if p != nil || !errors.As(err, &re) || !errors.Is(err, tc.class) || re.Reason != tc.reason {
				t.Fatalf("Check = %v, %v; want reason %q class %v", p, err, tc.reason, tc.class)
			}
			if re.Status != map[error]int{resource.ErrInvalidToken: 401, resource.ErrInvalidRequest: 400}[tc.class] {
				t.Fatalf("status %d", re.Status)
			}
		})
	}
}

func trustedCertRequest(t *testing.T, e *restest.Env) *http.Request {
	r := bearerRequest(e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} }))
	r.RemoteAddr = "127.0.0.1:40000"
	return r
}

// TestTokenCache checks that a cached token still gets its time checks
// and that a cache hit skips the signature (a token whose key was never
// part of the set cannot be served from the cache).
func TestTokenCache(t *testing.T) {
	t.Parallel()
	var now = time.Unix(1_900_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := restest.NewEnv(t, restest.Options{Mod: func(_ *restest.Env, c *resource.Config) { c.Now = clock }})
	tok := e.Token(t, func(c map[string]any) { c["exp"] = now.Add(time.Minute).Unix(); c["nbf"] = now.Unix() })
	for i := 0; i < 2; i++ {
		if _, err := e.Verifier.Check(bearerRequest(tok), anyPolicy); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	mu.Lock()
	now = now.Add(time.Minute) // exactly exp
	mu.Unlock()
	if _, err := e.Verifier.Check(bearerRequest(tok), anyPolicy); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("cached token at exp: %v", err)
	}
	mu.Lock()
	now = now.Add(-2 * time.Minute) // before nbf
	mu.Unlock()
	if _, err := e.Verifier.Check(bearerRequest(tok), anyPolicy); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("token before nbf: %v", err)
	}
}

// TestKAT13 signs the RFC 9068 Figure 2 content (typ at+JWT) with an RSA
// key and checks ATV-10 (at+JWT accepted) and ATV-11 (issuer compared
// exactly, trailing slash included).
func TestKAT13(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := []byte(`{"iss": "https://authorization-server.example.com/", "sub": "5ba552d67", "aud": "https://rs.example.com/", "exp": 1639528912, "iat": 1618354090, "jti" : "dbe39bf3a3ba4238a513f51d6e1691c4", "client_id": "s6BhdRkqt3", "scope": "openid profile reademail"}`)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "RjEwOwOA"}},
		(&jose.SignerOptions{}).WithHeader("typ", "at+JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := signer.Sign(claims)
	tok, _ := obj.CompactSerialize()
	ks, err := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "RjEwOwOA", Algorithm: "RS256"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://authorization-server.example.com/", true},
		{"https://authorization-server.example.com", false},
	} {
		v, err := resource.New(resource.Config{
			Algorithms: resource.DefaultAlgorithms(),
			Issuers:    []resource.Issuer{{Identifier: tc.issuer, Keys: ks}},
			Audience:   "https://rs.example.com/",
			Now:        func() time.Time { return time.Unix(1639528000, 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Check(bearerRequest(tok), anyPolicy)
		if tc.ok && (err != nil || p.Subject != "5ba552d67" || p.ClientID != "s6BhdRkqt3" || !p.HasScope("reademail")) {
			t.Fatalf("issuer %q: %+v, %v", tc.issuer, p, err)
		}
		if !tc.ok && !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("issuer %q accepted: %v", tc.issuer, err)
		}
	}
}

// TestHooks checks the slog and metrics hooks: one (Debug) record per
// rejection, with the reason and nothing from the request.
func TestHooks(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	reasons := map[string]int{}
	e := restest.NewEnv(t, restest.Options{Mod: func(_ *restest.Env, c *resource.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.OnReject = func(r string) { mu.Lock(); reasons[r]++; mu.Unlock() }
	}})
	expired := e.Token(t, func(c map[string]any) { c["exp"] = e.T0.Add(-time.Hour).Unix() })
	r := bearerRequest(expired)
	r.Header.Set("DPoP", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	if _, err := e.Verifier.Check(r, anyPolicy); err == nil {
		t.Fatal("expired token accepted")
	}
	if _, err := e.Verifier.Check(bearerRequest(e.Token(t, nil)), anyPolicy); err != nil {
		t.Fatal(err)
	}
	if reasons["token_expired"] != 1 || len(reasons) != 1 {
		t.Fatalf("reasons = %v", reasons)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log: %v (%q)", err, buf.String())
	}
	if rec["reason"] != "token_expired" || rec["status"] != float64(401) {
		t.Fatalf("log record = %v", rec)
	}
	for _, part := range strings.Split(expired, ".") {
		if strings.Contains(buf.String(), part) {
			t.Fatal("log contains part of the token")
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	ks := e.Config.Issuers[0].Keys
	store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	tenNet := proxySet(t, trustedproxy.HeadersXForwarded, "10.0.0.0/8")
	sourceFor := func(set *trustedproxy.Set) *mtlsbound.Source {
		src, err := mtlsbound.NewSource(mtlsbound.SourceConfig{TrustedProxies: set})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	base := func() resource.Config {
		return resource.Config{Algorithms: resource.DefaultAlgorithms(), Issuers: []resource.Issuer{{Identifier: "https://as", Keys: ks}}, Audience: "https://rs"}
	}
	tests := []struct {
		name string
		mod  func(c *resource.Config)
	}{
		{"no issuers", func(c *resource.Config) { c.Issuers = nil }},
		{"no audience", func(c *resource.Config) { c.Audience = "" }},
		{"issuer without keys", func(c *resource.Config) { c.Issuers[0].Keys = nil }},
		{"issuer without identifier", func(c *resource.Config) { c.Issuers[0].Identifier = "" }},
		{"duplicate issuer", func(c *resource.Config) { c.Issuers = append(c.Issuers, c.Issuers[0]) }},
		{"HS256 allowed", func(c *resource.Config) { c.Algorithms = []string{"ES256", "HS256"} }},
		{"none allowed", func(c *resource.Config) { c.Algorithms = []string{"none"} }},
		{"empty algorithms", func(c *resource.Config) { c.Algorithms = []string{} }},
		{"negative leeway", func(c *resource.Config) { c.Leeway = -time.Second }},
		{"unknown required claim", func(c *resource.Config) { c.RequiredClaims = []string{"email"} }},
		{"ClientCerts trusting other proxies", func(c *resource.Config) {
			c.TrustedProxies = tenNet
			c.ClientCerts = sourceFor(proxySet(t, trustedproxy.HeadersXForwarded, "10.0.0.0/8"))
		}},
		{"ClientCerts trusting no proxy", func(c *resource.Config) {
			c.TrustedProxies = tenNet
			c.ClientCerts = sourceFor(nil)
		}},
		{"ClientCerts trusting proxies the Config does not", func(c *resource.Config) { c.ClientCerts = sourceFor(tenNet) }},
		{"DPoP behind proxies that forward no host, no public URL", func(c *resource.Config) {
			c.TrustedProxies = proxySet(t, trustedproxy.HeadersNone, "10.0.0.0/8")
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store}
		}},
		{"DPoP without replay store", func(c *resource.Config) { c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}} }},
		{"DPoP with a nil-pointer replay store, metrics on", func(c *resource.Config) {
			c.Metrics = nopMetrics{}
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: (*replaycache.LRU)(nil)}
		}},
		{"DPoP with nil-pointer nonces", func(c *resource.Config) {
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store, Nonces: (*dpop.Nonces)(nil)}
		}},
		{"DPoP with HS256", func(c *resource.Config) {
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"HS256"}, ReplayStore: store}
		}},
		{"DPoP without a public URL, trusted proxies or InsecureHostHeader", func(c *resource.Config) {
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store}
		}},
		{"public URL with query", func(c *resource.Config) {
			c.PublicURL = "https://rs?x=1"
			c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := base()
			tc.mod(&c)
			if _, err := resource.New(c); err == nil {
				t.Fatal("New accepted an invalid configuration")
			}
		})
	}
	if _, err := resource.New(base()); err != nil {
		t.Fatalf("valid base config refused: %v", err)
	}
	for _, mod := range []func(*resource.Config){
		func(c *resource.Config) { c.PublicURL = "https://rs" },
		func(c *resource.Config) { c.TrustedProxies = tenNet },
		func(c *resource.Config) {
			c.TrustedProxies = proxySet(t, trustedproxy.HeadersForwarded, "10.0.0.0/8")
			c.ClientCerts = sourceFor(c.TrustedProxies)
		},
		func(c *resource.Config) {
			c.TrustedProxies = proxySet(t, trustedproxy.HeadersNone, "10.0.0.0/8")
			c.PublicURL = "https://rs"
		},
		func(c *resource.Config) { c.InsecureHostHeader = true },
	} {
		c := base()
		c.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store}
		mod(&c)
		if _, err := resource.New(c); err != nil {
			t.Errorf("DPoP with a target URI source refused: %v", err)
		}
	}
}

func TestNewKeysRefuses(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	e := restest.NewEnv(t, restest.Options{})
	for name, set := range map[string]jose.JSONWebKeySet{
		"empty":               {},
		"RSA 1024":            {Keys: []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "s"}}},
		"symmetric":           {Keys: []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h"}}},
		"private":             {Keys: []jose.JSONWebKey{{Key: e.AS.Key, KeyID: "p"}}},
		"alg of wrong family": {Keys: []jose.JSONWebKey{{Key: e.AS.Key.Public(), KeyID: "x", Algorithm: "RS256"}}},
		"only enc keys":       {Keys: []jose.JSONWebKey{{Key: e.AS.Key.Public(), KeyID: "x", Use: "enc"}}},
	} {
		if _, err := resource.NewKeys(set); err == nil {
			t.Errorf("%s: NewKeys accepted", name)
		}
	}
}

func TestMetadataHandler(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true})
	srv := httptest.NewServer(e.Verifier.MetadataHandler(resource.Policy{}, []string{"read", "write"}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + resource.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                                   restest.Audience,
		"authorization_servers":                      []any{"https://as.example.test", "https://as2.example.test"},
		"bearer_methods_supported":                   []any{"header"},
		"scopes_supported":                           []any{"read", "write"},
		"dpop_signing_alg_values_supported":          []any{"ES256", "PS256"},
		"dpop_bound_access_tokens_required":          false,
		"tls_client_certificate_bound_access_tokens": true,
	}
	got, _ := json.Marshal(m)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata = %s, want %s", got, exp)
	}
	post, err := srv.Client().Post(srv.URL+resource.MetadataPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", post.StatusCode)
	}
	if md := e.Verifier.Metadata(resource.Policy{Accept: resource.AcceptDPoP}, nil); !md.DPoPBoundAccessTokensRequired || md.TLSClientCertificateBoundAccessTokens {
		t.Fatalf("DPoP-only metadata = %+v", md)
	}
}

func TestMiddlewarePanicsOnUnenforceablePolicy(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware accepted AcceptDPoP without DPoP configured")
		}
	}()
	e.Verifier.Middleware(resource.Policy{Accept: resource.AcceptDPoP})
}

func TestWriteErrorForeignError(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	resource.WriteError(w, errors.New("secret detail"))
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
}

// TestFormBodyPreserved: the access_token form check reads the body and
// hands it on intact, small or larger than the inspected prefix.
func TestFormBodyPreserved(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	for _, body := range []string{"x=1&y=2", "big=" + strings.Repeat("a", 100<<10) + "&end=1"} {
		r := httptest.NewRequest(http.MethodPost, "https://rs.example.test/any", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer "+e.Token(t, nil))
		if _, err := e.Verifier.Check(r, anyPolicy); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || string(got) != body {
			t.Fatalf("body after Check: %d bytes (err %v), want %d", len(got), err, len(body))
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source failed") }

// TestCheckRarePaths covers rejections that the shared table cannot reach
// over a real connection.
func TestCheckRarePaths(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, Mod: func(e *restest.Env, c *resource.Config) {
		n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{bytes.Repeat([]byte{7}, 32)}, Label: "rs", Now: c.Now, Rand: failingReader{}})
		if err != nil {
			t.Fatal(err)
		}
		c.DPoP.Nonces = n
	}})
	dpopReq := func(t *testing.T, host string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://rs.example.test/any", nil)
		restest.DPoPRequest("DPoP", restest.K1Token, nil)(t, e, r)
		r.Host = host
		return r
	}
	tests := []struct {
		name   string
		req    *http.Request
		policy resource.Policy
		reason oautherr.Reason
		status int
	}{
		{"policy that cannot be enforced", bearerRequest(e.Token(t, nil)), resource.Policy{Accept: 42}, "policy_invalid", 503},
		{"target URI undeterminable (no Host)", dpopReq(t, ""), anyPolicy, "target_uri", 400},
		{"nonce source failing: fail closed", dpopReq(t, "rs.example.test"), anyPolicy, "nonce_unavailable", 503},
		{"ADV-51/both forwarded header families from the trusted proxy", func() *http.Request {
			r := dpopReq(t, "rs.example.test")
			r.RemoteAddr = "127.0.0.1:4711"
			r.Header.Set("X-Forwarded-Host", "rs.example.test")
			r.Header.Set("Forwarded", "host=other-rs.example.test")
			return r
		}(), anyPolicy, "forwarded_headers_unexpected", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Verifier.Check(tc.req, tc.policy)
			var re *resource.Error
			if !errors.As(err, &re) || re.Reason != tc.reason || re.Status != tc.status {
				t.Fatalf("err = %v, want reason %q status %d", err, tc.reason, tc.status)
			}
			w := httptest.NewRecorder()
			resource.WriteError(w, err)
			if w.Code != tc.status || (tc.status == 503 && w.Header().Get("WWW-Authenticate") != "") {
				t.Fatalf("rendered %d with challenges %q", w.Code, w.Header().Values("WWW-Authenticate"))
			}
		})
	}
}

// TestCheckForwardedFamily: behind trusted proxies that set RFC 7239
// Forwarded, the htu comes from it alone; X-Forwarded-* fields from such a
// proxy, or a malformed Forwarded field, refuse the request with 400 and a
// stable reason.
func TestCheckForwardedFamily(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Mod: func(_ *restest.Env, c *resource.Config) {
		c.TrustedProxies = proxySet(t, trustedproxy.HeadersForwarded, "127.0.0.1")
	}})
	tests := []struct {
		name    string
		remote  string
		headers map[string]string
		reason  oautherr.Reason // "" = accepted
	}{
		{"forwarded", "127.0.0.1:4711", map[string]string{"Forwarded": "for=192.0.2.7;proto=https;host=rs.example.test"}, ""},
		{"ADV-51/X-Forwarded-Host from the proxy", "127.0.0.1:4711", map[string]string{"Forwarded": "proto=https;host=rs.example.test", "X-Forwarded-Host": "rs.example.test"}, "forwarded_headers_unexpected"},
		{"ADV-51/X-Forwarded-Proto alone from the proxy", "127.0.0.1:4711", map[string]string{"X-Forwarded-Proto": "https"}, "forwarded_headers_unexpected"},
		{"repeated host parameter", "127.0.0.1:4711", map[string]string{"Forwarded": "proto=https;host=rs.example.test;host=other-rs.example.test"}, "forwarded_header_malformed"},
		{"unterminated quoted-string", "127.0.0.1:4711", map[string]string{"Forwarded": `proto=https;host="rs.example.test`}, "forwarded_header_malformed"},
		// Over TLS from an untrusted peer, both families are ignored, not
		// refused: the htu comes from the request (InsecureHostHeader).
		{"untrusted peer: both families ignored", "192.0.2.1:4711", map[string]string{"Forwarded": "proto=http;host=other-rs.example.test", "X-Forwarded-Host": "other-rs.example.test"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
			restest.DPoPRequest("DPoP", restest.K1Token, nil)(t, e, r)
			r.RemoteAddr = tc.remote
			if strings.HasPrefix(tc.remote, "127.0.0.1:") {
				r.TLS = nil // the proxy terminated TLS
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			_, err := e.Verifier.Check(r, anyPolicy)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *resource.Error
			if !errors.As(err, &re) || re.Reason != tc.reason || re.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want reason %q status 400", err, tc.reason)
			}
			w := httptest.NewRecorder()
			resource.WriteError(w, err)
			if h := w.Header().Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_request"`) || strings.Contains(h, "rs.example.test") {
				t.Fatalf("WWW-Authenticate = %q", h)
			}
		})
	}
}
