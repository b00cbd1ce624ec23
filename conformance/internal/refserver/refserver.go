// Package refserver is a small reference authorization server and resource
// server implementing DPoP (RFC 9449) and certificate-bound tokens
// (RFC 8705) with go-jose and the standard library only. It exists to prove
// that the conformance suite detects faults: each [Mutation] removes or
// breaks exactly one check, and the suite must notice.
//
// It is NOT suitable for use outside of tests: keys and certificates are
// generated per process, state is in memory, and mutations make it unsafe
// on purpose.
package refserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Mutation names one deliberately broken check.
type Mutation string

// Mutations. Each one disables or weakens a single check of the reference
// server.
const (
	NoAthCheck                 Mutation = "no-ath-check"
	NoReplayStore              Mutation = "no-replay-store"
	HtuIncludesQuery           Mutation = "htu-includes-query"
	AlgNotPinned               Mutation = "alg-not-pinned"
	NonceNotBound              Mutation = "nonce-not-bound"
	BearerDowngrade            Mutation = "bearer-downgrade"
	ForwardedCertFromAnyone    Mutation = "forwarded-cert-from-anyone"
	NoProofTypCheck            Mutation = "no-proof-typ-check"
	PrivateJWKAccepted         Mutation = "private-jwk-accepted"
	NoIatWindow                Mutation = "no-iat-window"
	NoHtmCheck                 Mutation = "no-htm-check"
	NoJktCompare               Mutation = "no-jkt-compare"
	NoAudCheck                 Mutation = "no-aud-check"
	NoExpCheck                 Mutation = "no-exp-check"
	NoX5tCompare               Mutation = "no-x5t-compare"
	TokenEndpointIgnoresSig    Mutation = "token-endpoint-ignores-proof-signature"
	NoTokenTypCheck            Mutation = "no-token-typ-check"
	NoIssCheck                 Mutation = "no-iss-check"
	DPoPSchemeWithoutProof     Mutation = "dpop-scheme-without-proof"
	FirstOfManyProofs          Mutation = "first-of-many-proofs"
	EchoCredential             Mutation = "echo-credential"
	NoTokenSignatureCheck      Mutation = "no-token-signature-check"
	ClientCertNotMatched       Mutation = "client-cert-not-matched"
	NoProofSignatureCheck      Mutation = "no-proof-signature-check"
	NoHtuCheck                 Mutation = "no-htu-check"
	NoNonceCheck               Mutation = "no-nonce-check"
	IntrospectionUnprotected   Mutation = "introspection-unprotected"
	TokenResponseCacheable     Mutation = "token-response-cacheable"
	NoNbfCheck                 Mutation = "no-nbf-check"
	NoCritCheck                Mutation = "no-crit-check"
	SchemeCaseSensitive        Mutation = "scheme-case-sensitive"
	NoMultipleCredentialCheck  Mutation = "no-multiple-credential-check"
	LenientProofEncoding       Mutation = "lenient-proof-encoding"
	NoJWKPolicy                Mutation = "no-jwk-policy"
	NoDuplicateCheck           Mutation = "no-duplicate-check"
	NoUTF8Check                Mutation = "no-utf8-check"
	NoRequiredClaims           Mutation = "no-required-claims"
	NoRSAMinSize               Mutation = "no-rsa-min-size"
	BareBearerChallenge        Mutation = "bare-bearer-challenge"
	ErrorOnUnauthenticated     Mutation = "error-on-unauthenticated"
	NoAlgsParam                Mutation = "no-algs-param"
	PredictableNonce           Mutation = "predictable-nonce"
	DuplicateNonceHeader       Mutation = "duplicate-nonce-header"
	ChainUsedAsCert            Mutation = "client-cert-chain-used-as-cert"
	CacheableForwarded         Mutation = "cacheable-forwarded-response"
	ClientCertListFirst        Mutation = "client-cert-list-first"
	MTLSAuthWithoutClientID    Mutation = "mtls-auth-without-client-id"
	TokenTypeMislabel          Mutation = "token-type-mislabel"
	InactiveLeaks              Mutation = "inactive-introspection-leaks"
	MetadataIssuerMismatch     Mutation = "metadata-issuer-mismatch"
	EmptyMetadataArray         Mutation = "empty-metadata-array"
	UnboundUnderDPoP           Mutation = "unbound-under-dpop"
	JKTCaseInsensitive         Mutation = "jkt-case-insensitive"
	X5tPaddingTolerated        Mutation = "x5t-padding-tolerated"
	ProxyAuthorizationUsed     Mutation = "proxy-authorization-used"
	QueryTokenAccepted         Mutation = "query-token-accepted"
	NoJtiCheck                 Mutation = "no-jti-check"
	HtmCaseInsensitive         Mutation = "htm-case-insensitive"
	HtuNotNormalized           Mutation = "htu-not-normalized"
	HeaderCertOverridesTLS     Mutation = "header-cert-overrides-tls"
	JKTNotCanonical            Mutation = "jkt-not-canonical"
	X5tOverSPKI                Mutation = "x5t-over-spki"
	IntrospectionNoCnf         Mutation = "introspection-no-cnf"
	IntrospectionRequiresProof Mutation = "introspection-requires-proof"
	MetadataNoMTLSMethods      Mutation = "metadata-no-mtls-methods"
	MetadataNoJWKSURI          Mutation = "metadata-no-jwks-uri"
	MetadataNotJSON            Mutation = "metadata-not-json"
	LongLivedTokens            Mutation = "long-lived-tokens"
	NoChallenge                Mutation = "no-challenge"
	MTLSClientWithoutCert      Mutation = "mtls-client-without-cert"
	BindHeaderCertAtAS         Mutation = "bind-header-cert-at-as"
	AdoptClientNonce           Mutation = "adopt-client-nonce"
	CertAuthIgnoresClientID    Mutation = "cert-auth-ignores-client-id"
	UnknownCnfMemberRejected   Mutation = "unknown-cnf-member-rejected"
	ExtraProofClaimsRejected   Mutation = "extra-proof-claims-rejected"
	ForwardedCertExpiryChecked Mutation = "forwarded-cert-expiry-checked"
	NonceOutsideNQCHAR         Mutation = "nonce-outside-nqchar"
	MetadataBoolAsString       Mutation = "metadata-bool-as-string"
	NonceOnCacheableSuccess    Mutation = "nonce-on-cacheable-success"
	NoChainValidation          Mutation = "no-chain-validation"
	TokenTypJWT                Mutation = "token-typ-jwt"
	TokenWithoutClientID       Mutation = "token-without-client-id"
	TokenWithoutScope          Mutation = "token-without-scope"
	TokenCnfNotObject          Mutation = "token-cnf-not-object"
	EchoClientCertHeader       Mutation = "echo-client-cert-header"
	CORSWithoutExpose          Mutation = "cors-without-expose"
	DPoPOverHTTP               Mutation = "dpop-over-http"
	BindRegisteredCert         Mutation = "bind-registered-cert"
	FractionalIatServerError   Mutation = "fractional-iat-server-error"
	RefreshNotKeyBound         Mutation = "refresh-not-key-bound"
)

// AllMutations lists every mutation, in declaration order.
var AllMutations = []Mutation{
	NoAthCheck,
	NoReplayStore,
	HtuIncludesQuery,
	AlgNotPinned,
	NonceNotBound,
	BearerDowngrade,
	ForwardedCertFromAnyone,
	NoProofTypCheck,
	PrivateJWKAccepted,
	NoIatWindow,
	NoHtmCheck,
	NoJktCompare,
	NoAudCheck,
	NoExpCheck,
	NoX5tCompare,
	TokenEndpointIgnoresSig,
	NoTokenTypCheck,
	NoIssCheck,
	DPoPSchemeWithoutProof,
	FirstOfManyProofs,
	EchoCredential,
	NoTokenSignatureCheck,
	ClientCertNotMatched,
	NoProofSignatureCheck,
	NoHtuCheck,
	NoNonceCheck,
	IntrospectionUnprotected,
	TokenResponseCacheable,
	NoNbfCheck,
	NoCritCheck,
	SchemeCaseSensitive,
	NoMultipleCredentialCheck,
	LenientProofEncoding,
	NoJWKPolicy,
	NoDuplicateCheck,
	NoUTF8Check,
	NoRequiredClaims,
	NoRSAMinSize,
	BareBearerChallenge,
	ErrorOnUnauthenticated,
	NoAlgsParam,
	PredictableNonce,
	DuplicateNonceHeader,
	ChainUsedAsCert,
	CacheableForwarded,
	ClientCertListFirst,
	MTLSAuthWithoutClientID,
	TokenTypeMislabel,
	InactiveLeaks,
	MetadataIssuerMismatch,
	EmptyMetadataArray,
	UnboundUnderDPoP,
	JKTCaseInsensitive,
	X5tPaddingTolerated,
	ProxyAuthorizationUsed,
	QueryTokenAccepted,
	NoJtiCheck,
	HtmCaseInsensitive,
	HtuNotNormalized,
	HeaderCertOverridesTLS,
	JKTNotCanonical,
	X5tOverSPKI,
	IntrospectionNoCnf,
	IntrospectionRequiresProof,
	MetadataNoMTLSMethods,
	MetadataNoJWKSURI,
	MetadataNotJSON,
	LongLivedTokens,
	NoChallenge,
	MTLSClientWithoutCert,
	BindHeaderCertAtAS,
	AdoptClientNonce,
	CertAuthIgnoresClientID,
	UnknownCnfMemberRejected,
	ExtraProofClaimsRejected,
	ForwardedCertExpiryChecked,
	NonceOutsideNQCHAR,
	MetadataBoolAsString,
	NonceOnCacheableSuccess,
	NoChainValidation,
	TokenTypJWT,
	TokenWithoutClientID,
	TokenWithoutScope,
	TokenCnfNotObject,
	EchoClientCertHeader,
	CORSWithoutExpose,
	DPoPOverHTTP,
	BindRegisteredCert,
	FractionalIatServerError,
	RefreshNotKeyBound,
}

// Variants are behaviours the RFCs allow that differ from the reference
// servers' defaults. Unlike the mutations in [AllMutations], they break
// nothing: the suite must report none of them as an accepted attack or a
// missing MUST-level feature. Pass them in [Config.Mutations].
const (
	// ProofErrorsAs400 answers an invalid DPoP proof at the resource with
	// 400 (still invalid_dpop_proof under a DPoP challenge), and a DPoP
	// request without a proof with 400 invalid_request (RFC 6750 §3.1).
	ProofErrorsAs400 Mutation = "proof-errors-as-400"
	// NonceFreshnessOnly: with nonces, the token endpoint takes a proof's
	// freshness from the nonce alone and does not window iat (RFC 9449
	// §4.3 (11), §11.1).
	NonceFreshnessOnly Mutation = "nonce-freshness-only"
	// SlotNonce hands out one nonce per 30 s slot instead of a new one per
	// response (RFC 9449 §11.1 lets a server accept a nonce several times).
	SlotNonce Mutation = "slot-nonce"
	// BindingCheckedFirst: the resource compares the thumbprint of the
	// proof's jwk with cnf.jkt before it checks the proof, so a proof by
	// another key is refused with invalid_token (RFC 9449 §4.3: the checks
	// may be performed in any order).
	BindingCheckedFirst Mutation = "binding-checked-first"
	// ExpLeeway accepts an access token up to 60 s after its exp (RFC 7519
	// §4.1.4 allows a small leeway).
	ExpLeeway Mutation = "exp-leeway"
	// BOMTolerated ignores a byte-order mark before a proof's payload
	// (RFC 8259 §8.1 lets parsers ignore it).
	BOMTolerated Mutation = "bom-tolerated"
	// CertClientNoDPoP refuses a DPoP proof from a client authenticated by
	// its certificate (RFC 9449 §5 makes DPoP-bound tokens a MAY).
	CertClientNoDPoP Mutation = "cert-client-no-dpop"
	// AdvertiseES512 makes the resource accept and advertise ES512 proofs
	// too.
	AdvertiseES512 Mutation = "advertise-es512"
	// DPoPOnlyResource makes the resources offer the DPoP scheme only: a
	// Bearer request is answered as one without credentials, with a DPoP
	// challenge and no error (RFC 6750 §3.1).
	DPoPOnlyResource Mutation = "dpop-only-resource"
)

// AllVariants lists every variant, in declaration order.
var AllVariants = []Mutation{
	ProofErrorsAs400,
	NonceFreshnessOnly,
	SlotNonce,
	BindingCheckedFirst,
	ExpLeeway,
	BOMTolerated,
	CertClientNoDPoP,
	AdvertiseES512,
	DPoPOnlyResource,
}

// Config configures the reference servers. The zero value is a correct
// server without nonces.
type Config struct {
	// Mutations break the listed checks, or select variants (see
	// [AllVariants]).
	Mutations []Mutation
	// RequireNonce makes the token endpoint and the resource servers demand
	// DPoP nonces.
	RequireNonce bool
	// Window is the proof acceptance window. Default 60 s.
	Window time.Duration
}

// Fixed identities.
const (
	ClientID         = "app"
	ClientSecret     = "app-secret-0123456789"
	MTLSClientID     = "mtls-app"
	IntrospectID     = "rs"
	IntrospectSecret = "rs-secret-0123456789"
	Audience         = "https://rs.refserver.test"
	Audience2        = "https://rs2.refserver.test"
	Scope            = "read"
	// PublicClientID is a public client (no client authentication) that
	// may use RefreshGrantType.
	PublicClientID = "public-app"
	// RefreshGrantType is the test grant that issues a refresh token for
	// the subject RefreshGrantSubject, given as the form parameter
	// "subject". It stands in for an authorization code grant and exists
	// for the conformance suite only. A public client gets a refresh token
	// only when its tokens are bound (DPoP proof or client certificate).
	RefreshGrantType    = "urn:refserver:test:refresh-grant"
	RefreshGrantSubject = "alice"
)

// Algs are the proof algorithms the servers accept.
var Algs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256}

// Servers is a running set of reference servers on loopback, all over TLS
// with certificates from [Servers.RootCAs].
type Servers struct {
	// AS is the authorization server: /token, /jwks, /introspect and
	// /.well-known/oauth-authorization-server.
	AS *httptest.Server
	// RS serves /resource; RS2 is a second resource server accepting the
	// same tokens; Proxy serves the RS as seen through a trusted
	// TLS-terminating proxy (Client-Cert believed); Plain serves the RS
	// over plain HTTP (no TLS, no trusted proxy), where DPoP is refused.
	RS, RS2, Proxy, Plain *httptest.Server
	// RootCAs verifies every server certificate.
	RootCAs *x509.CertPool
	// ClientCert (CN mtls-app) is registered for MTLSClientID; SecondCert is
	// issued by the same CA but registered for no one.
	ClientCert, SecondCert tls.Certificate
	// IssuerKey is the private token-signing key.
	IssuerKey jose.JSONWebKey

	cfg     Config
	muts    map[Mutation]bool
	issuer  string
	signer  jose.Signer
	asNonce *nonces
	rsNonce *nonces
	// asReplay is the token endpoint's proof replay store.
	asReplay *replay
	// refresh holds the issued refresh tokens.
	refresh *refreshStore
	// counter feeds the PredictableNonce mutation.
	counter atomic.Int64
}

func (s *Servers) has(m Mutation) bool { return s.muts[m] }

// Start starts the servers. Call Close when done.
func Start(cfg Config) (*Servers, error) {
	if cfg.Window <= 0 {
		cfg.Window = 60 * time.Second
	}
	p, err := newPKI()
	if err != nil {
		return nil, fmt.Errorf("refserver: pki: %w", err)
	}
	s := &Servers{cfg: cfg, muts: map[Mutation]bool{}, RootCAs: p.pool, asReplay: newReplay(), refresh: newRefreshStore()}
	for _, m := range cfg.Mutations {
		s.muts[m] = true
	}
	if s.ClientCert, err = p.client(MTLSClientID); err != nil {
		return nil, err
	}
	if s.SecondCert, err = p.client("unregistered"); err != nil {
		return nil, err
	}
	ik, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	s.IssuerKey = jose.JSONWebKey{Key: ik, KeyID: "refserver-1", Algorithm: string(jose.ES256), Use: "sig"}
	typ := jose.ContentType("at+jwt")
	if s.has(TokenTypJWT) {
		typ = "JWT"
	}
	s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.IssuerKey},
		(&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		return nil, err
	}
	if s.asNonce, err = newNonces("as"); err != nil {
		return nil, err
	}
	if s.rsNonce, err = newNonces("rs"); err != nil {
		return nil, err
	}
	s.asNonce.perSlot, s.rsNonce.perSlot = s.has(SlotNonce), s.has(SlotNonce)

	s.AS = httptest.NewUnstartedServer(http.HandlerFunc(s.serveAS))
	s.AS.Config.ErrorLog = quiet
	s.AS.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: p.pool}
	if s.has(NoChainValidation) {
		s.AS.TLS.ClientAuth = tls.RequestClientCert
	}
	s.AS.StartTLS()
	s.issuer = s.AS.URL

	mk := func(rs *resourceServer) *httptest.Server {
		srv := httptest.NewUnstartedServer(rs)
		srv.Config.ErrorLog = quiet
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
		return srv
	}
	shared := newReplay()
	s.RS = mk(&resourceServer{s: s, audience: Audience, replay: shared})
	s.Proxy = mk(&resourceServer{s: s, audience: Audience, replay: shared, trustedProxy: true})
	s.RS2 = mk(&resourceServer{s: s, audience: Audience2, replay: newReplay()})
	s.Plain = httptest.NewUnstartedServer(&resourceServer{s: s, audience: Audience, replay: shared})
	s.Plain.Config.ErrorLog = quiet
	s.Plain.Start()
	return s, nil
}

// quiet drops the servers' connection-level logs (handshake failures are
// provoked on purpose).
var quiet = log.New(io.Discard, "", 0)

// Close stops every server.
func (s *Servers) Close() {
	for _, srv := range []*httptest.Server{s.AS, s.RS, s.RS2, s.Proxy, s.Plain} {
		if srv != nil {
			srv.Close()
		}
	}
}

// Issuer is the issuer identifier (the AS base URL).
func (s *Servers) Issuer() string { return s.issuer }

// replay is a single-use store for proof identifiers, keyed by the proof
// key's thumbprint and jti, each entry expiring on its own.
type replay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newReplay() *replay { return &replay{seen: map[string]time.Time{}} }

// fresh records key until exp and reports whether it was unseen.
func (r *replay) fresh(key string, now, exp time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) > 10000 {
		for k, e := range r.seen {
			if now.After(e) {
				delete(r.seen, k)
			}
		}
	}
	if e, ok := r.seen[key]; ok && now.Before(e) {
		return false
	}
	r.seen[key] = exp
	return true
}
