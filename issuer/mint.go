package issuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/senderbound/senderbound/internal/jwssign"
)

// Config configures an [Issuer]. The zero value of each optional field
// means the documented default. New copies the Config; later changes to
// the caller's struct have no effect.
type Config struct {
	// Issuer is the issuer identifier placed in "iss": an https URL without
	// query or fragment (RFC 8414 §2). Required.
	Issuer string
	// Keys holds the signing keys. Required.
	Keys *KeySet
	// Audience is the default "aud" when a MintRequest names none.
	// Required: RFC 9068 §2.2 makes "aud" mandatory.
	Audience []string
	// DefaultTTL is the access-token lifetime when a MintRequest names none.
	// Default 5 minutes.
	DefaultTTL time.Duration
	// MaxTTL caps every lifetime. Default 1 hour (RFC 9449 §11.2: DPoP
	// tokens without nonces should be short-lived).
	MaxTTL time.Duration
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Rand is the source of jti values and signature randomness. If nil,
	// crypto/rand is used.
	Rand io.Reader
	// InsecureAllowHTTP accepts an http:// issuer identifier. It exists for
	// local tests only and MUST NOT be set in production (RFC 8414 §2).
	InsecureAllowHTTP bool
	// AccessTokenFormat selects what Mint hands out: FormatJWT (the zero
	// value, RFC 9068 JWTs) or FormatOpaque (random handles whose claims
	// stay in AccessTokens, for resource servers that introspect).
	AccessTokenFormat TokenFormat
	// AccessTokens keeps the records of opaque access tokens. Required
	// with FormatOpaque, refused otherwise. Any [RefreshStore] does:
	// [NewMemoryRefreshStore] for one instance, issuer/redisrefresh for
	// several (with a Prefix of its own). It MUST NOT be the store that
	// holds refresh tokens (Server's RefreshTokens), nor share its Redis
	// prefix.
	AccessTokens RefreshStore
}

// Issuer mints RFC 9068 JWT access tokens carrying an RFC 7800 "cnf"
// binding. An Issuer is built once by [New] and is safe for concurrent use.
type Issuer struct {
	cfg Config
}

// New validates cfg and returns an Issuer.
func New(cfg Config) (*Issuer, error) {
	if err := checkIssuerURL(cfg.Issuer, cfg.InsecureAllowHTTP); err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: Keys is required", ErrInvalidConfig)
	}
	if len(cfg.Audience) == 0 {
		return nil, fmt.Errorf("%w: a default Audience is required", ErrInvalidConfig)
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, fmt.Errorf("%w: empty audience", ErrInvalidConfig)
		}
	}
	cfg.Audience = append([]string(nil), cfg.Audience...)
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = time.Hour
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = min(5*time.Minute, cfg.MaxTTL)
	}
	if cfg.MaxTTL < time.Second || cfg.DefaultTTL < time.Second || cfg.DefaultTTL > cfg.MaxTTL {
		return nil, fmt.Errorf("%w: need 1s <= DefaultTTL <= MaxTTL", ErrInvalidConfig)
	}
	switch cfg.AccessTokenFormat {
	case FormatJWT:
		if cfg.AccessTokens != nil {
			return nil, fmt.Errorf("%w: AccessTokens is for FormatOpaque only", ErrInvalidConfig)
		}
	case FormatOpaque:
		if cfg.AccessTokens == nil {
			return nil, fmt.Errorf("%w: FormatOpaque needs an AccessTokens store", ErrInvalidConfig)
		}
	default:
		return nil, fmt.Errorf("%w: unknown AccessTokenFormat", ErrInvalidConfig)
	}
	return &Issuer{cfg: cfg}, nil
}

func checkIssuerURL(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(s, "?#") {
		return fmt.Errorf("%w: issuer must be an https URL without query or fragment", ErrInvalidConfig)
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return fmt.Errorf("%w: issuer must use https", ErrInvalidConfig)
	}
	return nil
}

// ID returns the issuer identifier.
func (is *Issuer) ID() string { return is.cfg.Issuer }

// Keys returns the issuer's key set.
func (is *Issuer) Keys() *KeySet { return is.cfg.Keys }

func (is *Issuer) now() time.Time {
	if is.cfg.Now != nil {
		return is.cfg.Now()
	}
	return time.Now()
}

func (is *Issuer) rand() io.Reader {
	if is.cfg.Rand != nil {
		return is.cfg.Rand
	}
	return rand.Reader
}

// Binding is the proof-of-possession key an access token is bound to: at
// most one of JKT (DPoP, RFC 9449 §6.1) and X5TS256 (mTLS, RFC 8705 §3.1).
// The zero Binding means an unbound bearer token.
type Binding struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP proof key.
	JKT string
	// X5TS256 is base64url(SHA-256(DER)) of the client certificate.
	X5TS256 string
}

// CertificateBinding returns the Binding for a client certificate whose
// possession was proven in the TLS handshake.
func CertificateBinding(cert *x509.Certificate) Binding {
	sum := sha256.Sum256(cert.Raw)
	return Binding{X5TS256: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// Bound reports whether b binds the token to a key or certificate.
func (b Binding) Bound() bool { return b.JKT != "" || b.X5TS256 != "" }

// TokenType returns "DPoP" for a key-bound token and "Bearer" otherwise
// (RFC 9449 §5; certificate-bound tokens use Bearer, RFC 8705 §3).
func (b Binding) TokenType() string {
	if b.JKT != "" {
		return "DPoP"
	}
	return "Bearer"
}

func (b Binding) validate() error {
	if b.JKT != "" && b.X5TS256 != "" {
		return fmt.Errorf("%w: both jkt and x5t#S256", ErrInvalidBinding)
	}
	for _, v := range []string{b.JKT, b.X5TS256} {
		if v != "" && !isSHA256Thumbprint(v) {
			return fmt.Errorf("%w: thumbprint is not 43 base64url characters", ErrInvalidBinding)
		}
	}
	return nil
}

func isSHA256Thumbprint(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// MintRequest describes one access token.
type MintRequest struct {
	// Subject is "sub". Required.
	Subject string
	// ClientID is "client_id". Required.
	ClientID string
	// Audience is "aud". If empty, the issuer's default Audience is used.
	Audience []string
	// Scope is the space-separated "scope"; omitted when empty.
	Scope string
	// TTL is the lifetime. If zero, Config.DefaultTTL; capped at MaxTTL.
	TTL time.Duration
	// Binding is the "cnf" confirmation; the zero value mints an unbound
	// bearer token.
	Binding Binding
	// Claims are extra claims. A claim the issuer sets itself (iss, sub,
	// aud, exp, iat, nbf, jti, client_id, scope, cnf) is an error
	// ([ErrReservedClaim]), never a silent override.
	Claims map[string]any
}

// Token is a minted access token.
type Token struct {
	// Raw is the compact JWS, or the opaque handle with FormatOpaque.
	Raw string
	// Type is the token_type for the token response: "DPoP" or "Bearer".
	Type string
	// ID is the "jti".
	ID string
	// KeyID is the "kid" of the signing key ("" for an opaque token).
	KeyID string
	// Subject, ClientID, Audience and Scope are the "sub", "client_id",
	// "aud" and "scope" claims as minted.
	Subject  string
	ClientID string
	Audience []string
	Scope    string
	// Binding is the "cnf" confirmation (zero for a bearer token).
	Binding Binding
	// IssuedAt and ExpiresAt are "iat" and "exp".
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// reservedClaims are the claims Mint sets itself.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"jti": true, "client_id": true, "scope": true, "cnf": true,
}

type cnfClaim struct {
	JKT     string `json:"jkt,omitempty"`
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// Mint signs an access token with the active key: header typ "at+jwt" and
// kid; claims iss, sub, aud, exp, iat, jti (random UUID), client_id, scope,
// cnf and the extra claims. With FormatOpaque it instead returns a random
// 256-bit handle (base64url) and stores the same claims in
// Config.AccessTokens under the SHA-256 of the handle until exp; a store
// failure is an [*Error] matching [ErrUnavailable] (reason
// access_token_store_unavailable). Mint does NOT check that the caller may have
// the token: grant logic and client authentication are the caller's (or
// the token endpoint's) job. ctx is accepted for signers that block (KMS).
func (is *Issuer) Mint(ctx context.Context, req MintRequest) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.Subject == "" || req.ClientID == "" {
		return nil, fmt.Errorf("%w: Subject and ClientID are required", ErrInvalidRequest)
	}
	if err := req.Binding.validate(); err != nil {
		return nil, err
	}
	for name := range req.Claims {
		if reservedClaims[name] {
			return nil, fmt.Errorf("%w: %q", ErrReservedClaim, name)
		}
	}
	aud := req.Audience
	if len(aud) == 0 {
		aud = is.cfg.Audience
	}
	for _, a := range aud {
		if a == "" {
			return nil, fmt.Errorf("%w: empty audience", ErrInvalidRequest)
		}
	}
	ttl := req.TTL
	if ttl <= 0 {
		ttl = is.cfg.DefaultTTL
	}
	ttl = min(ttl, is.cfg.MaxTTL)
	id, err := uuid.NewRandomFromReader(is.rand())
	if err != nil {
		return nil, fmt.Errorf("issuer: jti: %w", err)
	}
	jti := id.String()
	now := is.now().Truncate(time.Second)
	exp := now.Add(ttl.Truncate(time.Second))
	if is.cfg.AccessTokenFormat == FormatOpaque {
		return is.mintOpaque(ctx, &req, aud, now, exp, jti)
	}
	var buf [512]byte // the claims of a typical token fit on the stack
	payload := appendClaims(buf[:0], is.cfg.Issuer, &req, aud, exp.Unix(), now.Unix(), jti)
	if len(req.Claims) > 0 {
		extra, err := json.Marshal(req.Claims)
		if err != nil {
			return nil, fmt.Errorf("%w: extra claims: %w", ErrInvalidRequest, err)
		}
		// Both are JSON objects: splice the members of extra into payload.
		payload = append(payload[:len(payload)-1], ',')
		payload = append(payload, extra[1:]...)
	}
	k := is.cfg.Keys.pin(exp.Unix())
	raw, err := k.js.SignCompact(is.rand(), k.header, payload)
	if err != nil {
		return nil, fmt.Errorf("issuer: sign: %w", err)
	}
	return &Token{
		Raw: raw, Type: req.Binding.TokenType(), ID: jti, KeyID: k.kid,
		Subject: req.Subject, ClientID: req.ClientID, Audience: append([]string(nil), aud...),
		Scope: req.Scope, Binding: req.Binding, IssuedAt: now, ExpiresAt: exp,
	}, nil
}

// appendClaims appends the JSON object of the claims Mint sets itself: iss,
// sub, aud (a string for one audience, else an array), exp, iat, jti,
// client_id, scope (omitted when empty) and cnf (omitted when unbound).
func appendClaims(b []byte, iss string, req *MintRequest, aud []string, exp, iat int64, jti string) []byte {
	b = append(b, '{')
	b = jwssign.AppendStringMember(b, "iss", iss)
	b = jwssign.AppendStringMember(b, "sub", req.Subject)
	b = jwssign.AppendMember(b, "aud")
	if len(aud) == 1 {
		b = jwssign.AppendString(b, aud[0])
	} else {
		b = append(b, '[')
		for i, a := range aud {
			if i > 0 {
				b = append(b, ',')
			}
			b = jwssign.AppendString(b, a)
		}
		b = append(b, ']')
	}
	b = jwssign.AppendIntMember(b, "exp", exp)
	b = jwssign.AppendIntMember(b, "iat", iat)
	b = jwssign.AppendStringMember(b, "jti", jti)
	b = jwssign.AppendStringMember(b, "client_id", req.ClientID)
	if req.Scope != "" {
		b = jwssign.AppendStringMember(b, "scope", req.Scope)
	}
	if bd := req.Binding; bd.Bound() {
		b = jwssign.AppendMember(b, "cnf")
		b = append(b, '{')
		if bd.JKT != "" {
			b = jwssign.AppendStringMember(b, "jkt", bd.JKT)
		}
		if bd.X5TS256 != "" {
			b = jwssign.AppendStringMember(b, "x5t#S256", bd.X5TS256)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
