package resource_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

const (
	introIssuer   = "https://as.example.test"
	introAudience = "https://rs.example.test"
	introURL      = "https://rs.example.test/data"
)

// introCall is one request the stub introspection endpoint received.
type introCall struct {
	header http.Header
	form   url.Values
}

// introAS is a stub RFC 7662 endpoint on a real loopback server. Answer
// decides the response per token; it defaults to the answers map.
type introAS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]string // token -> JSON body
	calls   []introCall
	status  int           // when non-zero, every answer has this status
	delay   time.Duration // before answering
	n       atomic.Int64
}

func newIntroAS(t testing.TB) *introAS {
	t.Helper()
	as := &introAS{answers: map[string]string{}}
	as.srv = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *introAS) serve(w http.ResponseWriter, r *http.Request) {
	as.n.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	as.mu.Lock()
	as.calls = append(as.calls, introCall{header: r.Header.Clone(), form: r.PostForm})
	body, ok := as.answers[r.PostForm.Get("token")]
	status, delay := as.status, as.delay
	as.mu.Unlock()
	time.Sleep(delay)
	if status != 0 {
		if status/100 == 3 {
			// Back to this endpoint: a client that followed it would call
			// twice per request.
			w.Header().Set("Location", "/introspect")
		}
		w.WriteHeader(status)
		return
	}
	if !ok {
		body = `{"active":false}`
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

func (as *introAS) set(tok, body string) {
	as.mu.Lock()
	as.answers[tok] = body
	as.mu.Unlock()
}

// fail makes every answer have status, after delay.
func (as *introAS) fail(status int, delay time.Duration) {
	as.mu.Lock()
	as.status, as.delay = status, delay
	as.mu.Unlock()
}

func (as *introAS) lastCall(t testing.TB) introCall {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.calls) == 0 {
		t.Fatal("no introspection call")
	}
	return as.calls[len(as.calls)-1]
}

// introEnv is a Verifier whose only issuer is validated by introAS.
type introEnv struct {
	as     *introAS
	v      *resource.Verifier
	k1, k2 *dpop.Prover
	clock  *testClock
	c1, c2 *certs.Leaf
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newIntroEnv(t testing.TB, mod func(*resource.Config, *resource.Introspection)) *introEnv {
	t.Helper()
	e := &introEnv{as: newIntroAS(t), clock: &testClock{t: time.Unix(1_700_000_000, 0)}}
	e.k1 = introProver(t, e.clock.Now)
	e.k2 = introProver(t, e.clock.Now)
	ca, err := certs.NewCA(certs.Options{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	if e.c1, err = ca.Issue(certs.Options{CommonName: "c1", Client: true}); err != nil {
		t.Fatal(err)
	}
	if e.c2, err = ca.Issue(certs.Options{CommonName: "c2", Client: true}); err != nil {
		t.Fatal(err)
	}
	store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1000})
	if err != nil {
		t.Fatal(err)
	}
	in := &resource.Introspection{
		Endpoint:     e.as.srv.URL + "/introspect",
		ClientID:     "rs",
		Auth:         resource.AuthClientSecretBasic,
		ClientSecret: "rs-secret:with+specials",
	}
	cfg := resource.Config{
		Issuers:    []resource.Issuer{{Identifier: introIssuer, Introspection: in}},
		Audience:   introAudience,
		Algorithms: resource.DefaultAlgorithms(),
		Now:        e.clock.Now,
		PublicURL:  "https://rs.example.test",
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
	}
	if mod != nil {
		mod(&cfg, in)
	}
	if e.v, err = resource.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func introProver(t testing.TB, now func() time.Time) *dpop.Prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k, &dpop.ProverOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// answer returns an active introspection answer for the environment's
// clock, changed by mod.
func (e *introEnv) answer(t testing.TB, mod func(m map[string]any)) string {
	t.Helper()
	now := e.clock.Now().Unix()
	m := map[string]any{
		"active": true, "iss": introIssuer, "aud": []string{introAudience, "https://other.example.test"},
		"sub": "alice", "client_id": "app", "scope": "read write",
		"iat": now - 10, "exp": now + 300, "token_type": "DPoP",
		"cnf": map[string]any{"jkt": e.k1.Thumbprint()},
	}
	if mod != nil {
		mod(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// opaque returns a fresh random opaque token.
func opaque(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func dpopReq(t testing.TB, p *dpop.Prover, tok string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, introURL, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	proof, err := p.Proof(http.MethodGet, introURL, dpop.ProofOptions{AccessToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("DPoP", proof)
	return r
}

func bearerReq(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, introURL, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func withCert(r *http.Request, l *certs.Leaf) *http.Request {
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{l.Cert}}
	return r
}

// TestIntrospectionCheck: an introspected opaque token is held to the rules
// of a JWT access token, and its cnf binds it exactly as a JWT's does.
func TestIntrospectionCheck(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, nil)
	type mk func(t *testing.T, tok string) *http.Request
	k1 := func(t *testing.T, tok string) *http.Request { return dpopReq(t, e.k1, tok) }
	tests := []struct {
		name    string
		answer  func(m map[string]any)
		raw     string // the answer verbatim instead
		req     mk
		policy  resource.Policy
		reason  oautherr.Reason
		class   error
		status  int
		binding resource.Binding
	}{
		{name: "DPOP-RS-23/jkt token with its key's proof", req: k1, binding: resource.BindingDPoP},
		{name: "DPOP-RS-23/DPOP-RS-19/jkt token with another key's proof", req: func(t *testing.T, tok string) *http.Request { return dpopReq(t, e.k2, tok) },
			reason: oautherr.ReasonProofKeyMismatch, class: resource.ErrInvalidToken, status: 401},
		{name: "DPOP-RS-23/ERR-13/jkt token under Bearer", req: func(_ *testing.T, tok string) *http.Request { return bearerReq(tok) },
			reason: oautherr.ReasonBearerDowngrade, class: resource.ErrInvalidToken, status: 401},
		{name: "inactive", raw: `{"active":false}`, req: k1, reason: oautherr.ReasonTokenInactive, class: resource.ErrInvalidToken, status: 401},
		{name: "another issuer", answer: func(m map[string]any) { m["iss"] = introIssuer + "/" }, req: k1,
			reason: oautherr.ReasonIssuerUntrusted, class: resource.ErrInvalidToken, status: 401},
		{name: "no issuer", answer: func(m map[string]any) { delete(m, "iss") }, req: k1,
			reason: oautherr.ReasonIssuerUntrusted, class: resource.ErrInvalidToken, status: 401},
		{name: "another audience", answer: func(m map[string]any) { m["aud"] = "https://other.example.test" }, req: k1,
			reason: oautherr.ReasonTokenAudience, class: resource.ErrInvalidToken, status: 401},
		{name: "no audience", answer: func(m map[string]any) { delete(m, "aud") }, req: k1,
			reason: oautherr.ReasonTokenAudience, class: resource.ErrInvalidToken, status: 401},
		{name: "no exp", answer: func(m map[string]any) { delete(m, "exp") }, req: k1,
			reason: oautherr.ReasonTokenNoExpiry, class: resource.ErrInvalidToken, status: 401},
		{name: "expired", answer: func(m map[string]any) { m["exp"] = e.clock.Now().Unix() }, req: k1,
			reason: oautherr.ReasonTokenExpired, class: resource.ErrInvalidToken, status: 401},
		{name: "not yet valid", answer: func(m map[string]any) { m["nbf"] = e.clock.Now().Unix() + 60 }, req: k1,
			reason: oautherr.ReasonTokenNotYetValid, class: resource.ErrInvalidToken, status: 401},
		{name: "token_type DPoP without jkt", answer: func(m map[string]any) { delete(m, "cnf") }, req: k1,
			reason: oautherr.ReasonTokenConfirmationMalformed, class: resource.ErrInvalidToken, status: 401},
		{name: "token_type Bearer with jkt", answer: func(m map[string]any) { m["token_type"] = "Bearer" }, req: k1,
			reason: oautherr.ReasonTokenConfirmationMalformed, class: resource.ErrInvalidToken, status: 401},
		{name: "a refresh token", answer: func(m map[string]any) { m["token_type"] = "refresh_token" }, req: k1,
			reason: oautherr.ReasonTokenType, class: resource.ErrInvalidToken, status: 401},
		{name: "cnf.jkt not a thumbprint", answer: func(m map[string]any) { m["cnf"] = map[string]any{"jkt": "short"} }, req: k1,
			reason: oautherr.ReasonTokenConfirmationMalformed, class: resource.ErrInvalidToken, status: 401},
		{name: "cnf by an unsupported method", answer: func(m map[string]any) { m["cnf"] = map[string]any{"kid": "k"}; delete(m, "token_type") }, req: k1,
			reason: oautherr.ReasonTokenConfirmationUnsupported, class: resource.ErrInvalidToken, status: 401},
		{name: "unbound token under DPoP", answer: func(m map[string]any) { delete(m, "cnf"); m["token_type"] = "Bearer" }, req: k1,
			reason: oautherr.ReasonTokenNotDPoPBound, class: resource.ErrInvalidToken, status: 401},
		{name: "unbound token where bound ones are required", answer: func(m map[string]any) { delete(m, "cnf"); m["token_type"] = "Bearer" },
			req: func(_ *testing.T, tok string) *http.Request { return bearerReq(tok) }, reason: oautherr.ReasonTokenUnbound, class: resource.ErrInvalidToken, status: 401},
		{name: "unbound token under AcceptAny", answer: func(m map[string]any) { delete(m, "cnf"); m["token_type"] = "N_A" },
			req: func(_ *testing.T, tok string) *http.Request { return bearerReq(tok) }, policy: resource.Policy{Accept: resource.AcceptAny}, binding: resource.BindingBearer},
		{name: "MTLS-CB-13/x5t#S256 token with its certificate", answer: func(m map[string]any) {
			m["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.c1.Cert)}
			m["token_type"] = "Bearer"
		}, req: func(_ *testing.T, tok string) *http.Request { return withCert(bearerReq(tok), e.c1) }, binding: resource.BindingMTLS},
		{name: "MTLS-CB-13/x5t#S256 token with another certificate", answer: func(m map[string]any) {
			m["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.c1.Cert)}
			m["token_type"] = "Bearer"
		}, req: func(_ *testing.T, tok string) *http.Request { return withCert(bearerReq(tok), e.c2) }, reason: oautherr.ReasonCertificateMismatch, class: resource.ErrInvalidToken, status: 401},
		{name: "x5t#S256 token without a certificate", answer: func(m map[string]any) {
			m["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.c1.Cert)}
			m["token_type"] = "Bearer"
		}, req: func(_ *testing.T, tok string) *http.Request { return bearerReq(tok) }, reason: oautherr.ReasonCertificateMissing, class: resource.ErrInvalidToken, status: 401},
		{name: "scope checked", req: k1, policy: resource.Policy{Scopes: []string{"admin"}},
			reason: oautherr.ReasonInsufficientScope, class: resource.ErrInsufficientScope, status: 403},
		{name: "scope granted", req: k1, policy: resource.Policy{Scopes: []string{"write"}}, binding: resource.BindingDPoP},
		{name: "malformed answer is the endpoint's failure", raw: `{"active":true,"active":true}`, req: k1,
			reason: oautherr.ReasonIntrospectionUnavailable, class: resource.ErrUnavailable, status: 503},
		{name: "answer without active", raw: `{"iss":"` + introIssuer + `"}`, req: k1,
			reason: oautherr.ReasonIntrospectionUnavailable, class: resource.ErrUnavailable, status: 503},
		{name: "active not a boolean", raw: `{"active":"true"}`, req: k1,
			reason: oautherr.ReasonIntrospectionUnavailable, class: resource.ErrUnavailable, status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := opaque(t)
			body := tc.raw
			if body == "" {
				body = e.answer(t, tc.answer)
			}
			e.as.set(tok, body)
			pr, err := e.v.Check(tc.req(t, tok), tc.policy)
			if tc.class == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if pr.Binding != tc.binding || pr.Issuer != introIssuer {
					t.Fatalf("principal %+v", pr)
				}
				if tc.binding != resource.BindingBearer && (pr.Subject != "alice" || pr.ClientID != "app" || !pr.HasScope("read")) {
					t.Fatalf("principal %+v", pr)
				}
				return
			}
			var re *resource.Error
			if !errors.As(err, &re) || !errors.Is(err, tc.class) || re.Reason != tc.reason || re.Status != tc.status {
				t.Fatalf("got %v (%+v), want %v %s %d", err, re, tc.class, tc.reason, tc.status)
			}
			if strings.Contains(re.Description, tok) || strings.Contains(err.Error(), tok) {
				t.Fatal("the error echoes the token")
			}
		})
	}
}

// TestIntrospectionSendsNoProof (DPOP-RS-24): the call to the
// authorization server carries the token and the client's credentials,
// never the DPoP header or proof; the binding is still enforced here.
func TestIntrospectionSendsNoProof(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, nil)
	tok := opaque(t)
	e.as.set(tok, e.answer(t, nil))
	r := dpopReq(t, e.k1, tok)
	proof := r.Header.Get("DPoP")
	if _, err := e.v.Check(r, resource.Policy{}); err != nil {
		t.Fatal(err)
	}
	c := e.as.lastCall(t)
	if c.header.Get("DPoP") != "" || len(c.header.Values("DPoP")) != 0 {
		t.Fatal("a DPoP header was sent to the introspection endpoint")
	}
	for k, vs := range c.form {
		for _, v := range vs {
			if strings.Contains(v, proof) || strings.EqualFold(k, "dpop") {
				t.Fatalf("the proof was sent in form member %q", k)
			}
		}
	}
	if c.form.Get("token") != tok || c.form.Get("token_type_hint") != "access_token" {
		t.Fatalf("form %v", c.form)
	}
	id, secret, ok := parseBasic(c.header.Get("Authorization"))
	if !ok || id != "rs" || secret != "rs-secret:with+specials" {
		t.Fatalf("client_secret_basic credentials %q %q %v", id, secret, ok)
	}
	if _, err := e.v.Check(dpopReq(t, e.k2, tok), resource.Policy{}); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("K2 proof: %v", err)
	}
}

// parseBasic decodes RFC 6749 §2.3.1 credentials.
func parseBasic(h string) (string, string, bool) {
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	id, secret, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", false
	}
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	return id, secret, ok && err1 == nil && err2 == nil
}

// TestIntrospectionUnavailable: every failure of the endpoint is 503
// introspection_unavailable, never invalid_token, and is not cached.
func TestIntrospectionUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(e *introEnv, tok string)
		mod   func(*resource.Config, *resource.Introspection)
	}{
		{"5xx", func(e *introEnv, _ string) { e.as.fail(http.StatusBadGateway, 0) }, nil},
		{"401 to our credentials", func(e *introEnv, _ string) { e.as.fail(http.StatusUnauthorized, 0) }, nil},
		{"malformed JSON", func(e *introEnv, tok string) { e.as.set(tok, `{"active":tru`) }, nil},
		{"oversized", func(e *introEnv, tok string) {
			e.as.set(tok, `{"active":true,"x":"`+strings.Repeat("a", 2000)+`"}`)
		}, func(_ *resource.Config, in *resource.Introspection) { in.MaxResponseBytes = 1000 }},
		{"network", func(e *introEnv, _ string) { e.as.srv.Close() }, nil},
		{"redirect not followed", func(e *introEnv, _ string) { e.as.fail(http.StatusTemporaryRedirect, 0) }, nil},
		{"timeout", func(e *introEnv, _ string) { e.as.fail(0, 500*time.Millisecond) },
			func(_ *resource.Config, in *resource.Introspection) { in.Timeout = 50 * time.Millisecond }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			e := newIntroEnv(t, func(c *resource.Config, in *resource.Introspection) {
				c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &sync.Mutex{}}, &slog.HandlerOptions{Level: slog.LevelWarn}))
				if tc.mod != nil {
					tc.mod(c, in)
				}
			})
			tok := opaque(t)
			tc.setup(e, tok)
			for i := range 3 {
				_, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{})
				var re *resource.Error
				if !errors.As(err, &re) || !errors.Is(err, resource.ErrUnavailable) || re.Status != 503 || re.Reason != oautherr.ReasonIntrospectionUnavailable || re.Code != "" {
					t.Fatalf("request %d: %v %+v", i, err, re)
				}
			}
			if tc.name != "network" {
				if n := e.as.n.Load(); n != 3 {
					t.Fatalf("%d calls for 3 requests: a failure was cached", n)
				}
			}
			out := logs.String()
			if n := strings.Count(out, "token introspection unavailable"); n != 1 {
				t.Fatalf("%d Warn records for 3 failures within the interval, want 1:\n%s", n, out)
			}
			if strings.Contains(out, tok) || strings.Contains(out, "rs-secret") {
				t.Fatal("the log holds the token or the client secret")
			}
		})
	}
}

// TestIntrospectionCache: answers are reused for at most CacheTTL, never
// past exp; refusals for at most 5 seconds.
func TestIntrospectionCache(t *testing.T) {
	t.Parallel()
	t.Run("active answer reused within the TTL", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) { in.CacheTTL = time.Minute })
		tok := opaque(t)
		e.as.set(tok, e.answer(t, nil))
		check := func(wantCalls int64) {
			t.Helper()
			if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
				t.Fatal(err)
			}
			if n := e.as.n.Load(); n != wantCalls {
				t.Fatalf("%d introspection calls, want %d", n, wantCalls)
			}
		}
		check(1)
		e.clock.Add(59 * time.Second)
		check(1)
		e.clock.Add(time.Second)
		check(2)
	})
	t.Run("ATV-32/never past exp", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) { in.CacheTTL = time.Hour })
		tok := opaque(t)
		e.as.set(tok, e.answer(t, func(m map[string]any) { m["exp"] = e.clock.Now().Unix() + 20 }))
		if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(20 * time.Second)
		// The AS now reports the token inactive; the expired answer is
		// not reused.
		e.as.set(tok, `{"active":false}`)
		_, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{})
		var re *resource.Error
		if !errors.As(err, &re) || re.Reason != oautherr.ReasonTokenInactive || e.as.n.Load() != 2 {
			t.Fatalf("%v after exp with %d calls", err, e.as.n.Load())
		}
	})
	t.Run("inactive answer cached for 5 seconds", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, nil)
		tok := opaque(t)
		for i, step := range []time.Duration{0, 4 * time.Second, time.Second} {
			e.clock.Add(step)
			if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); !errors.Is(err, resource.ErrInvalidToken) {
				t.Fatal(err)
			}
			want := []int64{1, 1, 2}[i]
			if n := e.as.n.Load(); n != want {
				t.Fatalf("step %d: %d calls, want %d", i, n, want)
			}
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) { in.CacheTTL = -1 })
		tok := opaque(t)
		e.as.set(tok, e.answer(t, nil))
		for range 2 {
			if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.as.n.Load(); n != 2 {
			t.Fatalf("%d calls with the cache off, want 2", n)
		}
	})
}

// TestIntrospectionSharedCall: concurrent requests for one token not yet
// cached make one introspection call.
func TestIntrospectionSharedCall(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, nil)
	tok := opaque(t)
	e.as.set(tok, e.answer(t, nil))
	e.as.fail(0, 200*time.Millisecond)
	const n = 8
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = dpopReq(t, e.k1, tok)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.v.Check(r, resource.Policy{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := e.as.n.Load(); c != 1 {
		t.Fatalf("%d introspection calls for %d concurrent requests, want 1", c, n)
	}
}

// TestIntrospectionClientAuth: private_key_jwt and tls_client_auth reach
// the endpoint with verifiable credentials.
func TestIntrospectionClientAuth(t *testing.T) {
	t.Parallel()
	t.Run("private_key_jwt", func(t *testing.T) {
		t.Parallel()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) {
			in.Auth, in.ClientSecret = resource.AuthPrivateKeyJWT, ""
			in.ClientKey, in.ClientKeyAlgorithm, in.ClientKeyID = key, "ES256", "rs-key"
		})
		tok := opaque(t)
		e.as.set(tok, e.answer(t, nil))
		if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		c := e.as.lastCall(t)
		if c.header.Get("Authorization") != "" || c.form.Get("client_id") != "rs" ||
			c.form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			t.Fatalf("request %v %v", c.header, c.form)
		}
		a, err := jwt.ParseSigned(c.form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if a.Headers[0].KeyID != "rs-key" {
			t.Fatalf("kid %q", a.Headers[0].KeyID)
		}
		var cl jwt.Claims
		if err := a.Claims(key.Public(), &cl); err != nil {
			t.Fatal(err)
		}
		if err := cl.ValidateWithLeeway(jwt.Expected{Issuer: "rs", Subject: "rs", AnyAudience: jwt.Audience{introIssuer}, Time: e.clock.Now()}, 0); err != nil || cl.ID == "" {
			t.Fatalf("assertion claims %+v: %v", cl, err)
		}
	})
	t.Run("tls_client_auth over real TLS", func(t *testing.T) {
		t.Parallel()
		ca, err := certs.NewCA(certs.Options{CommonName: "AS CA"})
		if err != nil {
			t.Fatal(err)
		}
		srvLeaf, err := ca.Issue(certs.Options{CommonName: "as", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		rsLeaf, err := ca.Issue(certs.Options{CommonName: "rs", Client: true})
		if err != nil {
			t.Fatal(err)
		}
		var seen atomic.Value
		as := newIntroAS(t)
		as.srv.Close()
		tlsAS := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) > 0 {
				seen.Store(mtlsbound.Thumbprint(r.TLS.PeerCertificates[0]))
			}
			as.serve(w, r)
		}))
		tlsAS.TLS = &tls.Config{Certificates: []tls.Certificate{srvLeaf.TLSCertificate()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
		tlsAS.StartTLS()
		t.Cleanup(tlsAS.Close)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{rsLeaf.TLSCertificate()}}}}
		e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) {
			in.Endpoint = tlsAS.URL + "/introspect"
			in.Auth, in.ClientSecret, in.HTTPClient = resource.AuthTLSClient, "", client
		})
		tok := opaque(t)
		as.set(tok, e.answer(t, nil))
		if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		if seen.Load() != mtlsbound.Thumbprint(rsLeaf.Cert) {
			t.Fatal("the introspection call did not present the client certificate")
		}
		if c := as.lastCall(t); c.form.Get("client_id") != "rs" || c.header.Get("Authorization") != "" {
			t.Fatalf("request %v %v", c.header, c.form)
		}
	})
}

// TestIntrospectionConfig: New refuses unsafe or incomplete settings.
func TestIntrospectionConfig(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ok := func() resource.Introspection {
		return resource.Introspection{Endpoint: "https://as.example.test/introspect", ClientID: "rs", Auth: resource.AuthClientSecretBasic, ClientSecret: "s"}
	}
	keys := restest.NewIssuer(t, "https://jwt.example.test", jose.ES256, "k")
	static, err := resource.NewStaticKeySet(keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		issuers func() []resource.Issuer
		wantErr bool
	}{
		{"https endpoint", func() []resource.Issuer {
			in := ok()
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, false},
		{"http on loopback", func() []resource.Issuer {
			in := ok()
			in.Endpoint = "http://127.0.0.1:1/introspect"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, false},
		{"http on IPv6 loopback", func() []resource.Issuer {
			in := ok()
			in.Endpoint = "http://[::1]:1/introspect"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, false},
		{"http to localhost, a name", func() []resource.Issuer {
			in := ok()
			in.Endpoint = "http://localhost:1/introspect"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"http elsewhere", func() []resource.Issuer {
			in := ok()
			in.Endpoint = "http://as.example.test/introspect"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"http elsewhere with the insecure opt-in", func() []resource.Issuer {
			in := ok()
			in.Endpoint, in.InsecureAllowHTTP = "http://as.example.test/introspect", true
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, false},
		{"relative endpoint", func() []resource.Issuer {
			in := ok()
			in.Endpoint = "/introspect"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"no client id", func() []resource.Issuer {
			in := ok()
			in.ClientID = ""
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"no auth method", func() []resource.Issuer {
			in := ok()
			in.Auth, in.ClientSecret = 0, ""
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"basic without secret", func() []resource.Issuer {
			in := ok()
			in.ClientSecret = ""
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"private_key_jwt with a secret", func() []resource.Issuer {
			in := ok()
			in.Auth, in.ClientKey, in.ClientKeyAlgorithm = resource.AuthPrivateKeyJWT, key, "ES256"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"private_key_jwt with HS256", func() []resource.Issuer {
			in := ok()
			in.Auth, in.ClientSecret, in.ClientKey, in.ClientKeyAlgorithm = resource.AuthPrivateKeyJWT, "", key, "HS256"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"private_key_jwt with an algorithm the key cannot make", func() []resource.Issuer {
			in := ok()
			in.Auth, in.ClientSecret, in.ClientKey, in.ClientKeyAlgorithm = resource.AuthPrivateKeyJWT, "", key, "RS256"
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"tls_client_auth without a client certificate", func() []resource.Issuer {
			in := ok()
			in.Auth, in.ClientSecret, in.HTTPClient = resource.AuthTLSClient, "", &http.Client{Transport: &http.Transport{}}
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"two issuers with introspection", func() []resource.Issuer {
			a, b := ok(), ok()
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &a}, {Identifier: "https://as2.example.test", Introspection: &b}}
		}, true},
		{"keys and introspection", func() []resource.Issuer {
			in := ok()
			return []resource.Issuer{{Identifier: introIssuer, Keys: static, Introspection: &in}}
		}, false},
		{"neither", func() []resource.Issuer { return []resource.Issuer{{Identifier: introIssuer}} }, true},
		{"negative MaxConcurrent: no unlimited setting", func() []resource.Issuer {
			in := ok()
			in.MaxConcurrent = -1
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, true},
		{"MaxConcurrent 1", func() []resource.Issuer {
			in := ok()
			in.MaxConcurrent = 1
			return []resource.Issuer{{Identifier: introIssuer, Introspection: &in}}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := resource.New(resource.Config{Issuers: tc.issuers(), Audience: introAudience, Algorithms: resource.DefaultAlgorithms()})
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestIntrospectionOrJWT: with keys and introspection configured, a token
// shaped like a JWS is verified locally and an opaque one introspected; an
// issuer with introspection only has its JWTs introspected too.
func TestIntrospectionOrJWT(t *testing.T) {
	t.Parallel()
	jwtAS := restest.NewIssuer(t, introIssuer, jose.ES256, "k")
	static, err := resource.NewStaticKeySet(jwtAS.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	other := restest.NewIssuer(t, "https://jwt.example.test", jose.ES256, "k2")
	otherKeys, err := resource.NewStaticKeySet(other.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("same issuer, keys and introspection", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, func(c *resource.Config, _ *resource.Introspection) { c.Issuers[0].Keys = static })
		claims := jwtAS.Claims(introAudience, e.clock.Now())
		claims["cnf"] = map[string]any{"jkt": e.k1.Thumbprint()}
		jwtTok := jwtAS.Mint(t, restest.Header(), claims)
		if _, err := e.v.Check(dpopReq(t, e.k1, jwtTok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		if n := e.as.n.Load(); n != 0 {
			t.Fatalf("a JWT was introspected (%d calls)", n)
		}
		tok := opaque(t)
		e.as.set(tok, e.answer(t, nil))
		if _, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		if n := e.as.n.Load(); n != 1 {
			t.Fatalf("%d calls for an opaque token", n)
		}
	})
	t.Run("JWT of an introspection-only issuer", func(t *testing.T) {
		t.Parallel()
		e := newIntroEnv(t, func(c *resource.Config, _ *resource.Introspection) {
			c.Issuers = append(c.Issuers, resource.Issuer{Identifier: "https://jwt.example.test", Keys: otherKeys})
		})
		claims := jwtAS.Claims(introAudience, e.clock.Now())
		jwtTok := jwtAS.Mint(t, restest.Header(), claims)
		e.as.set(jwtTok, e.answer(t, nil))
		if _, err := e.v.Check(dpopReq(t, e.k1, jwtTok), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		if n := e.as.n.Load(); n != 1 {
			t.Fatalf("%d calls, want the JWT introspected once", n)
		}
		// A JWT of the keyed issuer never reaches the introspection endpoint.
		oc := other.Claims(introAudience, e.clock.Now())
		oc["cnf"] = map[string]any{"jkt": e.k1.Thumbprint()}
		if _, err := e.v.Check(dpopReq(t, e.k1, other.Mint(t, restest.Header(), oc)), resource.Policy{}); err != nil {
			t.Fatal(err)
		}
		if n := e.as.n.Load(); n != 1 {
			t.Fatalf("%d calls after a keyed issuer's JWT", n)
		}
	})
}

// TestIntrospectionMetrics: each call is observed as OpIntrospection, with
// an error only when the endpoint failed.
func TestIntrospectionMetrics(t *testing.T) {
	t.Parallel()
	m := &opRecorder{}
	e := newIntroEnv(t, func(c *resource.Config, _ *resource.Introspection) { c.Metrics = m })
	good, dead := opaque(t), opaque(t)
	e.as.set(good, e.answer(t, nil))
	if _, err := e.v.Check(dpopReq(t, e.k1, good), resource.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Check(dpopReq(t, e.k1, dead), resource.Policy{}); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatal(err)
	}
	e.as.fail(http.StatusInternalServerError, 0)
	if _, err := e.v.Check(dpopReq(t, e.k1, opaque(t)), resource.Policy{}); !errors.Is(err, resource.ErrUnavailable) {
		t.Fatal(err)
	}
	got := m.ops(resource.OpIntrospection)
	if len(got) != 3 || got[0] || got[1] || !got[2] {
		t.Fatalf("OpIntrospection observations (failed?) %v, want [false false true]", got)
	}
}

type opRecorder struct {
	mu  sync.Mutex
	obs map[resource.Operation][]bool
}

func (r *opRecorder) Request(resource.Binding, *resource.Error) {}
func (r *opRecorder) Observe(op resource.Operation, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.obs == nil {
		r.obs = map[resource.Operation][]bool{}
	}
	r.obs[op] = append(r.obs[op], err != nil)
}
func (r *opRecorder) ops(op resource.Operation) []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.obs[op]...)
}

// TestIntrospectionCallerGivesUp: a request whose context ends while
// another request's call is under way is refused with 503; the call still
// completes for the others.
func TestIntrospectionCallerGivesUp(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, nil)
	tok := opaque(t)
	e.as.set(tok, e.answer(t, nil))
	e.as.fail(0, 300*time.Millisecond)
	first := make(chan error, 1)
	go func() {
		_, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{})
		first <- err
	}()
	for e.as.n.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := e.v.Check(dpopReq(t, e.k1, tok).WithContext(ctx), resource.Policy{})
	if !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("waiting request whose context ended: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// RFC 9449 Figures 10, 11 and 13 (CHECKLIST KAT-7).
const (
	kat7Token    = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	kat7Answer   = `{"active": true, "sub": "someone@example.com", "iss": "https://server.example.com", "nbf": 1562262611, "exp": 1562266216, "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`
	kat7Proof    = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	kat7Clock    = 1562262618
	kat7Resource = "https://resource.example.org/protectedresource"
)

// TestIntrospectionKAT7: the RFC 9449 example opaque token, validated
// through an introspection stub answering Figure 11 at the RFC's clock, is
// accepted with the Figure 13 proof once; the resend, the Bearer scheme
// and a clock past the proof window are refused.
func TestIntrospectionKAT7(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scheme string
		resend bool
		clock  int64
		reason oautherr.Reason
	}{
		{name: "KAT-7/first send accepted", scheme: "DPoP", clock: kat7Clock},
		{name: "KAT-7/DPOP-RS-15/identical resend refused", scheme: "DPoP", resend: true, clock: kat7Clock, reason: oautherr.ReasonProofReplayed},
		{name: "KAT-7/ERR-13/Bearer scheme refused", scheme: "Bearer", clock: kat7Clock, reason: oautherr.ReasonBearerDowngrade},
		{name: "KAT-7/DPOP-RS-13/past the proof window refused", scheme: "DPoP", clock: kat7Clock + 60 + 60, reason: oautherr.ReasonProofTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			as := newIntroAS(t)
			as.set(kat7Token, kat7Answer)
			store, err := replaycache.NewLRU(replaycache.Config{Capacity: 100})
			if err != nil {
				t.Fatal(err)
			}
			v, err := resource.New(resource.Config{
				Issuers: []resource.Issuer{{Identifier: "https://server.example.com", Introspection: &resource.Introspection{
					Endpoint: as.srv.URL + "/as/introspect.oauth2", ClientID: "rs", Auth: resource.AuthClientSecretBasic,
					ClientSecret: "rs:Mku-6g_lCzKIdz4fsN7kYcya+Ti", InsecureAllowMissingAudience: true,
				}}},
				Audience:       "https://resource.example.org",
				Algorithms:     resource.DefaultAlgorithms(),
				RequiredClaims: []string{},
				Now:            func() time.Time { return time.Unix(tc.clock, 0) },
				PublicURL:      "https://resource.example.org",
				DPoP:           &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
			})
			if err != nil {
				t.Fatal(err)
			}
			req := func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, kat7Resource, nil)
				r.Header.Set("Authorization", tc.scheme+" "+kat7Token)
				r.Header.Set("DPoP", kat7Proof)
				return r
			}
			if tc.resend {
				if _, err := v.Check(req(), resource.Policy{}); err != nil {
					t.Fatalf("first send: %v", err)
				}
			}
			pr, err := v.Check(req(), resource.Policy{})
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if pr.Subject != "someone@example.com" || pr.BindingValue != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
					t.Fatalf("principal %+v", pr)
				}
				return
			}
			var re *resource.Error
			if !errors.As(err, &re) || re.Reason != tc.reason {
				t.Fatalf("got %v, want reason %s", err, tc.reason)
			}
		})
	}
}
