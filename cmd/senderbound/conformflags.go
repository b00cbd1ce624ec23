package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/conformance"
)

// conformFlags binds a conformance.Target to the conform command's flags.
// Create it with registerConformFlags, parse the flags, then call target to
// load files (certificates, CA bundle, issuer key) and build the Target.
type conformFlags struct {
	t                           conformance.Target
	certFile, keyFile           string
	cert2File, key2File         string
	caFile                      string
	issuerKeyFile               string
	introspectionClient         string
	introspectionProxy          string
	keyHostAddr                 string
	keyHostCert, keyHostKey     string
	jwksURIClient               string
	keyHostTLS                  tls.Certificate
	refreshClientID             string
	refreshGrantType            string
	refreshParams               paramsFlag
	authzEndpoint, redirectURI  string
	authzParams                 paramsFlag
	format, out, cases          string
	formatDefault, casesDefault string
}

// registerConformFlags defines the conformance flags on fs: --token-endpoint,
// --client-id, --client-secret, --scope, --resource-scope, --profile
// (dpop|mtls|both), --allow-loopback-http, --resource, --method, --issuer,
// --audience, --cert, --key, --mtls-client-id, --second-cert, --second-key,
// --ca-file, --insecure, --issuer-key, --second-resource, --nonce-required,
// --token-nonce-required,
// --trusted-proxy-resource, --plain-resource, --metadata, --introspection,
// --introspection-client (id:secret), --introspection-proxy (a loopback
// HOST:PORT; see listenIntrospectionProxy), --client-key-host (a loopback
// HOST:PORT), --client-key-host-cert, --client-key-host-key,
// --jwks-uri-client, --key-refresh-wait (together they build
// Target.ClientKeys; see startClientKeyHost), --refresh-client-id,
// --refresh-grant-type, --refresh-param (name=value, repeatable; together
// they build Target.RefreshGrant), --authorization-endpoint, --redirect-uri,
// --authorization-param (name=value, repeatable; together they build
// Target.Authorization), --no-dpop, --timeout, --format
// (text|json|junit), --out and --cases (comma-separated ids or prefixes).
func registerConformFlags(fs *flag.FlagSet) *conformFlags {
	f := &conformFlags{}
	t := &f.t
	fs.StringVar(&t.TokenEndpoint, "token-endpoint", "", "token endpoint URL")
	fs.StringVar(&t.ClientID, "client-id", "", "client id")
	fs.StringVar(&t.ClientSecret, "client-secret", "", "client secret (client_secret_basic); empty for a public client")
	fs.StringVar(&t.Scope, "scope", "", "scope to request with every token")
	fs.StringVar(&t.ResourceScope, "resource-scope", "", "a scope the resource requires (unlocks the insufficient_scope case)")
	fs.Var(&profileFlag{&t.Profile}, "profile", "binding the deployment claims: dpop, mtls or both (default: dpop, plus mtls when --cert is given); cases outside it are skipped")
	fs.BoolVar(&t.AllowLoopbackHTTP, "allow-loopback-http", false, "plain HTTP on loopback is a deliberate local-test setting: record it instead of failing (never for a deployment)")
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
	fs.StringVar(&f.introspectionProxy, "introspection-proxy", "", "loopback HOST:PORT where the suite serves a recording proxy to --introspection for the run; point the resource server's introspection endpoint at http://HOST:PORT (unlocks DPOP-RS-24)")
	fs.StringVar(&f.keyHostAddr, "client-key-host", "", "loopback HOST:PORT (a fixed port) where the suite serves the key set of --jwks-uri-client for the run, at https://HOST:PORT/clients/ID/jwks.json; register that URL as the client's jwks_uri at the target (unlocks MTLS-CA-11)")
	fs.StringVar(&f.keyHostCert, "client-key-host-cert", "", "TLS server certificate (PEM) of --client-key-host, valid for its IP address and trusted by the target (e.g. serve-issuer --client-jwks-ca with its CA)")
	fs.StringVar(&f.keyHostKey, "client-key-host-key", "", "key of --client-key-host-cert (PEM)")
	fs.StringVar(&f.jwksURIClient, "jwks-uri-client", "", "self_signed_tls_client_auth client registered at the target with its jwks_uri on --client-key-host")
	fs.DurationVar(&t.KeyRefreshWait, "key-refresh-wait", 30*time.Second, "how long MTLS-CA-11 waits for the target to refetch a changed key set; above the target's least interval between fetches")
	fs.StringVar(&f.refreshClientID, "refresh-client-id", "", "public client that obtains refresh tokens with --refresh-grant-type (test deployments only)")
	fs.StringVar(&f.refreshGrantType, "refresh-grant-type", "", "grant_type of the deployment's test grant that issues refresh tokens to --refresh-client-id")
	fs.Var(&f.refreshParams, "refresh-param", "form parameter name=value of the refresh grant (repeatable)")
	fs.StringVar(&f.authzEndpoint, "authorization-endpoint", "", "non-interactive authorization endpoint that redirects a valid request of --client-id with a code at once (test deployments only)")
	fs.StringVar(&f.redirectURI, "redirect-uri", "", "redirect_uri registered for --client-id; the suite reads codes from the redirect and never visits it")
	fs.Var(&f.authzParams, "authorization-param", "authorization request parameter name=value (repeatable)")
	fs.BoolVar(&t.DisableDPoP, "no-dpop", false, "the target does not issue DPoP tokens")
	fs.DurationVar(&t.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&f.format, "format", "text", "report format: text, json or junit")
	fs.StringVar(&f.out, "out", "", "write the report to this file (default stdout)")
	fs.StringVar(&f.cases, "cases", "", "comma-separated case ids, id prefixes or groups (default all)")
	return f
}

// format is the value of --format.
func (f *conformFlags) formatName() string { return f.format }

// outFile is the value of --out.
func (f *conformFlags) outFile() string { return f.out }

// options builds run options from --cases.
func (f *conformFlags) options() conformance.Options {
	var o conformance.Options
	for _, p := range strings.Split(f.cases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Cases = append(o.Cases, p)
		}
	}
	return o
}

// target loads the referenced files and returns the validated Target.
func (f *conformFlags) target() (conformance.Target, error) {
	t := f.t
	var err error
	if f.certFile != "" || f.keyFile != "" {
		if t.ClientCert, err = conformLoadPair(f.certFile, f.keyFile); err != nil {
			return conformance.Target{}, err
		}
	}
	if f.cert2File != "" || f.key2File != "" {
		if t.SecondClientCert, err = conformLoadPair(f.cert2File, f.key2File); err != nil {
			return conformance.Target{}, err
		}
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return conformance.Target{}, fmt.Errorf("conformance: reading CA file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return conformance.Target{}, errors.New("conformance: CA file holds no PEM certificate")
		}
	}
	if f.issuerKeyFile != "" {
		b, err := os.ReadFile(f.issuerKeyFile)
		if err != nil {
			return conformance.Target{}, fmt.Errorf("conformance: reading issuer key: %w", err)
		}
		var k jose.JSONWebKey
		if err := json.Unmarshal(b, &k); err != nil {
			return conformance.Target{}, fmt.Errorf("conformance: issuer key is not a JWK: %w", err)
		}
		t.IssuerKey = &k
	}
	if f.introspectionClient != "" {
		id, secret, ok := strings.Cut(f.introspectionClient, ":")
		if !ok {
			return conformance.Target{}, errors.New("conformance: --introspection-client must be id:secret")
		}
		t.IntrospectionClientID, t.IntrospectionClientSecret = id, secret
	}
	if f.introspectionProxy != "" {
		host, err := serveAddrHost(f.introspectionProxy)
		if err != nil || !isLoopbackAddr(host) {
			return conformance.Target{}, errors.New("conformance: --introspection-proxy must be a loopback address HOST:PORT (127.0.0.1 or ::1)")
		}
		if t.IntrospectionEndpoint == "" {
			return conformance.Target{}, errors.New("conformance: --introspection-proxy needs --introspection, the endpoint it forwards to")
		}
	}
	if err := f.clientKeyHost(); err != nil {
		return conformance.Target{}, err
	}
	if t.KeyRefreshWait <= 0 {
		return conformance.Target{}, errors.New("conformance: --key-refresh-wait must be positive")
	}
	if f.refreshClientID != "" || f.refreshGrantType != "" || len(f.refreshParams) > 0 {
		t.RefreshGrant = &conformance.RefreshGrant{ClientID: f.refreshClientID, GrantType: f.refreshGrantType, Params: url.Values{}}
		for k, vs := range f.refreshParams {
			t.RefreshGrant.Params[k] = slices.Clone(vs)
		}
	}
	if f.authzEndpoint != "" || f.redirectURI != "" || len(f.authzParams) > 0 {
		t.Authorization = &conformance.AuthorizationFlow{Endpoint: f.authzEndpoint, RedirectURI: f.redirectURI, Params: url.Values{}}
		for k, vs := range f.authzParams {
			t.Authorization.Params[k] = slices.Clone(vs)
		}
	}
	if err := t.Validate(); err != nil {
		return conformance.Target{}, err
	}
	return t, nil
}

// listenIntrospectionProxy opens the listener of --introspection-proxy
// and sets it as t.IntrospectionProxy; conformance.Run serves the proxy on
// it and closes it. It does nothing without the flag.
func (f *conformFlags) listenIntrospectionProxy(t *conformance.Target) error {
	if f.introspectionProxy == "" {
		return nil
	}
	l, err := net.Listen("tcp", f.introspectionProxy)
	if err != nil {
		return fmt.Errorf("conformance: --introspection-proxy: %w", err)
	}
	t.IntrospectionProxy = l
	return nil
}

// clientKeyHost checks --client-key-host, --client-key-host-cert,
// --client-key-host-key and --jwks-uri-client, which go together, and
// loads the host's certificate.
func (f *conformFlags) clientKeyHost() error {
	if f.keyHostAddr == "" && f.keyHostCert == "" && f.keyHostKey == "" && f.jwksURIClient == "" {
		return nil
	}
	if f.keyHostAddr == "" || f.jwksURIClient == "" || f.keyHostCert == "" || f.keyHostKey == "" {
		return errors.New("conformance: --client-key-host, --client-key-host-cert, --client-key-host-key and --jwks-uri-client go together")
	}
	host, port, err := net.SplitHostPort(f.keyHostAddr)
	if err != nil || !isLoopbackAddr(host) {
		return errors.New("conformance: --client-key-host must be a loopback address HOST:PORT (127.0.0.1 or ::1)")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New("conformance: --client-key-host needs a fixed port: the target has the client's jwks_uri registered before the run")
	}
	c, err := tls.LoadX509KeyPair(f.keyHostCert, f.keyHostKey)
	if err != nil {
		return fmt.Errorf("conformance: loading --client-key-host-cert: %w", err)
	}
	f.keyHostTLS = c
	return nil
}

// startClientKeyHost starts the key host of --client-key-host and sets it
// as t.ClientKeys, with t.JWKSURIClientID; the caller closes it after the
// run. It returns nil and does nothing without the flag.
func (f *conformFlags) startClientKeyHost(t *conformance.Target) (*conformance.ClientKeyHost, error) {
	if f.keyHostAddr == "" {
		return nil, nil
	}
	h, err := conformance.NewClientKeyHost(conformance.ClientKeyHostConfig{Addr: f.keyHostAddr, Certificate: f.keyHostTLS})
	if err != nil {
		return nil, fmt.Errorf("--client-key-host: %w", err)
	}
	t.ClientKeys, t.JWKSURIClientID = h, f.jwksURIClient
	return h, nil
}

// profileFlag reads --profile.
type profileFlag struct{ p *conformance.Profile }

func (f *profileFlag) String() string {
	if f == nil || f.p == nil {
		return ""
	}
	return string(*f.p)
}

func (f *profileFlag) Set(v string) error {
	switch p := conformance.Profile(strings.ToLower(v)); p {
	case conformance.ProfileDPoP, conformance.ProfileMTLS, conformance.ProfileBoth:
		*f.p = p
		return nil
	}
	return errors.New("want dpop, mtls or both")
}

// paramsFlag collects repeated name=value flags.
type paramsFlag url.Values

func (p *paramsFlag) String() string {
	if p == nil {
		return ""
	}
	return url.Values(*p).Encode()
}

func (p *paramsFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want name=value")
	}
	if *p == nil {
		*p = paramsFlag{}
	}
	url.Values(*p).Add(k, val)
	return nil
}

func conformLoadPair(certFile, keyFile string) (*tls.Certificate, error) {
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
