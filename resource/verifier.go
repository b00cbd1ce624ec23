package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/senderbound/senderbound/oautherr"
)

// Principal is the authenticated caller of one request. Its slices and
// Claims may be shared with other requests presenting the same token and
// must not be modified.
type Principal struct {
	// Subject is the token's sub claim.
	Subject string
	// ClientID is the token's client_id claim.
	ClientID string
	// Issuer is the token's iss claim.
	Issuer string
	// Scopes are the space-separated values of the token's scope claim.
	Scopes []string
	// Binding says how possession was proven.
	Binding Binding
	// BindingValue is the cnf value that was matched: the RFC 7638 JWK
	// thumbprint for BindingDPoP, the certificate x5t#S256 for
	// BindingMTLS, "" for BindingBearer. A token bound to both carries
	// the jkt here and the certificate thumbprint in CertThumbprint.
	BindingValue string
	// CertThumbprint is the matched x5t#S256 when the token was
	// certificate-bound, else "".
	CertThumbprint string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// Claims is the verified JWT claims set as JSON, for claims this type
	// does not surface; for a token validated by introspection it is the
	// introspection answer. Decode it with encoding/json.
	Claims json.RawMessage

	nonce     string // fresh DPoP-Nonce to hand the client, or ""
	forwarded bool   // authorised by a forwarded client certificate
}

// HasScope reports whether the token granted scope s.
func (p *Principal) HasScope(s string) bool { return contains(p.Scopes, s) }

// Verifier checks access tokens and their sender constraint on incoming
// requests. Build it once with [New]; it is safe for concurrent use.
type Verifier struct {
	keysWarned           atomic.Int64 // v.now() in Unix nanoseconds of the last keys_unavailable Warn, or 0
	introWarned          atomic.Int64 // likewise for introspection_unavailable and introspection_busy
	issuers              []Issuer
	issuerIndex          map[string]int
	audience             string
	algs                 []jose.SignatureAlgorithm
	leeway               time.Duration
	requiredClaims       []string
	insecureAllowUntyped bool
	maxTokenBytes        int
	realm                string
	now                  func() time.Time
	logger               *slog.Logger
	onReject             func(string)
	metrics              Metrics
	cache                *lru.Cache[[32]byte, *token]
	intro                *introspector // the one issuer validated by introspection, or nil
	anyKeys              bool          // some issuer has Keys

	ext // DPoP and mTLS wiring, see binding.go
}

// DefaultAlgorithms returns a new slice of the access-token algorithms a
// resource server accepts when it has no reason to narrow them: RS256,
// PS256, ES256 and EdDSA, the algorithms issuers commonly sign access
// tokens with (RFC 9068 §2.1 requires RS256 support). Pass it, or a
// narrower list, as [Config.Algorithms], which has no implicit default.
func DefaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// New validates cfg and builds a Verifier. It refuses: no issuers, an
// issuer without identifier or with neither keys nor introspection, more
// than one issuer with introspection, an invalid [Introspection],
// duplicate identifiers, no audience, a non-asymmetric algorithm, a
// negative leeway, unknown required claims.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("resource: at least one issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("resource: Audience is required")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("resource: negative Leeway")
	}
	v := &Verifier{
		issuers:              append([]Issuer(nil), cfg.Issuers...),
		issuerIndex:          map[string]int{},
		audience:             cfg.Audience,
		leeway:               cfg.Leeway,
		insecureAllowUntyped: cfg.InsecureAllowUntypedTokens,
		maxTokenBytes:        cfg.MaxTokenBytes,
		realm:                cfg.Realm,
		now:                  cfg.Now,
		logger:               cfg.Logger,
		onReject:             cfg.OnReject,
		metrics:              cfg.Metrics,
	}
	for i, is := range v.issuers {
		if is.Identifier == "" || is.Keys == nil && is.Introspection == nil {
			return nil, fmt.Errorf("resource: issuer %d needs an Identifier and Keys or Introspection", i)
		}
		if _, dup := v.issuerIndex[is.Identifier]; dup {
			return nil, fmt.Errorf("resource: issuer %q listed twice", is.Identifier)
		}
		v.issuerIndex[is.Identifier] = i
		v.anyKeys = v.anyKeys || is.Keys != nil
		if is.Introspection != nil {
			if v.intro != nil {
				return nil, errors.New("resource: at most one issuer may use Introspection (opaque tokens do not name their issuer)")
			}
			in, err := newIntrospector(i, is.Identifier, *is.Introspection)
			if err != nil {
				return nil, err
			}
			v.intro = in
		}
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		return nil, errors.New("resource: Config.Algorithms is required (for example resource.DefaultAlgorithms())")
	}
	for _, a := range algs {
		if !asymmetric[a] {
			return nil, fmt.Errorf("resource: algorithm %q is not an accepted asymmetric signature algorithm", a)
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if cfg.RequiredClaims == nil {
		v.requiredClaims = []string{"sub", "client_id", "iat", "jti"}
	} else {
		for _, c := range cfg.RequiredClaims {
			switch c {
			case "sub", "client_id", "iat", "jti":
			default:
				return nil, fmt.Errorf("resource: unsupported required claim %q", c)
			}
		}
		v.requiredClaims = append([]string(nil), cfg.RequiredClaims...)
	}
	if v.maxTokenBytes <= 0 {
		v.maxTokenBytes = 16 << 10
	}
	if v.realm == "" {
		v.realm = cfg.Audience
	}
	if v.now == nil {
		v.now = time.Now
	}
	size := cfg.TokenCacheSize
	if size == 0 {
		size = 10000
	}
	if size > 0 {
		c, err := lru.New[[32]byte, *token](size)
		if err != nil {
			return nil, fmt.Errorf("resource: token cache: %w", err)
		}
		v.cache = c
	}
	if err := v.initExt(cfg); err != nil {
		return nil, err
	}
	return v, nil
}

// ValidatePolicy reports whether p can be enforced with this Verifier's
// configuration (for example AcceptDPoP needs a DPoP proof verifier).
func (v *Verifier) ValidatePolicy(p Policy) error {
	if p.Accept > AcceptAny {
		return errors.New("resource: invalid Policy.Accept")
	}
	if p.Accept == AcceptDPoP && !v.dpopEnabled() {
		return errors.New("resource: Policy.Accept is AcceptDPoP but no DPoP verifier is configured")
	}
	if p.Fallback && v.fallback == nil {
		return errors.New("resource: Policy.Fallback is set but Config.Fallback is not")
	}
	for _, s := range p.Scopes {
		if s == "" || !isScopeToken(s) {
			return fmt.Errorf("resource: invalid scope %q in Policy", s)
		}
	}
	return nil
}

// isScopeToken: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// schemes returns the challenges in force for p, DPoP first.
func (v *Verifier) schemes(p Policy) []string {
	switch p.Accept {
	case AcceptDPoP:
		return []string{schemeDPoP}
	case AcceptMTLS:
		return []string{schemeBearer}
	default:
		if v.dpopEnabled() {
			return []string{schemeDPoP, schemeBearer}
		}
		return []string{schemeBearer}
	}
}

// bindingAccepted refuses a request whose token and proof are in order
// but whose binding p does not take: a DPoP-bound token on a route that
// accepts certificate-bound tokens only, or the reverse. The refusal is
// invalid_token on the scheme the client used, as for any other token
// this route cannot use. (Unbound tokens outside AcceptAny are refused by
// checkBinding.)
func bindingAccepted(p Policy, b Binding) error {
	switch {
	case p.Accept == AcceptDPoP && b != BindingDPoP:
		return fail(ErrInvalidToken, oautherr.ReasonBindingNotAccepted, "this resource requires a DPoP-bound token")
	case p.Accept == AcceptMTLS && b != BindingMTLS:
		return fail(ErrInvalidToken, oautherr.ReasonBindingNotAccepted, "this resource requires a certificate-bound token")
	}
	return nil
}

// Check authenticates r under policy p. It returns the principal, or an
// [*Error] whose class sentinel says why (render it with [WriteError]).
// Check never writes to a response and never logs request data; it calls
// Config.OnReject once per rejection and logs it to Config.Logger at
// Debug. With Config.Metrics set it reports the decision there too.
//
// On success, hand the principal's response headers to the client with
// [Principal.SetResponseHeaders] (a fresh DPoP-Nonce when due, and
// Cache-Control: no-store when a forwarded certificate decided).
func (v *Verifier) Check(r *http.Request, p Policy) (*Principal, error) {
	pr, err := v.check(r, p)
	if err != nil {
		e := v.toError(r, p, err)
		v.report(r.Context(), e)
		if v.metrics != nil {
			v.metrics.Request("", e)
		}
		return nil, e
	}
	if v.metrics != nil {
		v.metrics.Request(pr.Binding, nil)
	}
	return pr, nil
}

func (v *Verifier) check(r *http.Request, p Policy) (*Principal, error) {
	if err := v.ValidatePolicy(p); err != nil {
		return nil, fail(ErrUnavailable, oautherr.ReasonPolicyInvalid, "service misconfigured")
	}
	cred, err := v.readCredentials(r)
	if err != nil {
		return nil, err
	}
	if cred.scheme == "" {
		if p.Fallback {
			return v.checkFallback(r, p)
		}
		return nil, fail(ErrNoCredentials, oautherr.ReasonNoCredentials, "")
	}
	if cred.scheme == schemeDPoP && !v.dpopEnabled() {
		// A scheme this server does not support at all: no error
		// information (RFC 6750 §3.1). A scheme it supports but this
		// route does not offer is checked like on any other route, so the
		// error code follows the fault, and refused at the end.
		return nil, &schemeRefused{fail(ErrNoCredentials, oautherr.ReasonSchemeNotAccepted, "")}
	}
	if cred.scheme == schemeDPoP {
		if err := v.checkTransport(r); err != nil {
			return nil, err
		}
	}
	tok, err := v.token(r.Context(), cred.token)
	if err != nil {
		return nil, err
	}
	now := v.now()
	if err := v.checkTime(tok, now); err != nil {
		return nil, err
	}
	pr := &Principal{
		Subject:   tok.subject,
		ClientID:  tok.clientID,
		Issuer:    v.issuers[tok.issuer].Identifier,
		Scopes:    tok.scopes,
		ExpiresAt: tok.exp,
		Claims:    tok.raw,
	}
	if err := v.checkBinding(r, p, cred, tok, pr); err != nil {
		return nil, err
	}
	if err := bindingAccepted(p, pr.Binding); err != nil {
		return nil, err
	}
	for _, s := range p.Scopes {
		if !contains(tok.scopes, s) {
			return nil, &scopeFailure{fail(ErrInsufficientScope, oautherr.ReasonInsufficientScope, "the access token lacks a required scope"), strings.Join(p.Scopes, " "), pr.nonce}
		}
	}
	// Only now, authenticated, may the request make us read its body.
	if hasAccessTokenForm(r) {
		return nil, errTokenInParameter()
	}
	return pr, nil
}

// schemeRefused marks a request whose scheme this route does not offer:
// rendered as 401 with the route's challenges and no error (the attempted
// scheme's challenge is not among them).
type schemeRefused struct{ *failure }

// scopeFailure carries the scope to announce and a nonce already minted.
type scopeFailure struct {
	*failure
	scope string
	nonce string
}

// token returns the verified token for raw, from the cache when possible.
func (v *Verifier) token(ctx context.Context, raw string) (*token, error) {
	if v.intro != nil && v.introspects(raw) {
		return v.introspectToken(ctx, raw)
	}
	if v.cache == nil {
		return v.timedVerifyToken(ctx, raw)
	}
	if len(raw) > v.maxTokenBytes {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenTooLarge, "access token too large")
	}
	key := tokenDigest(raw)
	if t, ok := v.cache.Get(key); ok {
		if v.keyStillTrusted(ctx, t) {
			if v.now().Before(t.exp.Add(v.leeway)) {
				return t, nil
			}
		}
		v.cache.Remove(key)
	}
	t, err := v.timedVerifyToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if !t.introspected && v.now().Before(t.exp.Add(v.leeway)) {
		v.cache.Add(key, t)
	}
	return t, nil
}

// timedVerifyToken is verifyToken, timed for Config.Metrics when set.
func (v *Verifier) timedVerifyToken(ctx context.Context, raw string) (*token, error) {
	if v.metrics == nil {
		return v.verifyToken(ctx, raw)
	}
	start := time.Now()
	t, err := v.verifyToken(ctx, raw)
	v.metrics.Observe(OpToken, time.Since(start), err)
	return t, err
}

// keyStillTrusted reports whether the key that verified t is still in its
// issuer's current key set.
func (v *Verifier) keyStillTrusted(ctx context.Context, t *token) bool {
	keys, err := v.issuers[t.issuer].Keys.Keys(ctx)
	return err == nil && keys.has(t.keyID)
}

func (v *Verifier) toError(r *http.Request, p Policy, err error) *Error {
	e := &Error{
		schemes: v.schemes(p),
		realm:   v.realm,
		algs:    v.dpopAlgs,
	}
	var f *failure
	var sr *schemeRefused
	var sf *scopeFailure
	var nf *nonceFailure
	switch {
	case errors.As(err, &sr):
		f = sr.failure
	case errors.As(err, &sf):
		f = sf.failure
		e.scope = sf.scope
		e.nonce = sf.nonce
	case errors.As(err, &nf):
		f = nf.failure
		e.nonce = nf.nonce
	case errors.As(err, &f):
	default:
		f = fail(ErrUnavailable, oautherr.ReasonInternal, "service temporarily unavailable")
	}
	e.Err = f.class
	e.cause = f.cause
	e.Reason = f.reason
	e.Description = f.desc
	e.Status = statusFor(f.class)
	e.Code = codeFor(f.class)
	if sr == nil && f.class != ErrNoCredentials && f.class != ErrUnavailable {
		if s, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(s, schemeDPoP) {
			e.scheme = schemeDPoP
		} else if strings.EqualFold(s, schemeBearer) {
			e.scheme = schemeBearer
		}
	}
	return e
}

// keysWarnEvery is the least time between two Warn records for issuer
// keys that cannot be fetched; the refusals in between are logged at Debug.
const keysWarnEvery = 10 * time.Second

// report counts a rejection through OnReject and logs it at Debug: any
// client can cause rejections at its request rate, so they are never
// logged at a level operators keep on. A refusal caused by a failed
// dependency of this server (the issuer's keys, its introspection
// endpoint) is logged at Warn with the dependency's error, which names the
// URL that failed, at most once per keysWarnEvery for each dependency; that error never contains request data and is never sent
// to the client.
func (v *Verifier) report(ctx context.Context, e *Error) {
	if v.onReject != nil {
		v.onReject(string(e.Reason))
	}
	if v.logger == nil {
		return
	}
	if e.Reason == oautherr.ReasonKeysUnavailable && e.cause != nil && v.warnDue(&v.keysWarned) {
		v.logger.LogAttrs(ctx, slog.LevelWarn, "resource: issuer keys unavailable",
			slog.String("reason", string(e.Reason)),
			slog.Int("status", e.Status),
			slog.String("error", e.cause.Error()))
		return
	}
	if (e.Reason == oautherr.ReasonIntrospectionUnavailable || e.Reason == oautherr.ReasonIntrospectionBusy) && e.cause != nil && v.warnDue(&v.introWarned) {
		v.logger.LogAttrs(ctx, slog.LevelWarn, "resource: token introspection unavailable",
			slog.String("reason", string(e.Reason)),
			slog.Int("status", e.Status),
			slog.String("error", e.cause.Error()))
		return
	}
	v.logger.LogAttrs(ctx, slog.LevelDebug, "resource: request rejected",
		slog.String("reason", string(e.Reason)),
		slog.Int("status", e.Status),
		slog.String("scheme", e.scheme))
}

// warnDue reports whether a refusal caused by a failed dependency may be
// logged at Warn now, given the time of the last such Warn in *last, and
// if so records the time.
func (v *Verifier) warnDue(last *atomic.Int64) bool {
	now := v.now().UnixNano()
	prev := last.Load()
	if prev != 0 && now-prev < int64(keysWarnEvery) && now >= prev {
		return false
	}
	return last.CompareAndSwap(prev, now)
}
