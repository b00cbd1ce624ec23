package issuer

import (
	"context"
	"net/url"

	"github.com/senderbound/senderbound/oautherr"
)

// ParamDPoPJKT is the authorization request parameter that binds the
// authorization code to a DPoP key (RFC 9449 §10): the RFC 7638 SHA-256
// thumbprint of the key, base64url without padding.
const ParamDPoPJKT = "dpop_jkt"

// maxAuthorizationParams caps the parameters of an authorization request
// and of a pushed authorization request.
const maxAuthorizationParams = 64

// AuthorizationDPoPJKT returns the dpop_jkt parameter of an authorization
// request (RFC 9449 §10), or "" when the request has none. A dpop_jkt sent
// without a value counts as absent (RFC 6749 §3.1). A present value must
// be exactly one base64url SHA-256 JWK thumbprint: 43 characters of the
// base64url alphabet, no padding. A repeated or malformed value is
// refused with an [*Error] of code invalid_request (RFC 6749 §4.1.2.1),
// status 400 and reason [oautherr.ReasonDPoPJKTMalformed]; its
// description is fixed and never echoes the value, so the embedding
// server may send it in the error redirect.
//
// The embedding server stores the returned thumbprint with the
// authorization code and returns it as [Grant.DPoPJKT] from its
// authorization_code [GrantHandler]: the token endpoint then issues a
// token only to a request whose DPoP proof is signed by that key, and
// refuses any other with invalid_grant. It does NOT check the client or
// any other parameter; [Server.AuthorizationRequest] does the same for a
// whole request, pushed ones included.
func AuthorizationDPoPJKT(params url.Values) (string, error) {
	vs := params[ParamDPoPJKT]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", refuse(ErrInvalidRequest, oautherr.ReasonDPoPJKTMalformed, "dpop_jkt is repeated", nil)
	case vs[0] == "":
		return "", nil
	case !isSHA256Thumbprint(vs[0]):
		return "", refuse(ErrInvalidRequest, oautherr.ReasonDPoPJKTMalformed, "dpop_jkt is not a SHA-256 JWK thumbprint", nil)
	}
	return vs[0], nil
}

// AuthorizationRequest is an authorization request as the embedding
// server's authorization endpoint acts on it, returned by
// [Server.AuthorizationRequest].
type AuthorizationRequest struct {
	// ClientID is the client_id of the request. For a pushed request it is
	// the client that pushed it, authenticated at the PAR endpoint. For
	// any other request it is only what the user agent sent: the embedding
	// server looks the client up and checks redirect_uri against its
	// registration before it redirects anywhere (RFC 6749 §4.1.2.1).
	ClientID string
	// Params holds the request's parameters, each present once and none
	// empty: the pushed ones for a request_uri (client authentication
	// parameters removed), else the query's.
	Params map[string]string
	// DPoPJKT is the thumbprint the authorization code must be bound to:
	// the validated dpop_jkt parameter, or for a pushed request the key of
	// the DPoP proof sent to the PAR endpoint. "" means unbound.
	DPoPJKT string
	// Pushed is set when the request came through a request_uri.
	Pushed bool
}

// AuthorizationRequest resolves the parameters an authorization endpoint
// received (the query of a GET, or the form of a POST). With request_uri
// it redeems the pushed request ([Server.TakePushedRequest]) for the
// client_id that must come with it and uses only the pushed parameters
// (RFC 9126 §4); without, it takes the parameters as sent, validates
// dpop_jkt ([AuthorizationDPoPJKT]) and, when PARConfig.Require is set,
// refuses the request (RFC 9126 §5).
//
// Refusals are [*Error] values with code invalid_request and a fixed
// description: a repeated parameter, a missing client_id, more than 64
// parameters, a malformed dpop_jkt, an unknown, expired, used or foreign
// request_uri (reason [oautherr.ReasonRequestURIInvalid]); a failing
// pushed-request store is temporarily_unavailable. It does NOT check the
// client, redirect_uri, response_type, PKCE or scope: that is the
// embedding server's authorization logic. It is safe for concurrent use.
func (s *Server) AuthorizationRequest(ctx context.Context, params url.Values) (*AuthorizationRequest, error) {
	if len(params) > maxAuthorizationParams {
		return nil, newError(ErrInvalidRequest, "too many parameters")
	}
	flat := make(map[string]string, len(params))
	for k, vs := range params {
		if len(vs) != 1 {
			if k == ParamDPoPJKT {
				return nil, refuse(ErrInvalidRequest, oautherr.ReasonDPoPJKTMalformed, "dpop_jkt is repeated", nil)
			}
			return nil, newError(ErrInvalidRequest, "repeated parameter")
		}
		if !validText(k) || !validText(vs[0]) || len(vs[0]) > maxParamBytes {
			return nil, newError(ErrInvalidRequest, "malformed parameter")
		}
		if vs[0] != "" {
			flat[k] = vs[0]
		}
	}
	clientID := flat["client_id"]
	if clientID == "" {
		return nil, newError(ErrInvalidRequest, "client_id is required")
	}
	if ru := flat["request_uri"]; ru != "" {
		if s.cfg.PAR == nil {
			return nil, refuse(ErrInvalidRequest, oautherr.ReasonRequestURIInvalid, "request_uri is not supported", nil)
		}
		p, err := s.TakePushedRequest(ctx, clientID, ru)
		if err != nil {
			return nil, err
		}
		return &AuthorizationRequest{ClientID: p.ClientID, Params: p.Params, DPoPJKT: p.DPoPJKT, Pushed: true}, nil
	}
	if s.cfg.PAR != nil && s.cfg.PAR.Require {
		return nil, refuse(ErrInvalidRequest, oautherr.ReasonPushedRequestRequired, "pushed authorization request required", nil)
	}
	jkt, err := AuthorizationDPoPJKT(params)
	if err != nil {
		return nil, err
	}
	return &AuthorizationRequest{ClientID: clientID, Params: flat, DPoPJKT: jkt}, nil
}
