package conformance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/resource"
)

// pendingHandler lets a server start (and learn its URL) before its
// handler exists.
type pendingHandler struct{ h atomic.Pointer[http.Handler] }

func (p *pendingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := p.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

func (p *pendingHandler) set(h http.Handler) { p.h.Store(&h) }

// onceFetched is a self-signed client authenticator that fetches the
// client's jwks_uri once and never again: the variant MTLS-CA-11 must
// convict.
type onceFetched struct {
	url    string
	client *http.Client

	mu   sync.Mutex
	auth *mtlsbound.SelfSignedAuth
}

func (o *onceFetched) Authenticate(ctx context.Context, cert *x509.Certificate, _ []*x509.Certificate) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.auth == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
		resp, err := o.client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, mtlsbound.MaxJWKSBytes))
		resp.Body.Close()
		a, err := mtlsbound.SelfSignedFromJWKS(body)
		if err != nil {
			return err
		}
		o.auth = &a
	}
	return o.auth.Authenticate(ctx, cert)
}

// startJWKSURITarget starts an mTLS issuer and resource on loopback TLS
// whose client "jwks-app" (self_signed_tls_client_auth) has its jwks_uri
// on the suite's key host. With refreshing false the issuer reads that
// jwks_uri once and never again.
func startJWKSURITarget(t *testing.T, refreshing bool) conformance.Target {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "jwks_uri CA"})
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ca.Issue(certs.Options{CommonName: "mtls-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	host, err := conformance.NewClientKeyHost(conformance.ClientKeyHostConfig{Certificate: srvCert.TLSCertificate()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })

	start := func(h *pendingHandler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert.TLSCertificate()}, ClientAuth: tls.RequestClientCert}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	asH, rsH := &pendingHandler{}, &pendingHandler{}
	as, rs := start(asH), start(rsH)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://rs.jwks-uri.test"
	is, err := issuer.New(issuer.Config{Issuer: as.URL, Keys: ks, Audience: []string{aud}})
	if err != nil {
		t.Fatal(err)
	}
	jwksApp := issuer.Client{ID: "jwks-app", AuthMethod: issuer.AuthSelfSignedTLSClient, Scopes: []string{"read"}, JWKSURI: host.URL("jwks-app")}
	if !refreshing {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
		t.Cleanup(tr.CloseIdleConnections)
		jwksApp.JWKSURI = ""
		jwksApp.Certificate = &onceFetched{url: host.URL("jwks-app"), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	}
	reg, err := issuer.NewMemoryRegistry(
		issuer.Client{ID: "mtls-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"read"},
			Certificate: mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=mtls-app"}},
		jwksApp,
	)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: replay, Issuer: is, Clients: reg, MTLS: true,
		ClientJWKS: issuer.ClientJWKSConfig{RootCAs: ca.Pool(), InsecureAllowPrivateAddresses: true, MinRefreshInterval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	asH.set(srv.Handler())
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{Algorithms: resource.DefaultAlgorithms(), Issuers: []resource.Issuer{{Identifier: as.URL, Keys: keys}}, Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	rsH.set(v.Middleware(resource.Policy{Accept: resource.AcceptBound, Scopes: []string{"read"}})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	})))
	tc1 := c1.TLSCertificate()
	return conformance.Target{
		Profile:         conformance.ProfileMTLS,
		TokenEndpoint:   as.URL + issuer.TokenPath,
		ClientID:        "mtls-app",
		Scope:           "read",
		Resource:        rs.URL + "/resource",
		ClientCert:      &tc1,
		RootCAs:         ca.Pool(),
		ClientKeys:      host,
		JWKSURIClientID: "jwks-app",
		KeyRefreshWait:  5 * time.Second,
		Timeout:         30 * time.Second,
	}
}

// TestJWKSURIRotationCase runs MTLS-CA-11 against the module's issuer
// (passes) and against a variant that reads the client's jwks_uri once
// (fails), and shows the case is not applicable without a key host.
func TestJWKSURIRotationCase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		refreshing bool
		noHost     bool
		want       conformance.Status
		reason     string
	}{
		{"issuer refreshes", true, false, conformance.StatusPass, "accepted and a removed one refused"},
		{"issuer never refreshes", false, false, conformance.StatusFail, "S3, published beside S1, was not accepted"},
		{"no key host", true, true, conformance.StatusSkip, "not applicable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := startJWKSURITarget(t, tt.refreshing)
			if tt.noHost {
				target.ClientKeys, target.JWKSURIClientID = nil, ""
			}
			rep, err := conformance.Run(context.Background(), target, conformance.Options{Cases: []string{"MTLS-CA-11"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 1 {
				t.Fatalf("%d results", len(rep.Results))
			}
			res := rep.Results[0]
			if res.Status != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("%s: %s (%s), want %s containing %q", res.ID, res.Status, res.Reason, tt.want, tt.reason)
			}
		})
	}
}

// TestClientKeyHostValidation: the key host needs a certificate and a
// loopback address, and a target names a host and a client together.
func TestClientKeyHostValidation(t *testing.T) {
	t.Parallel()
	ca, err := certs.NewCA(certs.Options{CommonName: "host CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  conformance.ClientKeyHostConfig
		ok   bool
	}{
		{"loopback", conformance.ClientKeyHostConfig{Certificate: leaf.TLSCertificate()}, true},
		{"no certificate", conformance.ClientKeyHostConfig{}, false},
		{"all interfaces", conformance.ClientKeyHostConfig{Addr: ":0", Certificate: leaf.TLSCertificate()}, false},
		{"other address", conformance.ClientKeyHostConfig{Addr: "192.0.2.1:0", Certificate: leaf.TLSCertificate()}, false},
		{"the name localhost", conformance.ClientKeyHostConfig{Addr: "localhost:0", Certificate: leaf.TLSCertificate()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := conformance.NewClientKeyHost(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if h != nil {
				if !strings.HasPrefix(h.URL("a b"), "https://127.0.0.1:") || !strings.HasSuffix(h.URL("a b"), "/clients/a%20b/jwks.json") {
					t.Errorf("URL = %s", h.URL("a b"))
				}
				_ = h.Close()
			}
		})
	}
	target := conformance.Target{TokenEndpoint: "https://as.example.test/token", ClientID: "a", Resource: "https://rs.example.test/r", JWKSURIClientID: "jwks-app"}
	if err := target.Validate(); err == nil {
		t.Error("a jwks_uri client without a key host validated")
	}
}
