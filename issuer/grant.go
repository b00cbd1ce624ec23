package issuer

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"time"
)

// Grant types built into the token endpoint.
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// GrantRequest is what a [GrantHandler] sees: an authenticated client and
// the verified binding material of the request.
type GrantRequest struct {
	// GrantType is the grant_type parameter.
	GrantType string
	// Client is the authenticated (or, for public clients, identified) client.
	Client *Client
	// Params holds the form parameters (each present at most once, none
	// empty); client_secret and client_assertion are removed.
	Params map[string]string
	// JKT is the thumbprint of the verified DPoP proof key, or "".
	JKT string
	// Certificate is the client certificate proven in the TLS handshake
	// (or forwarded by a trusted proxy), or nil.
	Certificate *x509.Certificate
}

// Grant is a [GrantHandler]'s decision.
type Grant struct {
	// Subject is the token's "sub". Required.
	Subject string
	// Scope is the granted space-separated scope.
	Scope string
	// Audience is the token's "aud"; empty means the client's default.
	Audience []string
	// Claims are extra access-token claims (reserved names are refused).
	Claims map[string]any
	// TTL is the access-token lifetime; zero means the issuer default.
	TTL time.Duration
	// DPoPJKT is the dpop_jkt the authorization request was bound to
	// (RFC 9449 §10). When set, the token request must carry a DPoP proof
	// by that key or it fails with invalid_grant.
	DPoPJKT string
	// RefreshToken asks for a refresh token next to the access token.
	// A public client gets one only when its tokens are bound.
	RefreshToken bool

	// redeem is the refresh token this grant redeems (refresh_token
	// grant): taken from the store just before minting, and replaced by a
	// successor for the same grant.
	redeem *redemption
}

// redemption is a refresh token about to be redeemed and its record.
type redemption struct {
	id  [32]byte
	rec RefreshRecord
}

// GrantHandler implements one grant type at the token endpoint. The
// framework has already parsed the form, authenticated the client, checked
// that the client may use the grant type and verified any DPoP proof; the
// handler checks the grant itself (code, device code, assertion) and
// returns who the token is for. To refuse with a specific RFC 6749 code,
// return [GrantError]; any other error is answered as server_error without
// detail. Handlers must be safe for concurrent use.
type GrantHandler interface {
	Grant(ctx context.Context, req *GrantRequest) (*Grant, error)
}

// GrantHandlerFunc adapts a function to [GrantHandler].
type GrantHandlerFunc func(ctx context.Context, req *GrantRequest) (*Grant, error)

// Grant calls f.
func (f GrantHandlerFunc) Grant(ctx context.Context, req *GrantRequest) (*Grant, error) {
	return f(ctx, req)
}

// clientCredentials is the RFC 6749 §4.4 grant: confidential clients only,
// subject = client_id, scope within the client's registered scopes.
func (s *Server) clientCredentials(_ context.Context, req *GrantRequest) (*Grant, error) {
	if req.Client.Public() {
		return nil, newError(ErrUnauthorizedClient, "public clients cannot use client_credentials")
	}
	scope, err := grantScope(req.Params["scope"], req.Client.Scopes)
	if err != nil {
		return nil, err
	}
	aud, err := s.audience(req.Client, req.Params["resource"])
	if err != nil {
		return nil, err
	}
	return &Grant{Subject: req.Client.ID, Scope: scope, Audience: aud}, nil
}

// grantScope returns the requested scope if every value is in allowed, or
// all of allowed when none was requested.
func grantScope(requested string, allowed []string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	fields := strings.Split(requested, " ")
	for i, sc := range fields {
		if sc == "" || !slices.Contains(allowed, sc) || slices.Contains(fields[:i], sc) {
			return "", newError(ErrInvalidScope, "requested scope is not allowed")
		}
	}
	return requested, nil
}

func (s *Server) audience(c *Client, resource string) ([]string, error) {
	if resource == "" {
		if len(c.Audiences) > 0 {
			return c.Audiences[:1], nil
		}
		return nil, nil
	}
	if !slices.Contains(c.Audiences, resource) {
		return nil, newError(ErrInvalidTarget, "resource not allowed for this client")
	}
	return []string{resource}, nil
}
