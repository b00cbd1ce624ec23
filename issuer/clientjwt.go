package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/internal/pubkey"
)

// AuthPrivateKeyJWT is client authentication with a JWT signed by the
// client's private key (RFC 7523 §2.2, OpenID Connect Core §9).
const AuthPrivateKeyJWT AuthMethod = "private_key_jwt"

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxClientAssertionLifetime caps exp − now of a client assertion, which
// bounds how long its jti must be remembered.
const maxClientAssertionLifetime = 5 * time.Minute

// assertionSkew is the tolerated clock offset for iat and nbf.
const assertionSkew = 15 * time.Second

// assertionDomain separates client-assertion replay keys from DPoP proof
// keys in a replay store shared with the DPoP verifier.
const assertionDomain = "senderbound client assertion v1\x00"

func validateClientJWKS(c *Client) error {
	if c.JWKS == nil || len(c.JWKS.Keys) == 0 {
		return fmt.Errorf("%w: client %q needs a JWKS", ErrInvalidConfig, c.ID)
	}
	for i, k := range c.JWKS.Keys {
		if !k.Valid() || !k.IsPublic() {
			return fmt.Errorf("%w: client %q: JWKS must hold valid public keys only", ErrInvalidConfig, c.ID)
		}
		if _, ok := k.Key.([]byte); ok {
			return fmt.Errorf("%w: client %q: symmetric keys are not allowed", ErrInvalidConfig, c.ID)
		}
		if err := pubkey.Check(k.Key); err != nil {
			return fmt.Errorf("%w: client %q: JWKS key %d: %w", ErrInvalidConfig, c.ID, i, err)
		}
	}
	return nil
}

// maxAssertionJSONDepth bounds the nesting of a client assertion's header
// and claims.
const maxAssertionJSONDepth = 32

// assertionJSONStrict reports whether the header and the claims of a
// compact JWS are each one JSON object without duplicate member names and
// without two names equal under case folding, at every level. go-jose,
// which reads the assertion next, matches names case-sensitively; the
// rule keeps "iss" and "ISS" from meaning different things to different
// readers.
func assertionJSONStrict(assertion string) bool {
	segs := strings.SplitN(assertion, ".", 4)
	if len(segs) != 3 {
		return false
	}
	for _, seg := range segs[:2] {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			return false
		}
		s := jwsverify.Scanner{B: b, MaxDepth: maxAssertionJSONDepth}
		if !s.Top(func([]byte) bool { return s.Skip(1) }) {
			return false
		}
	}
	return true
}

// unverifiedAssertionSubject returns the "sub" of a client assertion
// without checking anything, only to find the client when client_id is
// absent. The value is untrusted until verifyClientAssertion succeeds.
func unverifiedAssertionSubject(assertion string, algs []jose.SignatureAlgorithm) string {
	t, err := jwt.ParseSigned(assertion, algs)
	if err != nil {
		return ""
	}
	var c jwt.Claims
	if err := t.UnsafeClaimsWithoutVerification(&c); err != nil {
		return ""
	}
	return c.Subject
}

// verifyClientAssertion checks a private_key_jwt assertion for client c:
// header and claims without duplicate or case-folded member names,
// signature by one of the client's registered keys that meets the
// internal/pubkey rules (checked here too, for registries that do not
// validate their clients) with an allowed algorithm, iss = sub =
// client_id, aud naming one of audiences, exp in the future and at most
// maxClientAssertionLifetime away, iat/nbf not in the future, and a jti
// never seen before.
func (s *Server) verifyClientAssertion(ctx context.Context, c *Client, assertion string, audiences []string) error {
	if !assertionJSONStrict(assertion) {
		return ErrInvalidClient
	}
	t, err := jwt.ParseSigned(assertion, s.assertionAlgs)
	if err != nil || len(t.Headers) != 1 {
		return ErrInvalidClient
	}
	var claims jwt.Claims
	switch {
	case c.JWKS != nil:
		if !assertionSignedBy(t, c.JWKS, &claims) {
			return ErrInvalidClient
		}
	case c.JWKSURI != "":
		// A key that verifies nothing in the cached set may be a rotated
		// one: one rate-limited refetch, then the new set decides.
		ck, err := s.clientKeys.get(ctx, c)
		if err != nil {
			return err
		}
		if !assertionSignedBy(t, ck.set, &claims) {
			nk := s.clientKeys.refreshed(ctx, c, ck)
			if nk == nil || !assertionSignedBy(t, nk.set, &claims) {
				return ErrInvalidClient
			}
		}
	default:
		return ErrInvalidClient
	}
	now := s.is.now()
	if claims.Issuer != c.ID || claims.Subject != c.ID || claims.ID == "" || claims.Expiry == nil {
		return ErrInvalidClient
	}
	if !slices.ContainsFunc(audiences, claims.Audience.Contains) {
		return ErrInvalidClient
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp) || exp.Sub(now) > maxClientAssertionLifetime {
		return ErrInvalidClient
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)) ||
		claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)) {
		return ErrInvalidClient
	}
	h256 := sha256.New()
	h256.Write([]byte(assertionDomain))
	h256.Write([]byte{byte(len(c.ID) >> 8), byte(len(c.ID))})
	h256.Write([]byte(c.ID))
	h256.Write([]byte(claims.ID))
	var key [32]byte
	h256.Sum(key[:0])
	if !s.quota.Allow(clientQuotaOwner(c.ID)) {
		return ErrInvalidClient
	}
	var fresh bool
	if ss, ok := s.cfg.ReplayStore.(dpop.SinceReplayStore); ok {
		// The earliest time this assertion can have been accepted: not
		// before exp − maxClientAssertionLifetime, nor before iat − skew.
		since := exp.Add(-maxClientAssertionLifetime)
		if claims.IssuedAt != nil {
			if t := claims.IssuedAt.Time().Add(-assertionSkew); t.After(since) {
				since = t
			}
		}
		fresh, err = ss.CheckAndStoreSince(ctx, key, since, exp)
	} else {
		fresh, err = s.cfg.ReplayStore.CheckAndStore(ctx, key, exp)
	}
	var lost interface{ ReplayStateLost() bool }
	if errors.As(err, &lost) && lost.ReplayStateLost() {
		return ErrInvalidClient
	}
	if err != nil {
		return fmt.Errorf("%w: replay store", ErrUnavailable)
	}
	if !fresh {
		return ErrInvalidClient
	}
	return nil
}

// assertionSignedBy reports whether t is signed by a key of set that its
// header selects (kid and alg when the key names them, use "sig" or none)
// and that meets the internal/pubkey rules, and decodes its claims into
// claims.
func assertionSignedBy(t *jwt.JSONWebToken, set *jose.JSONWebKeySet, claims *jwt.Claims) bool {
	h := t.Headers[0]
	for _, k := range set.Keys {
		if h.KeyID != "" && k.KeyID != h.KeyID || k.Algorithm != "" && k.Algorithm != h.Algorithm || k.Use != "" && k.Use != "sig" {
			continue
		}
		if pubkey.Check(k.Key) != nil {
			continue
		}
		if err := t.Claims(k.Key, claims); err == nil {
			return true
		}
	}
	return false
}

// errAssertionUnavailable reports whether err is a replay-store failure.
func errAssertionUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
