// Package trustedproxy decides whether the immediate peer of an HTTP request
// is a configured, trusted TLS-terminating proxy. Headers that such a proxy
// adds (a forwarded client certificate, the public scheme and host) may be
// believed only when this check passes; from anyone else they are attacker
// input.
package trustedproxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
)

// Set is a set of trusted peer address ranges. The zero value trusts no one.
// A Set is immutable and safe for concurrent use.
type Set struct {
	prefixes []netip.Prefix
}

// Parse builds a Set from CIDR strings ("10.0.0.0/8", "127.0.0.1/32") or
// single addresses ("::1"). It refuses an empty string and prefixes that are
// not in canonical form (host bits set), so a typo cannot widen the trust.
func Parse(cidrs []string) (Set, error) {
	var s Set
	for _, c := range cidrs {
		if c == "" {
			return Set{}, errors.New("trustedproxy: empty CIDR")
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return Set{}, fmt.Errorf("trustedproxy: %q is neither a CIDR nor an address", c)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Masked() != p {
			return Set{}, fmt.Errorf("trustedproxy: %q has host bits set; did you mean %s?", c, p.Masked())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		s.prefixes = append(s.prefixes, p)
	}
	return s, nil
}

// Empty reports whether the set trusts no one.
func (s Set) Empty() bool { return len(s.prefixes) == 0 }

// Prefixes returns a copy of the trusted ranges.
func (s Set) Prefixes() []netip.Prefix { return append([]netip.Prefix(nil), s.prefixes...) }

// Contains reports whether addr lies in a trusted range. IPv4-mapped IPv6
// addresses are compared as IPv4.
func (s Set) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// TrustedPeer reports whether r's immediate peer (r.RemoteAddr, as set by
// net/http from the connection; never from a header) is trusted. An empty or
// unparsable RemoteAddr is never trusted.
func (s Set) TrustedPeer(r *http.Request) bool {
	if len(s.prefixes) == 0 || r == nil {
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
