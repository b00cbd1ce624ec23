package restest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/trustedproxy"
)

// Audience is the resource server identifier used by the case table.
const Audience = "https://rs.example.test"

// Env is one configured resource server: issuers, client keys and
// certificates, a canary that must never be contacted, and the Verifier.
type Env struct {
	T0 time.Time
	// AS is the main trusted issuer (ES256, kid "as-1").
	AS *Issuer
	// AS2 is a second trusted issuer (RS256 key published with alg RS256).
	AS2 *Issuer
	// Rogue is an untrusted key that claims to be AS.
	Rogue *Issuer
	// Canary counts requests; tokens point jku/x5u at it.
	Canary     *httptest.Server
	CanaryHits atomic.Int64

	// K1 and K2 are DPoP client keys (ES256).
	K1, K2 *dpop.Prover
	// CA issues the server and client certificates. C1 and C2 are client
	// certificates, C1b is re-issued over C1's key, S1 is self-signed. P
	// is the trusted proxy's own client certificate, which it presents to
	// the TLS backend (upstream mTLS).
	CA              *certs.CA
	Server          *certs.Leaf
	C1, C2, C1b, S1 *certs.Leaf
	P               *certs.Leaf
	Nonces          *dpop.Nonces
	Replay          *replaycache.LRU
	Config          resource.Config
	Verifier        *resource.Verifier
	InsecureHTTP    bool
	nonceSecret     []byte
	k1Key           *ecdsa.PrivateKey
}

// Options selects optional features of an Env.
type Options struct {
	// DPoP enables the DPoP scheme with an in-memory replay store (or
	// ReplayStore when set).
	DPoP        bool
	ReplayStore dpop.ReplayStore
	// Nonces requires resource-server nonces.
	Nonces bool
	// InsecureHTTP accepts DPoP over plain HTTP.
	InsecureHTTP bool
	// Mod adjusts the configuration before the Verifier is built.
	Mod func(*Env, *resource.Config)
}

// NewEnv builds an Env whose clock is frozen at T0. Loopback peer
// 127.0.0.1 is the trusted proxy; direct test clients connect from
// 127.0.0.2.
func NewEnv(t testing.TB, o Options) *Env {
	t.Helper()
	e := &Env{T0: time.Unix(1_900_000_000, 0)}
	now := func() time.Time { return e.T0 }
	e.AS = NewIssuer(t, "https://as.example.test", jose.ES256, "as-1")
	e.AS2 = NewIssuer(t, "https://as2.example.test", jose.RS256, "as2-1")
	e.Rogue = NewIssuer(t, "https://as.example.test", jose.ES256, "as-1")
	e.Canary = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.CanaryHits.Add(1)
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}))
	t.Cleanup(e.Canary.Close)
	e.K1, e.k1Key = newProver(t, now)
	e.K2, _ = newProver(t, now)
	var err error
	if e.CA, err = certs.NewCA(certs.Options{CommonName: "test CA"}); err != nil {
		t.Fatal(err)
	}
	if e.Server, err = e.CA.Issue(certs.Options{CommonName: "rs", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}); err != nil {
		t.Fatal(err)
	}
	if e.C1, err = e.CA.Issue(certs.Options{CommonName: "client1", Client: true}); err != nil {
		t.Fatal(err)
	}
	if e.C2, err = e.CA.Issue(certs.Options{CommonName: "client1", Client: true}); err != nil { // same DN, other key (ADV-83)
		t.Fatal(err)
	}
	if e.C1b, err = e.CA.Issue(certs.Options{CommonName: "client1", Client: true, Key: e.C1.Key}); err != nil {
		t.Fatal(err)
	}
	if e.S1, err = certs.SelfSigned(certs.Options{CommonName: "self-signed client", Client: true}); err != nil {
		t.Fatal(err)
	}
	if e.P, err = e.CA.Issue(certs.Options{CommonName: "proxy", Client: true}); err != nil {
		t.Fatal(err)
	}
	proxies, err := trustedproxy.New(trustedproxy.Config{Peers: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ks1, err := resource.NewStaticKeySet(e.AS.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	ks2, err := resource.NewStaticKeySet(e.AS2.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	e.Config = resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers: []resource.Issuer{
			{Identifier: e.AS.ID, Keys: ks1},
			{Identifier: e.AS2.ID, Keys: ks2},
		},
		Audience:       Audience,
		Now:            now,
		TrustedProxies: proxies,
	}
	e.InsecureHTTP = o.InsecureHTTP
	e.Config.InsecureAllowDPoPOverHTTP = o.InsecureHTTP
	if o.DPoP {
		store := o.ReplayStore
		if store == nil {
			e.Replay, err = replaycache.NewLRU(replaycache.Config{Capacity: 1 << 16, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			store = e.Replay
		}
		e.Config.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256"}, ReplayStore: store}
		// One verifier serves the plain, TLS and proxy listeners, each
		// under its own loopback URL.
		e.Config.InsecureHostHeader = true
		if o.Nonces {
			e.nonceSecret = randBytes(32)
			e.Nonces, err = dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{e.nonceSecret}, Label: Audience, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			e.Config.DPoP.Nonces = e.Nonces
		}
	}
	if o.Mod != nil {
		o.Mod(e, &e.Config)
	}
	e.Verifier, err = resource.New(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newProver(t testing.TB, now func() time.Time) (*dpop.Prover, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k, &dpop.ProverOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p, k
}

// Claims returns valid claims from AS for Audience at T0.
func (e *Env) Claims() map[string]any { return e.AS.Claims(Audience, e.T0) }

// Token mints a valid token from AS after applying mod to the claims.
func (e *Env) Token(t testing.TB, mod func(c map[string]any)) string {
	c := e.Claims()
	if mod != nil {
		mod(c)
	}
	return e.AS.Mint(t, Header(), c)
}

// Route is one protected path of the test server and its policy.
type Route struct {
	Path   string
	Policy resource.Policy
}

// Routes lists the protected paths every adapter must serve. A route whose
// policy the Verifier cannot enforce (/dpop without DPoP) is left out; see
// [Servable].
func Routes() []Route {
	return []Route{
		{"/any", resource.Policy{Accept: resource.AcceptAny}},
		{"/bound", resource.Policy{}},
		{"/dpop", resource.Policy{Accept: resource.AcceptDPoP}},
		{"/mtls", resource.Policy{Accept: resource.AcceptMTLS}},
		{"/write", resource.Policy{Accept: resource.AcceptAny, Scopes: []string{"write"}}},
		{"/admin", resource.Policy{Accept: resource.AcceptAny, Scopes: []string{"admin"}}},
	}
}

// Servable reports whether v can enforce rt's policy, so that an adapter
// serves the route.
func Servable(v *resource.Verifier, rt Route) bool { return v.ValidatePolicy(rt.Policy) == nil }

// OKBody is what the protected handler answers, so the runner can tell the
// handler ran and with which principal.
func OKBody(p *resource.Principal) string {
	if p == nil {
		return "no principal"
	}
	return "ok sub=" + p.Subject + " binding=" + string(p.Binding)
}

// NetHTTPHandler serves Routes through the net/http middleware.
func (e *Env) NetHTTPHandler() http.Handler { return NetHTTPHandler(e.Verifier) }

// NetHTTPHandler serves Routes through v's net/http middleware.
func NetHTTPHandler(v *resource.Verifier) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		if !Servable(v, rt) {
			continue
		}
		mw := v.Middleware(rt.Policy)
		mux.Handle(rt.Path, mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, OKBody(resource.PrincipalFromContext(r.Context())))
		})))
	}
	return mux
}

// Target is a running server reachable with Client at URL.
type Target struct {
	URL    string
	Client *http.Client
}

// Case is one request and its expected outcome.
type Case struct {
	// Name starts with the CHECKLIST id.
	Name string
	// Path is one of Routes (default "/any").
	Path string
	// Method defaults to GET.
	Method string
	// Via names the Target to send through (default "http").
	Via string
	// Body, when set, is sent with Content-Type
	// application/x-www-form-urlencoded.
	Body string
	// Build sets headers (and may change the URL query) on the request.
	Build func(t testing.TB, e *Env, r *http.Request)
	// WantStatus is the expected status.
	WantStatus int
	// WantBinding, for 200, is the expected principal binding.
	WantBinding resource.Binding
	// WantScheme and WantError: the challenge of WantScheme carries
	// error=WantError and no other challenge carries an error. Empty
	// WantScheme means no challenge carries an error.
	WantScheme string
	WantError  string
	// Replay sends the request once first, expecting 200, then again
	// (same headers) expecting the Want fields.
	Replay bool
	// After runs extra assertions on the response.
	After func(t testing.TB, c *Call)
}

// Call is what After sees: the environment, the target, the request sent
// and the response received (body already read into Body).
type Call struct {
	Env    *Env
	Target Target
	Req    *http.Request
	Resp   *http.Response
	Body   []byte
}

// Challenge is a parsed WWW-Authenticate challenge.
type Challenge struct {
	Scheme string
	Params map[string]string
}

// Challenges parses the WWW-Authenticate fields of h with
// dpop.ParseChallenges and fails on a syntax error or a repeated
// parameter (ERR-08).
func Challenges(t testing.TB, h http.Header) []Challenge {
	t.Helper()
	var out []Challenge
	for _, v := range h.Values("WWW-Authenticate") {
		if strings.Contains(v, "error=") && strings.Count(v, "error=") != 1 {
			t.Fatalf("error parameter repeated (ERR-08)")
		}
		chs, err := dpop.ParseChallenges(v)
		if err != nil {
			t.Fatalf("unparsable WWW-Authenticate: %v", err)
		}
		for _, c := range chs {
			p := map[string]string{}
			if c.Realm != "" {
				p["realm"] = c.Realm
			}
			if c.Error != "" {
				p["error"] = c.Error
			}
			if c.ErrorDescription != "" {
				p["error_description"] = c.ErrorDescription
			}
			if c.Scope != "" {
				p["scope"] = c.Scope
			}
			if len(c.Algs) > 0 {
				p["algs"] = strings.Join(c.Algs, " ")
			}
			out = append(out, Challenge{Scheme: c.Scheme, Params: p})
		}
	}
	return out
}

// Run sends every case through the named targets and checks the outcome.
func Run(t *testing.T, e *Env, targets map[string]Target, cases []Case) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			via := tc.Via
			if via == "" {
				via = "http"
			}
			tg, ok := targets[via]
			if !ok {
				t.Fatalf("no target %q", via)
			}
			path := tc.Path
			if path == "" {
				path = "/any"
			}
			method := tc.Method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if tc.Body != "" {
				body = strings.NewReader(tc.Body)
			}
			req, err := http.NewRequest(method, tg.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.Body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.Build != nil {
				tc.Build(t, e, req)
			}
			if tc.Replay {
				first := req.Clone(req.Context())
				resp, err := tg.Client.Do(first)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("first send: status %d, want 200", resp.StatusCode)
				}
			}
			resp, err := tg.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			rb, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.WantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tc.WantStatus, rb)
			}
			CheckHygiene(t, req, resp, rb)
			if resp.StatusCode == http.StatusOK {
				want := "ok sub="
				if !strings.HasPrefix(string(rb), want) {
					t.Fatalf("handler body = %q", rb)
				}
				if tc.WantBinding != "" && !strings.HasSuffix(string(rb), "binding="+string(tc.WantBinding)) {
					t.Fatalf("body = %q, want binding %s", rb, tc.WantBinding)
				}
			} else if strings.HasPrefix(string(rb), "ok") {
				t.Fatalf("handler ran on a rejected request")
			}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				chs := Challenges(t, resp.Header)
				if len(chs) == 0 {
					t.Fatal("no WWW-Authenticate challenge")
				}
				found := tc.WantScheme == ""
				for _, c := range chs {
					errCode, has := c.Params["error"]
					if c.Scheme == tc.WantScheme {
						if errCode != tc.WantError {
							t.Fatalf("%s challenge error = %q, want %q (%v)", c.Scheme, errCode, tc.WantError, resp.Header.Values("WWW-Authenticate"))
						}
						found = true
					} else if has {
						t.Fatalf("%s challenge carries error %q; only %q may (ERR-11)", c.Scheme, errCode, tc.WantScheme)
					}
					if c.Scheme == "Bearer" && c.Params["realm"] == "" {
						t.Fatal("Bearer challenge without realm (ERR-10)")
					}
				}
				if !found {
					t.Fatalf("no %s challenge in %v", tc.WantScheme, resp.Header.Values("WWW-Authenticate"))
				}
			} else if tc.WantError != "" && !strings.Contains(string(rb), `"error":"`+tc.WantError+`"`) {
				t.Fatalf("body %q lacks error %q", rb, tc.WantError)
			}
			if resp.StatusCode == http.StatusBadRequest {
				n := 0
				for _, c := range Challenges(t, resp.Header) {
					if e, ok := c.Params["error"]; ok {
						n++
						if e != "invalid_request" {
							t.Fatalf("400 with challenge error %q", e)
						}
					}
				}
				if n > 1 {
					t.Fatal("more than one challenge carries error (ERR-11)")
				}
			}
			if tc.After != nil {
				tc.After(t, &Call{Env: e, Target: tg, Req: req, Resp: resp, Body: rb})
			}
		})
	}
}

// CheckHygiene asserts what every response must satisfy: no credential
// echoed, rejected responses not cacheable and exposing the auth headers,
// at most one DPoP-Nonce.
func CheckHygiene(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	var dump strings.Builder
	for k, vs := range resp.Header {
		dump.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	dump.Write(body)
	for _, name := range []string{"Authorization", "DPoP", "Proxy-Authorization"} {
		for _, v := range req.Header.Values(name) {
			_, cred, _ := strings.Cut(v, " ")
			for _, part := range strings.Split(cred, ".") {
				if len(part) >= 16 && strings.Contains(dump.String(), part) {
					t.Fatalf("response echoes part of the %s field", name)
				}
			}
		}
	}
	if n := len(resp.Header.Values("DPoP-Nonce")); n > 1 {
		t.Fatalf("%d DPoP-Nonce fields (ERR-16)", n)
	}
	if resp.StatusCode >= 400 {
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatal("rejection without Cache-Control: no-store")
		}
		exp := strings.Join(resp.Header.Values("Access-Control-Expose-Headers"), ",")
		if !strings.Contains(exp, "WWW-Authenticate") || !strings.Contains(exp, "DPoP-Nonce") {
			t.Fatalf("Access-Control-Expose-Headers = %q (ERR-18)", exp)
		}
	}
	if resp.Header.Get("DPoP-Nonce") != "" && resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("response with DPoP-Nonce is cacheable (ERR-16)")
	}
	if resp.Header.Get("Client-Cert") != "" || resp.Header.Get("Client-Cert-Chain") != "" {
		t.Fatal("Client-Cert in a response (CCERT-07)")
	}
}
