package resource_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// crlSource is a settable fallback.CRLSource.
type crlSource struct {
	p atomic.Pointer[fallback.RevocationList]
}

func (s *crlSource) Current() *fallback.RevocationList { return s.p.Load() }

// fallbackEnv is a resource verifier with a fallback CA at T0.
type fallbackEnv struct {
	*restest.Env
	root          *certs.CA
	ca            *fallback.CA
	key           crypto.Signer
	chain         []*x509.Certificate // "svc": read write
	revoked       []*x509.Certificate
	crl           *crlSource
	fresh, stale  *fallback.RevocationList
	prover        *dpop.Prover
	foreign       *certs.Leaf
	fallbackProof func(t *testing.T, url string) string
}

func newFallbackEnv(t *testing.T, publicURL string) *fallbackEnv {
	t.Helper()
	ctx := context.Background()
	f := &fallbackEnv{crl: &crlSource{}}
	t0 := time.Unix(1_900_000_000, 0)
	now := func() time.Time { return t0 }
	var err error
	if f.root, err = certs.NewCA(certs.Options{CommonName: "Fallback CA", NotBefore: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if f.ca, err = fallback.NewCA(fallback.CAConfig{Certificate: f.root.Cert, Signer: f.root.Key, Now: now, CRLLifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	issue := func(id string) ([]*x509.Certificate, crypto.Signer) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			t.Fatal(err)
		}
		chain, err := f.ca.Issue(ctx, csr, id, []string{"read", "write"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return chain, k
	}
	f.chain, f.key = issue("svc")
	f.revoked, _ = issue("gone")
	if err := f.ca.Revoke(ctx, f.revoked[0].SerialNumber); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		dst **fallback.RevocationList
		at  time.Time
	}{{&f.fresh, t0}, {&f.stale, t0.Add(-3 * time.Hour)}} {
		der, err := f.ca.CRL(ctx, l.at)
		if err != nil {
			t.Fatal(err)
		}
		if *l.dst, err = fallback.ParseRevocationList(der, f.root.Cert); err != nil {
			t.Fatal(err)
		}
	}
	f.crl.p.Store(f.fresh)
	other, err := certs.NewCA(certs.Options{CommonName: "Foreign CA", NotBefore: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if f.foreign, err = other.Issue(certs.Options{CommonName: "svc", Client: true, NotBefore: t0.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	store, err := replaycache.NewLRU(replaycache.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	fv, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{f.root.Cert}, CRL: f.crl, Proofs: proofs, Now: now, CRLGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if f.prover, err = fallback.NewProver(f.key, f.chain, &dpop.ProverOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	f.Env = restest.NewEnv(t, restest.Options{DPoP: true, Mod: func(_ *restest.Env, c *resource.Config) {
		c.Fallback = fv
		c.PublicURL = publicURL
	}})
	return f
}

func (f *fallbackEnv) proof(t *testing.T, method, url string) string {
	t.Helper()
	p, err := f.prover.Proof(method, url, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFallbackPolicy covers the per-route opt-in: certificate-carried
// authorization over mTLS, from a trusted proxy and by signed request,
// scopes, revocation, a foreign CA, replay, and fail-closed revocation that
// leaves token requests alone.
func TestFallbackPolicy(t *testing.T) {
	t.Parallel()
	const url = "https://rs.example.test/resource"
	f := newFallbackEnv(t, "https://rs.example.test")
	withCerts := func(chain ...*x509.Certificate) *http.Request {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: chain}
		return r
	}
	signed := func(proof string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("DPoP", proof)
		return r
	}
	replayed := f.proof(t, http.MethodGet, url)
	if _, err := f.Verifier.Check(signed(replayed), resource.Policy{Fallback: true}); err != nil {
		t.Fatal(err)
	}
	fallbackRead := resource.Policy{Fallback: true, Scopes: []string{"read"}}
	tests := []struct {
		name   string
		req    func() *http.Request
		policy resource.Policy
		stale  bool
		want   error
		reason oautherr.Reason
		status int
	}{
		{name: "mTLS", req: func() *http.Request { return withCerts(f.chain...) }, policy: fallbackRead},
		{name: "mTLS leaf alone", req: func() *http.Request { return withCerts(f.chain[0]) }, policy: fallbackRead},
		{name: "forwarded by a trusted proxy", req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, url, nil)
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(f.chain[0]))
			return r
		}, policy: fallbackRead},
		{name: "Client-Cert from an untrusted peer", req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, url, nil)
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(f.chain[0]))
			return r
		}, policy: fallbackRead, want: resource.ErrNoCredentials, reason: "no_credentials", status: 401},
		{name: "signed request", req: func() *http.Request { return signed(f.proof(t, http.MethodGet, url)) }, policy: fallbackRead},
		{name: "route without the opt-in", req: func() *http.Request { return withCerts(f.chain...) }, policy: resource.Policy{}, want: resource.ErrNoCredentials, reason: "no_credentials", status: 401},
		{name: "scope missing", req: func() *http.Request { return withCerts(f.chain...) }, policy: resource.Policy{Fallback: true, Scopes: []string{"admin"}}, want: resource.ErrInsufficientScope, reason: "insufficient_scope", status: 403},
		{name: "revoked", req: func() *http.Request { return withCerts(f.revoked...) }, policy: fallbackRead, want: resource.ErrInvalidToken, reason: "fallback_revoked", status: 401},
		{name: "foreign CA", req: func() *http.Request { return withCerts(f.foreign.Cert) }, policy: fallbackRead, want: resource.ErrInvalidToken, reason: "fallback_untrusted_chain", status: 401},
		{name: "no credentials at all", req: func() *http.Request { return httptest.NewRequest(http.MethodGet, url, nil) }, policy: fallbackRead, want: resource.ErrNoCredentials, reason: "no_credentials", status: 401},
		{name: "replayed signed request", req: func() *http.Request { return signed(replayed) }, policy: fallbackRead, want: resource.ErrInvalidProof, reason: "proof_replayed", status: 401},
		{name: "signed request for another URL", req: func() *http.Request { return signed(f.proof(t, http.MethodGet, "https://rs.example.test/other")) }, policy: fallbackRead, want: resource.ErrInvalidProof, reason: "proof_htu_mismatch", status: 401},
		{name: "signed request for another method", req: func() *http.Request { return signed(f.proof(t, http.MethodPost, url)) }, policy: fallbackRead, want: resource.ErrInvalidProof, reason: "proof_htm_mismatch", status: 401},
		{name: "stale CRL: mTLS refused with 503", req: func() *http.Request { return withCerts(f.chain...) }, policy: fallbackRead, stale: true, want: resource.ErrUnavailable, reason: "fallback_crl_stale", status: 503},
		{name: "stale CRL: signed request refused with 503", req: func() *http.Request { return signed(f.proof(t, http.MethodGet, url)) }, policy: fallbackRead, stale: true, want: resource.ErrUnavailable, reason: "fallback_crl_stale", status: 503},
		{name: "stale CRL: token request unaffected", req: func() *http.Request { return bearerRequest(f.Token(t, nil)) }, policy: resource.Policy{Accept: resource.AcceptAny, Fallback: true}, stale: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the stale cases switch the shared CRL.
			if tc.stale {
				f.crl.p.Store(f.stale)
				defer f.crl.p.Store(f.fresh)
			}
			pr, err := f.Verifier.Check(tc.req(), tc.policy)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if pr.Binding == resource.BindingFallback {
					if pr.ClientID != "svc" || !pr.HasScope("write") || pr.CertThumbprint != mtlsbound.Thumbprint(f.chain[0]) {
						t.Fatalf("principal %+v", pr)
					}
				} else if tc.policy.Accept != resource.AcceptAny {
					t.Fatalf("binding %q", pr.Binding)
				}
				return
			}
			var e *resource.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Reason != tc.reason || e.Status != tc.status {
				t.Fatalf("got %v (%+v), want %v %s %d", err, e, tc.want, tc.reason, tc.status)
			}
			// A refusal of the certificate keeps the fallback error, with
			// the same reason, in the chain.
			var fe *fallback.Error
			if strings.HasPrefix(string(tc.reason), "fallback_") && (!errors.As(err, &fe) || fe.Reason != e.Reason || fallback.ReasonOf(err) != tc.reason) {
				t.Fatalf("fallback error %+v in %v", fe, err)
			}
		})
	}
	if err := f.Verifier.ValidatePolicy(resource.Policy{Fallback: true}); err != nil {
		t.Fatal(err)
	}
	plain := restest.NewEnv(t, restest.Options{})
	if err := plain.Verifier.ValidatePolicy(resource.Policy{Fallback: true}); err == nil {
		t.Fatal("Policy.Fallback accepted without Config.Fallback")
	}
}

// TestFallbackOverTLS runs both forms end to end over TLS on loopback:
// the client certificate in the handshake, and a signed request through
// dpop.Transport.
func TestFallbackOverTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	f := newFallbackEnv(t, "https://"+srv.Listener.Addr().String())
	srv.Config.Handler = f.Verifier.Middleware(resource.Policy{Fallback: true, Scopes: []string{"read"}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr := resource.PrincipalFromContext(r.Context())
		io.WriteString(w, string(pr.Binding)+" "+pr.ClientID)
	}))
	srv.StartTLS()
	defer srv.Close()

	mtls := srv.Client().Transport.(*http.Transport).Clone()
	mtls.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{f.chain[0].Raw, f.chain[1].Raw}, PrivateKey: f.key, Leaf: f.chain[0]}}
	// The environment trusts 127.0.0.1 as a proxy, whose own certificate is
	// never the client's: the mTLS client connects from 127.0.0.2.
	direct := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	mtls.DialContext = direct.DialContext
	signedReq := &dpop.Transport{Base: srv.Client().Transport, Prover: f.prover}
	for name, rt := range map[string]http.RoundTripper{"mTLS": mtls, "signed request": signedReq, "nothing": srv.Client().Transport} {
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL + "/resource")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if name == "nothing" {
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: status %d", name, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || string(body) != "fallback_certificate svc" {
			t.Fatalf("%s: status %d, body %q", name, resp.StatusCode, body)
		}
	}
	mtls.CloseIdleConnections()
}
