// Package jwssign produces JWS compact serializations (RFC 7515 §7.1) with
// any crypto.Signer, without a general-purpose JOSE library on the hot
// path: the caller encodes the protected header once, builds the payload
// itself, and [Key.SignCompact] hashes, signs and serializes with one
// allocation of its own beyond what the signer needs.
//
// It is shared by the access-token issuer and the DPoP prover. Keys are
// used through crypto.Signer only (Public and Sign), so HSM and KMS keys
// work as well as in-memory ones.
package jwssign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

var b64 = base64.RawURLEncoding

// maxECSize is the coordinate size of P-521, the largest curve supported.
const maxECSize = 66

// Key is a crypto.Signer prepared for one JWS algorithm. A Key is immutable
// and safe for concurrent use, provided the crypto.Signer is.
type Key struct {
	signer crypto.Signer
	alg    string
	hash   crypto.Hash // 0 for EdDSA, which signs the message itself
	opts   crypto.SignerOpts
	ecSize int // coordinate size in bytes for ECDSA, 0 otherwise
	sigLen int // length of the JOSE-form signature
}

// NewKey prepares signer for alg: ES256, ES384, ES512 (ECDSA on P-256,
// P-384, P-521), EdDSA (Ed25519), PS256, PS384, PS512 (RSASSA-PSS with a
// salt as long as the hash, RFC 7518 §3.5) or RS256, RS384, RS512
// (RSASSA-PKCS1-v1_5). It fails when the public key does not fit alg. It
// does NOT enforce a minimum RSA size: that policy is the caller's.
func NewKey(signer crypto.Signer, alg string) (*Key, error) {
	if signer == nil {
		return nil, errors.New("jwssign: nil signer")
	}
	pub := signer.Public()
	k := &Key{signer: signer, alg: alg}
	switch alg {
	case "ES256", "ES384", "ES512":
		want, h := elliptic.P256(), crypto.SHA256
		switch alg {
		case "ES384":
			want, h = elliptic.P384(), crypto.SHA384
		case "ES512":
			want, h = elliptic.P521(), crypto.SHA512
		}
		if p, ok := pub.(*ecdsa.PublicKey); !ok || p.Curve != want {
			return nil, fmt.Errorf("jwssign: %s needs an ECDSA %s key", alg, want.Params().Name)
		}
		k.hash, k.opts = h, h
		k.ecSize = (want.Params().BitSize + 7) / 8
		k.sigLen = 2 * k.ecSize
	case "EdDSA":
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return nil, errors.New("jwssign: EdDSA needs an Ed25519 key")
		}
		k.opts = crypto.Hash(0)
		k.sigLen = ed25519.SignatureSize
	case "PS256", "PS384", "PS512", "RS256", "RS384", "RS512":
		p, ok := pub.(*rsa.PublicKey)
		if !ok || p.N == nil {
			return nil, fmt.Errorf("jwssign: %s needs an RSA key", alg)
		}
		k.hash = map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
		k.opts = k.hash
		if alg[0] == 'P' {
			k.opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: k.hash}
		}
		k.sigLen = (p.N.BitLen() + 7) / 8
	default:
		return nil, fmt.Errorf("jwssign: unsupported algorithm %q", alg)
	}
	return k, nil
}

// Algorithm returns the JWS alg of k.
func (k *Key) Algorithm() string { return k.alg }

// SignatureLen returns the length in bytes of k's JOSE-form signatures.
func (k *Key) SignatureLen() int { return k.sigLen }

// Sign returns the JWS signature over signingInput in its JOSE form
// (r||s, each left-padded to the coordinate size, for ECDSA; RFC 7518
// §3.4). rnd is passed to the signer; it must not be nil (a nil reader
// asks crypto/ecdsa for deterministic signatures).
func (k *Key) Sign(rnd io.Reader, signingInput []byte) ([]byte, error) {
	sig, err := k.signRaw(rnd, signingInput)
	if err != nil || k.ecSize == 0 {
		return sig, err
	}
	return DERToRawECDSA(sig, k.ecSize)
}

// signRaw returns the signer's own output: DER for ECDSA.
func (k *Key) signRaw(rnd io.Reader, signingInput []byte) ([]byte, error) {
	if rnd == nil {
		return nil, errors.New("jwssign: nil random source")
	}
	var digest []byte
	switch k.hash {
	case 0:
		digest = signingInput
	case crypto.SHA256:
		d := sha256.Sum256(signingInput)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(signingInput)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(signingInput)
		digest = d[:]
	}
	sig, err := k.signer.Sign(rnd, digest, k.opts)
	if err != nil {
		return nil, err
	}
	if k.ecSize == 0 && len(sig) != k.sigLen {
		return nil, fmt.Errorf("jwssign: signer returned a %d-byte signature, want %d", len(sig), k.sigLen)
	}
	return sig, nil
}

// CompactLen returns the length of the compact JWS that SignCompact makes
// from an encoded header of headerLen bytes and a payload of payloadLen
// bytes.
func (k *Key) CompactLen(headerLen, payloadLen int) int {
	return headerLen + 1 + b64.EncodedLen(payloadLen) + 1 + b64.EncodedLen(k.sigLen)
}

// SignCompact returns header.BASE64URL(payload).BASE64URL(signature), the
// JWS compact serialization. header must already be the base64url
// encoding of the protected header, which callers compute once per key.
func (k *Key) SignCompact(rnd io.Reader, header string, payload []byte) (string, error) {
	out := make([]byte, 0, k.CompactLen(len(header), len(payload)))
	out = append(out, header...)
	out = append(out, '.')
	out = b64.AppendEncode(out, payload)
	sig, err := k.signRaw(rnd, out)
	if err != nil {
		return "", err
	}
	out = append(out, '.')
	if k.ecSize == 0 {
		out = b64.AppendEncode(out, sig)
	} else {
		var buf [2 * maxECSize]byte
		raw, err := appendRawECDSA(buf[:0], sig, k.ecSize)
		if err != nil {
			return "", err
		}
		out = b64.AppendEncode(out, raw)
	}
	// out is exactly sized, owned here and never written again: hand its
	// bytes to the string rather than copying them.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}
