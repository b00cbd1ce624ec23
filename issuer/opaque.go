package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// TokenFormat selects the form of the access tokens an [Issuer] mints.
type TokenFormat uint8

const (
	// FormatJWT mints RFC 9068 JWT access tokens that resource servers
	// verify with the issuer's published keys. It is the zero value.
	FormatJWT TokenFormat = iota
	// FormatOpaque mints random handles that carry nothing: resource
	// servers learn the token's claims, cnf included, from the
	// introspection endpoint (RFC 7662), which reads them from
	// Config.AccessTokens.
	FormatOpaque
)

// String returns "jwt" or "opaque".
func (f TokenFormat) String() string {
	switch f {
	case FormatJWT:
		return "jwt"
	case FormatOpaque:
		return "opaque"
	}
	return "invalid"
}

// ParseTokenFormat returns the TokenFormat named s ("jwt" or "opaque").
func ParseTokenFormat(s string) (TokenFormat, error) {
	switch s {
	case "jwt":
		return FormatJWT, nil
	case "opaque":
		return FormatOpaque, nil
	}
	return 0, fmt.Errorf("%w: access token format must be jwt or opaque", ErrInvalidConfig)
}

// opaqueID is the store key of an opaque access token: its SHA-256.
func opaqueID(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// mintOpaque stores the claims of an opaque access token and returns its
// handle. The record's ID (the jti) is never empty, which tells it from a
// refresh token's record.
func (is *Issuer) mintOpaque(ctx context.Context, req *MintRequest, aud []string, now, exp time.Time, jti string) (*Token, error) {
	var b [32]byte
	if _, err := io.ReadFull(is.rand(), b[:]); err != nil {
		return nil, fmt.Errorf("issuer: opaque token: %w", err)
	}
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	rec := RefreshRecord{
		ClientID: req.ClientID, Subject: req.Subject, Scope: req.Scope,
		Audience: slices.Clone(aud), Claims: maps.Clone(req.Claims), Binding: req.Binding,
		IssuedAt: now, ExpiresAt: exp, ID: jti,
	}
	if err := is.cfg.AccessTokens.Put(ctx, opaqueID(raw), rec); err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonAccessTokenStoreUnavailable, "temporarily unavailable", err)
	}
	return &Token{
		Raw: raw, Type: req.Binding.TokenType(), ID: jti,
		Subject: req.Subject, ClientID: req.ClientID, Audience: slices.Clone(aud),
		Scope: req.Scope, Binding: req.Binding, IssuedAt: now, ExpiresAt: exp,
	}, nil
}

// isOpaqueHandle reports whether tok has the form of an opaque handle: 43
// base64url characters (and so no dot: it is never taken for a JWT).
func isOpaqueHandle(tok string) bool { return isSHA256Thumbprint(tok) }

// introspectOpaque returns the response members of an active opaque
// access token, or nil. A store failure is an error: the caller answers
// 503, never {"active":false}, so a resource server does not take a
// valid token for a dead one.
func (s *Server) introspectOpaque(ctx context.Context, caller *Client, tok string) (map[string]any, error) {
	store := s.is.cfg.AccessTokens
	if store == nil || !isOpaqueHandle(tok) {
		return nil, nil
	}
	rec, err := store.Get(ctx, opaqueID(tok))
	if errors.Is(err, ErrTokenNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonAccessTokenStoreUnavailable, "temporarily unavailable", err)
	}
	now := s.is.now()
	if rec.ID == "" || !now.Before(rec.ExpiresAt) || now.Before(rec.IssuedAt) {
		return nil, nil
	}
	if !caller.mayIntrospect(rec.ClientID, rec.Audience) {
		if s.cfg.Logger != nil {
			s.cfg.Logger.Info("issuer: introspection answered inactive",
				slog.String("reason", string(oautherr.ReasonTokenNotVisible)),
				slog.String("description", "token not visible to the caller"))
		}
		return nil, nil
	}
	m := maps.Clone(rec.Claims)
	if m == nil {
		m = map[string]any{}
	}
	m["active"] = true
	m["iss"] = s.is.ID()
	m["sub"] = rec.Subject
	if len(rec.Audience) == 1 {
		m["aud"] = rec.Audience[0]
	} else {
		m["aud"] = rec.Audience
	}
	m["exp"] = rec.ExpiresAt.Unix()
	m["iat"] = rec.IssuedAt.Unix()
	m["jti"] = rec.ID
	m["client_id"] = rec.ClientID
	if rec.Scope != "" {
		m["scope"] = rec.Scope
	}
	if rec.Binding.Bound() {
		m["cnf"] = cnfClaim{JKT: rec.Binding.JKT, X5TS256: rec.Binding.X5TS256}
	}
	m["token_type"] = rec.Binding.TokenType()
	return m, nil
}

// noDots reports whether tok cannot be a JWS compact serialization.
func noDots(tok string) bool { return !strings.Contains(tok, ".") }
