package conformance

import (
	"errors"
	"strings"
)

// Challenge is one authentication challenge from a WWW-Authenticate field
// (RFC 9110 §11.6.1): a scheme followed by either a token68 or a list of
// auth-params.
type Challenge struct {
	// Scheme is the auth-scheme as sent (compare with strings.EqualFold).
	Scheme string `json:"scheme"`
	// Token68 is set when the challenge carries a token68 instead of params.
	Token68 string `json:"token68,omitempty"`
	// Params are the auth-params in order; names are lower-cased, quoted
	// values unescaped. Repeated names are kept so that duplicates can be
	// detected.
	Params []Param `json:"params,omitempty"`
}

// Param is one auth-param.
type Param struct {
	// Name is the lower-cased parameter name.
	Name string `json:"name"`
	// Value is the token or the unescaped quoted-string.
	Value string `json:"value"`
}

// Param returns the first value of the named parameter (case-insensitive).
func (c Challenge) Param(name string) (string, bool) {
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// Count returns how many times the named parameter appears.
func (c Challenge) Count(name string) int {
	n := 0
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, name) {
			n++
		}
	}
	return n
}

// ErrMalformedChallenge is returned by [ParseChallenges] for a field value
// that is not a valid challenge list.
var ErrMalformedChallenge = errors.New("conformance: malformed WWW-Authenticate challenge")

// maxChallengeInput caps the input size so that hostile servers cannot make
// the parser do unbounded work.
const maxChallengeInput = 64 << 10

// ParseChallenges parses the values of one or more WWW-Authenticate (or
// Proxy-Authenticate) fields into challenges, in order. It accepts a
// challenge list with several schemes in one field, a scheme without
// parameters ("Bearer, DPoP algs=..."), quoted values with spaces and
// escapes, and repeated parameter names. Empty list elements are ignored.
// On error it returns nil and an error wrapping [ErrMalformedChallenge]; the
// error never contains the input.
func ParseChallenges(values []string) ([]Challenge, error) {
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > maxChallengeInput {
		return nil, errors.Join(ErrMalformedChallenge, errors.New("input too large"))
	}
	var out []Challenge
	for _, v := range values {
		p := &chParser{s: v}
		cs, err := p.list()
		if err != nil {
			return nil, errors.Join(ErrMalformedChallenge, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

type chParser struct {
	s   string
	pos int
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

func (p *chParser) eof() bool { return p.pos >= len(p.s) }

func (p *chParser) ows() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *chParser) token() string {
	start := p.pos
	for !p.eof() && isTchar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// skipSeparators skips OWS and empty list elements.
func (p *chParser) skipSeparators() {
	for {
		p.ows()
		if !p.eof() && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		return
	}
}

func (p *chParser) list() ([]Challenge, error) {
	var out []Challenge
	for {
		p.skipSeparators()
		if p.eof() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return nil, errors.New("expected auth-scheme")
		}
		c := Challenge{Scheme: scheme}
		if p.eof() || p.s[p.pos] == ',' {
			out = append(out, c)
			continue
		}
		if p.s[p.pos] != ' ' {
			return nil, errors.New("expected space after auth-scheme")
		}
		p.ows()
		if p.eof() || p.s[p.pos] == ',' {
			out = append(out, c)
			continue
		}
		if t68, ok := p.tryToken68(); ok {
			c.Token68 = t68
			out = append(out, c)
			continue
		}
		if err := p.params(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// tryToken68 consumes a token68 if one stands alone before a comma or the end.
func (p *chParser) tryToken68() (string, bool) {
	start := p.pos
	i := p.pos
	for i < len(p.s) && isToken68Char(p.s[i]) {
		i++
	}
	if i == start {
		return "", false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	j := i
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	if j < len(p.s) && p.s[j] != ',' {
		return "", false
	}
	p.pos = j
	return p.s[start:i], true
}

// params reads auth-params until the end or the start of the next challenge.
func (p *chParser) params(c *Challenge) error {
	for {
		name := p.token()
		if name == "" {
			return errors.New("expected auth-param name")
		}
		p.ows()
		if p.eof() || p.s[p.pos] != '=' {
			return errors.New("expected '=' in auth-param")
		}
		p.pos++
		p.ows()
		val, err := p.value()
		if err != nil {
			return err
		}
		c.Params = append(c.Params, Param{Name: strings.ToLower(name), Value: val})
		p.ows()
		if p.eof() {
			return nil
		}
		if p.s[p.pos] != ',' {
			return errors.New("expected ',' between auth-params")
		}
		// Look past the comma(s): another param (token "="), or a new challenge.
		p.skipSeparators()
		if p.eof() {
			return nil
		}
		save := p.pos
		if p.token() == "" {
			return errors.New("expected auth-param or auth-scheme")
		}
		p.ows()
		isParam := !p.eof() && p.s[p.pos] == '='
		p.pos = save
		if !isParam {
			return nil
		}
	}
}

func (p *chParser) value() (string, error) {
	if p.eof() {
		return "", errors.New("missing auth-param value")
	}
	if p.s[p.pos] != '"' {
		v := p.token()
		if v == "" {
			return "", errors.New("invalid auth-param value")
		}
		return v, nil
	}
	p.pos++
	var b strings.Builder
	for !p.eof() {
		ch := p.s[p.pos]
		switch {
		case ch == '"':
			p.pos++
			return b.String(), nil
		case ch == '\\':
			p.pos++
			if p.eof() {
				return "", errors.New("unterminated quoted-pair")
			}
			q := p.s[p.pos]
			if q != '\t' && (q < 0x20 || q == 0x7f) {
				return "", errors.New("invalid quoted-pair")
			}
			b.WriteByte(q)
		case ch == '\t' || (ch >= 0x20 && ch != 0x7f):
			b.WriteByte(ch)
		default:
			return "", errors.New("control character in quoted-string")
		}
		p.pos++
	}
	return "", errors.New("unterminated quoted-string")
}

// findChallenge returns the first challenge with the scheme (case-insensitive).
func findChallenge(cs []Challenge, scheme string) (Challenge, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, scheme) {
			return c, true
		}
	}
	return Challenge{}, false
}
