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
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// startOpaqueModule starts the module's issuer minting opaque access
// tokens and a resource server that validates them by introspection
// through the suite's recording proxy, whose listener the Target carries.
// Clients get DPoP-bound and certificate-bound tokens.
func startOpaqueModule(t *testing.T) conformance.Target {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "self-run CA"})
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
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
	// The servers' addresses are known before their handlers exist: the
	// issuer's identifier is its URL.
	newServer := func() (*httptest.Server, string) {
		s := httptest.NewUnstartedServer(nil)
		s.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert.TLSCertificate()}, ClientAuth: tls.RequestClientCert}
		t.Cleanup(s.Close)
		return s, "https://" + s.Listener.Addr().String()
	}
	as, asURL := newServer()
	rs, rsURL := newServer()
	proxyL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://rs.self-run.test"
	is, err := issuer.New(issuer.Config{Issuer: asURL, Keys: ks, Audience: []string{aud},
		AccessTokenFormat: issuer.FormatOpaque, AccessTokens: issuer.NewMemoryRefreshStore(nil)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(
		issuer.Client{ID: "app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret("app-secret-0123456789abcdef"), Scopes: []string{"read"}},
		issuer.Client{ID: "mtls-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"read"},
			Certificate: mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=mtls-app"}},
		issuer.Client{ID: "rs", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret("rs-secret-0123456789abcdef"), Introspect: true, Audiences: []string{aud}},
	)
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, MTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	as.Config.Handler = srv.Handler()
	as.StartTLS()

	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers: []resource.Issuer{{Identifier: asURL, Introspection: &resource.Introspection{
			Endpoint: "http://" + proxyL.Addr().String() + issuer.IntrospectionPath, ClientID: "rs",
			Auth: resource.AuthClientSecretBasic, ClientSecret: "rs-secret-0123456789abcdef",
		}}},
		Audience:  aud,
		DPoP:      &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256", "RS256", "EdDSA"}, ReplayStore: store},
		PublicURL: rsURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/resource", v.Middleware(resource.Policy{Scopes: []string{"read"}})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	})))
	rs.Config.Handler = mux
	rs.StartTLS()
	tc1, tc2 := c1.TLSCertificate(), c2.TLSCertificate()
	return conformance.Target{
		TokenEndpoint:             asURL + issuer.TokenPath,
		ClientID:                  "app",
		ClientSecret:              "app-secret-0123456789abcdef",
		Scope:                     "read",
		ResourceScope:             "read",
		Resource:                  rsURL + "/resource",
		Issuer:                    asURL,
		Audience:                  aud,
		Profile:                   conformance.ProfileBoth,
		ClientCert:                &tc1,
		MTLSClientID:              "mtls-app",
		SecondClientCert:          &tc2,
		RootCAs:                   ca.Pool(),
		IntrospectionEndpoint:     asURL + issuer.IntrospectionPath,
		IntrospectionClientID:     "rs",
		IntrospectionClientSecret: "rs-secret-0123456789abcdef",
		IntrospectionProxy:        proxyL,
		Timeout:                   30 * time.Second,
	}
}

// TestSelfRunOpaque runs the DPoP resource cases and the certificate-bound
// token cases against the module's
// issuer with opaque access tokens and a resource server that introspects
// them: DPOP-RS-23 and DPOP-RS-24 must pass, and no MUST case may fail.
func TestSelfRunOpaque(t *testing.T) {
	t.Parallel()
	target := startOpaqueModule(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: []string{"DPOP-RS", "ERR-13", "MTLS-CB"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"DPOP-RS-23", "DPOP-RS-24", "MTLS-CB-13", "ERR-13", "DPOP-RS-05"} {
		r, ok := rep.Result(id)
		if !ok || r.Status != conformance.StatusPass {
			t.Errorf("%s: %s %s", id, r.Status, r.Reason)
		}
	}
	for _, r := range rep.Results {
		if r.Status == conformance.StatusFail && r.Level == conformance.LevelMust {
			t.Errorf("%s (%s): %s [observed %d %s]", r.ID, r.Section, r.Reason, r.Observed.Status, r.Observed.Error)
		}
	}
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		_ = rep.WriteText(&b)
		t.Log("\n" + b.String())
	}
}

// TestSelfRunJWTNotApplicable: against JWT access tokens the opaque-token
// cases are not applicable, and without the proxy DPOP-RS-24 names the
// missing option.
func TestSelfRunJWTNotApplicable(t *testing.T) {
	t.Parallel()
	target := startModule(t, false, resource.AcceptBound)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: []string{"DPOP-RS-23", "DPOP-RS-24", "MTLS-CB-13"}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rep.Result("DPOP-RS-23"); r.Status != conformance.StatusSkip || !strings.Contains(r.Reason, "not applicable") {
		t.Errorf("DPOP-RS-23 against JWTs: %s %s", r.Status, r.Reason)
	}
	if r, _ := rep.Result("MTLS-CB-13"); r.Status != conformance.StatusSkip || !strings.Contains(r.Reason, "not applicable") {
		t.Errorf("MTLS-CB-13 against JWTs: %s %s", r.Status, r.Reason)
	}
	if r, _ := rep.Result("DPOP-RS-24"); r.Status != conformance.StatusSkip || !strings.Contains(r.Reason, "introspection-proxy") {
		t.Errorf("DPOP-RS-24 without the proxy: %s %s", r.Status, r.Reason)
	}
}
