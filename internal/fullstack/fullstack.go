// Package fullstack runs the module's own issuer and resource servers on
// loopback HTTPS, with a PKI generated for the run, and describes them as a
// conformance target: the full stack that the conformance self-run test,
// the conform command's tests and the demo all drive.
//
// [Start] binds every listener first, so that each server's URL is known
// before any handler is built, then serves:
//
//   - the issuer, with a confidential client, a public client, a
//     tls_client_auth client and an introspection client, and optionally
//     a test extension grant that issues refresh tokens;
//   - the resource, and a second resource under another audience with its
//     own replay cache;
//   - the first resource again behind a "proxy" listener, without client
//     certificates, that trusts Client-Cert from loopback peers;
//   - optionally the first resource on a plain-HTTP listener.
//
// The test extension grant authenticates no user: it exists for test
// deployments only and must never be registered on a production issuer.
package fullstack

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
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

// The registered clients and the scope every client gets.
const (
	// MTLSClientID is the tls_client_auth client; ClientCert is its
	// certificate (subject CN=mtls-app).
	MTLSClientID = "mtls-app"
	// PublicClientID is the public client, which may use the test grant.
	PublicClientID = "public-app"
	// IntrospectionClientID is the confidential client that may
	// introspect every token.
	IntrospectionClientID = "rs"
	// Scope is the one scope of every client, required by the resources.
	Scope = "read"
	// ResourcePath is the protected resource's path on each resource
	// listener.
	ResourcePath = "/resource"
	// TestSubject is the subject the test grant accepts in its "subject"
	// parameter.
	TestSubject = "alice"
)

// Options selects the variations of the stack. The zero value is a stack
// without nonces, test grant or plain-HTTP listener, whose resources accept
// DPoP- and certificate-bound tokens.
type Options struct {
	// CAName is the common name of the generated CA; default
	// "fullstack CA".
	CAName string
	// CertTTL is the validity of the CA and of every certificate; zero
	// means the certs package defaults.
	CertTTL time.Duration
	// ClientID is the confidential client that authenticates with
	// client_secret_basic; default "app". SecondClientCN is the common
	// name of the second client certificate, one the issuer does not
	// know; default "someone-else".
	ClientID, SecondClientCN string
	// ClientSecret and IntrospectionSecret are the two confidential
	// clients' secrets; empty means a random one.
	ClientSecret, IntrospectionSecret string
	// Audience and SecondAudience are the two resources' identifiers;
	// defaults https://rs.fullstack.test and https://rs2.fullstack.test.
	Audience, SecondAudience string
	// Nonces makes the token endpoint and every resource require DPoP
	// nonces, each with its own random secret.
	Nonces bool
	// Accept is what the resources accept.
	Accept resource.Accept
	// TestGrant, when set, is the grant type of an extension grant that
	// issues tokens and a refresh token to TestSubject with Scope; the
	// public client and the confidential client may use it.
	TestGrant string
	// Plain also serves the first resource on a plain-HTTP listener
	// (which refuses DPoP proofs over plain HTTP).
	Plain bool
	// Handler answers an admitted request; default {"ok":true}.
	Handler http.Handler
	// WrapResource, when set, wraps the first resource's handler on its
	// own listener only (not behind the proxy or on plain HTTP), e.g. to
	// make it deliberately non-conformant.
	WrapResource func(http.Handler) http.Handler
	// NewServer returns the server for a listener's handler; default a
	// server without limits. Its ErrorLog is replaced: the conformance
	// suite sends malformed traffic on purpose, and the servers'
	// complaints about it are noise.
	NewServer func(http.Handler) *http.Server
}

// Stack is a running full stack. Close stops it.
type Stack struct {
	// IssuerURL is the issuer identifier and the base URL of its
	// endpoints; the others are the base URLs of the resource listeners
	// (PlainURL is empty without Options.Plain).
	IssuerURL, ResourceURL, SecondResourceURL, ProxyURL, PlainURL string
	// CA issued every certificate; Roots holds it.
	CA    *certs.CA
	Roots *x509.CertPool
	// ServerCert is the certificate of every listener, for 127.0.0.1 and
	// localhost.
	ServerCert tls.Certificate
	// ClientLeaf is MTLSClientID's certificate; SecondClientLeaf is one
	// from the same CA that no client is registered with.
	ClientLeaf, SecondClientLeaf *certs.Leaf
	// ClientCert and SecondClientCert are the two leaves as TLS
	// certificates.
	ClientCert, SecondClientCert tls.Certificate
	// ClientID, ClientSecret and IntrospectionSecret are the confidential
	// clients' credentials.
	ClientID, ClientSecret, IntrospectionSecret string
	// Audience and SecondAudience are the resources' identifiers.
	Audience, SecondAudience string
	// IssuerKey is the issuer's private signing key.
	IssuerKey *jose.JSONWebKey

	opts    Options
	servers []*http.Server
}

// Start generates the PKI and starts the stack on 127.0.0.1.
func Start(opts Options) (s *Stack, err error) {
	opts = withDefaults(opts)
	s = &Stack{opts: opts, ClientID: opts.ClientID, Audience: opts.Audience, SecondAudience: opts.SecondAudience}
	if s.ClientSecret, err = secretOr(opts.ClientSecret); err != nil {
		return nil, err
	}
	if s.IntrospectionSecret, err = secretOr(opts.IntrospectionSecret); err != nil {
		return nil, err
	}
	if err := s.issueCertificates(); err != nil {
		return nil, err
	}

	// Listeners first: every server's URL is known before any handler is
	// built.
	var lns []net.Listener
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	listen := func(auth tls.ClientAuthType, withTLS bool) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		if !withTLS {
			lns = append(lns, ln)
			return "http://" + ln.Addr().String(), nil
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{s.ServerCert}, ClientAuth: auth, MinVersion: tls.VersionTLS12}
		lns = append(lns, tls.NewListener(ln, cfg))
		return "https://" + ln.Addr().String(), nil
	}
	for _, l := range []struct {
		url  *string
		auth tls.ClientAuthType
	}{
		{&s.IssuerURL, tls.RequestClientCert},
		{&s.ResourceURL, tls.RequestClientCert},
		{&s.SecondResourceURL, tls.RequestClientCert},
		// The proxy's own connection carries no client certificate.
		{&s.ProxyURL, tls.NoClientCert},
	} {
		if *l.url, err = listen(l.auth, true); err != nil {
			return nil, err
		}
	}
	if opts.Plain {
		if s.PlainURL, err = listen(tls.NoClientCert, false); err != nil {
			return nil, err
		}
	}

	handlers, err := s.handlers()
	if err != nil {
		return nil, err
	}
	for i, ln := range lns {
		hs := opts.NewServer(handlers[i])
		hs.ErrorLog = log.New(io.Discard, "", 0)
		s.servers = append(s.servers, hs)
		go func() { _ = hs.Serve(ln) }()
	}
	return s, nil
}

// withDefaults fills in the defaults of the zero fields.
func withDefaults(o Options) Options {
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&o.CAName, "fullstack CA")
	set(&o.ClientID, "app")
	set(&o.SecondClientCN, "someone-else")
	set(&o.Audience, "https://rs.fullstack.test")
	set(&o.SecondAudience, "https://rs2.fullstack.test")
	if o.Handler == nil {
		o.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":true}`))
		})
	}
	if o.NewServer == nil {
		o.NewServer = func(h http.Handler) *http.Server { return &http.Server{Handler: h} }
	}
	return o
}

// secretOr returns secret, or a random one when it is empty.
func secretOr(secret string) (string, error) {
	if secret != "" {
		return secret, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// issueCertificates makes the CA, the servers' certificate and the two
// client certificates.
func (s *Stack) issueCertificates() error {
	ttl := s.opts.CertTTL
	ca, err := certs.NewCA(certs.Options{CommonName: s.opts.CAName, TTL: ttl})
	if err != nil {
		return err
	}
	srv, err := ca.Issue(certs.Options{CommonName: "localhost", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, Server: true, TTL: ttl})
	if err != nil {
		return err
	}
	if s.ClientLeaf, err = ca.Issue(certs.Options{CommonName: MTLSClientID, Client: true, TTL: ttl}); err != nil {
		return err
	}
	if s.SecondClientLeaf, err = ca.Issue(certs.Options{CommonName: s.opts.SecondClientCN, Client: true, TTL: ttl}); err != nil {
		return err
	}
	s.CA, s.Roots, s.ServerCert = ca, ca.Pool(), srv.TLSCertificate()
	s.ClientCert, s.SecondClientCert = s.ClientLeaf.TLSCertificate(), s.SecondClientLeaf.TLSCertificate()
	return nil
}

// handlers builds the issuer and the resources, one handler per listener
// in the order Start opened them.
func (s *Stack) handlers() ([]http.Handler, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		return nil, err
	}
	s.IssuerKey = &jose.JSONWebKey{Key: key, KeyID: ks.ActiveKeyID(), Algorithm: "ES256"}
	as, err := s.issuerHandler(ks)
	if err != nil {
		return nil, err
	}
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		return nil, err
	}
	// The first resource's listeners share its replay cache; the second
	// resource has its own.
	shared, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		return nil, err
	}
	own, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		return nil, err
	}
	loopback, err := trustedproxy.New(trustedproxy.Config{Peers: []string{"127.0.0.1/32", "::1/128"}})
	if err != nil {
		return nil, err
	}
	rs, err := s.resourceHandler(keys, s.Audience, s.ResourceURL, shared, nil)
	if err != nil {
		return nil, err
	}
	if s.opts.WrapResource != nil {
		rs = s.opts.WrapResource(rs)
	}
	rs2, err := s.resourceHandler(keys, s.SecondAudience, s.SecondResourceURL, own, nil)
	if err != nil {
		return nil, err
	}
	proxy, err := s.resourceHandler(keys, s.Audience, s.ProxyURL, shared, loopback)
	if err != nil {
		return nil, err
	}
	hs := []http.Handler{as, rs, rs2, proxy}
	if s.PlainURL != "" {
		plain, err := s.resourceHandler(keys, s.Audience, s.PlainURL, shared, nil)
		if err != nil {
			return nil, err
		}
		hs = append(hs, plain)
	}
	return hs, nil
}

// issuerHandler builds the issuer's endpoints.
func (s *Stack) issuerHandler(ks *issuer.KeySet) (http.Handler, error) {
	is, err := issuer.New(issuer.Config{Issuer: s.IssuerURL, Keys: ks, Audience: []string{s.Audience, s.SecondAudience}})
	if err != nil {
		return nil, err
	}
	confidential := issuer.Client{ID: s.ClientID, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(s.ClientSecret), Scopes: []string{Scope}}
	cfg := issuer.ServerConfig{Issuer: is, MTLS: true, ScopesSupported: []string{Scope}}
	if g := s.opts.TestGrant; g != "" {
		// The confidential client may use the test grant too, so that the
		// suite can record how its refresh token treats another key.
		confidential.GrantTypes = []string{issuer.GrantClientCredentials, issuer.GrantRefreshToken, g}
		cfg.Grants = map[string]issuer.GrantHandler{g: issuer.GrantHandlerFunc(testGrant)}
		cfg.RefreshTokens = issuer.NewMemoryRefreshStore(nil)
	}
	if cfg.Clients, err = issuer.NewMemoryRegistry(
		confidential,
		// A public client may use refresh_token and every extension grant.
		issuer.Client{ID: PublicClientID, AuthMethod: issuer.AuthNone, Scopes: []string{Scope}},
		issuer.Client{ID: MTLSClientID, AuthMethod: issuer.AuthTLSClient, Scopes: []string{Scope},
			Certificate: mtlsbound.PKIAuth{Roots: s.Roots, SubjectDN: "CN=" + MTLSClientID}},
		issuer.Client{ID: IntrospectionClientID, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(s.IntrospectionSecret), Introspect: true, IntrospectAll: true},
	); err != nil {
		return nil, err
	}
	if cfg.ReplayStore, err = issuer.NewMemoryReplayStore(is, 0); err != nil {
		return nil, err
	}
	if s.opts.Nonces {
		if cfg.Nonces, err = newNonces(s.IssuerURL); err != nil {
			return nil, err
		}
	}
	srv, err := issuer.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

// resourceHandler builds a resource for audience aud, reached by clients
// at publicURL (the DPoP htu), with its metadata.
func (s *Stack) resourceHandler(keys resource.KeySet, aud, publicURL string, store *replaycache.LRU, trusted *trustedproxy.Set) (http.Handler, error) {
	dc := &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256", "RS256", "EdDSA"}, ReplayStore: store}
	if s.opts.Nonces {
		n, err := newNonces(publicURL)
		if err != nil {
			return nil, err
		}
		dc.Nonces = n
	}
	v, err := resource.New(resource.Config{
		Algorithms:     resource.DefaultAlgorithms(),
		Issuers:        []resource.Issuer{{Identifier: s.IssuerURL, Keys: keys}},
		Audience:       aud,
		DPoP:           dc,
		PublicURL:      publicURL,
		TrustedProxies: trusted,
	})
	if err != nil {
		return nil, err
	}
	policy := resource.Policy{Accept: s.opts.Accept, Scopes: []string{Scope}}
	mux := http.NewServeMux()
	mux.Handle(resource.MetadataPath, v.MetadataHandler(policy, []string{Scope}))
	mux.Handle(ResourcePath, v.Middleware(policy)(s.opts.Handler))
	return mux, nil
}

// newNonces returns a nonce source labelled label with a fresh random
// secret.
func newNonces(label string) (*dpop.Nonces, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{secret}, Label: label})
}

// testGrant issues tokens and a refresh token for TestSubject. The issuer
// binds a public client's refresh token to the request's DPoP key or
// certificate, and issues none when the request carries neither.
func testGrant(_ context.Context, req *issuer.GrantRequest) (*issuer.Grant, error) {
	if req.Params["subject"] != TestSubject {
		return nil, issuer.GrantError(issuer.ErrInvalidGrant, "unknown test subject")
	}
	if sc := req.Params["scope"]; sc != "" && sc != Scope {
		return nil, issuer.GrantError(issuer.ErrInvalidScope, "requested scope is not allowed")
	}
	return &issuer.Grant{Subject: TestSubject, Scope: Scope, RefreshToken: true}, nil
}

// Target describes the stack to the conformance suite with every
// capability it offers. ResourceScope and Timeout are left to the caller.
func (s *Stack) Target() conformance.Target {
	t := conformance.Target{
		TokenEndpoint:              s.IssuerURL + issuer.TokenPath,
		ClientID:                   s.ClientID,
		ClientSecret:               s.ClientSecret,
		Scope:                      Scope,
		Resource:                   s.ResourceURL + ResourcePath,
		Issuer:                     s.IssuerURL,
		Audience:                   s.Audience,
		ClientCert:                 &s.ClientCert,
		MTLSClientID:               MTLSClientID,
		SecondClientCert:           &s.SecondClientCert,
		RootCAs:                    s.Roots,
		IssuerKey:                  s.IssuerKey,
		SecondResource:             s.SecondResourceURL + ResourcePath,
		TrustedProxyResource:       s.ProxyURL + ResourcePath,
		NonceRequired:              s.opts.Nonces,
		TokenEndpointNonceRequired: s.opts.Nonces,
		MetadataURL:                s.IssuerURL + issuer.MetadataPath,
		IntrospectionEndpoint:      s.IssuerURL + issuer.IntrospectionPath,
		IntrospectionClientID:      IntrospectionClientID,
		IntrospectionClientSecret:  s.IntrospectionSecret,
	}
	if s.PlainURL != "" {
		t.PlainResource = s.PlainURL + ResourcePath
	}
	if s.opts.TestGrant != "" {
		t.RefreshGrant = &conformance.RefreshGrant{
			ClientID:  PublicClientID,
			GrantType: s.opts.TestGrant,
			Params:    url.Values{"subject": {TestSubject}},
		}
	}
	return t
}

// Close stops every server, waiting up to two seconds for requests in
// flight, then closing what is left.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, hs := range s.servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, hs.Close())
		}
	}
	return errors.Join(errs...)
}
