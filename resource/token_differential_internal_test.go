package resource

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/oautherr"
)

// This file keeps the access-token verifier that go-jose drove
// (jose.ParseSignedCompact, JSONWebSignature.Verify and go-jose's JSON
// decoder for the claims) as a reference, and FuzzTokenDifferential holds
// verifyToken to it: on every signed token both accept or both refuse with
// the same reason, and accepted tokens yield the same values; the only
// disagreements allowed are the documented stricter rules, recognised by
// stricterRule without using the code under test.

type refClaims struct {
	Issuer    string              `json:"iss"`
	Subject   string              `json:"sub"`
	Audience  jwt.Audience        `json:"aud"`
	Expiry    *jwt.NumericDate    `json:"exp"`
	NotBefore *jwt.NumericDate    `json:"nbf"`
	IssuedAt  *jwt.NumericDate    `json:"iat"`
	ID        string              `json:"jti"`
	ClientID  string              `json:"client_id"`
	Scope     *string             `json:"scope"`
	Cnf       josejson.RawMessage `json:"cnf"`
}

type refCnf struct {
	JKT *string `json:"jkt"`
	X5T *string `json:"x5t#S256"`
}

// refVerifyToken is verifyToken as it was with go-jose, with the policy
// rules added since (token_cnf_unsupported), so that the two differ only
// in how they read tokens.
func refVerifyToken(v *Verifier, ctx context.Context, raw string) (*token, error) {
	if len(raw) > v.maxTokenBytes {
		return nil, fail(ErrInvalidToken, "token_too_large", "access token too large")
	}
	if strings.Count(raw, ".") != 2 {
		return nil, fail(ErrInvalidToken, "token_malformed", "access token is not a signed JWT")
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, fail(ErrInvalidToken, "token_alg_not_allowed", "access token algorithm not accepted")
		}
		return nil, fail(ErrInvalidToken, "token_malformed", "access token is not a signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, fail(ErrInvalidToken, "token_malformed", "access token is not a signed JWT")
	}
	h := jws.Signatures[0].Protected
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, fail(ErrInvalidToken, "token_crit", "access token uses an unsupported critical header")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, fail(ErrInvalidToken, "token_crit", "access token uses an unsupported critical header")
	}
	if err := refCheckType(v, h.ExtraHeaders[jose.HeaderType]); err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	var c refClaims
	payload := jws.UnsafePayloadWithoutVerification()
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return nil, fail(ErrInvalidToken, "token_claims_malformed", "access token claims are malformed")
	}
	idx, ok := v.issuerIndex[c.Issuer]
	if !ok {
		return nil, fail(ErrInvalidToken, "token_issuer_unknown", "access token issuer not trusted")
	}
	ks := v.issuers[idx].Keys
	keys, err := ks.Keys(ctx)
	if err != nil {
		return nil, keySetFailure(err)
	}
	candidates := keys.lookup(h.KeyID)
	if len(candidates) == 0 {
		if keys, err = ks.Refresh(ctx); err != nil {
			return nil, keySetFailure(err)
		}
		candidates = keys.lookup(h.KeyID)
	}
	var used *verificationKey
	for _, k := range candidates {
		if !containsAlg(k.algs, alg) {
			continue
		}
		if _, err := jws.Verify(k.pub); err == nil {
			used = k
			break
		}
	}
	if used == nil {
		return nil, fail(ErrInvalidToken, "token_signature", "access token signature invalid")
	}
	t := &token{issuer: idx, keyID: used.id, raw: payload, subject: c.Subject, clientID: c.ClientID}
	if !contains(c.Audience, v.audience) {
		return nil, fail(ErrInvalidToken, "token_audience", "access token audience does not include this resource")
	}
	if c.Expiry == nil {
		return nil, fail(ErrInvalidToken, "token_no_exp", "access token has no expiry")
	}
	t.exp = c.Expiry.Time()
	if c.NotBefore != nil {
		t.nbf = c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		t.iat = c.IssuedAt.Time()
	}
	for _, name := range v.requiredClaims {
		missing := false
		switch name {
		case "sub":
			missing = c.Subject == ""
		case "client_id":
			missing = c.ClientID == ""
		case "iat":
			missing = c.IssuedAt == nil
		case "jti":
			missing = c.ID == ""
		}
		if missing {
			return nil, fail(ErrInvalidToken, oautherr.Reason("token_missing_"+name), "access token lacks a required claim")
		}
	}
	if c.Scope != nil {
		t.scopes = strings.Fields(*c.Scope)
	}
	if len(c.Cnf) > 0 {
		trimmed := bytes.TrimLeft(c.Cnf, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return nil, fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
		}
		var cnf refCnf
		if err := josejson.Unmarshal(c.Cnf, &cnf); err != nil {
			return nil, fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
		}
		if cnf.JKT != nil {
			if !isB64URLSHA256([]byte(*cnf.JKT)) {
				return nil, fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
			}
			t.jkt, t.hasJKT = *cnf.JKT, true
		}
		if cnf.X5T != nil {
			if !isB64URLSHA256([]byte(*cnf.X5T)) {
				return nil, fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
			}
			t.x5t, t.hasX5T = *cnf.X5T, true
		}
		// Added with the strict parser's rule of the same name: a cnf the
		// server cannot check is not taken for an unbound token.
		if !t.hasJKT && !t.hasX5T {
			return nil, fail(ErrInvalidToken, "token_cnf_unsupported", "access token is bound by an unsupported confirmation method")
		}
	}
	return t, nil
}

func refCheckType(v *Verifier, typ any) error {
	if typ == nil {
		if v.insecureAllowUntyped {
			return nil
		}
		return fail(ErrInvalidToken, "token_type", "access token type not accepted")
	}
	s, ok := typ.(string)
	if !ok {
		return fail(ErrInvalidToken, "token_type", "access token type not accepted")
	}
	s = strings.ToLower(s)
	if s != "at+jwt" && s != "application/at+jwt" {
		return fail(ErrInvalidToken, "token_type", "access token type not accepted")
	}
	return nil
}

// sameToken reports how two verified tokens differ, or "".
func sameToken(a, b *token) string {
	switch {
	case a.issuer != b.issuer:
		return "issuer"
	case a.keyID != b.keyID:
		return "keyID"
	case a.subject != b.subject:
		return "subject"
	case a.clientID != b.clientID:
		return "clientID"
	case !slices.Equal(a.scopes, b.scopes) || (a.scopes == nil) != (b.scopes == nil):
		return "scopes"
	case !a.exp.Equal(b.exp):
		return "exp"
	case !a.nbf.Equal(b.nbf) || a.nbf.IsZero() != b.nbf.IsZero():
		return "nbf"
	case !a.iat.Equal(b.iat) || a.iat.IsZero() != b.iat.IsZero():
		return "iat"
	case a.jkt != b.jkt || a.hasJKT != b.hasJKT:
		return "jkt"
	case a.x5t != b.x5t || a.hasX5T != b.hasX5T:
		return "x5t"
	case !bytes.Equal(a.raw, b.raw):
		return "raw"
	}
	return ""
}

// stricterRule names the documented stricter rule raw breaks, or "". It
// looks only at the token's bytes, with the standard library:
//   - a segment that is not canonical base64url (non-zero trailing bits,
//     CR or LF) although a lenient decoder reads it;
//   - a header or payload that is not valid UTF-8, or holds an unpaired
//     surrogate escape;
//   - a duplicate member name below the top level of the header or the
//     claims (at the top level go-jose refuses duplicates too);
//   - two member names equal under case folding (strings.EqualFold) but
//     not byte for byte, at any level;
//   - nesting deeper than the parser's bound.
func stricterRule(raw string) string {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return ""
	}
	var dec [3][]byte
	for i, s := range segs {
		d, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return "" // go-jose refuses it as well
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(s); err != nil || strings.ContainsAny(s, "\r\n") {
			return "non-canonical base64url"
		}
		dec[i] = d
	}
	for _, b := range dec[:2] {
		if !utf8.Valid(b) {
			return "invalid UTF-8"
		}
		if hasUnpairedSurrogate(b) {
			return "unpaired surrogate escape"
		}
		if why := nestedRule(b); why != "" {
			return why
		}
	}
	return ""
}

// hasUnpairedSurrogate reports whether a \u escape inside a JSON string of
// b is a surrogate that is not part of a high-low pair.
func hasUnpairedSurrogate(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !in {
			in = c == '"'
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if i+1 >= len(b) {
				return false
			}
			if b[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return false
			}
			i += 5
			switch {
			case r >= 0xDC00 && r < 0xE000:
				return true
			case r >= 0xD800 && r < 0xDC00:
				if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return true
				}
				r2, ok := hex4(b, i+3)
				if !ok || r2 < 0xDC00 || r2 >= 0xE000 {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// nestedRule walks b with encoding/json and reports a duplicate member
// name below the top level, two names of one object equal under case
// folding, or nesting near the parser's bound.
func nestedRule(b []byte) string {
	d := json.NewDecoder(bytes.NewReader(b))
	type level struct {
		obj   bool
		names map[string]bool
		key   bool // the next string token of this object is a name
	}
	var stack []level
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			return "" // malformed: both refuse it
		}
		top := len(stack) - 1
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top >= 0 && stack[top].obj {
					stack[top].key = true
				}
				stack = append(stack, level{obj: tok == '{', names: map[string]bool{}, key: tok == '{'})
				if len(stack) >= maxTokenJSONDepth-2 {
					return "nesting depth"
				}
			default:
				stack = stack[:top]
				if top > 0 && stack[top-1].obj {
					stack[top-1].key = true
				}
			}
		case string:
			if top >= 0 && stack[top].obj && stack[top].key {
				if stack[top].names[tok] && top > 0 {
					return "nested duplicate member name"
				}
				for n := range stack[top].names {
					if n != tok && strings.EqualFold(n, tok) {
						return "member names equal under case folding"
					}
				}
				stack[top].names[tok] = true
				stack[top].key = false
				continue
			}
			if top >= 0 && stack[top].obj {
				stack[top].key = true
			}
		default:
			if top >= 0 && stack[top].obj {
				stack[top].key = true
			}
		}
		if len(stack) == 0 {
			return ""
		}
	}
}

// Fuzz mode bits for FuzzTokenDifferential.
const (
	modeRogue      = 1 << iota // sign with a key outside the set
	modeSecond                 // ES256: sign with the second issuer's key
	modeHighS                  // ECDSA: s replaced by n-s
	modeFlipSig                // one signature bit flipped
	modeNCHeader               // non-canonical trailing bits in the header segment
	modeNCPayload              // ... in the payload segment
	modeNCSig                  // ... in the signature segment
	modeRelaxed                // the verifier that accepts untyped tokens and requires no optional claim
	modeNewline                // a LF inside the payload segment
	modeRawPayload             // the payload bytes are the payload segment itself
	modeRawHeader              // the header bytes are the header segment itself
	modeNoSig                  // empty signature segment
	modePSSMax                 // PS*: largest salt instead of the hash length
	modeExtraDot               // a fourth segment
)

// makeDiffToken builds the token for one fuzz input.
func (f *tokenFixture) makeDiffToken(t *testing.T, header, payload []byte, mode uint16) string {
	h := f.expandHeader(header)
	hSeg := b64url.EncodeToString(h)
	if mode&modeRawHeader != 0 {
		hSeg = string(header)
	}
	pSeg := b64url.EncodeToString(payload)
	if mode&modeRawPayload != 0 {
		pSeg = string(payload)
	}
	if mode&modeNCHeader != 0 {
		hSeg = nonCanonical(hSeg)
	}
	if mode&modeNCPayload != 0 {
		pSeg = nonCanonical(pSeg)
	}
	if mode&modeNewline != 0 && len(pSeg) > 2 {
		pSeg = pSeg[:len(pSeg)/2] + "\n" + pSeg[len(pSeg)/2:]
	}
	in := hSeg + "." + pSeg
	// Sign what go-jose verifies: the canonical re-encoding of what it
	// decodes, so that malleated encodings still carry a valid signature.
	signed := in
	if hd, err := base64.RawURLEncoding.DecodeString(hSeg); err == nil {
		if pd, err := base64.RawURLEncoding.DecodeString(pSeg); err == nil {
			signed = b64url.EncodeToString(hd) + "." + b64url.EncodeToString(pd)
		}
	}
	alg := headerAlg(h)
	if alg == "" {
		alg = "ES256"
	}
	sig := jwsSign(t, f.signer(alg, mode&modeRogue != 0, mode&modeSecond != 0), alg, []byte(signed), mode&modePSSMax != 0, mode&modeHighS != 0)
	if mode&modeFlipSig != 0 {
		sig[len(sig)/2] ^= 0x10
	}
	sSeg := b64url.EncodeToString(sig)
	if mode&modeNCSig != 0 {
		sSeg = nonCanonical(sSeg)
	}
	if mode&modeNoSig != 0 {
		sSeg = ""
	}
	tok := in + "." + sSeg
	if mode&modeExtraDot != 0 {
		tok += ".x"
	}
	return tok
}

// nonCanonical sets an unused trailing bit of an unpadded base64url
// string, when it has one: the same bytes, another encoding.
func nonCanonical(s string) string {
	if len(s)%4 != 2 && len(s)%4 != 3 {
		return s
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	if i < 0 {
		return s
	}
	return s[:len(s)-1] + string(alphabet[i|1])
}

// FuzzTokenDifferential signs attacker-chosen header and payload bytes
// with keys of the trusted set (or outside it, per mode) and holds
// verifyToken to the go-jose reference: the same verdict and reason, and
// the same token on success, except where stricterRule names a documented
// stricter rule, and then only ever in the direction of refusing. Seeds
// are in testdata/fuzz/FuzzTokenDifferential; headers may hold the
// placeholders of tokenFixture.expandHeader.
func FuzzTokenDifferential(f *testing.F) {
	fx := newTokenFixture(f)
	f.Fuzz(func(t *testing.T, header, payload []byte, mode uint16) {
		if len(header) > 2048 || len(payload) > 4096 {
			return
		}
		tok := fx.makeDiffToken(t, header, payload, mode)
		v := fx.strict
		if mode&modeRelaxed != 0 {
			v = fx.relaxed
		}
		ctx := context.Background()
		got, gerr := v.verifyToken(ctx, tok)
		want, werr := refVerifyToken(v, ctx, tok)
		if (got == nil) == (gerr == nil) {
			t.Fatalf("verifyToken returned %v and %v", got, gerr)
		}
		if gerr != nil {
			var fl *failure
			if !errors.As(gerr, &fl) || !errors.Is(gerr, ErrInvalidToken) && !errors.Is(gerr, ErrUnavailable) {
				t.Fatalf("error %#v", gerr)
			}
		}
		switch {
		case gerr == nil && werr == nil:
			if d := sameToken(got, want); d != "" {
				t.Fatalf("accepted tokens differ in %s", d)
			}
		case gerr == nil && werr != nil:
			t.Fatalf("accepted a token go-jose refused (%s): %q", reasonOf(werr), tok)
		case reasonOf(gerr) == reasonOf(werr):
		default:
			if why := stricterRule(tok); why == "" {
				t.Fatalf("reason %q, go-jose %q, no stricter rule applies: %q", reasonOf(gerr), reasonOf(werr), tok)
			}
		}
	})
}
