package fallback

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
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
		return nil, refuse(ErrInvalidCSR, ReasonCSRTooLarge)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuse(ErrInvalidCSR, ReasonCSRMalformed)
	}
	// The key is checked before the signature: no signature is verified
	// under a key the CA would refuse anyway (RSA of 16384 bits, say).
	if err := CheckKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse(ErrInvalidCSR, ReasonCSRSignature)
	}
	return csr, nil
}

// CheckKey reports whether pub is a key the CA certifies: ECDSA on P-256,
// P-384 or P-521; Ed25519 other than a small-order or non-canonically
// encoded point; RSA of MinRSABits to MaxRSABits bits with public exponent
// 65537. Errors wrap ErrKeyNotAccepted.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return refuse(ErrKeyNotAccepted, ReasonKeyType)
		}
		if weakEd25519(k) {
			return refuse(ErrKeyNotAccepted, ReasonKeyWeak)
		}
		return nil
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < MinRSABits || k.N.BitLen() > MaxRSABits || k.E != 65537 || k.N.Bit(0) == 0 {
			return refuse(ErrKeyNotAccepted, ReasonKeySize)
		}
		return nil
	}
	return refuse(ErrKeyNotAccepted, ReasonKeyType)
}

// smallOrderY holds the y coordinates (little-endian, sign bit clear) of
// the eight points of order 1, 2, 4 and 8 on edwards25519: 1, p-1, 0 and
// the two order-8 values. A key whose y is one of them is a small-order
// point, whatever its sign bit.
var smallOrderY = [5][32]byte{
	{1},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
}

// weakEd25519 reports whether k encodes a small-order point, or encodes a
// y coordinate that is not reduced modulo p = 2^255-19 (a non-canonical
// encoding, which also covers the alternative encodings of small-order
// points).
func weakEd25519(k ed25519.PublicKey) bool {
	var y [32]byte
	copy(y[:], k)
	y[31] &= 0x7f
	// y >= p: bytes 1..30 all 0xff, byte 31 0x7f, byte 0 >= 0xed.
	nonCanonical := y[0] >= 0xed && y[31] == 0x7f
	for i := 1; i < 31 && nonCanonical; i++ {
		nonCanonical = y[i] == 0xff
	}
	if nonCanonical {
		return true
	}
	for i := range smallOrderY {
		if y == smallOrderY[i] {
			return true
		}
	}
	return false
}
