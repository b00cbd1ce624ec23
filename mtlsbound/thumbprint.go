package mtlsbound

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// Thumbprint returns the RFC 8705 §3.1 certificate thumbprint of cert, the
// value of cnf.x5t#S256: the base64url encoding, without padding, of the
// SHA-256 digest of the certificate's DER encoding (cert.Raw). It returns ""
// for a nil certificate or one without DER bytes.
func Thumbprint(cert *x509.Certificate) string {
	if cert == nil || len(cert.Raw) == 0 {
		return ""
	}
	return ThumbprintDER(cert.Raw)
}

// ThumbprintDER returns the RFC 8705 §3.1 thumbprint of a DER-encoded
// certificate. The input is hashed as given; it is not parsed. It returns ""
// for empty input.
func ThumbprintDER(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ThumbprintEqual reports whether two thumbprints are the same string, in
// time that does not depend on where they differ. The comparison is exact:
// no padding, whitespace or case is forgiven, so "abc=" never equals "abc"
// (THUMB-13). An empty string never equals anything.
func ThumbprintEqual(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// CheckBinding checks that cert is the certificate a token is bound to by its
// cnf.x5t#S256 value (RFC 8705 §3). It returns an error wrapping
// ErrNoCertificate when cert is nil and ErrCertificateMismatch when the
// thumbprints differ (including an empty or malformed x5tS256). It does not
// validate the certificate chain or validity period (RFC 8705 §6.2).
func CheckBinding(cert *x509.Certificate, x5tS256 string) error {
	if cert == nil {
		return ErrNoCertificate
	}
	if !ThumbprintEqual(Thumbprint(cert), x5tS256) {
		return fmt.Errorf("%w: thumbprint differs from the token binding", ErrCertificateMismatch)
	}
	return nil
}
