package issuer

import (
	"errors"
	"net/http"
)

// Sentinel errors. Each one names a failure class a caller acts on; the
// token endpoint maps them to RFC 6749 §5.2 error codes through [Error].
var (
	// ErrInvalidConfig reports a configuration rejected at construction.
	ErrInvalidConfig = errors.New("issuer: invalid configuration")
	// ErrReservedClaim reports an extra claim that would override a claim
	// the issuer sets itself (iss, sub, aud, exp, iat, nbf, jti, client_id,
	// scope, cnf).
	ErrReservedClaim = errors.New("issuer: extra claim overrides a reserved claim")
	// ErrInvalidBinding reports a [Binding] that names both a key and a
	// certificate, or whose thumbprint is not 43 base64url characters.
	ErrInvalidBinding = errors.New("issuer: invalid confirmation binding")
	// ErrInvalidRequest reports a token request that is missing or repeats
	// a parameter or is otherwise malformed (invalid_request).
	ErrInvalidRequest = errors.New("issuer: invalid request")
	// ErrInvalidClient reports failed client authentication (invalid_client).
	ErrInvalidClient = errors.New("issuer: client authentication failed")
	// ErrUnknownClient is returned by a [ClientRegistry] for an unknown
	// client_id. The token endpoint reports it as invalid_client.
	ErrUnknownClient = errors.New("issuer: unknown client")
	// ErrInvalidGrant reports an invalid, expired or foreign grant, such as
	// a refresh token presented with another key (invalid_grant).
	ErrInvalidGrant = errors.New("issuer: invalid grant")
	// ErrUnauthorizedClient reports a client not allowed to use the grant
	// type (unauthorized_client).
	ErrUnauthorizedClient = errors.New("issuer: client not authorized for this grant type")
	// ErrUnsupportedGrantType reports an unknown grant_type
	// (unsupported_grant_type).
	ErrUnsupportedGrantType = errors.New("issuer: unsupported grant type")
	// ErrInvalidScope reports a scope outside what the client may ask for
	// (invalid_scope).
	ErrInvalidScope = errors.New("issuer: invalid scope")
	// ErrInvalidTarget reports a resource indicator the client may not use
	// (invalid_target, RFC 8707).
	ErrInvalidTarget = errors.New("issuer: invalid target")
	// ErrInvalidDPoPProof reports a DPoP proof that fails RFC 9449 §4.3
	// (invalid_dpop_proof).
	ErrInvalidDPoPProof = errors.New("issuer: invalid DPoP proof")
	// ErrUseDPoPNonce reports a proof without the server nonce
	// (use_dpop_nonce); the response carries a fresh DPoP-Nonce.
	ErrUseDPoPNonce = errors.New("issuer: DPoP nonce required")
	// ErrTokenNotFound is returned by a [RefreshStore] for an unknown or
	// expired refresh token.
	ErrTokenNotFound = errors.New("issuer: token not found")
	// ErrUnavailable reports a dependency (replay store, refresh store,
	// client registry) that failed; the request is refused (fail closed).
	ErrUnavailable = errors.New("issuer: temporarily unavailable")
)

// Error is the token endpoint's wire error (RFC 6749 §5.2). Code is the RFC
// error code, Description a short fixed text that never echoes request
// input, Status the HTTP status, and Err the sentinel (or wrapped cause) it
// was built from. errors.Is(e, sentinel) holds through Unwrap.
type Error struct {
	Code        string
	Description string
	Status      int
	Err         error

	basic bool // client used HTTP Basic: answer with WWW-Authenticate Basic
	nonce string
}

// Error returns "issuer: <code>: <description>".
func (e *Error) Error() string {
	if e.Description == "" {
		return "issuer: " + e.Code
	}
	return "issuer: " + e.Code + ": " + e.Description
}

// Unwrap returns the underlying sentinel or cause.
func (e *Error) Unwrap() error { return e.Err }

// newError builds the wire error for err, choosing the code and status from
// the sentinel it wraps. desc must be a fixed string, never request input.
func newError(err error, desc string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code, status := codeFor(err)
	return &Error{Code: code, Description: desc, Status: status, Err: err}
}

func codeFor(err error) (string, int) {
	switch {
	case errors.Is(err, ErrInvalidClient), errors.Is(err, ErrUnknownClient):
		return "invalid_client", http.StatusUnauthorized
	case errors.Is(err, ErrUseDPoPNonce):
		return "use_dpop_nonce", http.StatusBadRequest
	case errors.Is(err, ErrInvalidDPoPProof):
		return "invalid_dpop_proof", http.StatusBadRequest
	case errors.Is(err, ErrInvalidGrant):
		return "invalid_grant", http.StatusBadRequest
	case errors.Is(err, ErrUnauthorizedClient):
		return "unauthorized_client", http.StatusBadRequest
	case errors.Is(err, ErrUnsupportedGrantType):
		return "unsupported_grant_type", http.StatusBadRequest
	case errors.Is(err, ErrInvalidScope):
		return "invalid_scope", http.StatusBadRequest
	case errors.Is(err, ErrInvalidTarget):
		return "invalid_target", http.StatusBadRequest
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request", http.StatusBadRequest
	case errors.Is(err, ErrUnavailable):
		return "temporarily_unavailable", http.StatusServiceUnavailable
	}
	return "server_error", http.StatusInternalServerError
}

// GrantError returns an error a [GrantHandler] can return to refuse a grant
// with a specific RFC 6749 §5.2 code. sentinel is one of this package's
// sentinels (for example [ErrInvalidGrant] or [ErrInvalidScope]); desc is a
// short fixed description that MUST NOT contain request input.
func GrantError(sentinel error, desc string) error {
	return newError(sentinel, desc)
}
