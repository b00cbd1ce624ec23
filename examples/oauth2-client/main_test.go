package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

const secret = "service-a-secret-0123456789abcdefghij"

// seen is one request as the resource server received it.
type seen struct {
	authz, proof string
	status       int
}

// servers are the module's real issuer and resource server on loopback TLS,
// both demanding DPoP nonces.
type servers struct {
	tokenURL, apiURL string
	roots            *x509.CertPool
	tokenHits        atomic.Int32

	mu      sync.Mutex
	seen    []seen   // resource requests, in order
	rejects []string // the resource's reasons for refusing requests, in order
}

func (s *servers) requests() ([]seen, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.seen...), append([]string(nil), s.rejects...)
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func startServers(t *testing.T) *servers {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "example CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &servers{roots: ca.Pool()}
	newTLS := func() (*httptest.Server, string) {
		ts := httptest.NewUnstartedServer(nil)
		ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are part of the test
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
		t.Cleanup(ts.Close)
		return ts, "https://" + ts.Listener.Addr().String()
	}
	nonces := func(label string) *dpop.Nonces {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{b}, Label: label})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The authorization server: one confidential client whose tokens are
	// always DPoP-bound, and a nonce in every proof.
	as, asURL := newTLS()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	is, err := issuer.New(issuer.Config{Issuer: asURL, Keys: ks, Audience: []string{"https://api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(issuer.Client{
		ID: "service-a", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret),
		Scopes: []string{"orders:read"}, DPoPBoundAccessTokens: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, Nonces: nonces(asURL)})
	if err != nil {
		t.Fatal(err)
	}
	as.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == issuer.TokenPath {
			s.tokenHits.Add(1)
		}
		srv.Handler().ServeHTTP(w, r)
	})
	as.StartTLS()
	s.tokenURL = asURL + issuer.TokenPath

	// The resource server: DPoP only, with its own nonces and replay store.
	rs, rsURL := newTLS()
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	replay, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: asURL, Keys: keys}},
		Audience:   "https://api.example.com",
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: replay, Nonces: nonces(rsURL)},
		// The URL clients use, for the DPoP htu check.
		PublicURL: rsURL,
		OnReject: func(reason string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.rejects = append(s.rejects, reason)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	orders := v.Middleware(resource.Policy{Accept: resource.AcceptDPoP, Scopes: []string{"orders:read"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := resource.PrincipalFromContext(r.Context())
			fmt.Fprintf(w, "orders of %s (%s-bound)\n", p.ClientID, p.Binding)
		}))
	rs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		orders.ServeHTTP(sw, r)
		s.mu.Lock()
		s.seen = append(s.seen, seen{authz: r.Header.Get("Authorization"), proof: r.Header.Get("DPoP"), status: sw.status})
		s.mu.Unlock()
	})
	rs.StartTLS()
	s.apiURL = rsURL + "/orders"
	return s
}

func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClient(t *testing.T) {
	s := startServers(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := newClient(ctx, options{
		TokenEndpoint: s.tokenURL, ClientID: "service-a", ClientSecret: secret,
		Scopes: []string{"orders:read"}, Key: key, Roots: s.roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 3
	for i := range calls {
		body, err := get(ctx, client, s.apiURL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if string(body) != "orders of service-a (dpop-bound)\n" {
			t.Fatalf("call %d: body %q", i, body)
		}
	}
	// One token for all calls; its request was retried once with the
	// issuer's nonce.
	if got := s.tokenHits.Load(); got != 2 {
		t.Errorf("token endpoint hit %d times, want 2 (use_dpop_nonce, then the token)", got)
	}

	reqs, rejects := s.requests()
	if len(reqs) != calls+1 || reqs[0].status != http.StatusUnauthorized || len(rejects) != 1 || rejects[0] != "nonce_required" {
		t.Fatalf("resource saw %d requests (first %d), rejections %q; want a use_dpop_nonce 401 and %d successes", len(reqs), reqs[0].status, rejects, calls)
	}
	tok, ok := strings.CutPrefix(reqs[1].authz, "DPoP ")
	if !ok {
		t.Fatalf("Authorization scheme: %.10q…, want DPoP", reqs[1].authz)
	}
	if cnf, _ := claims(t, tok)["cnf"].(map[string]any); cnf["jkt"] == nil {
		t.Fatalf("access token is not DPoP-bound: cnf %v", cnf)
	}
	jtis := map[string]bool{}
	for i, r := range reqs[1:] {
		if r.status != http.StatusOK || r.authz != "DPoP "+tok {
			t.Fatalf("call %d: status %d, same token %v", i, r.status, r.authz == "DPoP "+tok)
		}
		c := claims(t, r.proof)
		if c["ath"] != dpop.AccessTokenHash(tok) || c["nonce"] == nil || c["htm"] != "GET" || c["htu"] != s.apiURL {
			t.Errorf("call %d: proof claims ath=%v nonce=%v htm=%v htu=%v", i, c["ath"], c["nonce"] != nil, c["htm"], c["htu"])
		}
		jti, _ := c["jti"].(string)
		if jti == "" || jtis[jti] {
			t.Errorf("call %d: jti %q missing or reused", i, jti)
		}
		jtis[jti] = true
	}

	// Replaying an accepted proof, even with its own token, is refused.
	last := reqs[len(reqs)-1]
	req, _ := http.NewRequest(http.MethodGet, s.apiURL, nil)
	req.Header.Set("Authorization", last.authz)
	req.Header.Set("DPoP", last.proof)
	resp, err := mtlsbound.NewClient(nil, s.roots).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chs, err := dpop.ParseChallenges(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || err != nil || len(chs) != 1 || chs[0].Error != oautherr.InvalidDPoPProof {
		t.Fatalf("replayed proof: %d %q, want 401 invalid_dpop_proof", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, after := s.requests(); len(after) != len(rejects)+1 || after[len(after)-1] != "proof_replayed" {
		t.Fatalf("resource rejections %q, want the replay refused as proof_replayed", after)
	}
}

func TestClientErrors(t *testing.T) {
	s := startServers(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := options{
		TokenEndpoint: s.tokenURL, ClientID: "service-a", ClientSecret: secret,
		Scopes: []string{"orders:read"}, Key: key, Roots: s.roots,
	}
	tests := []struct {
		name   string
		change func(*options)
		want   string
	}{
		{"wrong secret", func(o *options) { o.ClientSecret = "wrong-" + secret }, "invalid_client"},
		{"unregistered scope", func(o *options) { o.Scopes = []string{"orders:write"} }, "invalid_scope"},
		{"server CA not trusted", func(o *options) { o.Roots = x509.NewCertPool() }, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			client, err := newClient(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := get(context.Background(), client, s.apiURL); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("no key", func(t *testing.T) {
		o := good
		o.Key = nil
		if _, err := newClient(context.Background(), o); err == nil {
			t.Fatal("client without a DPoP key accepted")
		}
	})
}

func TestRequireDPoP(t *testing.T) {
	tests := []struct {
		tokenType string
		ok        bool
	}{
		{"DPoP", true},
		{"dpop", true},
		{"Bearer", false},
		{"", false}, // x/oauth2 reads a missing token_type as Bearer
		{"N_A", false},
	}
	for _, tc := range tests {
		t.Run(tc.tokenType, func(t *testing.T) {
			src := requireDPoP{oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t", TokenType: tc.tokenType})}
			_, err := src.Token()
			if (err == nil) != tc.ok {
				t.Fatalf("token_type %q: err %v, want ok=%v", tc.tokenType, err, tc.ok)
			}
		})
	}
}
