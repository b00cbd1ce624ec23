package jwsverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
)

// PSSSaltEqualsHash is the PSS option that requires a salt as long as the
// hash (RFC 7518 §3.5 profile). A nil option instead accepts any salt
// length, as go-jose and most JOSE libraries do.
var PSSSaltEqualsHash = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// Verify reports whether sig is a valid JWS signature (RFC 7518 §3) for
// alg by pub over signingInput, the header and payload segments exactly as
// they were received. pub must fit alg: *ecdsa.PublicKey on the curve of
// ES256/ES384/ES512, ed25519.PublicKey for EdDSA, *rsa.PublicKey for
// RS256..RS512 and PS256..PS512; any other pairing, an unknown alg or a
// signature of the wrong length is false. ECDSA signatures are the JWS
// fixed-size r||s, checked with crypto/ecdsa (which accepts high-s values,
// as JWS does). pss sets the PSS salt rule ([PSSSaltEqualsHash], or nil for
// any length). Verify does not enforce a minimum key size: that policy is
// the caller's.
func Verify(alg string, pub crypto.PublicKey, signingInput, sig []byte, pss *rsa.PSSOptions) bool {
	switch alg {
	case "ES256", "ES384", "ES512":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return false
		}
		var curve elliptic.Curve
		var size int
		var digest []byte
		var d256 [32]byte
		var d384 [48]byte
		var d512 [64]byte
		switch alg {
		case "ES256":
			curve, size = elliptic.P256(), 32
		case "ES384":
			curve, size = elliptic.P384(), 48
		default:
			curve, size = elliptic.P521(), 66
		}
		if k.Curve != curve || len(sig) != 2*size {
			return false
		}
		switch alg {
		case "ES256":
			d256 = sha256.Sum256(signingInput)
			digest = d256[:]
		case "ES384":
			d384 = sha512.Sum384(signingInput)
			digest = d384[:]
		default:
			d512 = sha512.Sum512(signingInput)
			digest = d512[:]
		}
		var der [2*(3+67) + 3]byte
		return ecdsa.VerifyASN1(k, digest, AppendECDSASig(der[:0], sig[:size], sig[size:]))
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(k, signingInput, sig)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil || len(sig) != k.Size() {
			return false
		}
		var h crypto.Hash
		var digest []byte
		var d256 [32]byte
		var d384 [48]byte
		var d512 [64]byte
		switch alg[2:] {
		case "256":
			h, d256 = crypto.SHA256, sha256.Sum256(signingInput)
			digest = d256[:]
		case "384":
			h, d384 = crypto.SHA384, sha512.Sum384(signingInput)
			digest = d384[:]
		default:
			h, d512 = crypto.SHA512, sha512.Sum512(signingInput)
			digest = d512[:]
		}
		if alg[0] == 'P' {
			return rsa.VerifyPSS(k, h, digest, sig, pss) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	}
	return false
}

// AppendECDSASig appends the DER encoding of SEQUENCE{INTEGER r, INTEGER
// s} built from the fixed-size big-endian r and s of a JWS signature.
// Zero values encode as INTEGER 0, which crypto/ecdsa then refuses.
func AppendECDSASig(dst, r, s []byte) []byte {
	r = trimZeros(r)
	s = trimZeros(s)
	ilen := func(v []byte) int {
		n := len(v)
		if n == 0 || v[0]&0x80 != 0 {
			n++
		}
		return n
	}
	lr, ls := ilen(r), ilen(s)
	body := 2 + lr + 2 + ls
	if lr >= 0x80 {
		body++
	}
	if ls >= 0x80 {
		body++
	}
	dst = append(dst, 0x30)
	dst = appendDERLen(dst, body)
	for _, v := range [2][]byte{r, s} {
		dst = append(dst, 0x02)
		dst = appendDERLen(dst, ilen(v))
		if len(v) == 0 || v[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, v...)
	}
	return dst
}

func appendDERLen(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return append(dst, 0x81, byte(n))
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
