package fallback

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/senderbound/senderbound/oautherr"
)

// DefaultScopesOID is the object identifier of the scopes extension when
// none is configured: 1.3.6.1.4.1.32473.1.1, an arc below the enterprise
// number that RFC 5612 reserves for documentation (32473). Deployments
// SHOULD replace it with an OID under their own IANA private enterprise
// number, set in [CAConfig.ScopesOID] and [Config.ScopesOID] alike.
//
// Every arc is below 2^31: Go's crypto/x509 refuses to parse a certificate
// carrying an extension OID with a larger arc, so a UUID-derived 2.25 OID
// would make the certificates unreadable by Go servers.
var DefaultScopesOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}

// Bounds of the scopes extension.
const (
	// MaxScopes is the most scopes one certificate may carry.
	MaxScopes = 64
	// MaxScopeLen is the longest scope-token accepted, in bytes.
	MaxScopeLen = 128
)

// ValidScope reports whether s is an RFC 6749 §3.3 scope-token: one or
// more NQCHAR (%x21 / %x23-5B / %x5D-7E), no space, quote or backslash, at
// most MaxScopeLen bytes.
func ValidScope(s string) bool {
	if len(s) == 0 || len(s) > MaxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkScopes checks a scope list: at most MaxScopes, each a scope-token,
// no duplicates.
func checkScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fmt.Errorf("fallback: more than %d scopes", MaxScopes)
	}
	for i, s := range scopes {
		if !ValidScope(s) {
			return refuse(ErrScopesMalformed, oautherr.ReasonFallbackScopeSyntax)
		}
		for _, t := range scopes[:i] {
			if s == t {
				return fmt.Errorf("fallback: duplicate scope")
			}
		}
	}
	return nil
}

// MarshalScopes returns the DER value of the scopes extension: a
// SEQUENCE OF UTF8String, one per scope, in the given order. It refuses
// more than MaxScopes scopes, a value that is not a scope-token
// ([ValidScope]) and duplicates. An empty list is a valid, empty SEQUENCE.
func MarshalScopes(scopes []string) ([]byte, error) {
	if err := checkScopes(scopes); err != nil {
		return nil, err
	}
	vals := make([]asn1.RawValue, len(scopes))
	for i, s := range scopes {
		vals[i] = asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)}
	}
	der, err := asn1.Marshal(vals)
	if err != nil {
		return nil, fmt.Errorf("fallback: marshal scopes: %w", err)
	}
	return der, nil
}

// ParseScopes parses the DER value of the scopes extension, as written by
// [MarshalScopes]. It accepts only the one DER encoding of a SEQUENCE OF
// UTF8String (no trailing bytes, no other string types, no BER length
// forms), with at most MaxScopes elements, each a scope-token, without
// duplicates; anything else is an error wrapping ErrScopesMalformed. On
// error the scopes are nil.
func ParseScopes(der []byte) ([]string, error) {
	bad := refuse(ErrScopesMalformed, oautherr.ReasonFallbackScopesMalformed)
	// 4 bytes of header per element at most for these lengths, plus the
	// outer header.
	if len(der) > 8+MaxScopes*(4+MaxScopeLen) {
		return nil, bad
	}
	var vals []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &vals)
	if err != nil || len(rest) != 0 || len(vals) > MaxScopes {
		return nil, bad
	}
	scopes := make([]string, len(vals))
	for i, v := range vals {
		if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String || v.IsCompound {
			return nil, bad
		}
		scopes[i] = string(v.Bytes)
	}
	if checkScopes(scopes) != nil {
		return nil, bad
	}
	// Only the canonical encoding: what MarshalScopes makes from the
	// result must be the input, so one scope list has one encoding.
	again, err := MarshalScopes(scopes)
	if err != nil || !bytes.Equal(again, der) {
		return nil, bad
	}
	return scopes, nil
}

// ScopesFromCertificate returns the scopes carried by cert's extension
// with the given OID (nil means DefaultScopesOID). The extension must be
// present exactly once and parse with [ParseScopes]; a certificate with
// any critical extension that crypto/x509 does not handle, the scopes
// extension included, is refused: the CA writes it non-critical, so that
// TLS stacks that do not know it still accept the certificate.
func ScopesFromCertificate(cert *x509.Certificate, oid asn1.ObjectIdentifier) ([]string, error) {
	if oid == nil {
		oid = DefaultScopesOID
	}
	if len(cert.UnhandledCriticalExtensions) > 0 {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension)
	}
	var val []byte
	n := 0
	for i := range cert.Extensions {
		if cert.Extensions[i].Id.Equal(oid) {
			val = cert.Extensions[i].Value
			n++
		}
	}
	switch {
	case n == 0:
		return nil, refuse(ErrScopesMalformed, oautherr.ReasonFallbackScopesMissing)
	case n > 1:
		return nil, refuse(ErrScopesMalformed, oautherr.ReasonFallbackScopesDuplicate)
	}
	return ParseScopes(val)
}
