package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Target describes the implementation under test. Only TokenEndpoint,
// ClientID and Resource are required; every other field unlocks more cases.
// A Target is read, never modified, by [Run].
type Target struct {
	// TokenEndpoint is the URL of the token endpoint (client_credentials
	// grant). Required.
	TokenEndpoint string
	// ClientID identifies the client at the token endpoint. Required.
	ClientID string
	// ClientSecret, if set, authenticates ClientID with client_secret_basic
	// for DPoP token requests. If empty, the client is treated as public.
	ClientSecret string
	// Scope is requested with every token. Empty requests no scope.
	Scope string

	// Resource is the protected resource URL. Required.
	Resource string
	// Method is the HTTP method used at Resource. Default GET.
	Method string
	// Issuer is the expected "iss" of access tokens and the metadata issuer.
	Issuer string
	// Audience is the expected "aud" of access tokens.
	Audience string

	// ClientCert is a client certificate (C1) registered for MTLSClientID
	// with tls_client_auth or self_signed_tls_client_auth. Setting it
	// enables the mTLS cases.
	ClientCert *tls.Certificate
	// MTLSClientID is the client id used with ClientCert. Default ClientID.
	MTLSClientID string
	// SecondClientCert is another certificate (C2) the target trusts but
	// has not registered for MTLSClientID.
	SecondClientCert *tls.Certificate

	// RootCAs verifies the target's server certificates. Nil means the
	// system pool.
	RootCAs *x509.CertPool
	// InsecureSkipVerify disables server certificate verification. It MUST
	// NOT be used against anything but a test deployment.
	InsecureSkipVerify bool

	// IssuerKey is the issuer's private signing key. It unlocks the cases
	// that need forged or edge-case access tokens (expired, wrong audience,
	// alg none, crit, ...). Never point it at a production key.
	IssuerKey *jose.JSONWebKey
	// SecondResource is a second resource URL that accepts tokens from the
	// same issuer (cross-server replay cases).
	SecondResource string
	// NonceRequired says the resource server demands DPoP nonces.
	NonceRequired bool
	// TokenEndpointNonceRequired says the token endpoint demands DPoP
	// nonces.
	TokenEndpointNonceRequired bool
	// TrustedProxyResource is a URL of the same resource reachable as a
	// trusted TLS-terminating proxy, i.e. where a Client-Cert header is
	// believed.
	TrustedProxyResource string
	// PlainResource is an http:// URL of the same resource on a listener
	// without TLS that is not behind a trusted TLS-terminating proxy. With
	// it DPOP-RS-25 checks that this listener refuses DPoP; without it the
	// case can only probe the http:// form of Resource, which an
	// HTTPS-only listener never serves.
	PlainResource string
	// MetadataURL is the RFC 8414 metadata document URL.
	MetadataURL string
	// IntrospectionEndpoint is the RFC 7662 endpoint URL; with
	// IntrospectionClientID it unlocks the introspection cases.
	IntrospectionEndpoint string
	// IntrospectionClientID authenticates at the introspection endpoint
	// (client_secret_basic).
	IntrospectionClientID string
	// IntrospectionClientSecret is IntrospectionClientID's secret.
	IntrospectionClientSecret string

	// DisableDPoP skips every case that needs a DPoP-bound token (for
	// mTLS-only targets).
	DisableDPoP bool
	// Timeout bounds each HTTP exchange. Default 10 s.
	Timeout time.Duration
}

func (t *Target) method() string {
	if t.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(t.Method)
}

func (t *Target) mtlsClientID() string {
	if t.MTLSClientID != "" {
		return t.MTLSClientID
	}
	return t.ClientID
}

func (t *Target) timeout() time.Duration {
	if t.Timeout <= 0 {
		return 10 * time.Second
	}
	return t.Timeout
}

// Capabilities reports what the target description unlocks.
func (t *Target) Capabilities() Capability {
	var c Capability
	if !t.DisableDPoP {
		c |= CapDPoP
	}
	if t.ClientCert != nil {
		c |= CapMTLS
	}
	if t.IssuerKey != nil {
		c |= CapIssuerKey
	}
	if t.SecondResource != "" {
		c |= CapSecondResource
	}
	if t.NonceRequired {
		c |= CapNonce
	}
	if t.TokenEndpointNonceRequired {
		c |= CapTokenNonce
	}
	if t.TrustedProxyResource != "" {
		c |= CapTrustedProxy
	}
	if t.SecondClientCert != nil {
		c |= CapSecondCert
	}
	if t.MetadataURL != "" {
		c |= CapMetadata
	}
	if t.IntrospectionEndpoint != "" && t.IntrospectionClientID != "" {
		c |= CapIntrospection
	}
	return c
}

// Validate checks the required fields and the URLs.
func (t *Target) Validate() error {
	var errs []error
	if t.TokenEndpoint == "" {
		errs = append(errs, errors.New("conformance: token endpoint is required"))
	}
	if t.ClientID == "" {
		errs = append(errs, errors.New("conformance: client id is required"))
	}
	if t.Resource == "" {
		errs = append(errs, errors.New("conformance: resource URL is required"))
	}
	for _, u := range []struct{ name, v string }{
		{"token endpoint", t.TokenEndpoint}, {"resource", t.Resource},
		{"second resource", t.SecondResource}, {"trusted-proxy resource", t.TrustedProxyResource},
		{"metadata", t.MetadataURL}, {"introspection", t.IntrospectionEndpoint},
		{"plain resource", t.PlainResource},
	} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("conformance: %s URL is not an absolute http(s) URL", u.name))
		}
	}
	if t.PlainResource != "" && !strings.HasPrefix(strings.ToLower(t.PlainResource), "http://") {
		errs = append(errs, errors.New("conformance: plain resource URL must use http://"))
	}
	if t.IssuerKey != nil && t.IssuerKey.IsPublic() {
		errs = append(errs, errors.New("conformance: issuer key must be a private key"))
	}
	return errors.Join(errs...)
}

// TargetFlags binds a [Target] to command-line flags. Create it with
// [RegisterFlags], call flag parsing, then [TargetFlags.Target] to load
// files (certificates, CA bundle, issuer key) and build the Target.
type TargetFlags struct {
	t                           Target
	certFile, keyFile           string
	cert2File, key2File         string
	caFile                      string
	issuerKeyFile               string
	introspectionClient         string
	format, out, cases          string
	formatDefault, casesDefault string
}

// RegisterFlags defines the conformance flags on fs: --token-endpoint,
// --client-id, --client-secret, --scope, --resource, --method, --issuer,
// --audience, --cert, --key, --mtls-client-id, --second-cert, --second-key,
// --ca-file, --insecure, --issuer-key, --second-resource, --nonce-required,
// --token-nonce-required,
// --trusted-proxy-resource, --plain-resource, --metadata, --introspection,
// --introspection-client (id:secret), --no-dpop, --timeout, --format
// (text|json|junit), --out and --cases (comma-separated ids or prefixes).
func RegisterFlags(fs *flag.FlagSet) *TargetFlags {
	f := &TargetFlags{}
	t := &f.t
	fs.StringVar(&t.TokenEndpoint, "token-endpoint", "", "token endpoint URL")
	fs.StringVar(&t.ClientID, "client-id", "", "client id")
	fs.StringVar(&t.ClientSecret, "client-secret", "", "client secret (client_secret_basic); empty for a public client")
	fs.StringVar(&t.Scope, "scope", "", "scope to request")
	fs.StringVar(&t.Resource, "resource", "", "protected resource URL")
	fs.StringVar(&t.Method, "method", "GET", "HTTP method at the resource")
	fs.StringVar(&t.Issuer, "issuer", "", "expected issuer")
	fs.StringVar(&t.Audience, "audience", "", "expected audience")
	fs.StringVar(&f.certFile, "cert", "", "client certificate (PEM) for mTLS")
	fs.StringVar(&f.keyFile, "key", "", "client certificate key (PEM)")
	fs.StringVar(&t.MTLSClientID, "mtls-client-id", "", "client id used with --cert (default --client-id)")
	fs.StringVar(&f.cert2File, "second-cert", "", "second client certificate (PEM), not registered for the client")
	fs.StringVar(&f.key2File, "second-key", "", "key of --second-cert (PEM)")
	fs.StringVar(&f.caFile, "ca-file", "", "CA bundle (PEM) for the target's server certificates")
	fs.BoolVar(&t.InsecureSkipVerify, "insecure", false, "do not verify server certificates (test deployments only)")
	fs.StringVar(&f.issuerKeyFile, "issuer-key", "", "issuer private signing key as a JWK file (unlocks forged-token cases)")
	fs.StringVar(&t.SecondResource, "second-resource", "", "second resource URL sharing the issuer")
	fs.BoolVar(&t.NonceRequired, "nonce-required", false, "the resource server requires DPoP nonces")
	fs.BoolVar(&t.TokenEndpointNonceRequired, "token-nonce-required", false, "the token endpoint requires DPoP nonces")
	fs.StringVar(&t.TrustedProxyResource, "trusted-proxy-resource", "", "resource URL reachable as a trusted proxy (Client-Cert believed)")
	fs.StringVar(&t.PlainResource, "plain-resource", "", "http:// URL of the same resource on a listener without TLS (DPoP must be refused there)")
	fs.StringVar(&t.MetadataURL, "metadata", "", "authorization server metadata URL")
	fs.StringVar(&t.IntrospectionEndpoint, "introspection", "", "introspection endpoint URL")
	fs.StringVar(&f.introspectionClient, "introspection-client", "", "introspection credentials as id:secret")
	fs.BoolVar(&t.DisableDPoP, "no-dpop", false, "the target does not issue DPoP tokens")
	fs.DurationVar(&t.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&f.format, "format", "text", "report format: text, json or junit")
	fs.StringVar(&f.out, "out", "", "write the report to this file (default stdout)")
	fs.StringVar(&f.cases, "cases", "", "comma-separated case ids, id prefixes or groups (default all)")
	return f
}

// Format is the value of --format.
func (f *TargetFlags) Format() string { return f.format }

// Out is the value of --out.
func (f *TargetFlags) Out() string { return f.out }

// Options builds run options from --cases.
func (f *TargetFlags) Options() Options {
	var o Options
	for _, p := range strings.Split(f.cases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Cases = append(o.Cases, p)
		}
	}
	return o
}

// Target loads the referenced files and returns the validated Target.
func (f *TargetFlags) Target() (Target, error) {
	t := f.t
	var err error
	if f.certFile != "" || f.keyFile != "" {
		if t.ClientCert, err = loadPair(f.certFile, f.keyFile); err != nil {
			return Target{}, err
		}
	}
	if f.cert2File != "" || f.key2File != "" {
		if t.SecondClientCert, err = loadPair(f.cert2File, f.key2File); err != nil {
			return Target{}, err
		}
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return Target{}, fmt.Errorf("conformance: reading CA file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return Target{}, errors.New("conformance: CA file holds no PEM certificate")
		}
	}
	if f.issuerKeyFile != "" {
		b, err := os.ReadFile(f.issuerKeyFile)
		if err != nil {
			return Target{}, fmt.Errorf("conformance: reading issuer key: %w", err)
		}
		var k jose.JSONWebKey
		if err := json.Unmarshal(b, &k); err != nil {
			return Target{}, fmt.Errorf("conformance: issuer key is not a JWK: %w", err)
		}
		t.IssuerKey = &k
	}
	if f.introspectionClient != "" {
		id, secret, ok := strings.Cut(f.introspectionClient, ":")
		if !ok {
			return Target{}, errors.New("conformance: --introspection-client must be id:secret")
		}
		t.IntrospectionClientID, t.IntrospectionClientSecret = id, secret
	}
	if err := t.Validate(); err != nil {
		return Target{}, err
	}
	return t, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("conformance: a client certificate needs both a certificate and a key file")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("conformance: loading client certificate: %w", err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	return &c, nil
}
