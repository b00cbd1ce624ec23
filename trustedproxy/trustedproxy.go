package trustedproxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Config configures [New].
type Config struct {
	// Peers lists the TLS-terminating proxies in front of the server, each
	// a CIDR in canonical form ("10.0.0.0/8", "fd00::/8") or a single
	// address ("127.0.0.1", "::1"). IPv4-mapped IPv6 forms
	// ("::ffff:10.0.0.0/104") are taken as the IPv4 range they map. At
	// least one entry is required; list only proxies, never clients.
	Peers []string
	// Headers names the header family the proxies use to forward the
	// public scheme and host. The zero value is [HeadersXForwarded].
	Headers Headers
}

// Set is a parsed, validated set of trusted proxies: the peer address
// ranges and the forwarded-header family they set. A nil *Set, like the
// zero Set, trusts no one and forwards no headers; every method accepts
// it. Build a Set with [New]. A Set is immutable and safe for concurrent
// use.
type Set struct {
	prefixes []netip.Prefix
	headers  Headers
}

// New parses and validates cfg once, for every package that needs to know
// the proxies in front of a server (resource, dpop, mtlsbound, issuer). It
// refuses an empty Peers list, an empty or unparsable entry, a CIDR with
// host bits set (so a typo cannot widen the trust), an unknown Headers
// value, and any set of ranges whose union covers every IPv4 or every IPv6
// address (0.0.0.0/0, or 0.0.0.0/1 with 128.0.0.0/1, or ::/1 with 8000::/1,
// or such pieces of ::ffff:0:0/96): such a set would let any client forge
// the forwarded headers. Errors wrap [ErrInvalidConfig]. cfg is copied.
func New(cfg Config) (*Set, error) {
	if len(cfg.Peers) == 0 {
		return nil, fmt.Errorf("%w: no peers", ErrInvalidConfig)
	}
	if cfg.Headers < HeadersXForwarded || cfg.Headers > HeadersNone {
		return nil, fmt.Errorf("%w: unknown header family %d", ErrInvalidConfig, int(cfg.Headers))
	}
	s := &Set{headers: cfg.Headers, prefixes: make([]netip.Prefix, 0, len(cfg.Peers))}
	for _, c := range cfg.Peers {
		p, err := parsePeer(c)
		if err != nil {
			return nil, err
		}
		s.prefixes = append(s.prefixes, p)
	}
	if coversAll(s.prefixes, netip.PrefixFrom(netip.IPv4Unspecified(), 0)) {
		return nil, fmt.Errorf("%w: the trusted ranges together cover every IPv4 address", ErrInvalidConfig)
	}
	// IPv4-mapped peers are compared as IPv4, so the mapped block is never
	// an IPv6 peer: ranges covering the rest of IPv6 trust every IPv6 peer.
	v6 := append(s.Prefixes(), netip.MustParsePrefix("::ffff:0:0/96"))
	if coversAll(v6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)) {
		return nil, fmt.Errorf("%w: the trusted ranges together cover every IPv6 address", ErrInvalidConfig)
	}
	return s, nil
}

func parsePeer(c string) (netip.Prefix, error) {
	if c == "" {
		return netip.Prefix{}, fmt.Errorf("%w: empty peer", ErrInvalidConfig)
	}
	p, err := netip.ParsePrefix(c)
	if err != nil {
		a, aerr := netip.ParseAddr(c)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q is neither a CIDR nor an address", ErrInvalidConfig, c)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%w: %q has host bits set; did you mean %s?", ErrInvalidConfig, c, p.Masked())
	}
	if p.Addr().Is4In6() {
		// A canonical prefix with a mapped address has at least 96 bits.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// coversAll reports whether the union of ps covers every address of p.
// Each step keeps only the ranges overlapping p, so the work is bounded by
// the number of ranges times the address length.
func coversAll(ps []netip.Prefix, p netip.Prefix) bool {
	var inside []netip.Prefix
	for _, q := range ps {
		if !q.Overlaps(p) {
			continue
		}
		if q.Bits() <= p.Bits() {
			return true // q contains p
		}
		inside = append(inside, q)
	}
	if len(inside) == 0 {
		return false
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hi := netip.PrefixFrom(setBit(p.Addr(), p.Bits()), p.Bits()+1)
	return coversAll(inside, lo) && coversAll(inside, hi)
}

// setBit returns a with bit i (0 is the most significant) set.
func setBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] |= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] |= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}

// Empty reports whether s trusts no one (s is nil or the zero Set).
func (s *Set) Empty() bool { return s == nil || len(s.prefixes) == 0 }

// Headers returns the forwarded-header family of the proxies; for an
// empty Set, [HeadersNone].
func (s *Set) Headers() Headers {
	if s.Empty() {
		return HeadersNone
	}
	return s.headers
}

// Prefixes returns a copy of the trusted ranges, IPv4-mapped ranges as
// IPv4; nil for a nil Set.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil {
		return nil
	}
	return append([]netip.Prefix(nil), s.prefixes...)
}

// Contains reports whether addr lies in a trusted range. IPv4-mapped IPv6
// addresses are compared as IPv4.
func (s *Set) Contains(addr netip.Addr) bool {
	if s == nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// TrustedPeer reports whether r's immediate peer (r.RemoteAddr, as set by
// net/http from the connection; never X-Forwarded-For or another header) is
// a trusted proxy. An empty or unparsable RemoteAddr is never trusted.
func (s *Set) TrustedPeer(r *http.Request) bool {
	if s == nil || r == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, aerr := netip.ParseAddr(r.RemoteAddr)
		if aerr != nil {
			return false
		}
		return s.Contains(a)
	}
	return s.Contains(ap.Addr())
}

// Origin returns the scheme and host that the trusted proxy in front of r
// forwarded in the configured header family: the last X-Forwarded-Proto
// and X-Forwarded-Host list values ([HeadersXForwarded]), or proto and host
// of the last RFC 7239 Forwarded element ([HeadersForwarded]). A part the
// proxy did not forward is returned empty (the caller then uses the
// request as the proxy sent it); with [HeadersNone] both are empty. The
// values are as forwarded and not yet validated.
//
// Origin returns [ErrUntrustedPeer] when r's immediate peer is not trusted
// (its headers are then attacker input, never read), [ErrUnexpectedHeaders]
// when a trusted peer's request carries headers of a family the proxies do
// not set (the proxy passed a client's headers through: with both families
// present the client may have chosen either), and [ErrMalformedHeader] when
// the Forwarded field is not valid RFC 7239 syntax or repeats a parameter.
func (s *Set) Origin(r *http.Request) (scheme, host string, err error) {
	if !s.TrustedPeer(r) {
		return "", "", ErrUntrustedPeer
	}
	fwd := r.Header.Values("Forwarded")
	proto := r.Header.Values("X-Forwarded-Proto")
	xhost := r.Header.Values("X-Forwarded-Host")
	switch s.headers {
	case HeadersXForwarded:
		if len(fwd) > 0 {
			return "", "", fmt.Errorf("%w: Forwarded from proxies that set X-Forwarded-Proto/-Host", ErrUnexpectedHeaders)
		}
		return lastListValue(proto), lastListValue(xhost), nil
	case HeadersForwarded:
		if len(proto) > 0 || len(xhost) > 0 {
			return "", "", fmt.Errorf("%w: X-Forwarded-Proto/-Host from proxies that set Forwarded", ErrUnexpectedHeaders)
		}
		if len(fwd) == 0 {
			return "", "", nil
		}
		return lastForwarded(fwd[len(fwd)-1])
	default:
		if len(fwd) > 0 || len(proto) > 0 || len(xhost) > 0 {
			return "", "", fmt.Errorf("%w: forwarded scheme or host from proxies that set none", ErrUnexpectedHeaders)
		}
		return "", "", nil
	}
}

// lastListValue returns the last element of a comma-separated header list:
// the one the nearest proxy appended.
func lastListValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.Trim(v, " \t")
}
