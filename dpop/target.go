package dpop

import (
	"errors"
	"net/http"
	"strings"

	"github.com/senderbound/senderbound/internal/trustedproxy"
)

// TargetURIConfig configures [NewTargetURI].
type TargetURIConfig struct {
	// PublicURL is the externally visible base URL of the server, e.g.
	// "https://rs.example.test" or "https://example.test/api". When set it
	// is authoritative: the target URI is PublicURL (without a trailing
	// slash) followed by the request path, and forwarded headers are
	// ignored. Recommended.
	PublicURL string
	// TrustedProxies lists CIDRs or addresses of TLS-terminating proxies
	// whose X-Forwarded-Proto / X-Forwarded-Host or RFC 7239 Forwarded
	// headers are believed. Used only when PublicURL is empty. Headers from
	// any other peer are ignored.
	TrustedProxies []string
	// InsecureHostHeader derives the target URI of a request that came
	// from no trusted proxy from the request itself: https when it arrived
	// over TLS, and its Host header. The client chooses the Host header, so
	// a proof made for another name this server answers to (another
	// resource server sharing the certificate, an alias) is then accepted.
	// Use it only for servers reachable under a single name, and tests;
	// set PublicURL instead.
	InsecureHostHeader bool
}

// TargetURI derives the expected htu of an incoming request. It never
// trusts forwarded headers unless the immediate peer is a configured
// trusted proxy. A TargetURI is immutable and safe for concurrent use.
type TargetURI struct {
	public    string
	proxies   trustedproxy.Set
	trustHost bool
}

// NewTargetURI validates cfg and returns a TargetURI.
func NewTargetURI(cfg TargetURIConfig) (*TargetURI, error) {
	t := &TargetURI{}
	if cfg.PublicURL != "" {
		base := strings.TrimRight(cfg.PublicURL, "/")
		if strings.ContainsAny(base, "?#") {
			return nil, errors.New("dpop: PublicURL must not have a query or fragment")
		}
		if _, err := NormalizeURL(base); err != nil {
			return nil, errors.New("dpop: PublicURL is not an absolute http(s) URL")
		}
		t.public = base
	}
	set, err := trustedproxy.Parse(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	t.proxies = set
	t.trustHost = cfg.InsecureHostHeader
	if t.public == "" && len(cfg.TrustedProxies) == 0 && !t.trustHost {
		return nil, errors.New("dpop: the target URI needs PublicURL (or TrustedProxies, or InsecureHostHeader)")
	}
	return t, nil
}

var errTarget = errors.New("dpop: cannot determine the request's target URI")

// URL returns the target URI of r without query: scheme, host and path. The
// scheme and host come from PublicURL when configured; else, when r's
// immediate peer is a trusted proxy, from the last Forwarded element (or
// the last X-Forwarded-Proto / X-Forwarded-Host values), falling back to
// r.Host as the proxy sent it; else, only with InsecureHostHeader, from
// r.TLS and r.Host. Otherwise it is an error: the target URI is never
// taken silently from a header the client chose.
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
	trusted := t.proxies.TrustedPeer(r)
	if !trusted && !t.trustHost {
		return "", errTarget
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trusted {
		if p, h, ok := lastForwarded(r.Header.Values("Forwarded")); ok {
			if p != "" {
				scheme = p
			}
			if h != "" {
				host = h
			}
		} else {
			if v := lastListValue(r.Header.Values("X-Forwarded-Proto")); v != "" {
				scheme = v
			}
			if v := lastListValue(r.Header.Values("X-Forwarded-Host")); v != "" {
				host = v
			}
		}
	}
	scheme = strings.ToLower(scheme)
	if (scheme != "http" && scheme != "https") || host == "" {
		return "", errTarget
	}
	u := scheme + "://" + host + path
	if _, err := NormalizeURL(u); err != nil {
		return "", errTarget
	}
	return u, nil
}

func lastListValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// lastForwarded returns proto and host of the last RFC 7239 element.
func lastForwarded(vs []string) (proto, host string, ok bool) {
	if len(vs) == 0 {
		return "", "", false
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	for _, pair := range strings.Split(v, ";") {
		k, val, found := strings.Cut(strings.TrimSpace(pair), "=")
		if !found {
			continue
		}
		val = strings.Trim(val, `"`)
		switch strings.ToLower(k) {
		case "proto":
			proto = val
		case "host":
			host = val
		}
	}
	return proto, host, true
}
