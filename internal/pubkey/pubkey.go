// Package pubkey holds the rules by which a public key presented by a
// client is accepted: the key of a DPoP proof (and of any request signed
// in the DPoP format), the keys of a private_key_jwt client's JWK Set and
// the key of a self-signed client certificate. Every place that accepts
// such a key goes through this package, so the rules are the same
// everywhere:
//
//   - Ed25519: the encoding is canonical (y below the field prime), the
//     point decodes, and it is not of small order. A small-order key
//     accepts the signature R = identity, S = 0 for many or all messages
//     (RFC 8032 verification is cofactorless), so a token bound to it
//     would be usable by anyone.
//   - RSA: a modulus of [MinRSABits] to [MaxRSABits] bits, odd, and an
//     odd public exponent from 3 to [MaxRSAExponent]. The bounds keep the
//     cost of one verification close to that of a common 2048-bit key
//     with e = 65537.
//   - ECDSA: P-256, P-384 or P-521, a point on the curve.
//
// Errors are the sentinels below; their text is fixed and safe to log as
// a reason.
package pubkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
)

// RSA key bounds.
const (
	// MinRSABits is the smallest accepted RSA modulus (RFC 7518 §3.3).
	MinRSABits = 2048
	// MaxRSABits is the largest accepted RSA modulus.
	MaxRSABits = 4096
	// MaxRSAExponent is the largest accepted RSA public exponent.
	MaxRSAExponent = 65537
)

// Refusal reasons.
var (
	// ErrEd25519Size: the key is not 32 bytes.
	ErrEd25519Size = errors.New("Ed25519 public key is not 32 bytes")
	// ErrEd25519NonCanonical: the y coordinate is not below the field
	// prime, so the key has another, canonical encoding.
	ErrEd25519NonCanonical = errors.New("non-canonical Ed25519 public key")
	// ErrEd25519SmallOrder: the point has order 1, 2, 4 or 8.
	ErrEd25519SmallOrder = errors.New("Ed25519 public key of small order")
	// ErrEd25519NotOnCurve: no curve point has this y coordinate.
	ErrEd25519NotOnCurve = errors.New("Ed25519 public key is not a curve point")
	// ErrRSASize: the modulus is missing, shorter than MinRSABits or
	// longer than MaxRSABits.
	ErrRSASize = errors.New("RSA modulus size not accepted")
	// ErrRSAModulus: the modulus is even.
	ErrRSAModulus = errors.New("RSA modulus is even")
	// ErrRSAExponent: the exponent is even, below 3 or above
	// MaxRSAExponent.
	ErrRSAExponent = errors.New("RSA public exponent not accepted")
	// ErrECDSA: the curve is not P-256, P-384 or P-521, or the point is
	// not on it.
	ErrECDSA = errors.New("ECDSA public key not accepted")
	// ErrKeyType: not an ECDSA, Ed25519 or RSA public key.
	ErrKeyType = errors.New("public key type not accepted")
)

// smallOrderY lists the y coordinates (little-endian, sign bit clear) of
// the eight points of order dividing 8: y = 1 (the identity), y = p−1
// (order 2), y = 0 (the two points of order 4) and ±y8 (the four points of
// order 8). Each stands for both signs of x. Non-canonical encodings of
// the same points (y + p) are refused before this list is consulted.
var smallOrderY = [5][32]byte{
	{1},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
}

// Ed25519Encoding checks the cheap part of the Ed25519 rules: 32 bytes, a
// canonical y coordinate, and not one of the small-order points. It does
// not check that the point decodes; use it only right before a signature
// verification, which refuses a point that does not decode. Everywhere
// else use [Ed25519].
func Ed25519Encoding(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return ErrEd25519Size
	}
	var y [32]byte
	copy(y[:], pub)
	y[31] &= 0x7f
	// y ≥ p = 2^255 − 19: bytes 1..31 are all ones and byte 0 ≥ 0xed.
	if y[0] >= 0xed && y[31] == 0x7f && allFF(y[1:31]) {
		return ErrEd25519NonCanonical
	}
	for i := range smallOrderY {
		if y == smallOrderY[i] {
			return ErrEd25519SmallOrder
		}
	}
	return nil
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// curveD is −121665/121666 mod p (RFC 8032 §5.1).
	curveD = func() *big.Int {
		inv := new(big.Int).ModInverse(big.NewInt(121666), fieldP)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, fieldP)
	}()
)

// Ed25519 checks pub against every Ed25519 rule: [Ed25519Encoding], and
// the point decodes (RFC 8032 §5.1.3: x² = (y² − 1)/(d·y² + 1) has a
// solution, and x = 0 only with a clear sign bit).
func Ed25519(pub []byte) error {
	if err := Ed25519Encoding(pub); err != nil {
		return err
	}
	var be [32]byte
	for i := range be {
		be[i] = pub[31-i]
	}
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be[:])
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := y2.Mul(y2, curveD)
	v.Add(v, big.NewInt(1))
	// u/v is a square exactly when u·v is (v ≠ 0: d is not a square).
	// u = 0 means x = 0, which only the small-order y = ±1 give.
	w := u.Mul(u, v)
	w.Mod(w, fieldP)
	if big.Jacobi(w, fieldP) < 0 {
		return ErrEd25519NotOnCurve
	}
	return nil
}

// RSA checks a modulus and public exponent against the RSA rules.
func RSA(n *big.Int, e int) error {
	if n == nil {
		return ErrRSASize
	}
	if bl := n.BitLen(); bl < MinRSABits || bl > MaxRSABits {
		return ErrRSASize
	}
	if n.Bit(0) == 0 {
		return ErrRSAModulus
	}
	if e < 3 || e > MaxRSAExponent || e&1 == 0 {
		return ErrRSAExponent
	}
	return nil
}

// Check applies the rules for pub's type: *ecdsa.PublicKey,
// ed25519.PublicKey or *rsa.PublicKey. Any other type, including a nil
// pointer and private keys, is ErrKeyType.
func Check(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return Ed25519(k)
	case *rsa.PublicKey:
		if k == nil {
			return ErrKeyType
		}
		return RSA(k.N, k.E)
	case *ecdsa.PublicKey:
		if k == nil {
			return ErrKeyType
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return ErrECDSA
		}
		if _, err := k.Bytes(); err != nil {
			return ErrECDSA
		}
		return nil
	}
	return ErrKeyType
}
