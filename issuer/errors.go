package issuer

import (
	"errors"
	"net/http"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
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
	// (invalid_dpop_proof). It is [dpop.ErrInvalidProof] itself: one
	// failure, one identity, whichever package reports it.
	ErrInvalidDPoPProof = dpop.ErrInvalidProof
	// ErrUseDPoPNonce reports a proof without the server nonce
	// (use_dpop_nonce); the response carries a fresh DPoP-Nonce. It is
	// [dpop.ErrUseNonce] itself.
	ErrUseDPoPNonce = dpop.ErrUseNonce
	// ErrTokenNotFound is returned by a [RefreshStore] for an unknown or
	// expired refresh token, and by a [PushedRequestStore] for an unknown,
	// expired or already redeemed request_uri.
	ErrTokenNotFound = errors.New("issuer: token not found")
	// ErrUnavailable reports a dependency (replay store, refresh store,
	// client registry) that failed; the request is refused (fail closed).
	ErrUnavailable = errors.New("issuer: temporarily unavailable")
)

// Error is the token endpoint's wire error (RFC 6749 §5.2). Code is the
// RFC error code (an oautherr constant), Description a short fixed text
// that never echoes request input, Status the HTTP status, Reason the
// stable name of the check that refused the request (logged, never sent),
// and Err the sentinel it was built from.
//
// errors.Is(err, S) holds for the class sentinel S and for every error of
// its cause chain: a refused DPoP proof matches ErrInvalidDPoPProof (which
// is dpop.ErrInvalidProof) and, for a replay, dpop.ErrReplay; errors.As
// finds the *dpop.Error inside it.
type Error struct {
	Code        string
	Description string
	Status      int
	Reason      oautherr.Reason
	Err         error

	cause error // the lower layer's error (dpop, mtlsbound), or nil
	basic bool  // client used HTTP Basic: answer with WWW-Authenticate Basic
	nonce string
	// retryAfter, when positive, is sent as Retry-After, in seconds.
	retryAfter int64
}

// Error returns "issuer: <code>: <description>".
func (e *Error) Error() string {
	if e.Description == "" {
		return "issuer: " + e.Code
	}
	return "issuer: " + e.Code + ": " + e.Description
}

// Unwrap returns the class sentinel and, when there is one, the cause.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// newError builds the wire error for err, choosing the code and status from
// the sentinel it wraps and the reason from the code. desc must be a fixed
// string, never request input.
func newError(err error, desc string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code, status := codeFor(err)
	return &Error{Code: code, Description: desc, Status: status, Reason: defaultReason(code), Err: err}
}

// refuse builds the wire error for class with an explicit reason and the
// lower layer's error as the cause (nil when there is none).
func refuse(class error, reason oautherr.Reason, desc string, cause error) *Error {
	code, status := codeFor(class)
	return &Error{Code: code, Description: desc, Status: status, Reason: reason, Err: class, cause: cause}
}

// defaultReason is the reason of a refusal built without a more precise one.
func defaultReason(code string) oautherr.Reason {
	switch code {
	case oautherr.InvalidRequest:
		return oautherr.ReasonRequestMalformed
	case oautherr.InvalidClient:
		return oautherr.ReasonClientAuthFailed
	case oautherr.InvalidGrant:
		return oautherr.ReasonGrantInvalid
	case oautherr.UnauthorizedClient:
		return oautherr.ReasonGrantNotAllowed
	case oautherr.UnsupportedGrantType:
		return oautherr.ReasonGrantTypeUnsupported
	case oautherr.InvalidScope:
		return oautherr.ReasonScopeNotAllowed
	case oautherr.InvalidTarget:
		return oautherr.ReasonTargetNotAllowed
	case oautherr.InvalidDPoPProof:
		return oautherr.ReasonProofInvalid
	case oautherr.UseDPoPNonce:
		return oautherr.ReasonNonceRequired
	case oautherr.TemporarilyUnavailable:
		return oautherr.ReasonDependencyUnavailable
	}
	return oautherr.ReasonInternal
}

func codeFor(err error) (string, int) {
	switch {
	case errors.Is(err, ErrInvalidClient), errors.Is(err, ErrUnknownClient):
		return oautherr.InvalidClient, http.StatusUnauthorized
	case errors.Is(err, ErrUseDPoPNonce):
		return oautherr.UseDPoPNonce, http.StatusBadRequest
	case errors.Is(err, ErrInvalidDPoPProof):
		return oautherr.InvalidDPoPProof, http.StatusBadRequest
	case errors.Is(err, ErrInvalidGrant):
		return oautherr.InvalidGrant, http.StatusBadRequest
	case errors.Is(err, ErrUnauthorizedClient):
		return oautherr.UnauthorizedClient, http.StatusBadRequest
	case errors.Is(err, ErrUnsupportedGrantType):
		return oautherr.UnsupportedGrantType, http.StatusBadRequest
	case errors.Is(err, ErrInvalidScope):
		return oautherr.InvalidScope, http.StatusBadRequest
	case errors.Is(err, ErrInvalidTarget):
		return oautherr.InvalidTarget, http.StatusBadRequest
	case errors.Is(err, ErrInvalidRequest):
		return oautherr.InvalidRequest, http.StatusBadRequest
	case errors.Is(err, ErrUnavailable):
		return oautherr.TemporarilyUnavailable, http.StatusServiceUnavailable
	}
	return oautherr.ServerError, http.StatusInternalServerError
}

// GrantError returns an error a [GrantHandler] can return to refuse a grant
// with a specific RFC 6749 §5.2 code. sentinel is one of this package's
// sentinels (for example [ErrInvalidGrant] or [ErrInvalidScope]); desc is a
// short fixed description that MUST NOT contain request input.
func GrantError(sentinel error, desc string) error {
	return newError(sentinel, desc)
}
