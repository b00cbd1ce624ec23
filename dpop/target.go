package dpop

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/senderbound/senderbound/trustedproxy"
)

// TargetURIConfig configures [NewTargetURI].
type TargetURIConfig struct {
	// PublicURL is the externally visible base URL of the server, e.g.
	// "https://rs.example.test" or "https://example.test/api". When set it
	// is authoritative: the target URI is PublicURL (without a trailing
	// slash) followed by the request path, and forwarded headers are
	// neither read nor checked. This is the recommended setting.
	PublicURL string
	// TrustedProxies are the TLS-terminating proxies in front of the
	// server. Used only when PublicURL is empty: the scheme and host of a
	// request from one of them come from the header family they set
	// (trustedproxy.Config.Headers), and a request from one of them that
	// carries the other family's fields is refused. Headers from any other
	// peer are ignored. nil trusts no proxy.
	TrustedProxies *trustedproxy.Set
	// InsecureHostHeader derives the target URI of a request that came
	// from no trusted proxy (or from one whose header family is "none")
	// from the request itself: https when it arrived over TLS, and its
	// Host header. The client chooses the Host header, so a proof made for
	// another name this server answers to (another resource server sharing
	// the certificate, an alias) is then accepted. Use it only for servers
	// reachable under a single name, and tests; set PublicURL instead.
	InsecureHostHeader bool
}

// TargetURI derives the expected htu of an incoming request. It never
// trusts forwarded headers unless the immediate peer is a configured
// trusted proxy. A TargetURI is immutable and safe for concurrent use.
type TargetURI struct {
	public    string
	proxies   *trustedproxy.Set
	trustHost bool
}

// NewTargetURI validates cfg and returns a TargetURI. Without PublicURL it
// needs trusted proxies that forward the scheme and host (header family
// other than none), or InsecureHostHeader.
func NewTargetURI(cfg TargetURIConfig) (*TargetURI, error) {
	t := &TargetURI{proxies: cfg.TrustedProxies, trustHost: cfg.InsecureHostHeader}
	if cfg.PublicURL != "" {
		base := strings.TrimRight(cfg.PublicURL, "/")
		if strings.ContainsAny(base, "?#") {
			return nil, errors.New("dpop: PublicURL must not have a query or fragment")
		}
		if _, err := normalizeURL(base); err != nil {
			return nil, errors.New("dpop: PublicURL is not an absolute http(s) URL")
		}
		t.public = base
	}
	if t.public == "" && t.proxies.Headers() == trustedproxy.HeadersNone && !t.trustHost {
		return nil, errors.New("dpop: the target URI needs PublicURL (or TrustedProxies that forward the scheme and host, or InsecureHostHeader)")
	}
	return t, nil
}

var errTarget = errors.New("dpop: cannot determine the request's target URI")

// URL returns the target URI of r without query: scheme, host and path. The
// scheme and host come from PublicURL when configured; else, when r's
// immediate peer is a trusted proxy whose header family is not none, from
// that family alone (trustedproxy.Set.Origin), each falling back to the
// request as the proxy sent it (r.Host; http, or https over TLS); else,
// only with InsecureHostHeader, from r.TLS and r.Host. Otherwise it is an
// error: the target URI is never taken silently from a header the client
// chose. A request from a trusted proxy that carries forwarded fields of a
// family the proxies do not set, or a malformed Forwarded field, is an
// error that also wraps trustedproxy.ErrUnexpectedHeaders or
// trustedproxy.ErrMalformedHeader.
func (t *TargetURI) URL(r *http.Request) (string, error) {
	if r == nil || r.URL == nil {
		return "", errTarget
	}
	path := r.URL.EscapedPath()
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if t.public != "" {
		return t.public + path, nil
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	p, h, err := t.proxies.Origin(r)
	switch {
	case err == nil:
		// From a trusted proxy; with header family none, p and h are
		// empty, and NewTargetURI required InsecureHostHeader.
		if p != "" {
			scheme = p
		}
		if h != "" {
			host = h
		}
	case errors.Is(err, trustedproxy.ErrUntrustedPeer):
		if !t.trustHost {
			return "", errTarget
		}
	default:
		return "", fmt.Errorf("%w: %w", errTarget, err)
	}
	scheme = strings.ToLower(scheme)
	if (scheme != "http" && scheme != "https") || host == "" {
		return "", errTarget
	}
	u := scheme + "://" + host + path
	if _, err := normalizeURL(u); err != nil {
		return "", errTarget
	}
	return u, nil
}
