package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/internal/keyfetch"
	"github.com/senderbound/senderbound/internal/pubkey"
	"github.com/senderbound/senderbound/mtlsbound"
)

// Defaults of [ClientJWKSConfig].
const (
	// DefaultClientJWKSTimeout bounds one fetch of a client's jwks_uri.
	DefaultClientJWKSTimeout = 10 * time.Second
	// DefaultClientJWKSMinRefresh is the least time between two fetches
	// of one client's jwks_uri.
	DefaultClientJWKSMinRefresh = 10 * time.Second
	// DefaultClientJWKSTTL is how long a client's keys are used when the
	// response has no Cache-Control max-age.
	DefaultClientJWKSTTL = 5 * time.Minute
	// DefaultClientJWKSMaxTTL caps the lifetime taken from max-age.
	DefaultClientJWKSMaxTTL = time.Hour
	// DefaultClientJWKSMaxStale is how long past its lifetime the last
	// good key set of a client stays in use while refetches fail.
	DefaultClientJWKSMaxStale = time.Hour
	// DefaultClientJWKSMaxBytes caps the size of a client's key set.
	DefaultClientJWKSMaxBytes = 64 << 10
)

// maxClientJWKSKeys caps the number of keys in a client's key set, and
// clientJWKSDepth the nesting of its JSON.
const (
	maxClientJWKSKeys = 64
	clientJWKSDepth   = 16
)

// maxClientKeySets bounds the key sets held in memory: one per client
// registered with a jwks_uri that authenticated recently. A set evicted
// by more active clients is fetched again on its client's next use.
const maxClientKeySets = 4096

// ClientJWKSConfig configures how a [Server] fetches the key sets of the
// clients registered with a [Client.JWKSURI] (RFC 7591 §2 jwks_uri). Keys
// are fetched over HTTPS on first use, cached for the lifetime the
// response's Cache-Control max-age gives (between zero and MaxTTL;
// DefaultTTL without one), revalidated in the background once that
// lifetime ends while the cached set stays in use, and refetched at once
// when an assertion or certificate matches no cached key (a rotation), at
// most once per MinRefreshInterval per client, however many requests
// present unknown keys. When refetches fail, the last good set stays in
// use until MaxStale past its lifetime; after that the client cannot
// authenticate until a fetch succeeds.
//
// Only the registered URL is fetched: the fetcher connects only to
// public unicast addresses, checked on the address it dials after DNS
// resolution (so a name that resolves, or later re-resolves, to a private
// address is refused), does not follow redirects, uses no proxy, and
// refuses a response larger than MaxResponseBytes. The zero value is the
// documented defaults.
type ClientJWKSConfig struct {
	// RootCAs verifies the TLS certificates of jwks_uri servers. Nil means
	// the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds one fetch: connection, TLS handshake, response.
	// Zero means [DefaultClientJWKSTimeout].
	Timeout time.Duration
	// MinRefreshInterval is the least time between the starts of two
	// fetches of one client's key set. Zero means
	// [DefaultClientJWKSMinRefresh].
	MinRefreshInterval time.Duration
	// DefaultTTL is the lifetime of a key set served without max-age.
	// Zero means [DefaultClientJWKSTTL].
	DefaultTTL time.Duration
	// MaxTTL caps the lifetime taken from max-age. Zero means
	// [DefaultClientJWKSMaxTTL].
	MaxTTL time.Duration
	// MaxStale bounds how long past its lifetime the last good key set
	// is used while refetches fail. Zero means
	// [DefaultClientJWKSMaxStale].
	MaxStale time.Duration
	// MaxResponseBytes caps the size of a key set document. Zero means
	// [DefaultClientJWKSMaxBytes].
	MaxResponseBytes int64
	// InsecureAllowPrivateAddresses lets the fetcher connect to loopback,
	// private (RFC 1918, RFC 4193), shared (RFC 6598), link-local and
	// other non-public unicast addresses; unspecified and multicast
	// addresses stay refused. It exists for tests and for a deployment
	// whose clients publish keys inside one private network. It MUST NOT
	// be set when clients can register their own jwks_uri: any such
	// client could then make the issuer send requests into its network.
	InsecureAllowPrivateAddresses bool

	// resolver resolves jwks_uri host names; nil means the system
	// resolver. Tests point it at their own DNS server.
	resolver *net.Resolver
}

func (c ClientJWKSConfig) withDefaults() ClientJWKSConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultClientJWKSTimeout)
	def(&c.MinRefreshInterval, DefaultClientJWKSMinRefresh)
	def(&c.DefaultTTL, DefaultClientJWKSTTL)
	def(&c.MaxTTL, DefaultClientJWKSMaxTTL)
	def(&c.MaxStale, DefaultClientJWKSMaxStale)
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultClientJWKSMaxBytes
	}
	return c
}

// errClientKeys marks a failure to obtain a client's keys from its
// jwks_uri.
var errClientKeys = errors.New("issuer: client keys unavailable")

// errAddressNotAllowed is the dial refusal of a non-public address.
var errAddressNotAllowed = errors.New("issuer: jwks_uri address is not a public unicast address")

// validateJWKSURI checks a registered jwks_uri: an absolute https URL with
// a host, without user information or fragment.
func validateJWKSURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return errors.New("jwks_uri must be an absolute https URL without user information or fragment")
	}
	return nil
}

// special4 and special6 are address blocks that are not publicly
// routable unicast: documentation, benchmarking, shared, reserved,
// relay and translation prefixes (the IANA special-purpose registries).
var (
	special4 = prefixes("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4")
	global6  = netip.MustParsePrefix("2000::/3")
	special6 = prefixes("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20")
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// publicUnicast reports whether a is a publicly routable unicast address.
func publicUnicast(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	list := special4
	if a.Is6() {
		if !global6.Contains(a) {
			return false
		}
		list = special6
	}
	for _, p := range list {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// dialAllowed reports whether the fetcher may connect to a.
func dialAllowed(a netip.Addr, allowPrivate bool) bool {
	a = a.Unmap()
	if allowPrivate {
		return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
	}
	return publicUnicast(a)
}

// dialControl returns a net.Dialer Control function that refuses any
// address dialAllowed refuses. It sees the resolved address of each
// connection attempt, so the check holds whatever a name resolves to.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return errAddressNotAllowed
		}
		if !dialAllowed(ap.Addr(), allowPrivate) {
			return fmt.Errorf("%w: %s", errAddressNotAllowed, ap.Addr())
		}
		return nil
	}
}

// newJWKSHTTPClient returns the HTTP client of the client key fetcher:
// its own transport with the dial check, no proxy, no redirects.
func newJWKSHTTPClient(cfg ClientJWKSConfig) *http.Client {
	d := &net.Dialer{Timeout: cfg.Timeout, Control: dialControl(cfg.InsecureAllowPrivateAddresses), Resolver: cfg.resolver}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// privateMember reports whether a JWK member name carries private or
// symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
func privateMember(name []byte) bool {
	switch string(name) {
	case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
		return true
	}
	return false
}

// parseClientJWKS parses the key set of a client strictly: one JSON
// object without duplicate or case-folded member names at any level,
// whose "keys" is a non-empty array of at most maxClientJWKSKeys public
// keys, each parsed by go-jose (an unknown key type refuses the set, as
// does an x5c certificate whose key differs from the JWK), without any
// private or symmetric member, and meeting the internal/pubkey rules.
// Members other than "keys" are ignored.
func parseClientJWKS(body []byte) (*jose.JSONWebKeySet, error) {
	s := jwsverify.Scanner{B: body, MaxDepth: clientJWKSDepth}
	var (
		private bool
		n       int
	)
	ok := s.Top(func(name []byte) bool {
		if string(name) != "keys" {
			return s.Skip(1)
		}
		return s.Array(func() bool {
			n++
			if n > maxClientJWKSKeys {
				return false
			}
			return s.Object(2, func(m []byte) bool {
				if privateMember(m) {
					private = true
					return false
				}
				return s.Skip(3)
			})
		})
	})
	switch {
	case private:
		return nil, errors.New("key set holds private or symmetric key material")
	case !ok:
		return nil, errors.New("key set is not one strict JSON object of at most 64 keys")
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Keys) == 0 {
		return nil, errors.New("key set has no keys")
	}
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(raw.Keys))}
	for i, m := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(m); err != nil {
			return nil, fmt.Errorf("key %d is not a usable JWK", i)
		}
		if !k.Valid() || !k.IsPublic() {
			return nil, fmt.Errorf("key %d is not a valid public key", i)
		}
		if _, sym := k.Key.([]byte); sym {
			return nil, fmt.Errorf("key %d is symmetric", i)
		}
		if err := pubkey.Check(k.Key); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// clientKeys is one fetched key set of a client: its keys for
// private_key_jwt, its certificates for self_signed_tls_client_auth.
type clientKeys struct {
	set   *jose.JSONWebKeySet
	certs mtlsbound.SelfSignedAuth
}

// newClientKeys builds the clientKeys of a parsed set for a client using
// method: a self-signed client needs at least one x5c certificate (the
// first of each key's chain is registered; go-jose has checked that its
// key is the JWK's, MTLS-CA-12).
func newClientKeys(set *jose.JSONWebKeySet, method AuthMethod) (*clientKeys, error) {
	ck := &clientKeys{set: set}
	if method != AuthSelfSignedTLSClient {
		return ck, nil
	}
	for _, k := range set.Keys {
		if len(k.Certificates) > 0 {
			ck.certs.Certificates = append(ck.certs.Certificates, k.Certificates[0])
		}
	}
	if len(ck.certs.Certificates) == 0 {
		return nil, errors.New("key set has no x5c certificate")
	}
	return ck, nil
}

// clientKeyRef names one cached key set: a client's id, method and URL
// (a re-registration with another URL or method gets a fresh cache).
type clientKeyRef struct {
	id, uri string
	method  AuthMethod
}

// clientKeySets fetches and caches the key sets of clients registered
// with a jwks_uri. It is safe for concurrent use.
type clientKeySets struct {
	cfg     ClientJWKSConfig
	http    *http.Client
	now     func() time.Time
	observe func(time.Duration, error) // nil without metrics

	mu   sync.Mutex
	sets *lru.Cache[clientKeyRef, *keyfetch.Cache[*clientKeys]]
}

func newClientKeySets(cfg ClientJWKSConfig, now func() time.Time, m Metrics) *clientKeySets {
	cfg = cfg.withDefaults()
	sets, _ := lru.New[clientKeyRef, *keyfetch.Cache[*clientKeys]](maxClientKeySets)
	ks := &clientKeySets{cfg: cfg, http: newJWKSHTTPClient(cfg), now: now, sets: sets}
	if m != nil {
		ks.observe = func(d time.Duration, err error) { m.Observe(OpClientKeyFetch, d, err) }
	}
	return ks
}

// cache returns the key set cache of client c, creating it.
func (m *clientKeySets) cache(c *Client) *keyfetch.Cache[*clientKeys] {
	ref := clientKeyRef{id: c.ID, uri: c.JWKSURI, method: c.AuthMethod}
	m.mu.Lock()
	defer m.mu.Unlock()
	if kc, ok := m.sets.Get(ref); ok {
		return kc
	}
	kc := keyfetch.New(keyfetch.Config[*clientKeys]{
		Load: func(ctx context.Context) (*clientKeys, time.Duration, error) {
			return m.load(ctx, ref)
		},
		MinRefreshInterval: m.cfg.MinRefreshInterval,
		MaxStale:           m.cfg.MaxStale,
		Timeout:            m.cfg.Timeout,
		Now:                m.now,
		Observe:            m.observe,
	})
	m.sets.Add(ref, kc)
	return kc
}

func (m *clientKeySets) load(ctx context.Context, ref clientKeyRef) (*clientKeys, time.Duration, error) {
	if err := validateJWKSURI(ref.uri); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errClientKeys, err)
	}
	body, hdr, err := keyfetch.Get(ctx, m.http, ref.uri, "issuer", m.cfg.MaxResponseBytes)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errClientKeys, err)
	}
	set, err := parseClientJWKS(body)
	if err == nil {
		var ck *clientKeys
		if ck, err = newClientKeys(set, ref.method); err == nil {
			return ck, keyfetch.TTL(hdr, m.cfg.DefaultTTL, m.cfg.MaxTTL), nil
		}
	}
	return nil, 0, fmt.Errorf("%w: key set at %s refused: %w", errClientKeys, redactedURL(ref.uri), err)
}

// get returns the cached keys of c, fetching them when none are usable.
func (m *clientKeySets) get(ctx context.Context, c *Client) (*clientKeys, error) {
	ck, err := m.cache(c).Get(ctx)
	if err != nil && !errors.Is(err, errClientKeys) {
		err = fmt.Errorf("%w: %w", errClientKeys, err)
	}
	return ck, err
}

// refreshed refetches the keys of c after they failed to match (a
// rotation), at most once per MinRefreshInterval, and returns the new set
// or nil when there is none newer than prev.
func (m *clientKeySets) refreshed(ctx context.Context, c *Client, prev *clientKeys) *clientKeys {
	ck, err := m.cache(c).Refresh(ctx)
	if err != nil || ck == prev {
		return nil
	}
	return ck
}

// authenticateCertificate is self_signed_tls_client_auth for a client
// registered with a jwks_uri: cert must be one of the set's x5c
// certificates; an unmatched certificate triggers one rate-limited
// refetch.
func (m *clientKeySets) authenticateCertificate(ctx context.Context, c *Client, cert *x509.Certificate) error {
	ck, err := m.get(ctx, c)
	if err != nil {
		return err
	}
	err = ck.certs.Authenticate(ctx, cert)
	if errors.Is(err, mtlsbound.ErrCertificateMismatch) {
		if nk := m.refreshed(ctx, c, ck); nk != nil {
			err = nk.certs.Authenticate(ctx, cert)
		}
	}
	return err
}

// redactedURL returns u with any password replaced, for error messages.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
