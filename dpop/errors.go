package dpop

import (
	"errors"

	"github.com/senderbound/senderbound/oautherr"
)

// sentinel is an error value that may name a parent class, so that
// errors.Is(ErrReplay, ErrInvalidProof) holds.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string { return s.msg }

func (s *sentinel) Is(target error) bool { return s.parent != nil && target == s.parent }

var (
	// ErrInvalidProof is the class of every proof that fails an RFC 9449
	// §4.3 check. It maps to the error code invalid_dpop_proof.
	ErrInvalidProof error = &sentinel{msg: "dpop: invalid proof"}

	// ErrReplay reports a proof whose (key, jti) pair was already accepted
	// within its acceptance window. errors.Is(err, ErrInvalidProof) also holds.
	ErrReplay error = &sentinel{msg: "dpop: proof replayed", parent: ErrInvalidProof}

	// ErrUseNonce reports a proof without the server nonce, or with a nonce
	// that is invalid, expired or issued by another server. It maps to the
	// error code use_dpop_nonce; the response should carry a fresh DPoP-Nonce.
	ErrUseNonce error = &sentinel{msg: "dpop: server nonce required"}

	// ErrKeyMismatch reports a valid proof made with a key other than the one
	// the access token (cnf.jkt) or the authorization request (dpop_jkt) is
	// bound to. A resource server reports it as invalid_token (RFC 9449 §7.1).
	ErrKeyMismatch error = &sentinel{msg: "dpop: proof key does not match the bound key"}

	// ErrMissingProof reports a request without any DPoP header field.
	ErrMissingProof error = &sentinel{msg: "dpop: no proof"}

	// ErrReplayStateLost reports a proof refused because the replay store
	// lost the proofs it had recorded (for example a Redis server restarted
	// without persistence) and this proof was issued before the loss was
	// detected, so it may have been accepted already. The error that
	// [Verifier.Verify] returns also wraps ErrUseNonce when the Verifier
	// requires nonces (code use_dpop_nonce: the client retries at once with
	// a new proof), else ErrInvalidProof (code invalid_dpop_proof).
	ErrReplayStateLost error = &sentinel{msg: "dpop: proof issued before the replay store lost its state"}

	// ErrKeyQuota reports a proof refused because its key already made its
	// share of replay-store entries in the current window (see
	// [Config.KeyLimiter]); the replay store was not touched.
	// errors.Is(err, ErrInvalidProof) also holds.
	ErrKeyQuota error = &sentinel{msg: "dpop: proof key over its replay quota", parent: ErrInvalidProof}

	// ErrStoreUnavailable reports that the replay store could not decide
	// whether a proof is fresh. Callers must reject the request (fail closed);
	// a resource server answers 503.
	ErrStoreUnavailable error = &sentinel{msg: "dpop: replay store unavailable"}
)

// Error is the wire-level error that [Verifier.Verify] returns. Code is the
// RFC error code (an oautherr constant such as oautherr.InvalidDPoPProof
// or oautherr.UseDPoPNonce), Description a short fixed text that never
// contains any part of the request, Reason the stable name of the check
// that failed (for logs, never sent), and Err the class sentinel (one of
// the Err… values), wrapped together with the cause when there is one.
//
// errors.Is(e, ErrX) holds when Err is or wraps ErrX; errors.Is(e, ErrInvalidProof)
// also holds for ErrReplay and ErrKeyQuota, whose class it is.
type Error struct {
	Code        string
	Description string
	Reason      oautherr.Reason
	Err         error
}

// Error implements error. The text contains only the code and description.
func (e *Error) Error() string {
	if e.Description == "" {
		return "dpop: " + e.Code
	}
	return "dpop: " + e.Code + ": " + e.Description
}

// Unwrap returns the class sentinel (wrapped with the cause, if any).
func (e *Error) Unwrap() error { return e.Err }

// Code returns the RFC error code for err: invalid_dpop_proof for
// ErrInvalidProof (and ErrReplay), use_dpop_nonce for ErrUseNonce,
// invalid_token for ErrKeyMismatch, invalid_request for ErrMissingProof and
// server_error for ErrStoreUnavailable. An *Error anywhere in the chain
// wins. Unknown errors map to invalid_dpop_proof, so callers fail closed.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	switch {
	case errors.Is(err, ErrUseNonce):
		return oautherr.UseDPoPNonce
	case errors.Is(err, ErrKeyMismatch):
		return oautherr.InvalidToken
	case errors.Is(err, ErrMissingProof):
		return oautherr.InvalidRequest
	case errors.Is(err, ErrStoreUnavailable):
		return oautherr.ServerError
	default:
		return oautherr.InvalidDPoPProof
	}
}

// newError builds the typed error for a failed check. desc must be a fixed
// string: it is sent to clients.
func newError(class error, reason oautherr.Reason, desc string) *Error {
	return &Error{Code: codeOf(class), Description: desc, Reason: reason, Err: class}
}

// codeOf returns the RFC error code of a class sentinel.
func codeOf(class error) string {
	switch class {
	case ErrUseNonce:
		return oautherr.UseDPoPNonce
	case ErrKeyMismatch:
		return oautherr.InvalidToken
	case ErrMissingProof:
		return oautherr.InvalidRequest
	case ErrStoreUnavailable:
		return oautherr.ServerError
	}
	return oautherr.InvalidDPoPProof
}
