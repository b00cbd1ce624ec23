package dpop

import "errors"

// maxURL caps the length of an htu claim and of an expected URL.
const maxURL = 4096

var errURL = errors.New("dpop: URL is not an absolute http(s) URL in normal form")

// appendNormalizedURL appends to dst the RFC 3986 §6.2.2/§6.2.3 normal form
// of the absolute http(s) URL s:
//   - scheme and host lower-cased; default port (80 for http, 443 for https)
//     and an empty port removed;
//   - percent-encodings of unreserved characters decoded, other
//     percent-encodings upper-cased; dot segments removed; an empty path
//     becomes "/"; path case is kept.
//
// Userinfo, non-ASCII or control bytes, a missing host, or characters
// outside the RFC 3986 sets are errors. When stripQuery is false a query or
// fragment is an error (an htu claim must not carry them, ADV-58); when it is
// true they are dropped (the expected request URL).
func appendNormalizedURL(dst []byte, s string, stripQuery bool) ([]byte, error) {
	if len(s) == 0 || len(s) > maxURL {
		return nil, errURL
	}
	var https bool
	switch {
	case len(s) >= 8 && asciiEqualFold(s[:8], "https://"):
		https = true
		dst = append(dst, "https://"...)
		s = s[8:]
	case len(s) >= 7 && asciiEqualFold(s[:7], "http://"):
		dst = append(dst, "http://"...)
		s = s[7:]
	default:
		return nil, errURL
	}
	// Authority.
	end := len(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	auth, rest := s[:end], s[end:]
	if auth == "" {
		return nil, errURL
	}
	host, port := auth, ""
	if auth[0] == '[' {
		i := indexByte(auth, ']')
		if i < 0 {
			return nil, errURL
		}
		host = auth[:i+1]
		after := auth[i+1:]
		if after != "" {
			if after[0] != ':' {
				return nil, errURL
			}
			port = after[1:]
		}
		for k := 1; k < len(host)-1; k++ {
			c := host[k]
			if !(isHex(c) || c == ':' || c == '.') {
				return nil, errURL
			}
		}
		if len(host) < 4 {
			return nil, errURL
		}
	} else {
		if i := indexByte(auth, ':'); i >= 0 {
			host, port = auth[:i], auth[i+1:]
		}
		if host == "" {
			return nil, errURL
		}
		for k := 0; k < len(host); k++ {
			c := host[k]
			if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
				return nil, errURL // also rejects '@' (userinfo) and '%'
			}
		}
	}
	for k := 0; k < len(port); k++ {
		if port[k] < '0' || port[k] > '9' {
			return nil, errURL
		}
	}
	for k := 0; k < len(host); k++ {
		c := host[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	// Strip leading zeros so "0443" is recognised as 443.
	for len(port) > 1 && port[0] == '0' {
		port = port[1:]
	}
	if len(port) > 5 {
		return nil, errURL
	}
	if port != "" && !(https && port == "443") && !(!https && port == "80") {
		dst = append(dst, ':')
		dst = append(dst, port...)
	}
	// Path.
	pend := len(rest)
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '?' || c == '#' {
			pend = i
			break
		}
	}
	if pend < len(rest) && !stripQuery {
		return nil, errURL
	}
	path := rest[:pend]
	if path == "" {
		return append(dst, '/'), nil
	}
	pathStart := len(dst)
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return nil, errURL
			}
			v := byte(hexVal(path[i+1])<<4 | hexVal(path[i+2]))
			if isUnreserved(v) {
				dst = append(dst, v)
			} else {
				dst = append(dst, '%', upperHex(path[i+1]), upperHex(path[i+2]))
			}
			i += 2
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/':
			dst = append(dst, c)
		default:
			return nil, errURL
		}
	}
	if hasDotSegment(dst[pathStart:]) {
		cleaned := removeDotSegments(dst[pathStart:])
		dst = append(dst[:pathStart], cleaned...)
		if len(dst) == pathStart {
			dst = append(dst, '/')
		}
	}
	return dst, nil
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p []byte) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := string(p[start:i])
			if seg == "." || seg == ".." {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// removeDotSegments implements RFC 3986 §5.2.4 on an absolute path.
func removeDotSegments(in []byte) []byte {
	out := make([]byte, 0, len(in))
	s := string(in)
	for s != "" {
		switch {
		case len(s) >= 3 && s[:3] == "../":
			s = s[3:]
		case len(s) >= 2 && s[:2] == "./":
			s = s[2:]
		case len(s) >= 3 && s[:3] == "/./":
			s = s[2:]
		case s == "/.":
			s = "/"
		case len(s) >= 4 && s[:4] == "/../":
			s = s[3:]
			out = popSegment(out)
		case s == "/..":
			s = "/"
			out = popSegment(out)
		case s == "." || s == "..":
			s = ""
		default:
			i := 0
			if s[0] == '/' {
				i = 1
			}
			for i < len(s) && s[i] != '/' {
				i++
			}
			out = append(out, s[:i]...)
			s = s[i:]
		}
	}
	return out
}

func popSegment(out []byte) []byte {
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '/' {
			return out[:i]
		}
	}
	return out[:0]
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// normalizeURL returns the normal form of an absolute http(s) URL as used
// for comparing htu (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3), after
// dropping any query and fragment. It is safe for concurrent use.
func normalizeURL(rawURL string) (string, error) {
	var buf [256]byte
	b, err := appendNormalizedURL(buf[:0], rawURL, true)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
