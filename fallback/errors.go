package fallback

import (
	"errors"

	"github.com/senderbound/senderbound/oautherr"
)

// Sentinel errors. Every error this package returns for a refused
// certificate, CSR or CRL wraps exactly one of them in an [*Error]; test
// with errors.Is. Messages never contain certificates, proofs, CSRs or
// any other part of the request.
var (
	// ErrUntrustedChain means the certificate chain does not lead to a
	// configured fallback CA (foreign CA, forged signature, malformed or
	// over-long chain, a certificate with a critical extension that is
	// not handled). Resource servers answer 401 invalid_token.
	ErrUntrustedChain = errors.New("fallback: certificate chain not trusted")

	// ErrExpired means the leaf certificate is outside its validity period
	// (expired or not yet valid). Resource servers answer 401.
	ErrExpired = errors.New("fallback: certificate expired or not yet valid")

	// ErrNotClientAuth means the leaf is not a fallback client
	// certificate: no explicit clientAuth extended key usage, a CA
	// certificate, or no client_id URI SAN. Resource servers answer 401.
	ErrNotClientAuth = errors.New("fallback: not a client certificate")

	// ErrRevoked means the leaf's serial number is on the current CRL.
	// Resource servers answer 401.
	ErrRevoked = errors.New("fallback: certificate revoked")

	// ErrScopesMalformed means the scopes extension is missing, present
	// more than once, not DER, or holds a value that is not a scope-token.
	// Resource servers answer 401.
	ErrScopesMalformed = errors.New("fallback: scopes extension malformed")

	// ErrKeyMismatch means a signed request's proof key (jwk) is not the
	// public key of the leaf certificate in its x5c. Resource servers
	// answer 401.
	ErrKeyMismatch = errors.New("fallback: proof key is not the certificate key")

	// ErrCRLUnavailable means no CRL of the issuing CA is at hand, or the
	// current one is past its nextUpdate plus the configured grace.
	// Fallback requests are refused (fail closed) with 503; requests with
	// access tokens are not affected.
	ErrCRLUnavailable = errors.New("fallback: revocation list unavailable or stale")

	// ErrInvalidCRL means a fetched or offered CRL was refused: not DER,
	// truncated, signed by another key, issued by another name, with an
	// unhandled critical extension, or older than the current one.
	ErrInvalidCRL = errors.New("fallback: invalid revocation list")

	// ErrInvalidCSR means a certificate signing request was refused: too
	// large, malformed, or with a signature that does not verify under its
	// own key (no proof of possession). The issuer answers 400
	// invalid_request.
	ErrInvalidCSR = errors.New("fallback: invalid certificate signing request")

	// ErrKeyNotAccepted means the CSR's public key is of a type or size
	// the CA does not certify. The issuer answers 400 invalid_request.
	ErrKeyNotAccepted = errors.New("fallback: public key not accepted")

	// ErrScopeNotGranted means the CSR asked for a scope the client is not
	// registered for, or a value that is not a scope-token. The issuer
	// answers 400 invalid_scope.
	ErrScopeNotGranted = errors.New("fallback: requested scope not granted")
)

// Error is a refusal. Code is the RFC error code a server answers it
// with (an oautherr constant: invalid_token for a refused certificate,
// invalid_dpop_proof for ErrKeyMismatch, temporarily_unavailable for
// ErrCRLUnavailable, invalid_request or invalid_scope for a refused CSR;
// "" for ErrInvalidCRL, which refuses no request), Reason the stable name
// of the check that failed (an oautherr.ReasonFallback… constant, for
// logs and metrics), and Err the class sentinel (one of the Err… values).
//
// errors.Is(e, S) holds for its class sentinel S and for every error of
// its cause chain (the crypto/x509 error of a refused chain, CRL or CSR,
// when there is one), as for the errors of the dpop, resource and issuer
// packages. An Error is immutable once returned.
type Error struct {
	Code   string
	Reason oautherr.Reason
	Err    error

	cause error // the lower layer's error, or nil
}

// Error implements error; the text is the class and the reason only,
// never the cause's text (which may quote certificate contents).
func (e *Error) Error() string { return e.Err.Error() + ": " + string(e.Reason) }

// Unwrap returns the class sentinel and, when there is one, the cause.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// codeOf returns the RFC error code of a class sentinel.
func codeOf(class error) string {
	switch class {
	case ErrKeyMismatch:
		return oautherr.InvalidDPoPProof
	case ErrCRLUnavailable:
		return oautherr.TemporarilyUnavailable
	case ErrInvalidCSR, ErrKeyNotAccepted:
		return oautherr.InvalidRequest
	case ErrScopeNotGranted:
		return oautherr.InvalidScope
	case ErrInvalidCRL:
		return ""
	}
	return oautherr.InvalidToken
}

func refuse(class error, reason oautherr.Reason) error {
	return &Error{Code: codeOf(class), Reason: reason, Err: class}
}

// refuseCause is refuse with the lower layer's error kept as the cause.
func refuseCause(class error, reason oautherr.Reason, cause error) error {
	return &Error{Code: codeOf(class), Reason: reason, Err: class, cause: cause}
}

// ReasonOf returns the Reason of the first [*Error] in err's chain, or "".
func ReasonOf(err error) oautherr.Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
