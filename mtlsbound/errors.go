package mtlsbound

import (
	"errors"

	"github.com/senderbound/senderbound/oautherr"
)

// Sentinel errors. Every error returned by this package that a caller acts
// on wraps exactly one of these (ErrHeaderTooLarge also wraps
// ErrInvalidHeader); test with errors.Is. Messages never contain header
// values, certificates or tokens.
var (
	// ErrNoCertificate means the request carried no client certificate (no
	// TLS client certificate and no forwarded one from a trusted proxy).
	// Resource servers answer 401 invalid_token; token endpoints
	// invalid_client.
	ErrNoCertificate = errors.New("mtlsbound: no client certificate")

	// ErrCertificateMismatch means a certificate was presented but does not
	// match what it must match: the cnf.x5t#S256 binding of a token, the
	// subject or SAN registered for a tls_client_auth client, or the
	// certificates registered for a self_signed_tls_client_auth client.
	ErrCertificateMismatch = errors.New("mtlsbound: client certificate does not match")

	// ErrUntrustedCertificate means the certificate did not chain to the
	// configured roots with the clientAuth extended key usage, or is outside
	// its validity period.
	ErrUntrustedCertificate = errors.New("mtlsbound: client certificate not trusted")

	// ErrRevoked means the certificate (or a CA above it) has been revoked.
	ErrRevoked = errors.New("mtlsbound: client certificate revoked")

	// ErrRevocationUnavailable means the revocation status could not be
	// established (CRL unreachable, unparsable, badly signed or stale).
	// Callers fail closed: treat it like ErrRevoked for authentication.
	ErrRevocationUnavailable = errors.New("mtlsbound: revocation status unavailable")

	// ErrInvalidHeader means a trusted proxy forwarded a malformed client
	// certificate header (answer 400 invalid_request).
	ErrInvalidHeader = errors.New("mtlsbound: invalid forwarded client certificate")

	// ErrHeaderTooLarge means a forwarded client certificate header exceeded
	// the configured size cap. Errors carrying it also match
	// ErrInvalidHeader; servers may answer 431 instead of 400.
	ErrHeaderTooLarge = errors.New("mtlsbound: forwarded client certificate header too large")

	// ErrInvalidConfig means a configuration was refused at construction.
	ErrInvalidConfig = errors.New("mtlsbound: invalid configuration")
)

// errSubjectMismatch is wrapped, beside ErrCertificateMismatch, when a
// certificate chains correctly but lacks the subject DN or SAN registered
// for the client.
var errSubjectMismatch = errors.New("registered subject selector not found in certificate")

// Reason returns the stable reason for an error of this package, for logs
// and metrics: certificate_missing, certificate_mismatch,
// certificate_subject_mismatch, certificate_untrusted, certificate_revoked,
// revocation_unavailable or client_cert_header_invalid (oautherr
// constants), and oautherr.ReasonClientAuthFailed for any other error.
// Servers log it; clients only ever see the RFC error code.
func Reason(err error) oautherr.Reason {
	switch {
	case errors.Is(err, ErrNoCertificate):
		return oautherr.ReasonCertificateMissing
	case errors.Is(err, errSubjectMismatch):
		return oautherr.ReasonCertificateSubjectMismatch
	case errors.Is(err, ErrCertificateMismatch):
		return oautherr.ReasonCertificateMismatch
	case errors.Is(err, ErrUntrustedCertificate):
		return oautherr.ReasonCertificateUntrusted
	case errors.Is(err, ErrRevoked):
		return oautherr.ReasonCertificateRevoked
	case errors.Is(err, ErrRevocationUnavailable):
		return oautherr.ReasonRevocationUnavailable
	case errors.Is(err, ErrInvalidHeader):
		return oautherr.ReasonClientCertHeaderInvalid
	}
	return oautherr.ReasonClientAuthFailed
}
