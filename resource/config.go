package resource

import (
	"log/slog"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/trustedproxy"
)

// Issuer is one trusted authorization server: its exact issuer identifier
// and how its access tokens are validated, by the keys it signs JWT
// access tokens with, by its introspection endpoint, or both. Keys of one
// issuer never verify tokens naming another (RFC 8725 §3.8).
//
// A token is verified as a JWT when it has the shape of a JWS compact
// serialization (three dot-separated parts) and some issuer has Keys; the
// issuer its iss names must then have Keys, or, when that issuer has only
// Introspection, the token is introspected. Any other token (an opaque
// handle) goes to the one issuer with Introspection. Opaque tokens carry
// no issuer name, so at most one issuer may have Introspection: a token
// is never sent to an authorization server that did not issue it.
type Issuer struct {
	// Identifier is compared with the token's iss exactly, code point by
	// code point (no trailing-slash or case folding).
	Identifier string
	// Keys supplies the issuer's signing keys: a [StaticKeySet] or a
	// [RemoteKeySet] (JWKS URL or discovery). Required unless
	// Introspection is set.
	Keys KeySet
	// Introspection, when set, validates this issuer's opaque access
	// tokens (and, without Keys, all of its tokens) at its RFC 7662
	// introspection endpoint. At most one issuer may set it.
	Introspection *Introspection
}

// Config configures a [Verifier]. [New] copies it; later changes to the
// caller's struct have no effect.
type Config struct {
	// Issuers lists the trusted authorization servers. Required, at least
	// one, identifiers unique.
	Issuers []Issuer
	// Audience is this resource server's identifier; a token's aud must
	// contain it (RFC 9068 §4). Required. It is also the "resource" of the
	// protected resource metadata.
	Audience string
	// Algorithms is the access-token signature algorithm allow-list.
	// Required, non-empty: there is no implicit default; pass
	// [DefaultAlgorithms]() for RS256, PS256, ES256 and EdDSA. "none" and
	// HMAC algorithms are refused at construction.
	Algorithms []string
	// Leeway tolerates clock skew on exp, nbf and iat. Zero means none: a
	// token is valid strictly before exp. Negative values are refused.
	Leeway time.Duration
	// RequiredClaims lists the claims a token must carry besides iss, aud
	// and exp (which are always required). If nil, sub, client_id, iat and
	// jti are required (RFC 9068 §2.2). A non-nil empty slice requires none
	// of them. Allowed names: sub, client_id, iat, jti.
	RequiredClaims []string
	// InsecureAllowUntypedTokens accepts access tokens without a typ
	// header, for issuers that do not set it. It MUST NOT be set when the
	// issuer also signs other JWTs (ID tokens, logout tokens) with the same
	// keys: without typ those cannot be told apart from access tokens. A
	// typ other than at+jwt is refused regardless.
	InsecureAllowUntypedTokens bool
	// MaxTokenBytes caps the access token size, checked before any parsing.
	// Zero means 16 KiB.
	MaxTokenBytes int
	// TokenCacheSize is the number of verified tokens kept to skip their
	// signature check on reuse. Zero means 10,000; negative disables the
	// cache. Entries live until the token's exp and are dropped when the
	// signing key leaves the issuer's key set; binding, proof, time and
	// scope checks run on every request regardless.
	TokenCacheSize int
	// Realm is the realm auth-param of Bearer challenges. Empty means the
	// Audience.
	Realm string
	// Now is the clock. If nil, time.Now is used. It is also the clock of
	// the DPoP proof verifier.
	Now func() time.Time

	// DPoP, when set, accepts DPoP-bound tokens under the DPoP scheme
	// (RFC 9449). nil means the DPoP scheme is not offered.
	DPoP *DPoPConfig
	// PublicURL is the externally visible base URL of this server (for
	// example "https://api.example.com"); the expected DPoP htu is PublicURL
	// followed by the request path, and no forwarded header is read for it.
	// This is the recommended setting. Required with DPoP unless
	// TrustedProxies forward the scheme and host or InsecureHostHeader is
	// set. If empty, the htu of a request from a trusted proxy comes from
	// the one header family those proxies set (X-Forwarded-Proto/-Host by
	// default, or RFC 7239 Forwarded; or the Host it sent), and a request
	// from one of them that carries the other family's fields is refused
	// (400 invalid_request, reason forwarded_headers_unexpected); a DPoP
	// request from any other peer is refused (400 invalid_request), unless
	// InsecureHostHeader.
	PublicURL string
	// InsecureHostHeader, without PublicURL, derives the expected DPoP htu
	// of a request from no trusted proxy (or from trusted proxies whose
	// header family is none) from its Host header and whether it arrived
	// over TLS. The client chooses the Host header: a proof made for
	// another name this server answers to (another resource server behind
	// the same certificate, an alias) is then accepted. Only for servers
	// reachable under a single name, and tests.
	InsecureHostHeader bool
	// TrustedProxies are the TLS-terminating proxies in front of this
	// server, built once by trustedproxy.New. Only from these peers are
	// forwarded headers believed: the RFC 9440 Client-Cert header
	// (mTLS-bound tokens; a certificate on a proxy's own connection is the
	// proxy's, never the client's) and the scheme and host (htu, when
	// PublicURL is empty); and requests from them count as having arrived
	// over TLS. nil (the default) trusts no proxy.
	TrustedProxies *trustedproxy.Set
	// ClientCerts finds the client certificate for certificate-bound
	// tokens. If nil, a source built from TrustedProxies is used: an RFC
	// 9440 Client-Cert header from a trusted proxy, else the TLS
	// connection's certificate. Set it for other header formats; it must
	// be built with the same TrustedProxies (the same *trustedproxy.Set, or
	// both nil), else New refuses the Config.
	ClientCerts *mtlsbound.Source
	// InsecureAllowDPoPOverHTTP accepts DPoP on plain-HTTP requests that
	// did not come through a trusted TLS-terminating proxy. RFC 9449 §2
	// requires TLS; this MUST NOT be set outside local demos and tests.
	InsecureAllowDPoPOverHTTP bool
	// Fallback, when set, lets routes whose Policy.Fallback is true
	// authorize requests that carry no access token by a client
	// certificate of the issuer's fallback CA (see the fallback package):
	// on the TLS connection or from a trusted proxy (ClientCerts), or in
	// the x5c of a signed request (a DPoP header without Authorization).
	// Signed requests are verified by the fallback Verifier's own
	// dpop.Verifier, whose nonce source should be DPoP.Nonces so that
	// use_dpop_nonce answers carry a nonce it accepts, and need the target
	// URI (PublicURL, TrustedProxies or InsecureHostHeader). nil means no
	// route can use the fallback.
	Fallback *fallback.Verifier

	// Logger, when set, receives one Debug record per rejected request
	// ("resource: request rejected") with the reason, status and scheme.
	// Rejections are logged at Debug, not Info, because any client can
	// cause them at the rate it sends requests: at Info a flood of refused
	// requests would be a flood of log lines. Count them with Metrics or
	// OnReject instead, and enable Debug to see each one. Tokens, proofs
	// and request data are never logged.
	Logger *slog.Logger
	// OnReject, when set, is called once per rejected request with the
	// stable reason (for example "token_expired"), whatever the log level,
	// e.g. to count rejections by reason. It must be safe for concurrent
	// use and must not block.
	OnReject func(reason string)
	// Metrics, when set, receives one call per decided request (accepted
	// or refused, with the stable reason) and the durations of token and
	// proof verification and of replay-store calls. nil means no metrics
	// and no cost. A RemoteKeySet reports its fetches through its own
	// RemoteKeySetConfig.Metrics.
	Metrics Metrics
}

// DPoPConfig configures DPoP proof verification at the resource server.
type DPoPConfig struct {
	// Algorithms is the allow-list of proof algorithms, also announced in
	// the algs challenge parameter and the metadata. Required; asymmetric
	// algorithms only.
	Algorithms []string
	// ReplayStore makes each proof single use (replaycache.LRU for one
	// instance, replaycache/redisstore for many). Required. When it fails,
	// requests are refused with 503.
	ReplayStore dpop.ReplayStore
	// KeyQuota bounds the replay entries one proof key (one access token's
	// cnf.jkt) may create per window, so that a token holder sending a
	// flood of fresh proofs cannot fill ReplayStore and have every other
	// client's requests refused. The zero value selects the
	// replaycache.Quota defaults: 65536 proofs per key per 105 s (about 620
	// requests per second sustained per key), 65536 keys tracked. A proof
	// over quota is refused with 401 invalid_dpop_proof (reason
	// "proof_key_quota") before the store is touched. Set Limit to at most
	// a small fraction of the store's capacity.
	KeyQuota replaycache.QuotaConfig
	// Nonces, when set, makes a resource-server nonce mandatory in every
	// proof (RFC 9449 §9): a proof without a valid nonce gets 401
	// use_dpop_nonce with a fresh DPoP-Nonce. Build it with a Label naming
	// this server so its nonces are not accepted elsewhere. When it also
	// has a Due(nonce string) bool method (as *dpop.Nonces does), accepted
	// requests receive a fresh nonce ahead of expiry.
	Nonces dpop.NonceSource
	// MaxAge and FutureSkew bound the proof's iat; zero means the dpop
	// package defaults (60 s and 15 s).
	MaxAge, FutureSkew time.Duration
	// MaxProofBytes caps the proof size; zero means the dpop default (8 KiB).
	MaxProofBytes int
}

// Accept selects which kinds of access token a route accepts.
type Accept uint8

const (
	// AcceptBound, the zero value, accepts sender-constrained tokens only:
	// a cnf.jkt token with a valid DPoP proof, or a cnf.x5t#S256 token on a
	// connection with the matching client certificate. Unbound tokens are
	// refused.
	AcceptBound Accept = iota
	// AcceptDPoP accepts only DPoP-bound tokens with a valid proof. Its
	// challenge is DPoP; a request under Bearer is still checked, so a
	// DPoP-bound token there is refused with Bearer error="invalid_token"
	// as on every route, and a valid certificate-bound token is refused
	// with invalid_token (binding_not_accepted).
	AcceptDPoP
	// AcceptMTLS accepts only certificate-bound tokens with the matching
	// client certificate. Its challenge is Bearer; with [Config.DPoP] set,
	// a request under DPoP is still checked and, when token and proof are
	// valid, refused with DPoP error="invalid_token" (binding_not_accepted).
	AcceptMTLS
	// AcceptAny accepts what AcceptBound accepts plus unbound bearer
	// tokens under the Bearer scheme. Bound tokens still need their
	// proof: a cnf.jkt token under Bearer is refused (no downgrade).
	AcceptAny
)

// String returns the constant's name without the Accept prefix.
func (a Accept) String() string {
	switch a {
	case AcceptBound:
		return "bound"
	case AcceptDPoP:
		return "dpop"
	case AcceptMTLS:
		return "mtls"
	case AcceptAny:
		return "any"
	}
	return "invalid"
}

// Policy is what one route requires. The zero value accepts any
// sender-constrained token and requires no scope.
type Policy struct {
	// Accept selects the token kinds accepted (default AcceptBound).
	Accept Accept
	// Scopes lists scopes that must all appear in the token's scope claim
	// (or the fallback certificate's scopes); otherwise the request gets
	// 403 insufficient_scope.
	Scopes []string
	// Fallback opts this route into certificate-carried authorization for
	// requests without an access token (Config.Fallback must be set):
	// such a request is authorized by a fallback client certificate, with
	// Binding BindingFallback. Requests with a token are checked as
	// always. A revocation list past its nextUpdate plus grace makes
	// fallback requests fail with 503 (ErrUnavailable). Off by default.
	Fallback bool
}

// Binding says how a request proved possession of its token.
type Binding string

const (
	// BindingDPoP: a cnf.jkt token with a valid DPoP proof.
	BindingDPoP Binding = "dpop"
	// BindingMTLS: a cnf.x5t#S256 token with the matching client certificate.
	BindingMTLS Binding = "mtls"
	// BindingBearer: an unbound token (only under AcceptAny).
	BindingBearer Binding = "bearer"
	// BindingFallback: no token; a fallback client certificate (over mTLS,
	// from a trusted proxy, or in a signed request) under a route with
	// Policy.Fallback. BindingValue and CertThumbprint hold its x5t#S256.
	BindingFallback Binding = "fallback_certificate"
)
