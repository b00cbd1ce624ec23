package fallback

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"

	"github.com/senderbound/senderbound/internal/pubkey"
	"github.com/senderbound/senderbound/oautherr"
)

// DefaultMaxCSRBytes caps a CSR's DER size when CAConfig.MaxCSRBytes is
// not set: enough for an RSA-4096 key and a few extensions.
const DefaultMaxCSRBytes = 16 << 10

// RSA key sizes the CA certifies, in bits; the public exponent must be
// 65537.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// ParseCSR parses a DER PKCS#10 certificate signing request of at most
// maxBytes bytes (0 means DefaultMaxCSRBytes), checks its signature under
// its own public key (proof of possession), and checks the key with
// [CheckKey]. Errors wrap ErrInvalidCSR or ErrKeyNotAccepted. Only the
// public key of the result is meant to be used: the CA takes no subject,
// SAN or extension from a CSR.
func ParseCSR(der []byte, maxBytes int) (*x509.CertificateRequest, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxCSRBytes
	}
	if len(der) > maxBytes {
		return nil, refuse(ErrInvalidCSR, oautherr.ReasonFallbackCSRTooLarge)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuseCause(ErrInvalidCSR, oautherr.ReasonFallbackCSRMalformed, err)
	}
	// The key is checked before the signature: no signature is verified
	// under a key the CA would refuse anyway (RSA of 16384 bits, say).
	if err := CheckKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuseCause(ErrInvalidCSR, oautherr.ReasonFallbackCSRSignature, err)
	}
	return csr, nil
}

// CheckKey reports whether pub is a key the CA certifies: the client-key
// rules every key a client presents goes through (ECDSA on P-256, P-384 or
// P-521; Ed25519 canonically encoded and not of small order; RSA of
// MinRSABits to MaxRSABits bits), and for RSA the public exponent 65537.
// Errors wrap ErrKeyNotAccepted.
func CheckKey(pub crypto.PublicKey) error {
	err := pubkey.Check(pub)
	switch {
	case err == nil:
		if k, ok := pub.(*rsa.PublicKey); ok && k.E != 65537 {
			return refuse(ErrKeyNotAccepted, oautherr.ReasonFallbackKeySize)
		}
		return nil
	case errors.Is(err, pubkey.ErrEd25519NonCanonical), errors.Is(err, pubkey.ErrEd25519SmallOrder), errors.Is(err, pubkey.ErrEd25519NotOnCurve):
		return refuse(ErrKeyNotAccepted, oautherr.ReasonFallbackKeyWeak)
	case errors.Is(err, pubkey.ErrRSASize), errors.Is(err, pubkey.ErrRSAModulus), errors.Is(err, pubkey.ErrRSAExponent):
		return refuse(ErrKeyNotAccepted, oautherr.ReasonFallbackKeySize)
	}
	return refuse(ErrKeyNotAccepted, oautherr.ReasonFallbackKeyType)
}
