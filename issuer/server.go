package issuer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
)

// DefaultDPoPAlgorithms are the proof algorithms the token endpoint accepts
// when ServerConfig.DPoPAlgorithms is empty.
var DefaultDPoPAlgorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"}

// Endpoint paths, relative to the issuer identifier (and to MTLSBaseURL for
// the mTLS aliases).
const (
	TokenPath         = "/token"
	JWKSPath          = "/jwks"
	IntrospectionPath = "/introspect"
	MetadataPath      = "/.well-known/oauth-authorization-server"
)

// ServerConfig configures a [Server]. NewServer copies it.
type ServerConfig struct {
	// Issuer mints the tokens; its identifier is the base of every endpoint
	// URL (issuer + TokenPath, …). Required.
	Issuer *Issuer
	// Clients is the client registry. Required.
	Clients ClientRegistry
	// MTLSBaseURL is the base of the RFC 8705 §5 mTLS endpoint aliases
	// (MTLSBaseURL + TokenPath and + IntrospectionPath), typically a host
	// whose TLS listener requests client certificates. Optional.
	MTLSBaseURL string
	// DPoPAlgorithms are the accepted proof algorithms, advertised in
	// dpop_signing_alg_values_supported. Default [DefaultDPoPAlgorithms].
	DPoPAlgorithms []string
	// ReplayStore tracks proof and client-assertion jti values. Required:
	// there is no implicit default, because an in-memory store silently
	// loses shared replay protection when several instances serve the same
	// issuer. A single instance passes [NewMemoryReplayStore]; several
	// share one store such as replaycache/redisstore. A DPoP proof is
	// recorded only once the rest of the token request (client
	// authentication, grant, binding) has passed, just before the token is
	// minted, so refused requests occupy no entry.
	ReplayStore dpop.ReplayStore
	// ReplayQuota bounds the replay entries one owner may create per
	// window: each DPoP proof key (by thumbprint), and each confidential
	// client (DPoP proofs of its token requests and its private_key_jwt
	// assertions together). Public clients are bounded per proof key only,
	// since one public client_id is shared by all of its users. The zero
	// value selects the replaycache.Quota defaults (65536 entries per 105 s
	// per owner, 65536 owners tracked). A request over quota is refused
	// (invalid_dpop_proof, or invalid_client for an assertion) without
	// touching the store.
	ReplayQuota replaycache.QuotaConfig
	// Nonces, when set, makes every DPoP proof carry a server nonce
	// (RFC 9449 §8). Give it a Label unique to this issuer so that nonces
	// of other servers are refused.
	Nonces dpop.NonceSource
	// ProofMaxAge is how far a proof's iat may lie in the past. Zero means
	// the dpop package default.
	ProofMaxAge time.Duration
	// Certificates extracts the client certificate. Default: the TLS layer
	// only (no forwarded headers).
	Certificates *mtlsbound.Source
	// MTLS says that the token endpoint can see client certificates: it is
	// served by a TLS listener that requests them (see
	// mtlsbound.ServerTLSConfig), or by a trusted proxy that forwards them
	// (Certificates). Only then does the metadata advertise
	// tls_client_certificate_bound_access_tokens (RFC 8705 §3.3) and do the
	// default AuthMethods include tls_client_auth and
	// self_signed_tls_client_auth. MTLSBaseURL and a non-nil Certificates
	// imply it. A server that
	// cannot obtain certificates must not claim it: clients would be told
	// to expect certificate-bound tokens they can never get.
	MTLS bool
	// RefreshTokens stores refresh tokens. It is required when Grants is
	// non-empty (only a registered grant issues refresh tokens; the
	// built-in client_credentials grant never does): give
	// NewMemoryRefreshStore for one instance, or a shared store such as
	// issuer/redisrefresh when several instances serve the same issuer
	// (with a store per instance, a refresh token is unknown at the others
	// and each instance keeps its own single-use and reuse records). When
	// Grants is empty and RefreshTokens is nil, a memory store is used,
	// which never holds a refresh token (it may hold opaque access tokens
	// only if Config.AccessTokens names it).
	RefreshTokens RefreshStore
	// RefreshTokenTTL is the refresh-token lifetime. Default 24 hours.
	RefreshTokenTTL time.Duration
	// Grants adds grant types (authorization_code, device code, token
	// exchange, …). The built-in client_credentials and refresh_token
	// grants cannot be replaced.
	Grants map[string]GrantHandler
	// JWKSMaxAge is the JWKS Cache-Control max-age. Default
	// [DefaultJWKSMaxAge].
	JWKSMaxAge time.Duration
	// ScopesSupported is advertised in the metadata; optional.
	ScopesSupported []string
	// AuthorizationEndpoint and ResponseTypesSupported describe the
	// embedding server's own authorization endpoint, if it has one, in the
	// metadata (RFC 8414 §2). Both are omitted when empty.
	AuthorizationEndpoint  string
	ResponseTypesSupported []string
	// AuthMethods are the client authentication methods advertised in the
	// metadata. Default: all six methods when MTLS is set, else all but
	// tls_client_auth and self_signed_tls_client_auth.
	AuthMethods []AuthMethod
	// ClientAssertionAlgorithms are the JWS algorithms accepted for
	// private_key_jwt assertions (asymmetric only). Default
	// [DefaultDPoPAlgorithms].
	ClientAssertionAlgorithms []string
	// Logger, when set, receives one Info record per refused token, PAR or
	// introspection request, with the endpoint, the RFC 6749 error code,
	// the status and the fixed error description as the reason, and one
	// per introspection answered {"active":false} because the token is not
	// visible to the caller. Tokens, secrets, proofs and other request data
	// are never logged.
	Logger *slog.Logger
	// Metrics, when set, receives one call per issued token (by grant and
	// binding) and per refused request, and the duration of each
	// replay-store call. nil means no metrics and no cost.
	Metrics Metrics
	// ClientJWKS configures the fetching of the key sets of clients
	// registered with a [Client.JWKSURI]. The zero value is the documented
	// defaults: public addresses only, over HTTPS with the system roots.
	ClientJWKS ClientJWKSConfig
	// Fallback, when set, makes the issuer a certificate authority for
	// the fallback: Handler serves CertificatePath (also on the mTLS
	// alias) and CRLPath, and the metadata advertises them. Optional.
	Fallback *fallback.CA
	// PAR, when set, enables the pushed authorization request endpoint
	// (RFC 9126): Handler serves PARPath (also on the mTLS alias), the
	// metadata advertises it, and [Server.AuthorizationRequest] redeems
	// its request_uri values. NewServer copies it. Optional.
	PAR *PARConfig
}

// Server serves the issuer's HTTP endpoints: token, JWKS, metadata and
// introspection. It is built once by [NewServer] and is safe for
// concurrent use. Every endpoint is also available as its own handler so
// it can be mounted on any mux.
type Server struct {
	cfg      ServerConfig
	is       *Issuer
	verifier *dpop.Verifier
	quota    *replaycache.Quota
	// parQuota counts each client's pushed requests; parRetryAfter is its
	// window in whole seconds. Set when PAR is enabled.
	parQuota      *replaycache.Quota
	parRetryAfter int64
	nonces        dpop.NonceSource
	certs         *mtlsbound.Source
	refresh       RefreshStore
	tokenURL      string
	aliasURL      string // mTLS alias of the token endpoint, or ""
	aliasHost     string
	mainHost      string
	issuerPath    string
	aliasPath     string
	metadata      []byte

	assertionAlgs []jose.SignatureAlgorithm
	clientKeys    *clientKeySets
}

// NewMemoryReplayStore returns an in-memory replay store of capacity
// entries (0 means replaycache.DefaultCapacity, 1<<20; negative is an
// error) that judges expiry with is's clock, for [ServerConfig.ReplayStore]
// of an issuer served by ONE instance. Instances behind one load balancer
// must share a store (replaycache/redisstore): with a store each, a proof
// or client assertion accepted by one is accepted again by the others.
// Size it as peak DPoP token requests and private_key_jwt authentications
// per second × (ProofMaxAge + 15 s + 30 s), with headroom; when it is full
// of live entries, DPoP token requests are refused with 503.
func NewMemoryReplayStore(is *Issuer, capacity int) (*replaycache.LRU, error) {
	var now func() time.Time
	if is != nil {
		now = is.cfg.Now
	}
	lru, err := replaycache.NewLRU(replaycache.Config{Capacity: capacity, Now: now})
	if err != nil {
		return nil, fmt.Errorf("%w: replay store: %w", ErrInvalidConfig, err)
	}
	return lru, nil
}

// NewServer validates cfg and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Issuer == nil || cfg.Clients == nil {
		return nil, fmt.Errorf("%w: Issuer and Clients are required", ErrInvalidConfig)
	}
	s := &Server{is: cfg.Issuer}
	if len(cfg.DPoPAlgorithms) == 0 {
		cfg.DPoPAlgorithms = DefaultDPoPAlgorithms
	}
	cfg.DPoPAlgorithms = slices.Clone(cfg.DPoPAlgorithms)
	if cfg.ReplayStore == nil {
		return nil, fmt.Errorf("%w: ReplayStore is required (NewMemoryReplayStore for a single instance, a shared store for several)", ErrInvalidConfig)
	}
	cfg.ReplayStore = timedReplayStore(cfg.ReplayStore, cfg.Metrics)
	if cfg.ReplayQuota.Now == nil {
		cfg.ReplayQuota.Now = cfg.Issuer.cfg.Now
	}
	quota, err := replaycache.NewQuota(cfg.ReplayQuota)
	if err != nil {
		return nil, fmt.Errorf("%w: replay quota: %w", ErrInvalidConfig, err)
	}
	s.quota = quota
	s.clientKeys = newClientKeySets(cfg.ClientJWKS, cfg.Issuer.now, cfg.Metrics)
	v, err := dpop.NewVerifier(dpop.Config{
		Algorithms:  cfg.DPoPAlgorithms,
		MaxAge:      cfg.ProofMaxAge,
		Now:         cfg.Issuer.cfg.Now,
		ReplayStore: cfg.ReplayStore,
		KeyLimiter:  quota,
		Nonces:      cfg.Nonces,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: DPoP: %w", ErrInvalidConfig, err)
	}
	s.verifier = v
	s.nonces = cfg.Nonces
	if cfg.Certificates != nil {
		cfg.MTLS = true
	}
	if cfg.Certificates == nil {
		src, err := mtlsbound.NewSource(mtlsbound.SourceConfig{})
		if err != nil {
			return nil, fmt.Errorf("%w: certificate source: %w", ErrInvalidConfig, err)
		}
		cfg.Certificates = src
	}
	s.certs = cfg.Certificates
	if cfg.RefreshTokens == nil {
		if len(cfg.Grants) > 0 {
			return nil, fmt.Errorf("%w: RefreshTokens is required when Grants is set: use NewMemoryRefreshStore for one instance, or a shared store (issuer/redisrefresh) for several", ErrInvalidConfig)
		}
		cfg.RefreshTokens = NewMemoryRefreshStore(cfg.Issuer.cfg.Now)
	}
	s.refresh = cfg.RefreshTokens
	if cfg.RefreshTokenTTL == 0 {
		cfg.RefreshTokenTTL = 24 * time.Hour
	}
	if cfg.RefreshTokenTTL < time.Second {
		return nil, fmt.Errorf("%w: RefreshTokenTTL", ErrInvalidConfig)
	}
	for gt, h := range cfg.Grants {
		if gt == "" || h == nil || gt == GrantClientCredentials || gt == GrantRefreshToken {
			return nil, fmt.Errorf("%w: grant %q cannot be registered", ErrInvalidConfig, gt)
		}
	}
	if cfg.MTLSBaseURL != "" {
		cfg.MTLS = true
	}
	if len(cfg.AuthMethods) == 0 {
		cfg.AuthMethods = []AuthMethod{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}
		if cfg.MTLS {
			cfg.AuthMethods = append(cfg.AuthMethods, AuthTLSClient, AuthSelfSignedTLSClient)
		}
		cfg.AuthMethods = append(cfg.AuthMethods, AuthNone)
	}
	if len(cfg.ClientAssertionAlgorithms) == 0 {
		cfg.ClientAssertionAlgorithms = DefaultDPoPAlgorithms
	}
	cfg.ClientAssertionAlgorithms = slices.Clone(cfg.ClientAssertionAlgorithms)
	for _, a := range cfg.ClientAssertionAlgorithms {
		if !slices.Contains([]string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}, a) {
			return nil, fmt.Errorf("%w: client assertion algorithms must be asymmetric", ErrInvalidConfig)
		}
		s.assertionAlgs = append(s.assertionAlgs, jose.SignatureAlgorithm(a))
	}
	if cfg.PAR != nil {
		par := *cfg.PAR
		if par.Lifetime == 0 {
			par.Lifetime = DefaultPARLifetime
		}
		if par.Lifetime < time.Second || par.Lifetime > 10*time.Minute {
			return nil, fmt.Errorf("%w: PAR Lifetime must lie between 1 s and 10 min", ErrInvalidConfig)
		}
		if par.Store == nil {
			st, err := NewMemoryPushedRequestStore(0, cfg.Issuer.cfg.Now)
			if err != nil {
				return nil, err
			}
			par.Store = st
		}
		if par.Quota.Limit == 0 {
			par.Quota.Limit = DefaultPARQuotaLimit
		}
		if par.Quota.Window == 0 {
			par.Quota.Window = par.Lifetime
		}
		if par.Quota.Now == nil {
			par.Quota.Now = cfg.Issuer.cfg.Now
		}
		q, err := replaycache.NewQuota(par.Quota)
		if err != nil {
			return nil, fmt.Errorf("%w: PAR quota: %w", ErrInvalidConfig, err)
		}
		s.parQuota = q
		s.parRetryAfter = int64((par.Quota.Window + time.Second - 1) / time.Second)
		cfg.PAR = &par
	}
	base := strings.TrimSuffix(cfg.Issuer.ID(), "/")
	s.tokenURL = base + TokenPath
	u, _ := url.Parse(cfg.Issuer.ID())
	s.issuerPath = strings.TrimSuffix(u.Path, "/")
	s.mainHost = canonicalHost(u.Scheme, u.Host)
	if cfg.MTLSBaseURL != "" {
		if err := checkIssuerURL(cfg.MTLSBaseURL, cfg.Issuer.cfg.InsecureAllowHTTP); err != nil {
			return nil, fmt.Errorf("%w: MTLSBaseURL must be an https URL", ErrInvalidConfig)
		}
		au, _ := url.Parse(cfg.MTLSBaseURL)
		s.aliasURL = strings.TrimSuffix(cfg.MTLSBaseURL, "/") + TokenPath
		s.aliasHost = canonicalHost(au.Scheme, au.Host)
		s.aliasPath = strings.TrimSuffix(au.Path, "/")
	}
	s.cfg = cfg
	md, err := json.Marshal(s.Metadata())
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", ErrInvalidConfig, err)
	}
	s.metadata = md
	return s, nil
}

// canonicalHost lower-cases host and drops the scheme's default port.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	if h, p, err := net.SplitHostPort(host); err == nil && (scheme == "https" && p == "443" || scheme == "http" && p == "80") {
		return h
	}
	return host
}

// Handler returns one http.Handler serving every endpoint at the paths of
// the issuer identifier and of MTLSBaseURL: the token endpoint, JWKS,
// introspection, the RFC 8414 metadata (at
// /.well-known/oauth-authorization-server followed by the issuer's path),
// with ServerConfig.PAR the pushed authorization request endpoint and,
// with ServerConfig.Fallback, the certificate and CRL endpoints.
// Other paths get 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	tok, intro := s.TokenHandler(), s.IntrospectionHandler()
	mux.Handle(s.issuerPath+TokenPath, tok)
	mux.Handle(s.issuerPath+IntrospectionPath, intro)
	mux.Handle(s.issuerPath+JWKSPath, s.JWKSHandler())
	mux.Handle(MetadataPath+s.issuerPath, s.MetadataHandler())
	par := s.PARHandler()
	if par != nil {
		mux.Handle(s.issuerPath+PARPath, par)
	}
	var cert http.Handler
	if s.cfg.Fallback != nil {
		cert = s.CertificateHandler()
		mux.Handle(s.issuerPath+CertificatePath, cert)
		mux.Handle(s.issuerPath+CRLPath, s.CRLHandler())
	}
	if s.aliasURL != "" && s.aliasPath != s.issuerPath {
		mux.Handle(s.aliasPath+TokenPath, tok)
		mux.Handle(s.aliasPath+IntrospectionPath, intro)
		if cert != nil {
			mux.Handle(s.aliasPath+CertificatePath, cert)
		}
		if par != nil {
			mux.Handle(s.aliasPath+PARPath, par)
		}
	}
	return mux
}

// JWKSHandler returns the JWKS endpoint ([Issuer.JWKSHandler] with
// ServerConfig.JWKSMaxAge).
func (s *Server) JWKSHandler() http.Handler { return s.is.JWKSHandler(s.cfg.JWKSMaxAge) }

// TokenURL returns the token endpoint URL.
func (s *Server) TokenURL() string { return s.tokenURL }

// endpointURL returns the URL of the endpoint at path (TokenPath,
// IntrospectionPath, PARPath, ...) that r was sent to: the mTLS alias when
// the request came in on the alias (its host, or its path when the alias
// shares the conventional host), else the conventional URL. Either way the
// value is one of ours, never built from request input; a DPoP proof (or a
// client assertion audience) naming any other URL fails.
func (s *Server) endpointURL(r *http.Request, path string) string {
	main := strings.TrimSuffix(s.is.ID(), "/") + path
	if s.aliasURL == "" {
		return main
	}
	scheme := "https"
	if r.TLS == nil && s.is.cfg.InsecureAllowHTTP {
		scheme = "http"
	}
	if canonicalHost(scheme, r.Host) != s.aliasHost {
		return main
	}
	if s.aliasHost != s.mainHost || r.URL.Path == s.aliasPath+path {
		return strings.TrimSuffix(s.cfg.MTLSBaseURL, "/") + path
	}
	return main
}
