package conformance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
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
	// ResourceScope is a scope the resource requires (ERR-07 removes it
	// from a token and expects 403 insufficient_scope). Empty skips that
	// case. It is independent of Scope: a client may request more, or
	// nothing, and still obtain what the resource requires.
	ResourceScope string
	// Profile is the binding the deployment claims to support; cases
	// outside it are skipped with that reason. Empty derives it from the
	// other fields: DPoP unless DisableDPoP, mTLS when ClientCert is set.
	Profile Profile

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

	// ClientKeys is a key host on which the suite publishes the key set
	// of JWKSURIClientID (see [ClientKeyHost]). With JWKSURIClientID it
	// unlocks MTLS-CA-11; without, that case is skipped as not applicable.
	ClientKeys *ClientKeyHost
	// JWKSURIClientID is a client registered with
	// self_signed_tls_client_auth whose jwks_uri is
	// ClientKeys.URL(JWKSURIClientID). The suite publishes self-signed
	// certificates of its own there.
	JWKSURIClientID string
	// KeyRefreshWait bounds how long MTLS-CA-11 waits for the target to
	// act on a changed key set: a new certificate (which the target
	// should refetch for) and a removed one (which it drops when the set's
	// lifetime, max-age=1 by default, and its own minimum interval between
	// fetches have passed). Default 30 s.
	KeyRefreshWait time.Duration

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
	// IntrospectionProxy, when set with IntrospectionEndpoint, is a
	// loopback listener on which [Run] serves a recording introspection
	// proxy for the run (and closes it when the run ends): it forwards
	// each call to IntrospectionEndpoint unchanged and notes whether the
	// resource server sent a DPoP header or proof (DPOP-RS-24; only hashes
	// of tokens are kept). The resource server under test must use the
	// listener's address as its introspection endpoint, with
	// client_secret_basic or private_key_jwt (the proxy cannot forward a
	// TLS client certificate). A listener serves one run.
	IntrospectionProxy net.Listener

	// RefreshGrant is how a public client obtains a refresh token. It
	// unlocks the refresh-token cases (DPOP-AS-06, DPOP-AS-07, MTLS-CB-06,
	// MTLS-CB-07; DPOP-AS-08 also tries it as ClientID). It is a test hook
	// of the deployment, never a production grant: see [RefreshGrant].
	RefreshGrant *RefreshGrant

	// Authorization describes a non-interactive authorization endpoint
	// for ClientID. It unlocks the authorization-code binding cases
	// (DPOP-AS-22, DPOP-AS-23) and, with MetadataURL, the pushed
	// authorization request cases (DPOP-AS-24, DPOP-AS-25, DPOP-AS-26).
	// It is a test hook of the deployment: see [AuthorizationFlow].
	Authorization *AuthorizationFlow

	// DisableDPoP skips every case that needs a DPoP-bound token (for
	// mTLS-only targets). Profile ProfileMTLS says the same.
	DisableDPoP bool
	// AllowLoopbackHTTP declares plain HTTP on loopback a deliberate
	// local-test setting (a walk-through, a developer's machine): the
	// cases that require HTTPS (DPoP over plain HTTP, an https issuer and
	// jwks_uri) record it instead of failing, for URLs on a loopback IP
	// address (127.0.0.0/8, ::1) only; a name, even localhost, does not
	// count, since the hosts file or DNS can point it elsewhere.
	// [Target.Validate] refuses it when a plain-HTTP
	// URL of the target is not on loopback. It MUST NOT be used to test a
	// deployment.
	AllowLoopbackHTTP bool
	// Timeout bounds each HTTP exchange. Default 10 s.
	Timeout time.Duration
}

// RefreshGrant describes a token request by which a public client obtains
// a refresh token. The suite needs one because client_credentials cannot
// serve: it issues no refresh token (RFC 6749 §4.4.3), and public clients
// may not use it.
//
// The grant is a test hook that the deployment under test provides, for
// example an extension grant (RFC 6749 §4.5) that issues tokens for a fixed
// test subject, or an authorization_code grant whose test code the
// deployment accepts again and again. It is NOT a production grant: anyone
// who can reach the token endpoint can use it to obtain tokens without a
// user, so it must exist only on test deployments.
//
// Each request of the grant is a POST to Target.TokenEndpoint with
// grant_type=GrantType, client_id=ClientID, the Params, and Target.Scope
// unless Params carries a scope. The suite sends it several times per run
// (every case obtains fresh refresh tokens, so that one case's refresh,
// rotation or revocation cannot decide another), so the parameters must
// stay valid for repeated use: a single-use authorization code will not
// do. The grant must issue a refresh token to ClientID when the request
// carries a DPoP proof (the DPoP cases) or arrives over mTLS with a client
// certificate (the mTLS cases).
type RefreshGrant struct {
	// ClientID is a public client (RFC 6749 §2.1: no client
	// authentication) that may use GrantType. Required.
	ClientID string
	// GrantType is the grant_type value, such as an extension grant URI.
	// Required; client_credentials and refresh_token are refused.
	GrantType string
	// Params are the grant's other form parameters (a test subject, a test
	// code and its redirect_uri and code_verifier, ...). They must not set
	// grant_type, client_id, client_secret, client_assertion,
	// client_assertion_type or refresh_token.
	Params url.Values
}

// AuthorizationFlow describes how the suite obtains authorization codes
// (RFC 6749 §4.1) without a browser.
//
// The deployment's authorization endpoint must answer a valid request for
// Target.ClientID at once, with no user interaction, by a redirect (302
// or 303) to RedirectURI carrying code and the request's state: for
// example by approving every request for a fixed test user. The suite
// never follows the redirect and never sends anything to RedirectURI; it
// reads the code from the Location header. Such an endpoint hands out
// codes to anyone who asks, so it is NOT a production setting and must
// exist only on test deployments.
//
// Every authorization request carries response_type=code, client_id,
// redirect_uri, state, PKCE (code_challenge_method S256), Target.Scope as
// scope unless Params sets one, and the Params. With PAR the suite first
// pushes those parameters to the pushed_authorization_request_endpoint
// of the metadata (RFC 9126), authenticated as at the token endpoint
// (client_secret_basic with Target.ClientSecret, or client_id alone for
// a public client), and then sends client_id and request_uri only. Codes
// are redeemed at Target.TokenEndpoint with grant_type
// authorization_code, redirect_uri, code_verifier and a DPoP proof, by
// the same client authentication. Each code is redeemed once.
type AuthorizationFlow struct {
	// Endpoint is the authorization endpoint URL. Required.
	Endpoint string
	// RedirectURI is a redirect URI registered for Target.ClientID.
	// Required.
	RedirectURI string
	// Params are more authorization request parameters. They must not set
	// a parameter the suite sets itself (response_type, client_id,
	// redirect_uri, state, code_challenge, code_challenge_method,
	// request_uri, dpop_jkt or client credentials).
	Params url.Values
}

// authorizationReserved are authorization request parameters the suite
// sets itself.
var authorizationReserved = []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method",
	"request_uri", "dpop_jkt", "client_secret", "client_assertion", "client_assertion_type"}

func (a *AuthorizationFlow) validate() error {
	var errs []error
	for _, u := range []struct{ name, v string }{{"authorization endpoint", a.Endpoint}, {"redirect", a.RedirectURI}} {
		p, err := url.Parse(u.v)
		if u.v == "" || err != nil || p.Scheme == "" || p.Fragment != "" || (p.Scheme == "http" || p.Scheme == "https") && p.Host == "" {
			errs = append(errs, fmt.Errorf("conformance: %s URI is not an absolute URI without fragment", u.name))
		}
	}
	if p, err := url.Parse(a.Endpoint); err == nil && p.Scheme != "http" && p.Scheme != "https" {
		errs = append(errs, errors.New("conformance: authorization endpoint URL is not an http(s) URL"))
	}
	for k := range a.Params {
		if k == "" || slices.Contains(authorizationReserved, k) {
			errs = append(errs, fmt.Errorf("conformance: authorization parameter %q is set by the suite", safeToken(k)))
		}
	}
	return errors.Join(errs...)
}

// refreshGrantReserved are form parameters the suite sets itself.
var refreshGrantReserved = []string{"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "refresh_token"}

func (g *RefreshGrant) validate() error {
	var errs []error
	if g.ClientID == "" {
		errs = append(errs, errors.New("conformance: refresh grant needs a client id"))
	}
	switch g.GrantType {
	case "":
		errs = append(errs, errors.New("conformance: refresh grant needs a grant type"))
	case "client_credentials", "refresh_token":
		errs = append(errs, fmt.Errorf("conformance: refresh grant type cannot be %s", g.GrantType))
	}
	for k := range g.Params {
		switch {
		case k == "":
			errs = append(errs, errors.New("conformance: refresh grant parameter without a name"))
		case slices.Contains(refreshGrantReserved, k):
			errs = append(errs, fmt.Errorf("conformance: refresh grant parameter %s is set by the suite", k))
		}
	}
	return errors.Join(errs...)
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

// Profile is the binding a deployment claims: DPoP, mTLS or both.
type Profile string

// Profiles.
const (
	// ProfileDPoP: DPoP-bound tokens only; the mTLS cases are skipped,
	// even when a client certificate is given.
	ProfileDPoP Profile = "dpop"
	// ProfileMTLS: certificate-bound tokens only; the DPoP cases are
	// skipped. Needs a client certificate.
	ProfileMTLS Profile = "mtls"
	// ProfileBoth: both bindings. Needs a client certificate.
	ProfileBoth Profile = "both"
)

// Capabilities reports what the target description unlocks.
func (t *Target) Capabilities() Capability {
	var c Capability
	if !t.DisableDPoP && t.Profile != ProfileMTLS {
		c |= CapDPoP
	}
	if t.ClientCert != nil && t.Profile != ProfileDPoP {
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
	if t.RefreshGrant != nil {
		c |= CapRefreshGrant
	}
	if t.IntrospectionProxy != nil && t.IntrospectionEndpoint != "" {
		c |= CapIntrospectionProxy
	}
	if t.Authorization != nil {
		c |= CapAuthorization
	}
	return c
}

// outOfProfile says why a case lies outside the target's profile, or ""
// when it does not.
func (t *Target) outOfProfile(c Case) string {
	switch {
	case t.Profile == ProfileDPoP && c.Needs&CapMTLS != 0:
		return "outside the profile dpop: the target claims DPoP-bound tokens only"
	case t.Profile == ProfileMTLS && c.Needs&CapDPoP != 0:
		return "outside the profile mtls: the target claims certificate-bound tokens only"
	}
	return ""
}

// localHTTP reports whether u is a plain-HTTP URL on loopback that
// AllowLoopbackHTTP declares a local-test setting.
func (t *Target) localHTTP(u string) bool {
	return t.AllowLoopbackHTTP && isLoopbackHTTP(u)
}

// isLoopbackHTTP reports whether u is an http:// URL on a loopback IP
// address (127.0.0.0/8 or ::1).
func isLoopbackHTTP(u string) bool {
	p, err := url.Parse(u)
	if err != nil || !strings.EqualFold(p.Scheme, "http") {
		return false
	}
	// An address, not a name: "localhost" is resolved through the hosts
	// file or DNS, which can point it anywhere, and the suite sends client
	// credentials and tokens to this URL in clear.
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Validate checks the required fields and the URLs.
func (t *Target) Validate() error {
	var errs []error
	switch t.Profile {
	case "", ProfileDPoP:
	case ProfileMTLS, ProfileBoth:
		if t.ClientCert == nil {
			errs = append(errs, fmt.Errorf("conformance: profile %s needs a client certificate", t.Profile))
		}
	default:
		errs = append(errs, fmt.Errorf("conformance: unknown profile %q (want dpop, mtls or both)", safeToken(string(t.Profile))))
	}
	if t.DisableDPoP && (t.Profile == ProfileDPoP || t.Profile == ProfileBoth) {
		errs = append(errs, fmt.Errorf("conformance: profile %s contradicts disabling DPoP", t.Profile))
	}
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
			continue
		}
		if t.AllowLoopbackHTTP && p.Scheme == "http" && !isLoopbackHTTP(u.v) && u.name != "plain resource" {
			errs = append(errs, fmt.Errorf("conformance: plain HTTP is allowed on loopback only, and the %s URL is not on loopback", u.name))
		}
	}
	if t.PlainResource != "" && !strings.HasPrefix(strings.ToLower(t.PlainResource), "http://") {
		errs = append(errs, errors.New("conformance: plain resource URL must use http://"))
	}
	if t.IntrospectionProxy != nil && t.IntrospectionEndpoint == "" {
		errs = append(errs, errors.New("conformance: the introspection proxy needs the introspection endpoint to forward to"))
	}
	if t.IssuerKey != nil && t.IssuerKey.IsPublic() {
		errs = append(errs, errors.New("conformance: issuer key must be a private key"))
	}
	if t.RefreshGrant != nil {
		errs = append(errs, t.RefreshGrant.validate())
	}
	if t.Authorization != nil {
		errs = append(errs, t.Authorization.validate())
	}
	if (t.ClientKeys == nil) != (t.JWKSURIClientID == "") {
		errs = append(errs, errors.New("conformance: a client key host and a jwks_uri client id go together"))
	}
	return errors.Join(errs...)
}
