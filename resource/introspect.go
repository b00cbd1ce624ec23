package resource

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/oautherr"
)

// ClientAuth selects how a resource server authenticates to an
// introspection endpoint (RFC 7662 §2.1).
type ClientAuth uint8

const (
	// AuthClientSecretBasic sends ClientID and ClientSecret in an HTTP
	// Basic Authorization header, each form-urlencoded first (RFC 6749
	// §2.3.1).
	AuthClientSecretBasic ClientAuth = iota + 1
	// AuthPrivateKeyJWT sends a client assertion signed with ClientKey
	// (RFC 7523 §2.2, OpenID Connect Core §9 private_key_jwt).
	AuthPrivateKeyJWT
	// AuthTLSClient authenticates with the client certificate of
	// Introspection.HTTPClient (RFC 8705 §2) and sends ClientID in the
	// form.
	AuthTLSClient
)

// String returns the token endpoint authentication method name of a.
func (a ClientAuth) String() string {
	switch a {
	case AuthClientSecretBasic:
		return "client_secret_basic"
	case AuthPrivateKeyJWT:
		return "private_key_jwt"
	case AuthTLSClient:
		return "tls_client_auth"
	}
	return "invalid"
}

// Introspection configures the validation of an issuer's access tokens by
// its RFC 7662 token introspection endpoint, for issuers that hand out
// opaque tokens. Set it as [Issuer.Introspection].
//
// An active answer is held to the rules of a JWT access token: iss must
// equal the issuer's Identifier exactly, aud must contain
// [Config.Audience], exp is required, and exp, nbf and iat are checked on
// every request with [Config.Leeway]. Its cnf binds the token exactly as
// a JWT's cnf does (RFC 9449 §6.2, RFC 8705 §3): a cnf.jkt token needs a
// DPoP proof whose ath is the hash of the opaque token, a cnf.x5t#S256
// token needs the client certificate, and neither is accepted as a bearer
// token. A token_type of "DPoP" without cnf.jkt, or "Bearer" with it, is
// refused; so is any token_type other than those two and "N_A" (a refresh
// token is never an access token). [Config.RequiredClaims] does not apply:
// RFC 7662 makes sub, client_id, iat and jti optional.
//
// The resource server never sends a DPoP proof or header to the
// introspection endpoint (RFC 9449 §6.2); the binding is checked here.
//
// # Caching
//
// Answers are cached by the SHA-256 of the token in a bounded LRU: an
// active answer for at most CacheTTL and never past its exp; an inactive
// or refused answer for at most 5 seconds (and at most CacheTTL), so that
// a client repeating a dead token does not reach the authorization server
// on each request while a token is never refused longer than that for an
// answer that may have changed. A revoked token is accepted until its
// cached answer ends: choose CacheTTL as the longest delay acceptable for
// revocation. Concurrent requests for a token that is not cached share one
// introspection call. Failures are never cached.
//
// # Concurrency limit
//
// Every distinct token that is not cached costs one call, so a flood of
// made-up tokens would become a flood at the authorization server. At
// most MaxConcurrent calls are under way at once; a request whose token
// needs one more is refused at once with 503 ([ErrUnavailable], reason
// oautherr.ReasonIntrospectionBusy) without calling the authorization
// server and without waiting. Cached answers and requests that join a
// call already under way for the same token are never refused by the
// limit.
//
// # Failures
//
// A network error, a timeout, an answer other than 200, a body over
// MaxResponseBytes or a malformed body refuses the request with 503
// ([ErrUnavailable], reason oautherr.ReasonIntrospectionUnavailable),
// never with invalid_token; it is logged at Warn at most once per 10
// seconds. An inactive token is 401 invalid_token (reason
// oautherr.ReasonTokenInactive).
type Introspection struct {
	// Endpoint is the introspection endpoint URL. Required; https unless
	// its host is a loopback IP address (a name such as "localhost" does
	// not count), or InsecureAllowHTTP.
	Endpoint string
	// ClientID identifies this resource server to the authorization
	// server. Required.
	ClientID string
	// Auth is the client authentication method. Required.
	Auth ClientAuth
	// ClientSecret is the secret for AuthClientSecretBasic (required
	// there, refused with the other methods).
	ClientSecret string
	// ClientKey signs the client assertion for AuthPrivateKeyJWT
	// (required there); ClientKeyAlgorithm names its JWS algorithm (an
	// asymmetric one, e.g. "ES256") and ClientKeyID, when set, is the
	// assertion's kid. The assertion's iss and sub are ClientID, its aud
	// the issuer's Identifier, and it lives 60 seconds.
	ClientKey          crypto.Signer
	ClientKeyAlgorithm string
	ClientKeyID        string
	// HTTPClient makes the introspection calls (its Transport, Jar and
	// Timeout; redirects are never followed, whatever its CheckRedirect
	// says, so the token is never sent elsewhere, and a 3xx answer is a
	// failure). If nil, a client with default transport settings is used.
	// AuthTLSClient requires one whose transport presents the client
	// certificate.
	HTTPClient *http.Client
	// Timeout bounds one introspection call. Zero means 5 seconds.
	Timeout time.Duration
	// MaxResponseBytes caps the response body. Zero means 64 KiB.
	MaxResponseBytes int
	// CacheTTL is the longest time an active answer is reused. Zero means
	// 30 seconds; negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached answers. Zero means 10,000.
	CacheSize int
	// MaxConcurrent bounds the introspection calls under way at once (see
	// Concurrency limit). Zero means 64; a negative value is refused by
	// New: there is no unlimited setting.
	MaxConcurrent int
	// Rand is the source of client assertion ids. If nil, crypto/rand.
	Rand io.Reader
	// InsecureAllowHTTP accepts an http:// Endpoint on a host that is not
	// a loopback address. The token and the client's credentials then
	// cross the network in clear text: this MUST NOT be set outside tests.
	InsecureAllowHTTP bool
	// InsecureAllowMissingAudience accepts an active answer without aud
	// (a present aud must still contain Config.Audience). Only for
	// authorization servers that answer active solely for tokens meant
	// for the introspecting resource server, as RFC 9449 Figure 11 shows;
	// otherwise a token issued for another resource would be accepted
	// here. It MUST NOT be set for any other authorization server.
	InsecureAllowMissingAudience bool
}

const (
	defaultIntrospectionTimeout  = 5 * time.Second
	defaultIntrospectionMaxBytes = 64 << 10
	defaultIntrospectionTTL      = 30 * time.Second
	defaultIntrospectionCache    = 10000
	defaultIntrospectionParallel = 64
	// inactiveTTL is the longest a refusal is cached.
	inactiveTTL = 5 * time.Second
	// assertionLifetime is the lifetime of a private_key_jwt assertion.
	assertionLifetime = 60 * time.Second
)

// introspector is the runtime form of an [Introspection].
type introspector struct {
	issuer   int // index into Verifier.issuers
	cfg      Introspection
	aud      string // the issuer identifier: aud of client assertions
	client   *http.Client
	signer   jose.Signer // private_key_jwt
	cache    *lru.Cache[[32]byte, *introEntry]
	mu       sync.Mutex
	inflight map[[32]byte]*introCall
	// slots holds one element per call under way; its capacity is
	// MaxConcurrent.
	slots chan struct{}
}

// introEntry is a cached answer: an accepted token, or the refusal of an
// inactive or unacceptable one, valid before until.
type introEntry struct {
	tok   *token
	err   error
	until time.Time
}

// introCall is one introspection call that concurrent requests share.
type introCall struct {
	done chan struct{}
	tok  *token
	err  error
}

// newIntrospector validates c for the issuer at index idx.
func newIntrospector(idx int, identifier string, c Introspection) (*introspector, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("resource: issuer %q: introspection Endpoint must be an absolute URL", identifier)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (c.InsecureAllowHTTP || isLoopbackHost(u.Hostname())):
	default:
		return nil, fmt.Errorf("resource: issuer %q: introspection Endpoint must use https", identifier)
	}
	if c.ClientID == "" {
		return nil, fmt.Errorf("resource: issuer %q: introspection ClientID is required", identifier)
	}
	in := &introspector{issuer: idx, cfg: c, aud: identifier, client: c.HTTPClient, inflight: map[[32]byte]*introCall{}}
	if (c.ClientSecret != "") != (c.Auth == AuthClientSecretBasic) {
		return nil, fmt.Errorf("resource: issuer %q: introspection ClientSecret is required with %s and only there", identifier, AuthClientSecretBasic)
	}
	if (c.ClientKey != nil) != (c.Auth == AuthPrivateKeyJWT) {
		return nil, fmt.Errorf("resource: issuer %q: introspection ClientKey is required with %s and only there", identifier, AuthPrivateKeyJWT)
	}
	switch c.Auth {
	case AuthClientSecretBasic:
	case AuthPrivateKeyJWT:
		if !asymmetric[c.ClientKeyAlgorithm] {
			return nil, fmt.Errorf("resource: issuer %q: introspection ClientKeyAlgorithm must be an asymmetric JWS algorithm", identifier)
		}
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if c.ClientKeyID != "" {
			opts = opts.WithHeader(jose.HeaderKey("kid"), c.ClientKeyID)
		}
		// Any crypto.Signer (an HSM or KMS key too), through go-jose's
		// adapter.
		in.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(c.ClientKeyAlgorithm), Key: cryptosigner.Opaque(c.ClientKey)}, opts)
		if err != nil {
			return nil, fmt.Errorf("resource: issuer %q: introspection ClientKey: %w", identifier, err)
		}
	case AuthTLSClient:
		if c.HTTPClient == nil {
			return nil, fmt.Errorf("resource: issuer %q: introspection with %s needs an HTTPClient that presents the client certificate", identifier, AuthTLSClient)
		}
		if t, ok := c.HTTPClient.Transport.(*http.Transport); ok && (t.TLSClientConfig == nil || len(t.TLSClientConfig.Certificates) == 0 && t.TLSClientConfig.GetClientCertificate == nil) {
			return nil, fmt.Errorf("resource: issuer %q: introspection HTTPClient has no client certificate", identifier)
		}
	default:
		return nil, fmt.Errorf("resource: issuer %q: introspection Auth is required", identifier)
	}
	if c.Timeout < 0 || c.MaxResponseBytes < 0 || c.CacheSize < 0 || c.MaxConcurrent < 0 {
		return nil, fmt.Errorf("resource: issuer %q: negative introspection Timeout, MaxResponseBytes, CacheSize or MaxConcurrent", identifier)
	}
	if in.cfg.MaxConcurrent == 0 {
		in.cfg.MaxConcurrent = defaultIntrospectionParallel
	}
	in.slots = make(chan struct{}, in.cfg.MaxConcurrent)
	if in.cfg.Timeout == 0 {
		in.cfg.Timeout = defaultIntrospectionTimeout
	}
	if in.cfg.MaxResponseBytes == 0 {
		in.cfg.MaxResponseBytes = defaultIntrospectionMaxBytes
	}
	if in.cfg.CacheTTL == 0 {
		in.cfg.CacheTTL = defaultIntrospectionTTL
	}
	if in.cfg.CacheSize == 0 {
		in.cfg.CacheSize = defaultIntrospectionCache
	}
	// A copy that never follows a redirect: the token would go with the
	// body to wherever the redirect points. A 3xx answer is a failure.
	cl := http.Client{}
	if c.HTTPClient != nil {
		cl = *c.HTTPClient
	}
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in.client = &cl
	if in.cfg.Rand == nil {
		in.cfg.Rand = rand.Reader
	}
	if in.cfg.CacheTTL > 0 {
		if in.cache, err = lru.New[[32]byte, *introEntry](in.cfg.CacheSize); err != nil {
			return nil, fmt.Errorf("resource: introspection cache: %w", err)
		}
	}
	return in, nil
}

// isLoopbackHost reports whether h is a loopback IP address (also
// IPv4-mapped or with a zone). A name such as "localhost" is not: the
// hosts file and DNS can point it elsewhere.
func isLoopbackHost(h string) bool {
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// isJWS reports whether raw has the shape of a JWS compact serialization:
// exactly two dots.
func isJWS(raw string) bool { return strings.Count(raw, ".") == 2 }

// introspects reports whether raw is to be validated by introspection: it
// does not have the shape of a JWS, or no issuer has keys to verify one.
func (v *Verifier) introspects(raw string) bool {
	return v.intro != nil && (!v.anyKeys || !isJWS(raw))
}

// introspectToken returns the token raw as its issuer's introspection
// endpoint describes it, from the cache when possible.
func (v *Verifier) introspectToken(ctx context.Context, raw string) (*token, error) {
	if len(raw) > v.maxTokenBytes {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenTooLarge, "access token too large")
	}
	in := v.intro
	key := tokenDigest(raw)
	if in.cache != nil {
		if e, ok := in.cache.Get(key); ok {
			if v.now().Before(e.until) {
				return e.tok, e.err
			}
			in.cache.Remove(key)
		}
	}
	in.mu.Lock()
	if c, ok := in.inflight[key]; ok {
		in.mu.Unlock()
		select {
		case <-c.done:
			return c.tok, c.err
		case <-ctx.Done():
			return nil, failCause(ErrUnavailable, oautherr.ReasonIntrospectionUnavailable, "service temporarily unavailable", ctx.Err())
		}
	}
	select {
	case in.slots <- struct{}{}:
	default:
		in.mu.Unlock()
		return nil, failCause(ErrUnavailable, oautherr.ReasonIntrospectionBusy, "service temporarily unavailable",
			fmt.Errorf("%w: %d calls to %s under way, the limit", errIntrospection, in.cfg.MaxConcurrent, in.cfg.Endpoint))
	}
	c := &introCall{done: make(chan struct{})}
	in.inflight[key] = c
	in.mu.Unlock()
	// Whatever happens below, a panic included, the call is removed, its
	// slot freed and its waiters released with an answer.
	defer func() {
		if c.tok == nil && c.err == nil {
			c.err = fail(ErrUnavailable, oautherr.ReasonInternal, "service temporarily unavailable")
		}
		in.mu.Lock()
		delete(in.inflight, key)
		in.mu.Unlock()
		<-in.slots
		close(c.done)
	}()

	// The call outlives a caller that gives up: others may be waiting.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.Timeout)
	c.tok, c.err = v.timedIntrospect(cctx, raw)
	cancel()
	if in.cache != nil {
		now := v.now()
		switch {
		case c.err == nil:
			until := now.Add(in.cfg.CacheTTL)
			if c.tok.exp.Before(until) {
				until = c.tok.exp
			}
			if now.Before(until) {
				in.cache.Add(key, &introEntry{tok: c.tok, until: until})
			}
		case !errors.Is(c.err, ErrUnavailable):
			in.cache.Add(key, &introEntry{err: c.err, until: now.Add(min(in.cfg.CacheTTL, inactiveTTL))})
		}
	}
	return c.tok, c.err
}

// timedIntrospect is introspect, timed for Config.Metrics when set.
func (v *Verifier) timedIntrospect(ctx context.Context, raw string) (*token, error) {
	if v.metrics == nil {
		return v.introspect(ctx, raw)
	}
	start := time.Now()
	t, err := v.introspect(ctx, raw)
	var opErr error
	if errors.Is(err, ErrUnavailable) {
		opErr = err
	}
	v.metrics.Observe(OpIntrospection, time.Since(start), opErr)
	return t, err
}

// introspect makes one introspection call and judges the answer.
func (v *Verifier) introspect(ctx context.Context, raw string) (*token, error) {
	in := v.intro
	body, err := in.call(ctx, raw, v.now())
	if err != nil {
		return nil, failCause(ErrUnavailable, oautherr.ReasonIntrospectionUnavailable, "service temporarily unavailable", err)
	}
	return v.judgeIntrospection(body)
}

// errIntrospection is the cause of an unusable introspection answer.
var errIntrospection = errors.New("resource: introspection failed")

// call POSTs raw to the endpoint, authenticated as configured, and
// returns the body of a 200 answer. Its errors name the endpoint and the
// status but never the token or the credentials.
func (in *introspector) call(ctx context.Context, raw string, now time.Time) ([]byte, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	switch in.cfg.Auth {
	case AuthPrivateKeyJWT:
		a, err := in.assertion(now)
		if err != nil {
			return nil, err
		}
		form.Set("client_id", in.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	case AuthTLSClient:
		form.Set("client_id", in.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errIntrospection, in.cfg.Endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.cfg.Auth == AuthClientSecretBasic {
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		// url.Error carries the URL and the transport's error, not the body.
		return nil, fmt.Errorf("%w: %w", errIntrospection, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%w: %s answered %d", errIntrospection, in.cfg.Endpoint, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(in.cfg.MaxResponseBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %w", errIntrospection, in.cfg.Endpoint, err)
	}
	if len(body) > in.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("%w: %s: answer over %d bytes", errIntrospection, in.cfg.Endpoint, in.cfg.MaxResponseBytes)
	}
	return body, nil
}

// assertion returns a private_key_jwt client assertion.
func (in *introspector) assertion(now time.Time) (string, error) {
	id, err := uuid.NewRandomFromReader(in.cfg.Rand)
	if err != nil {
		return "", fmt.Errorf("%w: assertion id: %w", errIntrospection, err)
	}
	claims := jwt.Claims{
		Issuer:   in.cfg.ClientID,
		Subject:  in.cfg.ClientID,
		Audience: jwt.Audience{in.aud},
		ID:       id.String(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	s, err := jwt.Signed(in.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("%w: signing the assertion: %w", errIntrospection, err)
	}
	return s, nil
}

// introspectionAnswer is what the verifier reads from an introspection
// response besides the token claims.
type introspectionAnswer struct {
	active    bool
	tokenType []byte
	hasType   bool
	claims    tokenClaims
}

// parseIntrospection scans an introspection response (RFC 7662 §2.2): one
// JSON object with unique member names at every level, "active" a
// boolean, "token_type" a string or null, and the claims typed as in an
// access token (see parseTokenClaims). It reports false for anything else.
func parseIntrospection(b []byte, audience string, a *introspectionAnswer) bool {
	s := jwsverify.Scanner{B: b, MaxDepth: maxTokenJSONDepth}
	hasActive := false
	ok := s.Top(func(name []byte) bool {
		switch string(name) {
		case "active":
			hasActive = true
			if s.Lit("true") {
				a.active = true
				return true
			}
			return s.Lit("false")
		case "token_type":
			if s.Lit("null") {
				return true
			}
			v, ok := s.Str()
			a.tokenType, a.hasType = v, true
			return ok
		}
		return a.claims.member(&s, name, audience)
	})
	return ok && hasActive
}

// judgeIntrospection applies the access-token rules to an answer.
func (v *Verifier) judgeIntrospection(body []byte) (*token, error) {
	in := v.intro
	var a introspectionAnswer
	if !parseIntrospection(body, v.audience, &a) {
		return nil, failCause(ErrUnavailable, oautherr.ReasonIntrospectionUnavailable, "service temporarily unavailable",
			fmt.Errorf("%w: %s: malformed answer", errIntrospection, in.cfg.Endpoint))
	}
	if !a.active {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenInactive, "access token is not active")
	}
	c := &a.claims
	if string(c.iss) != v.issuers[in.issuer].Identifier {
		return nil, fail(ErrInvalidToken, oautherr.ReasonIssuerUntrusted, "access token issuer not trusted")
	}
	if !c.audOK && (c.hasAud || !in.cfg.InsecureAllowMissingAudience) {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenAudience, "access token audience does not include this resource")
	}
	if !c.hasExp {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenNoExpiry, "access token has no expiry")
	}
	t := &token{issuer: in.issuer, introspected: true, raw: body}
	var jkt, x5t []byte
	if c.cnf != nil {
		if !parseCnf(c.cnf, &jkt, &x5t, &t.hasJKT, &t.hasX5T) {
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenConfirmationMalformed, "access token confirmation claim is malformed")
		}
		if !t.hasJKT && !t.hasX5T {
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenConfirmationUnsupported, "access token is bound by an unsupported confirmation method")
		}
	}
	if a.hasType {
		switch tt := strings.ToLower(string(a.tokenType)); {
		case tt == "dpop" && !t.hasJKT, tt == "bearer" && t.hasJKT:
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenConfirmationMalformed, "access token confirmation claim is malformed")
		case tt != "dpop" && tt != "bearer" && tt != "n_a":
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenType, "access token type not accepted")
		}
	}
	t.exp = time.Unix(c.exp, 0)
	if c.hasNbf {
		t.nbf = time.Unix(c.nbf, 0)
	}
	if c.hasIat {
		t.iat = time.Unix(c.iat, 0)
	}
	t.subject, t.clientID = string(c.sub), string(c.clientID)
	t.jkt, t.x5t = string(jkt), string(x5t)
	if c.hasScope {
		t.scopes = strings.Fields(string(c.scope))
		t.scopes = t.scopes[:len(t.scopes):len(t.scopes)]
	}
	return t, nil
}
