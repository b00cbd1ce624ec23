package conformance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/trustedproxy"
)

// lateHandler lets a server start (and learn its URL) before its handler
// exists.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

// startModule starts the module's real issuer and resource servers on
// loopback TLS and describes them as a Target. The resources accept
// tokens under accept.
func startModule(t *testing.T, nonces bool, accept resource.Accept) conformance.Target {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "self-run CA"})
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
	c2, err := ca.Issue(certs.Options{CommonName: "someone-else", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	start := func(h http.Handler, auth tls.ClientAuthType) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert.TLSCertificate()}, ClientAuth: auth}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	asH, rsH, rs2H, proxyH := &lateHandler{}, &lateHandler{}, &lateHandler{}, &lateHandler{}
	as := start(asH, tls.RequestClientCert)
	rs := start(rsH, tls.RequestClientCert)
	rs2 := start(rs2H, tls.RequestClientCert)
	// proxy is the same resource as seen through a TLS-terminating proxy:
	// its listener trusts loopback peers to forward Client-Cert.
	proxy := start(proxyH, tls.NoClientCert)
	// plain is the same resource on a listener without TLS (DPOP-RS-25).
	plainH := &lateHandler{}
	plain := httptest.NewServer(plainH)
	t.Cleanup(plain.Close)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	aud1, aud2 := "https://rs.self-run.test", "https://rs2.self-run.test"
	is, err := issuer.New(issuer.Config{Issuer: as.URL, Keys: ks, Audience: []string{aud1, aud2}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(
		// app may also use the test grant, so that DPOP-AS-08 can record
		// how a confidential client's refresh token treats another key.
		issuer.Client{ID: "app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret("app-secret-0123456789abcdef"), Scopes: []string{"read"},
			GrantTypes: []string{issuer.GrantClientCredentials, issuer.GrantRefreshToken, testRefreshGrant}},
		// public-app is a public client; by default it may use the
		// refresh_token grant and every extension grant.
		issuer.Client{ID: "public-app", AuthMethod: issuer.AuthNone, Scopes: []string{"read"}},
		issuer.Client{ID: "mtls-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"read"},
			Certificate: mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=mtls-app"}},
		issuer.Client{ID: "rs", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret("rs-secret-0123456789abcdef"), Introspect: true, IntrospectAll: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	scfg := issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, MTLS: true,
		Grants: map[string]issuer.GrantHandler{testRefreshGrant: issuer.GrantHandlerFunc(testRefreshGrantHandler)}}
	if nonces {
		n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{randomBytes(t, 32)}, Label: as.URL})
		if err != nil {
			t.Fatal(err)
		}
		scfg.Nonces = n
	}
	srv, err := issuer.NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	asH.set(srv.Handler())

	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	newStore := func() *replaycache.LRU {
		store, err := replaycache.NewLRU(replaycache.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return store
	}
	newRS := func(aud, label string, store *replaycache.LRU, trusted *trustedproxy.Set) http.Handler {
		dc := &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256", "RS256", "EdDSA"}, ReplayStore: store}
		if nonces {
			n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{randomBytes(t, 32)}, Label: label})
			if err != nil {
				t.Fatal(err)
			}
			dc.Nonces = n
		}
		v, err := resource.New(resource.Config{
			Algorithms:     resource.DefaultAlgorithms(),
			Issuers:        []resource.Issuer{{Identifier: as.URL, Keys: keys}},
			Audience:       aud,
			DPoP:           dc,
			TrustedProxies: trusted,
			PublicURL:      label, // the URL the suite uses, for the DPoP htu check
		})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/resource", v.Middleware(resource.Policy{Accept: accept, Scopes: []string{"read"}})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":true}`))
		})))
		return mux
	}
	shared := newStore()
	rsH.set(newRS(aud1, rs.URL, shared, nil))
	loopback, err := trustedproxy.New(trustedproxy.Config{Peers: []string{"127.0.0.1/32", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	proxyH.set(newRS(aud1, proxy.URL, shared, loopback))
	rs2H.set(newRS(aud2, rs2.URL, newStore(), nil))
	plainH.set(newRS(aud1, plain.URL, shared, nil))

	tc1, tc2 := c1.TLSCertificate(), c2.TLSCertificate()
	return conformance.Target{
		TokenEndpoint:              as.URL + issuer.TokenPath,
		ClientID:                   "app",
		ClientSecret:               "app-secret-0123456789abcdef",
		Scope:                      "read",
		ResourceScope:              "read",
		Resource:                   rs.URL + "/resource",
		Issuer:                     as.URL,
		Audience:                   aud1,
		ClientCert:                 &tc1,
		MTLSClientID:               "mtls-app",
		SecondClientCert:           &tc2,
		RootCAs:                    ca.Pool(),
		IssuerKey:                  &jose.JSONWebKey{Key: key, KeyID: ks.ActiveKeyID(), Algorithm: "ES256"},
		SecondResource:             rs2.URL + "/resource",
		TrustedProxyResource:       proxy.URL + "/resource",
		PlainResource:              plain.URL + "/resource",
		NonceRequired:              nonces,
		TokenEndpointNonceRequired: nonces,
		MetadataURL:                as.URL + issuer.MetadataPath,
		IntrospectionEndpoint:      as.URL + issuer.IntrospectionPath,
		IntrospectionClientID:      "rs",
		IntrospectionClientSecret:  "rs-secret-0123456789abcdef",
		// Generous: the race detector and parallel packages slow the
		// servers down, and a case must not fail on a slow machine.
		Timeout: 30 * time.Second,
		RefreshGrant: &conformance.RefreshGrant{
			ClientID:  "public-app",
			GrantType: testRefreshGrant,
			Params:    url.Values{"subject": {testRefreshSubject}},
		},
	}
}

// testRefreshGrant is the self-run's test hook for the refresh-token cases
// (DPOP-AS-06/07/08, MTLS-CB-06/07): an extension grant standing in for an
// authorization code grant, which issues tokens and a refresh token for the
// fixed subject sent as "subject". It authenticates no user: never register
// such a grant on a production issuer.
const (
	testRefreshGrant   = "urn:senderbound:test:refresh-grant"
	testRefreshSubject = "alice"
)

func testRefreshGrantHandler(_ context.Context, req *issuer.GrantRequest) (*issuer.Grant, error) {
	if req.Params["subject"] != testRefreshSubject {
		return nil, issuer.GrantError(issuer.ErrInvalidGrant, "unknown test subject")
	}
	if sc := req.Params["scope"]; sc != "" && sc != "read" {
		return nil, issuer.GrantError(issuer.ErrInvalidScope, "requested scope is not allowed")
	}
	// The issuer binds the refresh token of a public client to the
	// request's DPoP key or certificate, and issues none when the request
	// has neither.
	return &issuer.Grant{Subject: testRefreshSubject, Scope: "read", RefreshToken: true}, nil
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSelfRunModule runs the catalogue against the module's own issuer and
// resource packages and requires every MUST case to pass. Policy failures
// and warnings are logged.
func TestSelfRunModule(t *testing.T) {
	t.Parallel()
	for _, nonces := range []bool{false, true} {
		name := "no-nonce"
		if nonces {
			name = "nonce"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			target := startModule(t, nonces, resource.AcceptBound)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, target, conformance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				switch {
				case r.Status == conformance.StatusFail && r.Level == conformance.LevelMust:
					t.Errorf("%s (%s): %s [observed %d %s]", r.ID, r.Section, r.Reason, r.Observed.Status, r.Observed.Error)
				case r.Status == conformance.StatusFail || r.Status == conformance.StatusWarn:
					t.Logf("%s %s (%s): %s", r.Status, r.ID, r.Level, r.Reason)
				}
			}
			if t.Failed() || testing.Verbose() {
				var b strings.Builder
				_ = rep.WriteText(&b)
				t.Log("\n" + b.String())
			}
		})
	}
}

// TestSelfRunDPoPOnly runs the Bearer downgrade cases against resources
// that accept DPoP-bound tokens only: a DPoP-bound token under Bearer is
// 401 invalid_token there too, not a challenge without an error.
func TestSelfRunDPoPOnly(t *testing.T) {
	t.Parallel()
	target := startModule(t, false, resource.AcceptDPoP)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"ERR-13", "ADV-64", "ADV-65"}
	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: ids})
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]bool{}
	for _, r := range rep.Results {
		ran[r.ID] = true
		if r.Status != conformance.StatusPass {
			t.Errorf("%s (%s): %s: %s [observed %d %s]", r.ID, r.Section, r.Status, r.Reason, r.Observed.Status, r.Observed.Error)
		}
	}
	for _, id := range ids {
		if !ran[id] {
			t.Errorf("%s did not run", id)
		}
	}
}
