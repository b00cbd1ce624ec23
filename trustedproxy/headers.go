package trustedproxy

import (
	"fmt"
	"strconv"
	"strings"
)

// Headers names the header family by which the trusted proxies forward the
// scheme and host a client used. A deployment names the one family its
// proxies set; the other family's fields in a request from a trusted peer
// make [Set.Origin] fail, because a proxy that sets one family usually
// passes the other through from the client untouched.
type Headers int

const (
	// HeadersXForwarded is the de facto X-Forwarded-Proto and
	// X-Forwarded-Host pair, as set by nginx, HAProxy, Envoy, Traefik and
	// Go's httputil.ProxyRequest.SetXForwarded (the default).
	HeadersXForwarded Headers = iota
	// HeadersForwarded is the RFC 7239 Forwarded field (proto and host
	// parameters of the last element).
	HeadersForwarded
	// HeadersNone means the proxies forward neither: the scheme and host
	// are never taken from a header.
	HeadersNone
)

// String returns the name [ParseHeaders] reads: "x-forwarded", "forwarded"
// or "none".
func (h Headers) String() string {
	switch h {
	case HeadersXForwarded:
		return "x-forwarded"
	case HeadersForwarded:
		return "forwarded"
	case HeadersNone:
		return "none"
	}
	return "Headers(" + strconv.Itoa(int(h)) + ")"
}

// ParseHeaders returns the family named s, as written by [Headers.String]
// ("x-forwarded", "forwarded" or "none"; exact, lower case).
func ParseHeaders(s string) (Headers, error) {
	for h := HeadersXForwarded; h <= HeadersNone; h++ {
		if s == h.String() {
			return h, nil
		}
	}
	return 0, fmt.Errorf("%w: header family must be x-forwarded, forwarded or none", ErrInvalidConfig)
}

// lastForwarded parses one RFC 7239 Forwarded field value and returns the
// proto and host parameters of its last element (the one the nearest proxy
// appended). The last element is taken as written, even when empty, so an
// element a client sent is never used in place of the proxy's. Syntax
// (RFC 7239 §4 with the RFC 9110 list and quoted-string rules) is checked
// over the whole value, and a parameter defined by RFC 7239 may appear once
// per element.
func lastForwarded(v string) (proto, host string, err error) {
	var seen uint8 // bits: for, by, host, proto in the current element
	i := 0
	for {
		i = skipOWS(v, i)
		if i == len(v) {
			return proto, host, nil
		}
		switch v[i] {
		case ',':
			proto, host, seen = "", "", 0
			i++
			continue
		case ';':
			i++
			continue
		}
		start := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		name := v[start:i]
		if name == "" || i == len(v) || v[i] != '=' {
			return "", "", fmt.Errorf("%w: Forwarded parameter syntax", ErrMalformedHeader)
		}
		i++
		var val string
		if val, i, err = forwardedValue(v, i); err != nil {
			return "", "", err
		}
		var bit uint8
		switch strings.ToLower(name) {
		case "for":
			bit = 1
		case "by":
			bit = 2
		case "host":
			bit = 4
			host = val
		case "proto":
			bit = 8
			proto = val
		}
		if seen&bit != 0 {
			return "", "", fmt.Errorf("%w: Forwarded parameter repeated in one element", ErrMalformedHeader)
		}
		seen |= bit
		i = skipOWS(v, i)
		if i < len(v) && v[i] != ';' && v[i] != ',' {
			return "", "", fmt.Errorf("%w: Forwarded parameter syntax", ErrMalformedHeader)
		}
	}
}

// forwardedValue reads a token or quoted-string starting at v[i] and
// returns it (unquoted) and the index after it.
func forwardedValue(v string, i int) (string, int, error) {
	if i < len(v) && v[i] == '"' {
		i++
		var b strings.Builder
		start := i
		escaped := false
		for i < len(v) {
			c := v[i]
			switch {
			case c == '"':
				if !escaped {
					return v[start:i], i + 1, nil
				}
				return b.String(), i + 1, nil
			case c == '\\':
				if i+1 == len(v) || !isQuotedPairChar(v[i+1]) {
					return "", 0, fmt.Errorf("%w: Forwarded quoted-string", ErrMalformedHeader)
				}
				if !escaped {
					escaped = true
					b.WriteString(v[start:i])
				}
				b.WriteByte(v[i+1])
				i += 2
			case isQdtext(c):
				if escaped {
					b.WriteByte(c)
				}
				i++
			default:
				return "", 0, fmt.Errorf("%w: Forwarded quoted-string", ErrMalformedHeader)
			}
		}
		return "", 0, fmt.Errorf("%w: unterminated Forwarded quoted-string", ErrMalformedHeader)
	}
	start := i
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	if i == start {
		return "", 0, fmt.Errorf("%w: empty Forwarded value", ErrMalformedHeader)
	}
	return v[start:i], i, nil
}

func skipOWS(v string, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQdtext reports whether c may appear unescaped in an RFC 9110
// quoted-string.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar reports whether c may follow a backslash in an RFC 9110
// quoted-pair.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c == ' ' || c >= 0x21 && c <= 0x7e || c >= 0x80
}
