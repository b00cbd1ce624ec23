package dpop

import (
	"errors"
	"strings"
)

// Challenge is one challenge of a WWW-Authenticate field (RFC 9110 §11.6.1)
// for the DPoP (RFC 9449 §7.1) or Bearer (RFC 6750 §3) scheme. The zero
// value renders as "DPoP". Challenge is a plain value, safe to copy.
type Challenge struct {
	// Scheme is the authentication scheme; "" renders as "DPoP".
	Scheme string
	// Realm is the optional protection space.
	Realm string
	// Error is the optional error code, e.g. invalid_dpop_proof.
	Error string
	// ErrorDescription is an optional human-readable text.
	ErrorDescription string
	// Scope is an optional space-separated list of scope tokens.
	Scope string
	// Algs lists the accepted proof algorithms (DPoP scheme only).
	Algs []string
}

// String renders the challenge, for example
//
//	DPoP error="invalid_dpop_proof", error_description="bad signature", algs="ES256 PS256"
//
// Every value is sanitized to its RFC 6750 §3 character set (characters
// outside it are dropped), so attacker-influenced text can never break the
// header syntax. Empty members are omitted.
func (c Challenge) String() string {
	var b strings.Builder
	scheme := filter(c.Scheme, isTokenChar)
	if scheme == "" {
		scheme = "DPoP"
	}
	b.WriteString(scheme)
	first := true
	param := func(name, value string) {
		if value == "" {
			return
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	param("realm", filter(c.Realm, isErrorChar))
	param("error", filter(c.Error, isErrorChar))
	param("error_description", filter(c.ErrorDescription, isErrorChar))
	param("scope", sanitizeScope(c.Scope))
	if len(c.Algs) > 0 {
		algs := make([]string, 0, len(c.Algs))
		for _, a := range c.Algs {
			if a = filter(a, isTokenChar); a != "" {
				algs = append(algs, a)
			}
		}
		param("algs", strings.Join(algs, " "))
	}
	return b.String()
}

// isErrorChar reports the RFC 6750 §3 set for error and error_description:
// %x20-21 / %x23-5B / %x5D-7E.
func isErrorChar(c byte) bool {
	return c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

// isScopeChar reports the RFC 6749 scope-token set: %x21 / %x23-5B / %x5D-7E.
func isScopeChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

// isTokenChar reports RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func filter(s string, ok func(byte) bool) string {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if ok(s[j]) {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}

func sanitizeScope(s string) string {
	parts := strings.Fields(s)
	out := parts[:0]
	for _, p := range parts {
		if p = filter(p, isScopeChar); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// maxChallengeHeader bounds the input of ParseChallenges.
const maxChallengeHeader = 16 << 10

var errChallengeSyntax = errors.New("dpop: malformed WWW-Authenticate challenge")

// ParseChallenges parses one WWW-Authenticate field value that may hold
// several challenges, e.g. `Bearer error="invalid_token", DPoP algs="ES256"`
// (RFC 9110 §11.6.1). It fills the known parameters (realm, error,
// error_description, scope, algs) and ignores unknown ones; a challenge with
// a token68 instead of parameters yields a Challenge with only Scheme set.
// A known parameter repeated within one challenge is an error (RFC 6750 §3);
// the same name in different challenges is fine. Errors never quote the input.
// ParseChallenges is safe for concurrent use.
func ParseChallenges(header string) ([]Challenge, error) {
	if len(header) > maxChallengeHeader {
		return nil, errChallengeSyntax
	}
	p := challengeParser{s: header}
	var out []Challenge
	for {
		p.skipListSeparators()
		if p.eof() {
			break
		}
		scheme := p.token()
		if scheme == "" {
			return nil, errChallengeSyntax
		}
		c := Challenge{Scheme: scheme}
		seen := 0
		sp := p.skipSpaces()
		if !p.eof() && p.peek() != ',' {
			if !sp {
				return nil, errChallengeSyntax
			}
			// token68 or auth-params.
			if p.isToken68() {
				p.token68()
				p.skipSpaces()
				if !p.eof() && p.peek() != ',' {
					return nil, errChallengeSyntax
				}
			} else {
				for {
					name, value, err := p.param()
					if err != nil {
						return nil, err
					}
					var bit int
					switch strings.ToLower(name) {
					case "realm":
						bit, c.Realm = 1, value
					case "error":
						bit, c.Error = 2, value
					case "error_description":
						bit, c.ErrorDescription = 4, value
					case "scope":
						bit, c.Scope = 8, value
					case "error_uri":
						bit = 16
					case "algs":
						bit, c.Algs = 32, strings.Fields(value)
					}
					if seen&bit != 0 {
						return nil, errChallengeSyntax
					}
					seen |= bit
					// After a parameter: end, or a comma followed by either
					// another parameter or the next challenge.
					p.skipSpaces()
					if p.eof() {
						break
					}
					if p.peek() != ',' {
						return nil, errChallengeSyntax
					}
					save := p.i
					p.skipListSeparators()
					if p.eof() {
						break
					}
					if !p.nextIsParam() {
						p.i = save
						break
					}
				}
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errChallengeSyntax
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) eof() bool  { return p.i >= len(p.s) }
func (p *challengeParser) peek() byte { return p.s[p.i] }

func (p *challengeParser) skipSpaces() bool {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i > start
}

func (p *challengeParser) skipListSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// nextIsParam reports whether the input at p.i is `token BWS "="`.
func (p *challengeParser) nextIsParam() bool {
	j := p.i
	for j < len(p.s) && isTokenChar(p.s[j]) {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j < len(p.s) && p.s[j] == '='
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isToken68 reports whether the input at p.i is a token68 ending the
// challenge (followed by end, spaces or a comma), rather than a parameter.
func (p *challengeParser) isToken68() bool {
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j == len(p.s) || p.s[j] == ','
}

func (p *challengeParser) token68() {
	for p.i < len(p.s) && isToken68Char(p.s[p.i]) {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] == '=' {
		p.i++
	}
}

func (p *challengeParser) param() (name, value string, err error) {
	name = p.token()
	if name == "" {
		return "", "", errChallengeSyntax
	}
	p.skipSpaces()
	if p.eof() || p.peek() != '=' {
		return "", "", errChallengeSyntax
	}
	p.i++
	p.skipSpaces()
	if p.eof() {
		return "", "", errChallengeSyntax
	}
	if p.peek() != '"' {
		value = p.token()
		if value == "" {
			return "", "", errChallengeSyntax
		}
		return name, value, nil
	}
	p.i++
	var b strings.Builder
	for {
		if p.eof() {
			return "", "", errChallengeSyntax
		}
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return name, b.String(), nil
		case c == '\\':
			if p.eof() {
				return "", "", errChallengeSyntax
			}
			c = p.s[p.i]
			p.i++
			if !isQuotedChar(c) {
				return "", "", errChallengeSyntax
			}
			b.WriteByte(c)
		case isQuotedChar(c):
			b.WriteByte(c)
		default:
			return "", "", errChallengeSyntax
		}
	}
}

// isQuotedChar reports qdtext / quoted-pair octets (RFC 9110 §5.6.4),
// without obs-text: HTAB, SP, VCHAR.
func isQuotedChar(c byte) bool { return c == '\t' || (c >= 0x20 && c <= 0x7E) }
