package resource

import (
	"errors"
	"net/http"
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
	// as 401 invalid_dpop_proof.
	ErrInvalidProof = errors.New("resource: invalid DPoP proof")
	// ErrUseNonce means the DPoP proof lacked a valid resource-server
	// nonce. It renders as 401 use_dpop_nonce with a fresh DPoP-Nonce.
	ErrUseNonce = errors.New("resource: DPoP nonce required")
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
// never contains request data, and what [WriteError] needs to render the
// challenges. errors.Is matches its class sentinel (Err).
//
// An Error is immutable once returned and safe to share between goroutines.
type Error struct {
	// Status is the HTTP status to answer with (400, 401, 403 or 503).
	Status int
	// Code is the wire error code ("invalid_request", "invalid_token",
	// "invalid_dpop_proof", "use_dpop_nonce", "insufficient_scope"), or ""
	// when the request carried no credentials or the service is unavailable.
	Code string
	// Description is a short fixed text; it never echoes tokens, proofs or
	// other request data.
	Description string
	// Reason is a stable machine-readable reason for logs and metrics
	// (for example "token_expired", "bearer_downgrade"). It is never sent
	// to the client.
	Reason string
	// Err is the class sentinel (ErrInvalidToken, ...).
	Err error

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
	return e.Err.Error() + ": " + e.Reason
}

// Unwrap returns the class sentinel.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the class sentinel, so errors.Is works on a
// bare *Error without unwrapping.
func (e *Error) Is(target error) bool { return target == e.Err }

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
		return "invalid_request"
	case ErrInvalidToken:
		return "invalid_token"
	case ErrInvalidProof:
		return "invalid_dpop_proof"
	case ErrUseNonce:
		return "use_dpop_nonce"
	case ErrInsufficientScope:
		return "insufficient_scope"
	default:
		return ""
	}
}

// failure is an internal error carrying a class, a fixed description and
// a reason, produced deep in validation and turned into an *Error (with
// challenge data) at the top of Check.
type failure struct {
	class  error
	desc   string
	reason string
}

func (f *failure) Error() string { return f.class.Error() + ": " + f.reason }
func (f *failure) Unwrap() error { return f.class }

func fail(class error, reason, desc string) *failure {
	return &failure{class: class, reason: reason, desc: desc}
}
