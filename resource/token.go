package resource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// token is a verified access token: the result of the signature and static
// checks (type, issuer, audience, required claims, cnf shape), shareable
// through the token cache. Time checks are not part of it: they run on
// every request.
type token struct {
	issuer   int // index into Verifier.issuers
	keyID    string
	claims   accessClaims
	scopes   []string
	exp      time.Time
	nbf      time.Time // zero when absent
	iat      time.Time // zero when absent
	jkt, x5t string
	hasJKT   bool
	hasX5T   bool
	raw      []byte // verified payload
}

type accessClaims struct {
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

type cnfClaim struct {
	JKT *string `json:"jkt"`
	X5T *string `json:"x5t#S256"`
}

func tokenDigest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// verifyToken runs every check that does not depend on time or on the
// request: size, JOSE shape, alg allow-list and key fit, typ, crit,
// signature with the named issuer's keys, iss, aud, required claims, cnf.
func (v *Verifier) verifyToken(ctx context.Context, raw string) (*token, error) {
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
	if err := v.checkType(h.ExtraHeaders[jose.HeaderType]); err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)

	// Decode the claims once, before the signature check, to pick the
	// issuer named by iss; nothing else is trusted until the signature over
	// these same bytes has been verified with that issuer's keys.
	t := &token{}
	payload := jws.UnsafePayloadWithoutVerification()
	if err := josejson.Unmarshal(payload, &t.claims); err != nil {
		return nil, fail(ErrInvalidToken, "token_claims_malformed", "access token claims are malformed")
	}
	idx, ok := v.issuerIndex[t.claims.Issuer]
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
		// Unknown kid: the issuer may have rotated. Refresh (rate-limited,
		// collapsed) and look again.
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
		if _, err := jws.Verify(k.jwk.Key); err == nil {
			used = k
			break
		}
	}
	if used == nil {
		return nil, fail(ErrInvalidToken, "token_signature", "access token signature invalid")
	}
	t.issuer, t.keyID, t.raw = idx, used.id, payload
	c := &t.claims
	// From here on the claims are verified: they were decoded from the
	// payload the signature covers. c.Issuer equals the issuer's Identifier
	// (selected by exact lookup; go-jose's decoder refuses duplicate
	// members, so there is only one iss).
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
			return nil, fail(ErrInvalidToken, "token_missing_"+name, "access token lacks a required claim")
		}
	}
	if c.Scope != nil {
		t.scopes = strings.Fields(*c.Scope)
		t.scopes = t.scopes[:len(t.scopes):len(t.scopes)]
	}
	if len(c.Cnf) > 0 { // present, including "cnf":null
		if err := t.parseCnf(c.Cnf); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *token) parseCnf(raw []byte) error {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
	}
	var cnf cnfClaim
	if err := josejson.Unmarshal(raw, &cnf); err != nil {
		return fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
	}
	if cnf.JKT != nil {
		if !isB64URLSHA256(*cnf.JKT) {
			return fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
		}
		t.jkt, t.hasJKT = *cnf.JKT, true
	}
	if cnf.X5T != nil {
		if !isB64URLSHA256(*cnf.X5T) {
			return fail(ErrInvalidToken, "token_cnf_malformed", "access token confirmation claim is malformed")
		}
		t.x5t, t.hasX5T = *cnf.X5T, true
	}
	return nil
}

// isB64URLSHA256 reports whether s is 43 unpadded base64url characters,
// the only form a SHA-256 thumbprint takes (RFC 7638, RFC 8705 §3.1).
func isB64URLSHA256(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkType enforces typ at+jwt / application/at+jwt, case-insensitive
// (RFC 9068 §4, RFC 7515 §4.1.9).
func (v *Verifier) checkType(typ any) error {
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

// checkTime applies exp/nbf/iat with leeway: valid strictly before exp.
func (v *Verifier) checkTime(t *token, now time.Time) error {
	if !now.Before(t.exp.Add(v.leeway)) {
		return fail(ErrInvalidToken, "token_expired", "access token expired")
	}
	if !t.nbf.IsZero() && now.Add(v.leeway).Before(t.nbf) {
		return fail(ErrInvalidToken, "token_not_yet_valid", "access token not yet valid")
	}
	if !t.iat.IsZero() && now.Add(v.leeway).Before(t.iat) {
		return fail(ErrInvalidToken, "token_issued_in_future", "access token issued in the future")
	}
	return nil
}

func keySetFailure(err error) error {
	if errors.Is(err, ErrIssuerMismatch) {
		return fail(ErrInvalidToken, "issuer_metadata_mismatch", "access token issuer not trusted")
	}
	return fail(ErrUnavailable, "keys_unavailable", "service temporarily unavailable")
}
