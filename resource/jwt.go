package resource

import (
	"strconv"

	"github.com/senderbound/senderbound/internal/jwsverify"
)

// This file reads the JOSE header and the claims of an access token with
// the strict scanner of internal/jwsverify. The rules are those go-jose
// applied before (its JSON decoder is case-sensitive and refuses duplicate
// member names), plus the stricter ones listed in doc.go under "Access
// tokens"; FuzzTokenDifferential holds the two side by side.

// maxTokenJSONDepth bounds the nesting of header and claim values.
const maxTokenJSONDepth = 64

// tokenHeader is what the verifier reads from the JOSE header. Members
// whose value is null count as absent, as they did with go-jose.
type tokenHeader struct {
	alg     []byte // alg when it is a string
	kid     []byte // kid when it is a string
	typ     []byte // typ when it is a string
	hasTyp  bool   // typ present (not null)
	typStr  bool   // typ is a string
	crit    bool   // crit or b64 present (not null)
	bad     bool   // a member go-jose's header decoding refuses: kid or nonce not a string, a nested duplicate name, a number beyond float64
	keyRefs bool   // jwk or x5c present (not null): checked by go-jose
}

// parseTokenHeader scans the decoded protected header b. It fails (the
// token is malformed) on anything but one object with unique member
// names; problems go-jose found only after the alg check are reported in
// h.bad instead.
func parseTokenHeader(b []byte, h *tokenHeader) bool {
	s := jwsverify.Scanner{B: b, MaxDepth: maxTokenJSONDepth, DeferNestedDup: true, CheckFloat: true}
	ok := s.Top(func(name []byte) bool {
		if s.Lit("null") {
			return true
		}
		switch string(name) {
		case "alg":
			if s.Peek() == '"' {
				v, ok := s.Str()
				h.alg = v
				return ok
			}
			return skipUnchecked(&s) // not a string: refused by the alg check
		case "kid", "nonce":
			if s.Peek() == '"' {
				v, ok := s.Str()
				if name[0] == 'k' {
					h.kid = v
				}
				return ok
			}
			h.bad = true
			return s.Skip(1)
		case "typ":
			h.hasTyp = true
			if s.Peek() == '"' {
				v, ok := s.Str()
				h.typ, h.typStr = v, true
				return ok
			}
		case "crit", "b64":
			h.crit = true
		case "jwk", "x5c":
			h.keyRefs = true
			return skipUnchecked(&s)
		}
		return s.Skip(1)
	})
	if s.NestedDup || s.BadFloat {
		h.bad = true
	}
	return ok
}

// skipUnchecked skips a value whose nested duplicates and float range do
// not decide anything here (another check rules on the member).
func skipUnchecked(s *jwsverify.Scanner) bool {
	nd, bf := s.NestedDup, s.BadFloat
	ok := s.Skip(1)
	s.NestedDup, s.BadFloat = nd, bf
	return ok
}

// tokenClaims is what the verifier reads from the claims. String claims
// that are null count as absent, as they did with go-jose.
type tokenClaims struct {
	iss, sub, clientID, jti, scope []byte
	hasScope                       bool
	audOK                          bool // aud is or contains the audience
	hasAud                         bool // aud present (not null)
	exp, nbf, iat                  int64
	hasExp, hasNbf, hasIat         bool
	cnf                            []byte // the raw cnf value, nil when absent
}

// parseTokenClaims scans the decoded payload b. It fails (the claims are
// malformed) unless b is one object with unique member names at every
// level whose registered claims have the types RFC 7519 gives them: iss,
// sub, client_id, jti and scope strings (or null); aud a string or an
// array of strings; exp, nbf and iat numbers (or null) below 2^62 in
// magnitude. cnf is only checked for syntax here: parseCnf rules on it
// after the signature, as before. A payload that is JSON null gives an
// empty claim set, as it did with go-jose.
func parseTokenClaims(b []byte, audience string, c *tokenClaims) bool {
	s := jwsverify.Scanner{B: b, MaxDepth: maxTokenJSONDepth}
	s.WS()
	if s.Lit("null") {
		s.WS()
		if s.I == len(b) {
			return true
		}
		return false
	}
	return s.Top(func(name []byte) bool { return c.member(&s, name, audience) })
}

// member reads the claim name at the scanner's position into c; claims c
// does not hold are skipped.
func (c *tokenClaims) member(s *jwsverify.Scanner, name []byte, audience string) bool {
	switch string(name) {
	case "iss":
		return stringClaim(s, &c.iss)
	case "sub":
		return stringClaim(s, &c.sub)
	case "client_id":
		return stringClaim(s, &c.clientID)
	case "jti":
		return stringClaim(s, &c.jti)
	case "scope":
		if s.Lit("null") {
			return true
		}
		c.hasScope = true
		return stringClaim(s, &c.scope)
	case "aud":
		c.hasAud = true
		match := func() bool {
			v, ok := s.Str()
			if ok && string(v) == audience {
				c.audOK = true
			}
			return ok
		}
		if s.Peek() == '[' {
			return s.Array(match)
		}
		return match()
	case "exp":
		return dateClaim(s, &c.exp, &c.hasExp)
	case "nbf":
		return dateClaim(s, &c.nbf, &c.hasNbf)
	case "iat":
		return dateClaim(s, &c.iat, &c.hasIat)
	case "cnf":
		start := s.I
		s.NoDupCheck = true
		ok := s.Skip(1)
		s.NoDupCheck = false
		c.cnf = s.B[start:s.I]
		return ok
	}
	return s.Skip(1)
}

// stringClaim reads a string or null.
func stringClaim(s *jwsverify.Scanner, dst *[]byte) bool {
	if s.Lit("null") {
		return true
	}
	v, ok := s.Str()
	*dst = v
	return ok
}

// maxNumericDate bounds exp, nbf and iat (in seconds), as go-jose does:
// far past any real time, below where int64 conversion or time.Unix
// would wrap.
const maxNumericDate = 1 << 62

// dateClaim reads a NumericDate (RFC 7519 §2) or null. Fractions are
// truncated toward zero, as go-jose's NumericDate did.
func dateClaim(s *jwsverify.Scanner, dst *int64, has *bool) bool {
	if s.Lit("null") {
		return true
	}
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return false
	}
	v, ok := s.Number()
	if !ok {
		return false
	}
	*has = true
	if n, ok := smallInt(v); ok {
		*dst = n
		return true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f >= maxNumericDate || f <= -maxNumericDate {
		return false
	}
	*dst = int64(f)
	return true
}

// smallInt parses a JSON integer of at most 15 digits, which a float64
// holds exactly (so the result equals go-jose's float conversion).
func smallInt(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	d := v
	if neg {
		d = v[1:]
	}
	if len(d) == 0 || len(d) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseCnf rules on the raw cnf value (RFC 7800 §3.1): an object with
// unique member names at every level whose jkt and x5t#S256, when present
// and not null, are strings holding a base64url SHA-256 value. Unknown
// members are ignored here; a cnf with neither jkt nor x5t#S256 is refused
// by the caller (token_cnf_unsupported).
func parseCnf(raw []byte, jkt, x5t *[]byte, hasJKT, hasX5T *bool) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	s := jwsverify.Scanner{B: raw, MaxDepth: maxTokenJSONDepth}
	member := func(dst *[]byte, has *bool) bool {
		if s.Lit("null") {
			return true
		}
		v, ok := s.Str()
		*dst, *has = v, true
		return ok
	}
	ok := s.Top(func(name []byte) bool {
		switch string(name) {
		case "jkt":
			return member(jkt, hasJKT)
		case "x5t#S256":
			return member(x5t, hasX5T)
		}
		return s.Skip(1)
	})
	if !ok {
		return false
	}
	if *hasJKT && !isB64URLSHA256(*jkt) || *hasX5T && !isB64URLSHA256(*x5t) {
		return false
	}
	return true
}

// isB64URLSHA256 reports whether s is 43 unpadded base64url characters,
// the only form a SHA-256 thumbprint takes (RFC 7638, RFC 8705 §3.1).
func isB64URLSHA256(s []byte) bool {
	return len(s) == 43 && jwsverify.IsB64URL(s)
}
