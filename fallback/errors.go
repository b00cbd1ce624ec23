package fallback

import "errors"

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

// Reasons: the stable, exported text of every refusal, found in
// [Error.Reason]. They are fixed strings, safe to log and to send.
const (
	ReasonEmptyChain         = "empty certificate chain"
	ReasonChainTooLong       = "certificate chain too long"
	ReasonMalformedCert      = "malformed certificate"
	ReasonUnknownCA          = "not issued by the fallback CA"
	ReasonCriticalExtension  = "unhandled critical extension"
	ReasonExpired            = "certificate expired"
	ReasonNotYetValid        = "certificate not yet valid"
	ReasonNoClientAuthEKU    = "no clientAuth extended key usage"
	ReasonLeafIsCA           = "leaf certificate is a CA"
	ReasonNoClientID         = "no client_id URI SAN"
	ReasonRevoked            = "certificate revoked"
	ReasonScopesMissing      = "scopes extension missing"
	ReasonScopesDuplicate    = "scopes extension present more than once"
	ReasonScopesMalformed    = "scopes extension not a DER SEQUENCE OF UTF8String scope-tokens"
	ReasonKeyMismatch        = "proof key differs from the certificate key"
	ReasonNoVerifier         = "signed requests not configured"
	ReasonCRLMissing         = "no revocation list yet"
	ReasonCRLStale           = "revocation list past nextUpdate and grace"
	ReasonCRLOtherIssuer     = "revocation list from another issuer"
	ReasonCRLMalformed       = "revocation list malformed"
	ReasonCRLSignature       = "revocation list signature invalid"
	ReasonCRLCritical        = "revocation list has an unhandled critical extension"
	ReasonCRLNoNextUpdate    = "revocation list has no nextUpdate or no number"
	ReasonCRLFuture          = "revocation list issued in the future"
	ReasonCRLBackwards       = "revocation list number went backwards"
	ReasonCRLTooLarge        = "revocation list too large"
	ReasonCRLFetch           = "revocation list fetch failed"
	ReasonCSRTooLarge        = "CSR too large"
	ReasonCSRMalformed       = "CSR malformed"
	ReasonCSRSignature       = "CSR signature invalid"
	ReasonKeyType            = "key type not accepted"
	ReasonKeySize            = "key size or exponent not accepted"
	ReasonKeyWeak            = "key is a small-order or non-canonical point"
	ReasonScopeNotRegistered = "scope not registered for the client"
	ReasonScopeSyntax        = "scope is not a scope-token"
	ReasonClientID           = "invalid client_id"
)

// Error is a refusal with its class (one of the Err… sentinels) and a
// fixed Reason (one of the Reason… constants). errors.Is(e, ErrX) holds
// when Err is ErrX.
type Error struct {
	Reason string
	Err    error
}

// Error implements error; the text is the class and the reason only.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func refuse(class error, reason string) error { return &Error{Reason: reason, Err: class} }

// ReasonOf returns the Reason of the first [*Error] in err's chain, or "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
