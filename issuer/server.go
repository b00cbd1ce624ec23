package issuer

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/internal/pubkey"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

// Grant types built into the token endpoint.
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
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

// GrantRequest is what a [GrantHandler] sees: an authenticated client and
// the verified binding material of the request.
type GrantRequest struct {
	// GrantType is the grant_type parameter.
	GrantType string
	// Client is the authenticated (or, for public clients, identified) client.
	Client *Client
	// Params holds the form parameters (each present at most once, none
	// empty); client_secret and client_assertion are removed.
	Params map[string]string
	// JKT is the thumbprint of the verified DPoP proof key, or "".
	JKT string
	// Certificate is the client certificate proven in the TLS handshake
	// (or forwarded by a trusted proxy), or nil.
	Certificate *x509.Certificate
}

// Grant is a [GrantHandler]'s decision.
type Grant struct {
	// Subject is the token's "sub". Required.
	Subject string
	// Scope is the granted space-separated scope.
	Scope string
	// Audience is the token's "aud"; empty means the client's default.
	Audience []string
	// Claims are extra access-token claims (reserved names are refused).
	Claims map[string]any
	// TTL is the access-token lifetime; zero means the issuer default.
	TTL time.Duration
	// DPoPJKT is the dpop_jkt the authorization request was bound to
	// (RFC 9449 §10). When set, the token request must carry a DPoP proof
	// by that key or it fails with invalid_grant.
	DPoPJKT string
	// RefreshToken asks for a refresh token next to the access token.
	// A public client gets one only when its tokens are bound.
	RefreshToken bool

	// redeem is the refresh token this grant redeems (refresh_token
	// grant): taken from the store just before minting, and replaced by a
	// successor for the same grant.
	redeem *redemption
}

// redemption is a refresh token about to be redeemed and its record.
type redemption struct {
	id  [32]byte
	rec RefreshRecord
}

// GrantHandler implements one grant type at the token endpoint. The
// framework has already parsed the form, authenticated the client, checked
// that the client may use the grant type and verified any DPoP proof; the
// handler checks the grant itself (code, device code, assertion) and
// returns who the token is for. To refuse with a specific RFC 6749 code,
// return [GrantError]; any other error is answered as server_error without
// detail. Handlers must be safe for concurrent use.
type GrantHandler interface {
	Grant(ctx context.Context, req *GrantRequest) (*Grant, error)
}

// GrantHandlerFunc adapts a function to [GrantHandler].
type GrantHandlerFunc func(ctx context.Context, req *GrantRequest) (*Grant, error)

// Grant calls f.
func (f GrantHandlerFunc) Grant(ctx context.Context, req *GrantRequest) (*Grant, error) {
	return f(ctx, req)
}

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
	// RefreshTokens stores refresh tokens. Default: NewMemoryRefreshStore
	// (one instance only; use a shared store such as issuer/redisrefresh
	// when several instances serve the same issuer, or a refresh token
	// issued by one is unknown at the others).
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
	// Logger, when set, receives one Info record per refused token or
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
	// Fallback, when set, makes the issuer a certificate authority for
	// the fallback: Handler serves CertificatePath (also on the mTLS
	// alias) and CRLPath, and the metadata advertises them. Optional.
	Fallback *fallback.CA
}

// Server serves the issuer's HTTP endpoints: token, JWKS, metadata and
// introspection. It is built once by [NewServer] and is safe for
// concurrent use. Every endpoint is also available as its own handler so
// it can be mounted on any mux.
type Server struct {
	cfg        ServerConfig
	is         *Issuer
	verifier   *dpop.Verifier
	quota      *replaycache.Quota
	nonces     dpop.NonceSource
	certs      *mtlsbound.Source
	refresh    RefreshStore
	tokenURL   string
	aliasURL   string // mTLS alias of the token endpoint, or ""
	aliasHost  string
	mainHost   string
	issuerPath string
	aliasPath  string
	metadata   []byte

	assertionAlgs []jose.SignatureAlgorithm
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
// /.well-known/oauth-authorization-server followed by the issuer's path)
// and, with ServerConfig.Fallback, the certificate and CRL endpoints.
// Other paths get 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	tok, intro := s.TokenHandler(), s.IntrospectionHandler()
	mux.Handle(s.issuerPath+TokenPath, tok)
	mux.Handle(s.issuerPath+IntrospectionPath, intro)
	mux.Handle(s.issuerPath+JWKSPath, s.JWKSHandler())
	mux.Handle(MetadataPath+s.issuerPath, s.MetadataHandler())
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
	}
	return mux
}

// JWKSHandler returns the JWKS endpoint ([Issuer.JWKSHandler] with
// ServerConfig.JWKSMaxAge).
func (s *Server) JWKSHandler() http.Handler { return s.is.JWKSHandler(s.cfg.JWKSMaxAge) }

// TokenURL returns the token endpoint URL.
func (s *Server) TokenURL() string { return s.tokenURL }

// expectedHTU returns the token endpoint URL the request was sent to: the
// mTLS alias when the request came in on the alias (its host, or its path
// when the alias shares the conventional host), else the conventional URL.
// Either way the value is one of ours, never built from request input; a
// proof naming any other URL fails.
func (s *Server) expectedHTU(r *http.Request) string {
	return s.endpointURL(r, TokenPath)
}

// endpointURL returns the URL of the endpoint at path (TokenPath or
// IntrospectionPath) that r was sent to, by the same rule as expectedHTU.
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

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// TokenHandler returns the RFC 6749 token endpoint. Every response carries
// "Cache-Control: no-store" (RFC 6749 §5.1) and errors use the §5.2 JSON
// shape without echoing any request input.
func (s *Server) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		resp, nonce, err := s.token(r.Context(), w, r)
		if nonce != "" {
			dpop.SetNonce(w.Header(), nonce)
		}
		if err != nil {
			s.writeError(w, "token", err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// token runs one token request; nonce is a fresh DPoP-Nonce to send, if any.
func (s *Server) token(ctx context.Context, w http.ResponseWriter, r *http.Request) (_ *tokenResponse, nonce string, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, "", &Error{Code: oautherr.InvalidRequest, Description: "the token endpoint accepts POST only", Status: http.StatusMethodNotAllowed, Reason: oautherr.ReasonRequestMalformed, Err: ErrInvalidRequest}
	}
	f, err := readForm(w, r)
	if err != nil {
		return nil, "", err
	}
	client, err := s.authenticate(ctx, r, f, TokenPath)
	if err != nil {
		return nil, "", err
	}
	gt := f.get("grant_type")
	if gt == "" {
		return nil, "", newError(ErrInvalidRequest, "grant_type is required")
	}
	var handler GrantHandler
	switch gt {
	case GrantClientCredentials:
		handler = GrantHandlerFunc(s.clientCredentials)
	case GrantRefreshToken:
		handler = GrantHandlerFunc(s.refreshGrant)
	default:
		handler = s.cfg.Grants[gt]
	}
	if handler == nil {
		return nil, "", newError(ErrUnsupportedGrantType, "grant type not supported")
	}
	if !client.allowsGrant(gt) {
		return nil, "", newError(ErrUnauthorizedClient, "client may not use this grant type")
	}

	// The proof is checked here but recorded only after the grant, just
	// before minting (see claimProof), so that refused requests occupy no
	// replay entry.
	var (
		jkt    string
		dproof *dpop.Proof
	)
	proof, err := dpop.ProofFromHeader(r.Header)
	switch {
	case errors.Is(err, dpop.ErrMissingProof):
	case err != nil:
		return nil, "", refuse(ErrInvalidDPoPProof, oautherr.ReasonProofMalformed, "malformed DPoP header", err)
	default:
		p, err := s.verifier.Check(proof, dpop.Expect{Method: http.MethodPost, URL: s.expectedHTU(r)})
		if err != nil {
			return nil, "", s.proofError(err)
		}
		jkt, dproof = p.JKT, p
		if due, ok := s.nonces.(interface{ Due(string) bool }); ok && due.Due(p.Nonce) {
			if n, err := s.nonces.NewNonce(); err == nil {
				nonce = n
			}
		}
	}
	cert, err := s.certs.ClientCertificate(r)
	if err != nil {
		return nil, nonce, refuse(ErrInvalidRequest, oautherr.ReasonClientCertHeaderInvalid, "malformed forwarded client certificate", err)
	}

	params := make(map[string]string, len(f))
	for k, v := range f {
		if k != "client_secret" && k != "client_assertion" {
			params[k] = v
		}
	}
	g, err := handler.Grant(ctx, &GrantRequest{GrantType: gt, Client: client, Params: params, JKT: jkt, Certificate: cert})
	if err != nil {
		return nil, nonce, err
	}
	if g == nil || g.Subject == "" {
		return nil, nonce, errors.New("issuer: grant handler returned no subject")
	}
	if g.DPoPJKT != "" && g.DPoPJKT != jkt {
		return nil, nonce, refuse(ErrInvalidGrant, oautherr.ReasonProofKeyMismatch, "DPoP key does not match the authorization request", nil)
	}
	binding, err := bindingFor(client, jkt, cert)
	if err != nil {
		return nil, nonce, err
	}
	if dproof != nil {
		if err := s.claimProof(ctx, client, dproof); err != nil {
			return nil, nonce, err
		}
	}
	// A refresh token is single use: of concurrent redemptions (at any
	// instance sharing the store) only the one whose Take gets the record
	// goes on.
	if g.redeem != nil {
		if _, err := s.refresh.Take(ctx, g.redeem.id); errors.Is(err, ErrTokenNotFound) {
			return nil, nonce, newError(ErrInvalidGrant, "refresh token is invalid or expired")
		} else if err != nil {
			return nil, nonce, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "refresh store unavailable", err)
		}
	}
	aud := g.Audience
	if len(aud) == 0 && len(client.Audiences) > 0 {
		aud = client.Audiences[:1]
	}
	tok, err := s.is.Mint(ctx, MintRequest{
		Subject: g.Subject, ClientID: client.ID, Audience: aud, Scope: g.Scope,
		TTL: g.TTL, Binding: binding, Claims: g.Claims,
	})
	if err != nil {
		return nil, nonce, err
	}
	resp := &tokenResponse{
		AccessToken: tok.Raw, TokenType: tok.Type, Scope: tok.Scope,
		ExpiresIn: int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second),
	}
	var rec *RefreshRecord
	switch {
	case g.redeem != nil:
		// The successor carries the redeemed grant unchanged (RFC 6749 §6:
		// the same scope), its binding and its expiry, so rotation never
		// extends a grant.
		rec = &g.redeem.rec
	case g.RefreshToken && gt != GrantRefreshToken && gt != GrantClientCredentials && (!client.Public() || binding.Bound()):
		rec = &RefreshRecord{
			ClientID: client.ID, Subject: g.Subject, Scope: g.Scope, Audience: tok.Audience,
			Claims: g.Claims, ExpiresAt: s.is.now().Add(s.cfg.RefreshTokenTTL),
		}
		if client.Public() {
			rec.Binding = binding
		}
	}
	if rec != nil {
		rt, id, err := newRefreshToken(s.is.rand())
		if err != nil {
			return nil, nonce, err
		}
		if err := s.refresh.Put(ctx, id, *rec); err != nil {
			return nil, nonce, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "temporarily unavailable", err)
		}
		resp.RefreshToken = rt
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.TokenIssued(gt, bindingKind(binding))
	}
	return resp, nonce, nil
}

// bindingFor chooses the access token's binding: for a client registered
// for certificate-bound tokens, the certificate proven on the connection
// (RFC 8705 §3) and nothing else; otherwise the DPoP key when a proof was
// verified (RFC 9449 §5, also with mTLS client authentication), else the
// client certificate, else none. A client registered for bound tokens
// never gets an unbound one.
func bindingFor(c *Client, jkt string, cert *x509.Certificate) (Binding, error) {
	if c.TLSClientCertificateBoundAccessTokens {
		// Certificate-bound, and only that: a DPoP-bound token would be
		// refused by resource servers that expect this client's tokens to
		// carry cnf.x5t#S256.
		switch {
		case cert == nil:
			return Binding{}, newError(ErrInvalidRequest, "client requires certificate-bound access tokens")
		case jkt != "":
			return Binding{}, newError(ErrInvalidRequest, "client requires certificate-bound access tokens, not DPoP-bound ones")
		}
		return certBinding(cert)
	}
	if jkt != "" {
		return Binding{JKT: jkt}, nil
	}
	if c.DPoPBoundAccessTokens {
		return Binding{}, refuse(ErrInvalidDPoPProof, oautherr.ReasonProofMissing, "client requires DPoP-bound access tokens", nil)
	}
	if cert != nil {
		return certBinding(cert)
	}
	return Binding{}, nil
}

// claimProof records a checked proof in the replay store, within the
// client's quota (confidential clients) and the proof key's quota. It runs
// after every other check of the token request and before the token is
// minted: the claim is one atomic check-and-insert, so among concurrent
// requests that carry the same proof and all pass the grant, exactly one
// gets a token.
func (s *Server) claimProof(ctx context.Context, c *Client, p *dpop.Proof) error {
	if !c.Public() && !s.quota.Allow(clientQuotaOwner(c.ID)) {
		return refuse(ErrInvalidDPoPProof, oautherr.ReasonProofKeyQuota, "too many DPoP proofs from this client", nil)
	}
	if err := s.verifier.Claim(ctx, p); err != nil {
		return s.proofError(err)
	}
	return nil
}

// clientQuotaOwner is the replay-quota owner of a client. Proof keys are
// owners under their thumbprint, which never contains ':'.
func clientQuotaOwner(id string) string { return "client:" + id }

// certBinding binds a token to cert when its key meets the client key
// rules of internal/pubkey: the TLS handshake does not tie a certificate
// for a small-order Ed25519 key to anyone in particular.
func certBinding(cert *x509.Certificate) (Binding, error) {
	if pubkey.Check(cert.PublicKey) != nil {
		return Binding{}, newError(ErrInvalidRequest, "client certificate key not accepted")
	}
	return CertificateBinding(cert), nil
}

// proofError maps a dpop verification error to the token endpoint error,
// keeping the dpop error as the cause and its reason.
func (s *Server) proofError(err error) error {
	var de *dpop.Error
	desc, reason := "invalid DPoP proof", oautherr.ReasonProofInvalid
	if errors.As(err, &de) {
		if de.Description != "" {
			desc = de.Description
		}
		if de.Reason != "" {
			reason = de.Reason
		}
	}
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		e := refuse(ErrUseDPoPNonce, reason, "authorization server requires nonce in DPoP proof", err)
		if s.nonces != nil {
			if n, nerr := s.nonces.NewNonce(); nerr == nil {
				e.nonce = n
			}
		}
		return e
	case errors.Is(err, dpop.ErrStoreUnavailable):
		return refuse(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "replay store unavailable", err)
	}
	return refuse(ErrInvalidDPoPProof, reason, desc, err)
}

// clientCredentials is the RFC 6749 §4.4 grant: confidential clients only,
// subject = client_id, scope within the client's registered scopes.
func (s *Server) clientCredentials(_ context.Context, req *GrantRequest) (*Grant, error) {
	if req.Client.Public() {
		return nil, newError(ErrUnauthorizedClient, "public clients cannot use client_credentials")
	}
	scope, err := grantScope(req.Params["scope"], req.Client.Scopes)
	if err != nil {
		return nil, err
	}
	aud, err := s.audience(req.Client, req.Params["resource"])
	if err != nil {
		return nil, err
	}
	return &Grant{Subject: req.Client.ID, Scope: scope, Audience: aud}, nil
}

// grantScope returns the requested scope if every value is in allowed, or
// all of allowed when none was requested.
func grantScope(requested string, allowed []string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	fields := strings.Split(requested, " ")
	for i, sc := range fields {
		if sc == "" || !slices.Contains(allowed, sc) || slices.Contains(fields[:i], sc) {
			return "", newError(ErrInvalidScope, "requested scope is not allowed")
		}
	}
	return requested, nil
}

func (s *Server) audience(c *Client, resource string) ([]string, error) {
	if resource == "" {
		if len(c.Audiences) > 0 {
			return c.Audiences[:1], nil
		}
		return nil, nil
	}
	if !slices.Contains(c.Audiences, resource) {
		return nil, newError(ErrInvalidTarget, "resource not allowed for this client")
	}
	return []string{resource}, nil
}

// refreshGrant is RFC 6749 §6. A public client's refresh token is bound to
// the DPoP key or certificate it was issued with (RFC 9449 §5, RFC 8705
// §4); refreshing with another key or certificate is invalid_grant. The
// grant's scopes and audiences are narrowed to the client's registration
// at the time of the refresh. The token is only read here; it is redeemed
// (taken from the store) once the whole request has passed, so a refused
// request does not consume it.
func (s *Server) refreshGrant(ctx context.Context, req *GrantRequest) (*Grant, error) {
	rt := req.Params["refresh_token"]
	if rt == "" {
		return nil, newError(ErrInvalidRequest, "refresh_token is required")
	}
	rec, err := s.refresh.Get(ctx, refreshID(rt))
	if errors.Is(err, ErrTokenNotFound) {
		return nil, newError(ErrInvalidGrant, "refresh token is invalid or expired")
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "refresh store unavailable", err)
	}
	if rec.ClientID != req.Client.ID || !s.is.now().Before(rec.ExpiresAt) {
		return nil, newError(ErrInvalidGrant, "refresh token is invalid or expired")
	}
	if rec.Binding.JKT != "" && rec.Binding.JKT != req.JKT {
		return nil, newError(ErrInvalidGrant, "refresh token is bound to another DPoP key")
	}
	if rec.Binding.X5TS256 != "" && (req.Certificate == nil || !mtlsbound.ThumbprintEqual(mtlsbound.Thumbprint(req.Certificate), rec.Binding.X5TS256)) {
		return nil, newError(ErrInvalidGrant, "refresh token is bound to another certificate")
	}
	// A refresh never yields more than the client is registered for now:
	// the grant is narrowed to the current registration, and a request may
	// narrow it further but never exceed it (RFC 6749 §6).
	granted := strings.Fields(rec.Scope)
	scopes := slices.DeleteFunc(slices.Clone(granted), func(sc string) bool { return !slices.Contains(req.Client.Scopes, sc) })
	registered := req.Client.Audiences
	if len(registered) == 0 {
		registered = s.is.cfg.Audience
	}
	aud := slices.DeleteFunc(slices.Clone(rec.Audience), func(a string) bool { return !slices.Contains(registered, a) })
	if len(scopes) == 0 && len(granted) > 0 || len(aud) == 0 && len(rec.Audience) > 0 {
		return nil, newError(ErrInvalidGrant, "refresh token grants nothing the client is still registered for")
	}
	scope, err := grantScope(req.Params["scope"], scopes)
	if err != nil {
		return nil, err
	}
	return &Grant{Subject: rec.Subject, Scope: scope, Audience: aud, Claims: rec.Claims, redeem: &redemption{id: refreshID(rt), rec: *rec}}, nil
}

// authenticate identifies and authenticates the client of a token or
// introspection request with exactly one method, the one it is registered
// for (RFC 6749 §2.3, RFC 8705 §2).
func (s *Server) authenticate(ctx context.Context, r *http.Request, f form, path string) (*Client, error) {
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return nil, newError(ErrInvalidRequest, "more than one Authorization header")
	}
	var (
		id, secret string
		method     AuthMethod
	)
	if len(authz) == 1 {
		bid, bsecret, err := parseBasic(authz[0])
		if errors.Is(err, errNoBasic) {
			e := refuse(ErrInvalidClient, oautherr.ReasonClientAuthMethod, "unsupported authentication scheme", nil)
			e.basic = true
			return nil, e
		}
		if err != nil {
			return nil, basicError(newError(err, "client authentication failed"))
		}
		if f.get("client_secret") != "" || f.get("client_assertion") != "" || f.get("client_assertion_type") != "" || (f.get("client_id") != "" && f.get("client_id") != bid) {
			return nil, newError(ErrInvalidRequest, "more than one client authentication method")
		}
		id, secret, method = bid, bsecret, AuthSecretBasic
	} else {
		id = f.get("client_id")
		if secret = f.get("client_secret"); secret != "" {
			method = AuthSecretPost
		}
	}
	assertion := f.get("client_assertion")
	if method == "" && (assertion != "" || f.get("client_assertion_type") != "") {
		if secret != "" {
			return nil, newError(ErrInvalidRequest, "more than one client authentication method")
		}
		if f.get("client_assertion_type") != ClientAssertionType || assertion == "" {
			return nil, newError(ErrInvalidClient, "unsupported client assertion")
		}
		method = AuthPrivateKeyJWT
		if id == "" {
			id = unverifiedAssertionSubject(assertion, s.assertionAlgs)
		}
	} else if method == AuthSecretPost && (assertion != "" || f.get("client_assertion_type") != "") {
		return nil, newError(ErrInvalidRequest, "more than one client authentication method")
	}
	// fail refuses with one code and one description whatever the cause,
	// so a client learns nothing about which check failed; the reason and
	// the cause go to the server log only.
	fail := func(reason oautherr.Reason, cause error) (*Client, error) {
		e := refuse(ErrInvalidClient, reason, "client authentication failed", cause)
		if method == AuthSecretBasic {
			return nil, basicError(e)
		}
		return nil, e
	}
	if id == "" {
		return fail(oautherr.ReasonClientIDMissing, nil)
	}
	c, err := s.cfg.Clients.Client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		secretMatches(&Client{SecretHash: make([]byte, 32)}, secret) // same work as a known client
		return fail(oautherr.ReasonClientUnknown, nil)
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonClientRegistryUnavailable, "client registry unavailable", err)
	}
	switch c.AuthMethod {
	case AuthSecretBasic, AuthSecretPost:
		if method != c.AuthMethod {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
		if !secretMatches(c, secret) {
			return fail(oautherr.ReasonClientSecret, nil)
		}
	case AuthPrivateKeyJWT:
		if method != AuthPrivateKeyJWT {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
		err := s.verifyClientAssertion(ctx, c, assertion, []string{s.is.ID(), s.endpointURL(r, path)})
		if errAssertionUnavailable(err) {
			return nil, refuse(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "replay store unavailable", err)
		}
		if err != nil {
			return fail(oautherr.ReasonClientAssertion, nil)
		}
	case AuthNone, AuthTLSClient, AuthSelfSignedTLSClient:
		if method != "" {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
	default:
		return fail(oautherr.ReasonClientAuthMethod, nil)
	}
	if c.AuthMethod == AuthTLSClient || c.AuthMethod == AuthSelfSignedTLSClient {
		cert, err := s.certs.ClientCertificate(r)
		if err != nil {
			return fail(oautherr.ReasonClientCertHeaderInvalid, err)
		}
		if cert == nil {
			return fail(oautherr.ReasonCertificateMissing, nil)
		}
		var chain []*x509.Certificate
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 1 && r.TLS.PeerCertificates[0] == cert {
			chain = r.TLS.PeerCertificates[1:]
		}
		if err := c.Certificate.Authenticate(ctx, cert, chain); err != nil {
			return fail(mtlsbound.Reason(err), err)
		}
	}
	return c, nil
}

func basicError(e *Error) *Error {
	cp := *e
	cp.basic = true
	cp.Status = http.StatusUnauthorized
	return &cp
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeError renders err as an RFC 6749 §5.2 error and logs the refusal at
// endpoint ("token" or "introspection"). Only the fixed code and
// description reach the client and the log.
func (s *Server) writeError(w http.ResponseWriter, endpoint string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		code, status := codeFor(err)
		desc := ""
		if code == oautherr.ServerError {
			desc = "internal error"
		}
		e = &Error{Code: code, Status: status, Description: desc, Reason: defaultReason(code)}
		if desc == "" {
			e.Description = defaultDescription(code)
		}
	}
	status := e.Status
	if status == 0 {
		_, status = codeFor(e.Err)
	}
	if e.Code == oautherr.InvalidClient {
		if e.basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.realm()+`"`)
			status = http.StatusUnauthorized
		} else if status == http.StatusUnauthorized {
			// A 401 must carry a challenge (RFC 9110 §15.5.2); without a
			// Basic attempt the RFC 6749 answer is 400.
			status = http.StatusBadRequest
		}
	}
	if e.nonce != "" {
		dpop.SetNonce(w.Header(), e.nonce)
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Refused(endpoint, e)
	}
	if s.cfg.Logger != nil {
		attrs := []slog.Attr{
			slog.String("endpoint", endpoint),
			slog.String("error", e.Code),
			slog.Int("status", status),
			slog.String("reason", string(e.Reason)),
			slog.String("description", e.Description),
		}
		if e.cause != nil {
			// Causes come from this module's lower layers (dpop, mtlsbound,
			// the stores), whose messages never contain request data.
			attrs = append(attrs, slog.String("cause", e.cause.Error()))
		}
		s.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "issuer: request refused", attrs...)
	}
	writeJSON(w, status, errorBody{Error: e.Code, ErrorDescription: e.Description})
}

func (s *Server) realm() string {
	// The issuer identifier is configuration, never request input; strip
	// characters that cannot appear in a quoted-string.
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7E {
			return -1
		}
		return r
	}, s.is.ID())
}

func defaultDescription(code string) string {
	switch code {
	case oautherr.InvalidClient:
		return "client authentication failed"
	case oautherr.InvalidGrant:
		return "invalid grant"
	case oautherr.InvalidScope:
		return "invalid scope"
	case oautherr.InvalidDPoPProof:
		return "invalid DPoP proof"
	case oautherr.TemporarilyUnavailable:
		return "temporarily unavailable"
	}
	return "invalid request"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"` + oautherr.ServerError + `"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
