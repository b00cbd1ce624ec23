package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/keyfetch"
)

// RemoteKeySetConfig configures a [RemoteKeySet].
type RemoteKeySetConfig struct {
	// JWKSURL is the issuer's jwks_uri. Set either JWKSURL or Issuer.
	JWKSURL string
	// Issuer, when JWKSURL is empty, turns on discovery: the jwks_uri is
	// read from the RFC 8414 metadata at
	// /.well-known/oauth-authorization-server (issuer path appended), with
	// a fallback to the OpenID /.well-known/openid-configuration. The
	// metadata's "issuer" must equal Issuer exactly, otherwise the keys are
	// refused with [ErrIssuerMismatch] (RFC 8414 §3.3).
	Issuer string
	// HTTPClient fetches metadata and keys. If nil, a dedicated client with
	// a 10 s timeout and its own copy of http.DefaultTransport's settings
	// (system roots, proxy from the environment) is used. Set it to add a
	// custom CA or change timeouts. Redirects follow the client's policy.
	HTTPClient *http.Client
	// MinRefreshInterval is the least time between the starts of two
	// fetches. It bounds how soon a token naming an unknown kid (an issuer
	// that rotated its key, or an attacker making kids up) can trigger a
	// refresh: at most one fetch per interval, however many such tokens
	// arrive, while tokens naming known kids never wait. A failed fetch,
	// and the revalidation of keys served with no-store, no-cache or
	// max-age=0, are retried no sooner either. Zero means
	// [DefaultMinRefreshInterval].
	MinRefreshInterval time.Duration
	// DefaultTTL is how long keys are used when the response has no
	// Cache-Control max-age. Zero means 5 min.
	DefaultTTL time.Duration
	// MaxTTL caps the lifetime taken from Cache-Control max-age. Zero means
	// 24 h.
	MaxTTL time.Duration
	// MaxResponseBytes caps the size of a metadata or JWKS response. Zero
	// means 1 MiB.
	MaxResponseBytes int64
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Metrics, when set, is told of every fetch through
	// Metrics.Observe(OpKeyFetch, duration, err): a refresh when err is
	// nil, a failure otherwise. Its Request method is not called. nil
	// means no metrics.
	Metrics Metrics
}

// DefaultMinRefreshInterval is the MinRefreshInterval of a
// [RemoteKeySetConfig] that leaves it zero: a token signed with a freshly
// rotated-in key is accepted at most this long after the key set was last
// fetched, and a flood of tokens naming made-up kids costs the issuer at
// most one JWKS request per interval per key set.
const DefaultMinRefreshInterval = 5 * time.Second

// RemoteKeySet is a [KeySet] fetched over HTTP from a jwks_uri (given or
// discovered). Keys are cached for the lifetime the server's Cache-Control
// allows (bounded by MaxTTL), refreshed when a token names an unknown kid
// (at most once per MinRefreshInterval), and concurrent refreshes are
// collapsed into one request. The set is fetched lazily on first use;
// after that no request waits for keys it already has: keys past their
// lifetime stay in use while one background fetch revalidates them
// (stale-while-revalidate), and the last good keys stay in use when a
// fetch fails. Only a request whose token names an unknown kid waits for a
// fetch.
//
// A RemoteKeySet is long-lived and safe for concurrent use; build one per
// issuer and reuse it. Header parameters of tokens (jku, x5u) are never
// fetched: only the configured or discovered URL is.
type RemoteKeySet struct {
	cfg   RemoteKeySetConfig
	cache *keyfetch.Cache[*Keys]

	mu      sync.Mutex
	jwksURL string // discovered or configured
}

var _ KeySet = (*RemoteKeySet)(nil)

// fetchTimeout bounds one fetch (discovery plus JWKS) even when the
// configured HTTPClient has no timeout.
const fetchTimeout = 30 * time.Second

// NewRemoteKeySet validates cfg and returns a key set that fetches on first
// use. The URLs must be absolute http(s) URLs.
func NewRemoteKeySet(cfg RemoteKeySetConfig) (*RemoteKeySet, error) {
	if (cfg.JWKSURL == "") == (cfg.Issuer == "") {
		return nil, errors.New("resource: set exactly one of JWKSURL and Issuer")
	}
	for _, s := range []string{cfg.JWKSURL, cfg.Issuer} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("resource: key set URL must be an absolute http(s) URL")
		}
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		cfg.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 5 * time.Minute
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &RemoteKeySet{cfg: cfg, jwksURL: cfg.JWKSURL}
	kc := keyfetch.Config[*Keys]{
		Load:               s.download,
		MinRefreshInterval: cfg.MinRefreshInterval,
		Timeout:            fetchTimeout,
		Now:                cfg.Now,
	}
	if m := cfg.Metrics; m != nil {
		kc.Observe = func(d time.Duration, err error) { m.Observe(OpKeyFetch, d, err) }
	}
	s.cache = keyfetch.New(kc)
	return s, nil
}

// Keys returns the cached keys. Before the first fetch it waits for one.
// Once keys were fetched it never waits: keys past their lifetime are
// still returned while one fetch revalidates them in the background
// (started at most once per MinRefreshInterval), and when that fetch fails
// the last good keys stay in use.
func (s *RemoteKeySet) Keys(ctx context.Context) (*Keys, error) {
	return s.cache.Get(ctx)
}

// Refresh refetches the keys because a token named an unknown kid, unless
// a fetch started less than MinRefreshInterval ago; a caller joins a fetch
// already under way (also one revalidating stale keys) and waits for it,
// or for ctx. It returns the newest keys available.
func (s *RemoteKeySet) Refresh(ctx context.Context) (*Keys, error) {
	return s.cache.Refresh(ctx)
}

func (s *RemoteKeySet) download(ctx context.Context) (*Keys, time.Duration, error) {
	s.mu.Lock()
	jwksURL := s.jwksURL
	s.mu.Unlock()
	if jwksURL == "" {
		u, err := s.discover(ctx)
		if err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		s.jwksURL = u
		s.mu.Unlock()
		jwksURL = u
	}
	body, hdr, err := s.get(ctx, jwksURL)
	if err != nil {
		return nil, 0, err
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("resource: key set from %s not usable: %w", redacted(jwksURL), err)
	}
	return keys, s.ttl(hdr), nil
}

// redacted returns u with any password replaced, for error messages.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// parseJWKS parses a JWK Set, skipping members go-jose cannot parse (an
// unknown kty from a newer issuer) but refusing the set when a parsed key
// is unacceptable (private or symmetric material).
func parseJWKS(body []byte) (*Keys, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.New("resource: JWKS is not a JSON key set")
	}
	var set jose.JSONWebKeySet
	for _, m := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(m); err != nil {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	return NewKeys(set)
}

func (s *RemoteKeySet) ttl(h http.Header) time.Duration {
	return keyfetch.TTL(h, s.cfg.DefaultTTL, s.cfg.MaxTTL)
}

func (s *RemoteKeySet) discover(ctx context.Context) (string, error) {
	iss := s.cfg.Issuer
	u, _ := url.Parse(iss)
	path := strings.TrimSuffix(u.Path, "/")
	rfc8414 := *u
	rfc8414.Path = "/.well-known/oauth-authorization-server" + path
	rfc8414.RawPath = ""
	oidc := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	// Both documents are tried; when neither gives keys, the error names
	// each URL and its cause, RFC 8414's first, so that a broken primary
	// document is not hidden behind the OpenID fallback's 404.
	var errs []error
	for _, mu := range []string{rfc8414.String(), oidc} {
		body, _, err := s.get(ctx, mu)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &md); err != nil {
			where := mu
			if pu, perr := url.Parse(mu); perr == nil {
				where = pu.Redacted()
			}
			errs = append(errs, fmt.Errorf("resource: authorization server metadata at %s is not JSON", where))
			continue
		}
		if md.Issuer != iss {
			return "", ErrIssuerMismatch
		}
		ju, err := url.Parse(md.JWKSURI)
		if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
			return "", errors.New("resource: metadata jwks_uri is not an absolute http(s) URL")
		}
		return md.JWKSURI, nil
	}
	return "", &discoveryError{errs}
}

// discoveryError is the failure of both metadata documents: one line that
// names each document's cause, RFC 8414's first; errors.Is and errors.As
// see each cause.
type discoveryError struct{ errs []error }

func (e *discoveryError) Error() string {
	var b strings.Builder
	b.WriteString("resource: no usable authorization server metadata: ")
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimPrefix(err.Error(), "resource: "))
	}
	return b.String()
}

func (e *discoveryError) Unwrap() []error { return e.errs }

func (s *RemoteKeySet) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	return keyfetch.Get(ctx, s.cfg.HTTPClient, u, "resource", s.cfg.MaxResponseBytes)
}
