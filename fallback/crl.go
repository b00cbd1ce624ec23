package fallback

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// CRLSource supplies the current revocation list of the fallback CA to a
// [Verifier]. Current must not block (no network access): it returns
// the latest list already verified, or nil when there is none yet.
// Implementations must be safe for concurrent use.
type CRLSource interface {
	Current() *RevocationList
}

var (
	_ CRLSource = (*RevocationList)(nil)
	_ CRLSource = (*CRLFetcher)(nil)
)

// RevocationList is a CRL whose signature and issuer were checked against
// a CA certificate by [ParseRevocationList]. It is immutable and safe for
// concurrent use. It is also a CRLSource that always returns itself, for
// a resource server that loads its CRL from a file.
type RevocationList struct {
	issuer     *x509.Certificate
	number     *big.Int
	thisUpdate time.Time
	nextUpdate time.Time
	der        []byte
	revoked    map[string]struct{}
}

// Current implements CRLSource.
func (l *RevocationList) Current() *RevocationList { return l }

// Issuer returns the CA certificate the list was verified against.
func (l *RevocationList) Issuer() *x509.Certificate { return l.issuer }

// Number returns a copy of the CRL number.
func (l *RevocationList) Number() *big.Int { return new(big.Int).Set(l.number) }

// ThisUpdate returns the CRL's thisUpdate.
func (l *RevocationList) ThisUpdate() time.Time { return l.thisUpdate }

// NextUpdate returns the CRL's nextUpdate.
func (l *RevocationList) NextUpdate() time.Time { return l.nextUpdate }

// Len returns the number of revoked serials.
func (l *RevocationList) Len() int { return len(l.revoked) }

// Revoked reports whether serial is on the list.
func (l *RevocationList) Revoked(serial *big.Int) bool {
	_, ok := l.revoked[string(serial.Bytes())]
	return ok && serial.Sign() > 0
}

// CRL extensions that a verifier handles: authority key identifier and
// CRL number. Any other critical extension (delta CRL indicator, issuing
// distribution point, ...) makes the CRL unusable (RFC 5280 §5.2).
var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// ParseRevocationList parses a DER CRL (nothing after it) and checks it
// against issuer: the
// signature verifies under the issuer's key, the CRL's issuer name is the
// certificate's subject, nextUpdate and a CRL number are present and
// nextUpdate is not before thisUpdate, and no extension of the CRL or of
// an entry is critical except the ones handled (an indirect or delta CRL
// is refused). Errors wrap ErrInvalidCRL. It does NOT compare thisUpdate
// or nextUpdate with the clock: [Verifier] applies the staleness rule.
func ParseRevocationList(der []byte, issuer *x509.Certificate) (*RevocationList, error) {
	// crypto/x509 ignores bytes after the CRL's outer SEQUENCE; a CRL
	// is refused with them, so that one CRL has one encoding.
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) != 0 {
		return nil, refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLMalformed)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, refuseCause(ErrInvalidCRL, oautherr.ReasonFallbackCRLMalformed, err)
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return nil, refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLOtherIssuer)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, refuseCause(ErrInvalidCRL, oautherr.ReasonFallbackCRLSignature, err)
	}
	if crl.NextUpdate.IsZero() || crl.Number == nil || crl.NextUpdate.Before(crl.ThisUpdate) {
		return nil, refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLNoNextUpdate)
	}
	for _, e := range crl.Extensions {
		if e.Critical && !e.Id.Equal(oidAuthorityKeyID) && !e.Id.Equal(oidCRLNumber) {
			return nil, refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLCritical)
		}
	}
	l := &RevocationList{
		issuer: issuer, number: crl.Number, thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate,
		der: der, revoked: make(map[string]struct{}, len(crl.RevokedCertificateEntries)),
	}
	for i := range crl.RevokedCertificateEntries {
		e := &crl.RevokedCertificateEntries[i]
		for _, x := range e.Extensions {
			if x.Critical {
				return nil, refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLCritical)
			}
		}
		if e.SerialNumber != nil && e.SerialNumber.Sign() > 0 {
			l.revoked[string(e.SerialNumber.Bytes())] = struct{}{}
		}
	}
	return l, nil
}
