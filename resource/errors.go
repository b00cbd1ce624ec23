package resource

import (
	"errors"
	"net/http"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// Sentinel errors. Every error returned by [Verifier.Check] is an [*Error]
// that matches exactly one of these with errors.Is, so callers can branch
// on the class without string matching.
var (
	// ErrNoCredentials means the request carried no access token in a
	// scheme this resource accepts. It renders as 401 with challenges that
	// carry no error information (RFC 6750 §3.1).
	ErrNoCredentials = errors.New("resource: no credentials")
	// ErrInvalidRequest means the request is malformed: two Authorization
	// fields, a token sent by more than one method, an unparsable
	// Authorization value, DPoP over plain HTTP. It renders as 400
	// invalid_request.
	ErrInvalidRequest = errors.New("resource: invalid request")
	// ErrInvalidToken means the access token is not acceptable: bad
	// signature, wrong type, issuer, audience or lifetime, missing claims,
	// or a binding (cnf) the request does not satisfy. It renders as 401
	// invalid_token.
	ErrInvalidToken = errors.New("resource: invalid token")
	// ErrInvalidProof means the DPoP proof failed verification. It renders
	// as 401 invalid_dpop_proof. It is [dpop.ErrInvalidProof] itself: one
	// failure, one identity, whichever package reports it.
	ErrInvalidProof = dpop.ErrInvalidProof
	// ErrUseNonce means the DPoP proof lacked a valid resource-server
	// nonce. It renders as 401 use_dpop_nonce with a fresh DPoP-Nonce. It
	// is [dpop.ErrUseNonce] itself.
	ErrUseNonce = dpop.ErrUseNonce
	// ErrInsufficientScope means the token is valid but lacks a scope the
	// route requires. It renders as 403 insufficient_scope with scope=.
	ErrInsufficientScope = errors.New("resource: insufficient scope")
	// ErrUnavailable means a dependency needed to decide (the replay store,
	// or an issuer's keys that were never fetched) is unavailable. The
	// request is refused (fail closed) and rendered as 503 without token
	// details.
	ErrUnavailable = errors.New("resource: temporarily unavailable")
	// ErrIssuerMismatch is returned by a discovering [RemoteKeySet] when
	// the fetched metadata names an issuer that differs from the configured
	// one (RFC 8414 §3.3). Tokens of that issuer are then refused.
	ErrIssuerMismatch = errors.New("resource: metadata issuer differs from the configured issuer")
)

// Error is the one typed error returned by [Verifier.Check]. It carries the
// RFC 6750 / RFC 9449 error code, the HTTP status, a short description that
// never contains request data, the stable reason, and what [WriteError]
// needs to render the challenges.
//
// errors.Is(err, S) holds for its class sentinel S (Err) and for every
// error of its cause chain: the error for a replayed proof matches
// ErrInvalidProof and dpop.ErrReplay, and errors.As finds the *dpop.Error
// inside it.
//
// An Error is immutable once returned and safe to share between goroutines.
type Error struct {
	// Status is the HTTP status to answer with (400, 401, 403 or 503).
	Status int
	// Code is the wire error code (an oautherr constant: invalid_request,
	// invalid_token, invalid_dpop_proof, use_dpop_nonce or
	// insufficient_scope), or "" when the request carried no credentials
	// or the service is unavailable.
	Code string
	// Description is a short fixed text; it never echoes tokens, proofs or
	// other request data.
	Description string
	// Reason is the stable machine-readable reason for logs and metrics
	// (for example oautherr.ReasonTokenExpired or
	// oautherr.ReasonProofHTUMismatch). It is never sent to the client.
	Reason oautherr.Reason
	// Err is the class sentinel (ErrInvalidToken, ...).
	Err error

	cause     error    // the lower layer's error (a *dpop.Error, a key-set error), or nil
	scheme    string   // the scheme the client attempted ("DPoP", "Bearer"), or ""
	schemes   []string // challenges in force, in order
	algs      []string // DPoP algs for the DPoP challenge
	realm     string
	scope     string // for insufficient_scope
	nonce     string // fresh DPoP-Nonce to send, or ""
	forwarded bool   // the decision used a forwarded client certificate
}

// Error returns the class message and the reason; it never contains
// request data.
func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + string(e.Reason)
}

// Unwrap returns the class sentinel and, when there is one, the cause: the
// error of the layer below (for example the *dpop.Error of a refused
// proof), so errors.Is and errors.As see through the resource layer.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// Scheme returns the authentication scheme the request attempted ("DPoP",
// "Bearer"), or "" when none was recognised.
func (e *Error) Scheme() string { return e.scheme }

func statusFor(class error) int {
	switch class {
	case ErrInvalidRequest:
		return http.StatusBadRequest
	case ErrInsufficientScope:
		return http.StatusForbidden
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

func codeFor(class error) string {
	switch class {
	case ErrInvalidRequest:
		return oautherr.InvalidRequest
	case ErrInvalidToken:
		return oautherr.InvalidToken
	case ErrInvalidProof:
		return oautherr.InvalidDPoPProof
	case ErrUseNonce:
		return oautherr.UseDPoPNonce
	case ErrInsufficientScope:
		return oautherr.InsufficientScope
	default:
		return ""
	}
}

// failure is an internal error carrying a class, a fixed description, a
// reason and the lower layer's error, produced deep in validation and
// turned into an *Error (with challenge data) at the top of Check.
type failure struct {
	class  error
	desc   string
	reason oautherr.Reason
	cause  error
}

func (f *failure) Error() string { return f.class.Error() + ": " + string(f.reason) }
func (f *failure) Unwrap() error { return f.class }

func fail(class error, reason oautherr.Reason, desc string) *failure {
	return &failure{class: class, reason: reason, desc: desc}
}

// failCause is fail with the lower layer's error kept as the cause.
func failCause(class error, reason oautherr.Reason, desc string, cause error) *failure {
	return &failure{class: class, reason: reason, desc: desc, cause: cause}
}
