package resource

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/oautherr"
)

// token is a verified access token: the result of the signature and static
// checks (type, issuer, audience, required claims, cnf shape), shareable
// through the token cache. Time checks are not part of it: they run on
// every request.
type token struct {
	issuer   int    // index into Verifier.issuers
	keyID    string // verificationKey.id of the key that verified it
	subject  string
	clientID string
	scopes   []string
	exp      time.Time
	nbf      time.Time // zero when absent
	iat      time.Time // zero when absent
	jkt, x5t string
	hasJKT   bool
	hasX5T   bool
	raw      []byte // verified payload, or the introspection answer

	introspected bool // validated by introspection: not in the JWT cache, no key
}

func tokenDigest(s string) [32]byte { return sha256.Sum256(jwsverify.BytesOf(s)) }

// sigBufSize is the stack buffer for the decoded signature (RSA 4096 and
// smaller); larger signatures are decoded into a heap buffer.
const sigBufSize = 512

// verifyToken runs every check that does not depend on time or on the
// request: size, JOSE shape, alg allow-list and key fit, typ, crit,
// signature with the named issuer's keys, iss, aud, required claims, cnf.
//
// The token is read by a strict parser (see jwt.go and the package
// documentation) and its signature is checked with the standard library
// over the header and payload segments exactly as received.
func (v *Verifier) verifyToken(ctx context.Context, raw string) (*token, error) {
	if len(raw) > v.maxTokenBytes {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenTooLarge, "access token too large")
	}
	d1 := strings.IndexByte(raw, '.')
	d2 := -1
	if d1 >= 0 {
		if d2 = strings.IndexByte(raw[d1+1:], '.'); d2 >= 0 {
			d2 += d1 + 1
		}
	}
	if d2 < 0 || strings.IndexByte(raw[d2+1:], '.') >= 0 {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenMalformed, "access token is not a signed JWT")
	}
	in := jwsverify.BytesOf(raw)
	hSeg, pSeg, sSeg := in[:d1], in[d1+1:d2], in[d2+1:]

	// Canonical base64url in every segment; an empty segment decodes to
	// nothing and fails a later check (as it did with go-jose). Header
	// and payload share one buffer, which the verified token keeps (the
	// payload is Principal.Claims).
	hn := base64.RawURLEncoding.DecodedLen(len(hSeg))
	buf := make([]byte, hn+base64.RawURLEncoding.DecodedLen(len(pSeg)))
	var sb [sigBufSize]byte
	hdr, ok1 := decodeSegment(buf[:hn], hSeg)
	payload, ok2 := decodeSegment(buf[hn:], pSeg)
	sig, ok3 := decodeSegment(sb[:], sSeg)
	if !ok1 || !ok2 || !ok3 {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenMalformed, "access token is not a signed JWT")
	}
	payload = payload[:len(payload):len(payload)]

	var h tokenHeader
	if len(hdr) > 0 && !parseTokenHeader(hdr, &h) {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenMalformed, "access token is not a signed JWT")
	}
	alg := v.allowedAlg(h.alg)
	if alg == "" {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenAlgorithm, "access token algorithm not accepted")
	}
	if h.bad {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenMalformed, "access token is not a signed JWT")
	}
	if h.keyRefs {
		// jwk and x5c are never used, but a token carrying them must be
		// what go-jose accepts there (a public JWK, parsable
		// certificates); this rare case keeps go-jose as the judge.
		if _, err := jose.ParseSignedCompact(raw, v.algs); err != nil {
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenMalformed, "access token is not a signed JWT")
		}
	}
	if h.crit {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenCrit, "access token uses an unsupported critical header")
	}
	if err := v.checkType(&h); err != nil {
		return nil, err
	}

	// Read the claims once, before the signature check, to pick the
	// issuer named by iss; nothing else is trusted until the signature over
	// these same bytes has been verified with that issuer's keys.
	var c tokenClaims
	if !parseTokenClaims(payload, v.audience, &c) {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenClaimsMalformed, "access token claims are malformed")
	}
	idx, ok := v.issuerIndex[string(c.iss)]
	if !ok {
		return nil, fail(ErrInvalidToken, oautherr.ReasonIssuerUntrusted, "access token issuer not trusted")
	}
	ks := v.issuers[idx].Keys
	if ks == nil {
		// An issuer validated by introspection only: the AS rules on its
		// JWTs too.
		return v.introspectToken(ctx, raw)
	}
	keys, err := ks.Keys(ctx)
	if err != nil {
		return nil, keySetFailure(err)
	}
	candidates := keys.lookup(string(h.kid))
	if len(candidates) == 0 {
		// Unknown kid: the issuer may have rotated. Refresh (rate-limited,
		// collapsed) and look again.
		if keys, err = ks.Refresh(ctx); err != nil {
			return nil, keySetFailure(err)
		}
		candidates = keys.lookup(string(h.kid))
	}
	signingInput := in[:d2]
	var used *verificationKey
	for _, k := range candidates {
		if !containsAlg(k.algs, jose.SignatureAlgorithm(alg)) {
			continue
		}
		// PS*: any salt length, as go-jose accepted.
		if jwsverify.Verify(alg, k.pub, signingInput, sig, nil) {
			used = k
			break
		}
	}
	if used == nil {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenSignature, "access token signature invalid")
	}
	// From here on the claims are verified: they were read from the
	// payload the signature covers. iss equals the issuer's Identifier
	// (selected by exact lookup; duplicate member names are refused, so
	// there is only one iss).
	if !c.audOK {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenAudience, "access token audience does not include this resource")
	}
	if !c.hasExp {
		return nil, fail(ErrInvalidToken, oautherr.ReasonTokenNoExpiry, "access token has no expiry")
	}
	for _, name := range v.requiredClaims {
		missing := false
		var why oautherr.Reason
		switch name {
		case "sub":
			missing, why = len(c.sub) == 0, oautherr.ReasonTokenMissingSub
		case "client_id":
			missing, why = len(c.clientID) == 0, oautherr.ReasonTokenMissingClientID
		case "iat":
			missing, why = !c.hasIat, oautherr.ReasonTokenMissingIAT
		case "jti":
			missing, why = len(c.jti) == 0, oautherr.ReasonTokenMissingJTI
		}
		if missing {
			return nil, fail(ErrInvalidToken, why, "access token lacks a required claim")
		}
	}
	var jkt, x5t []byte
	var hasJKT, hasX5T bool
	if c.cnf != nil { // present, including "cnf":null
		if !parseCnf(c.cnf, &jkt, &x5t, &hasJKT, &hasX5T) {
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenConfirmationMalformed, "access token confirmation claim is malformed")
		}
		if !hasJKT && !hasX5T {
			// A token confirmed by a method this server cannot check (cnf
			// with only jwk, x5t, kid, ...) is not an unbound token: taking
			// it as a bearer token would be a downgrade.
			return nil, fail(ErrInvalidToken, oautherr.ReasonTokenConfirmationUnsupported, "access token is bound by an unsupported confirmation method")
		}
	}

	t := &token{issuer: idx, keyID: used.id, raw: payload, hasJKT: hasJKT, hasX5T: hasX5T}
	t.exp = time.Unix(c.exp, 0)
	if c.hasNbf {
		t.nbf = time.Unix(c.nbf, 0)
	}
	if c.hasIat {
		t.iat = time.Unix(c.iat, 0)
	}
	// One allocation holds every string the token hands out.
	strs := make([]byte, 0, len(c.sub)+len(c.clientID)+len(c.scope)+len(jkt)+len(x5t))
	strs = append(strs, c.sub...)
	strs = append(strs, c.clientID...)
	strs = append(strs, c.scope...)
	strs = append(strs, jkt...)
	strs = append(strs, x5t...)
	all := unsafe.String(unsafe.SliceData(strs), len(strs))
	next := func(n int) string {
		s := all[:n]
		all = all[n:]
		return s
	}
	t.subject = next(len(c.sub))
	t.clientID = next(len(c.clientID))
	scope := next(len(c.scope))
	t.jkt = next(len(jkt))
	t.x5t = next(len(x5t))
	if c.hasScope {
		t.scopes = strings.Fields(scope)
		t.scopes = t.scopes[:len(t.scopes):len(t.scopes)]
	}
	return t, nil
}

// decodeSegment strictly decodes one base64url segment into buf, or into
// a new slice when buf is too small. An empty segment is empty.
func decodeSegment(buf, seg []byte) ([]byte, bool) {
	if len(seg) == 0 {
		return buf[:0], true
	}
	if n := base64.RawURLEncoding.DecodedLen(len(seg)); n > len(buf) {
		buf = make([]byte, n)
	}
	return jwsverify.DecodeB64(buf, seg)
}

// allowedAlg returns the configured algorithm named by alg, or "".
func (v *Verifier) allowedAlg(alg []byte) string {
	for _, a := range v.algs {
		if string(a) == string(alg) {
			return string(a)
		}
	}
	return ""
}

// checkType enforces typ at+jwt / application/at+jwt, case-insensitive
// (RFC 9068 §4, RFC 7515 §4.1.9).
func (v *Verifier) checkType(h *tokenHeader) error {
	if !h.hasTyp {
		if v.insecureAllowUntyped {
			return nil
		}
		return fail(ErrInvalidToken, oautherr.ReasonTokenType, "access token type not accepted")
	}
	if !h.typStr {
		return fail(ErrInvalidToken, oautherr.ReasonTokenType, "access token type not accepted")
	}
	if s := strings.ToLower(string(h.typ)); s != "at+jwt" && s != "application/at+jwt" {
		return fail(ErrInvalidToken, oautherr.ReasonTokenType, "access token type not accepted")
	}
	return nil
}

// checkTime applies exp/nbf/iat with leeway: valid strictly before exp.
func (v *Verifier) checkTime(t *token, now time.Time) error {
	if !now.Before(t.exp.Add(v.leeway)) {
		return fail(ErrInvalidToken, oautherr.ReasonTokenExpired, "access token expired")
	}
	if !t.nbf.IsZero() && now.Add(v.leeway).Before(t.nbf) {
		return fail(ErrInvalidToken, oautherr.ReasonTokenNotYetValid, "access token not yet valid")
	}
	if !t.iat.IsZero() && now.Add(v.leeway).Before(t.iat) {
		return fail(ErrInvalidToken, oautherr.ReasonTokenFromFuture, "access token issued in the future")
	}
	return nil
}

// keySetFailure maps a key-set error; the error is kept as the cause, so
// that the server log says which URL failed and why (it is never sent).
func keySetFailure(err error) error {
	if errors.Is(err, ErrIssuerMismatch) {
		return failCause(ErrInvalidToken, oautherr.ReasonIssuerMetadataMismatch, "access token issuer not trusted", err)
	}
	return failCause(ErrUnavailable, oautherr.ReasonKeysUnavailable, "service temporarily unavailable", err)
}
