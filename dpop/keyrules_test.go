package dpop

import (
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"
)

// forged returns a proof with the given header and claims JSON and the
// raw signature bytes sig (not computed over anything). $JTI and $ATH are
// expanded as in pb.
func forged(header, payload string, sig []byte) string {
	payload = strings.ReplaceAll(payload, "$JTI", uniqueJTI())
	payload = strings.ReplaceAll(payload, "$ATH", AccessTokenHash(testToken))
	return enc(header) + "." + enc(payload) + "." + b64u(sig)
}

// edForgery is a proof by the Ed25519 "key" x with R = identity, S = 0: a
// signature that verifies for every message when x is the identity.
func edForgery(x []byte) string {
	sig := make([]byte, 64)
	sig[0] = 1
	return forged(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+b64u(x)+`"}}`, okPayload, sig)
}

// le32 returns v as 32 little-endian bytes with bit 255 set to sign.
func le32(v *big.Int, sign bool) []byte {
	var be [32]byte
	v.FillBytes(be[:])
	out := make([]byte, 32)
	for i := range out {
		out[i] = be[31-i]
	}
	if sign {
		out[31] |= 0x80
	}
	return out
}

// rsaJWKProof is a PS256 proof whose jwk holds n and e, with a signature
// of the modulus length that nothing produced.
func rsaJWKProof(n *big.Int, e int) string {
	eb := big.NewInt(int64(e)).Bytes()
	h := `{"typ":"dpop+jwt","alg":"PS256","jwk":{"kty":"RSA","n":"` + b64u(n.Bytes()) + `","e":"` + b64u(eb) + `"}}`
	return forged(h, okPayload, make([]byte, (n.BitLen()+7)/8))
}

// oddBits returns an odd number of exactly bits bits.
func oddBits(bits int) *big.Int {
	v := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return v.SetBit(v, 0, 1)
}

// TestVerifyKeyRules pins the public-key rules for proof keys (ADV-25
// and beyond): Ed25519 keys of small order or with a non-canonical
// encoding, RSA moduli above 4096 bits and exponents above 65537 are
// refused before any signature work.
func TestVerifyKeyRules(t *testing.T) {
	t.Parallel()
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	y8, _ := new(big.Int).SetString("5fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826", 16)
	rsaKey := keys(t)["RSA"].(*rsa.PrivateKey)
	// The fixture key's primes with e = 2^31 − 1 (a prime): a valid key
	// whose every verification costs about 31 squarings instead of 17.
	bigE := 1<<31 - 1
	bigEKey := withExponent(t, rsaKey, bigE)
	cases := []verifyCase{
		{name: "small order/identity (verifies for every message)", proof: edForgery(le32(big.NewInt(1), false)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/identity, sign bit", proof: edForgery(le32(big.NewInt(1), true)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/order 2", proof: edForgery(le32(new(big.Int).Sub(p, big.NewInt(1)), false)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/order 4", proof: edForgery(le32(big.NewInt(0), false)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/order 4, sign bit", proof: edForgery(le32(big.NewInt(0), true)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/order 8", proof: edForgery(le32(y8, false)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "small order/order 8, -y", proof: edForgery(le32(new(big.Int).Sub(p, y8), true)), want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "non-canonical/identity as p+1", proof: edForgery(le32(new(big.Int).Add(p, big.NewInt(1)), false)), want: ErrInvalidProof, why: rEdNonCanonical},
		{name: "non-canonical/p+5", proof: edForgery(le32(new(big.Int).Add(p, big.NewInt(5)), false)), want: ErrInvalidProof, why: rEdNonCanonical},
		{name: "non-canonical/2^255-1", proof: edForgery(le32(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1)), true)), want: ErrInvalidProof, why: rEdNonCanonical},
		{name: "Ed25519 fixture key accepted", edit: useKey("EdDSA", "EdDSA")},
		{name: "RSA 8192 bits", proof: rsaJWKProof(oddBits(8192), 65537), want: ErrInvalidProof, why: rRSASize},
		{name: "RSA 4097 bits", proof: rsaJWKProof(oddBits(4097), 65537), want: ErrInvalidProof, why: rRSASize},
		{name: "RSA 4096 bits reaches the signature check", proof: rsaJWKProof(oddBits(4096), 65537), want: ErrInvalidProof, why: rSignature},
		{name: "RSA e 2^31-1 with a valid signature", edit: func(t *testing.T, b *pb) {
			useKey("RSA", "PS256")(t, b)
			b.key = bigEKey
			b.hdr["jwk"].(map[string]any)["e"] = b64u(big.NewInt(int64(bigE)).Bytes())
		}, want: ErrInvalidProof, why: rRSAExponent},
		{name: "RSA e 65539", proof: rsaJWKProof(rsaKey.N, 65539), want: ErrInvalidProof, why: rRSAExponent},
		{name: "RSA e 65537 accepted", edit: useKey("RSA", "PS256")},
	}
	runVerifyCases(t, cases)
}

// withExponent returns k's key with public exponent e and the matching
// private exponent.
func withExponent(tb testing.TB, k *rsa.PrivateKey, e int) *rsa.PrivateKey {
	tb.Helper()
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(k.Primes[0], one)
	qm1 := new(big.Int).Sub(k.Primes[1], one)
	phi := new(big.Int).Mul(pm1, qm1)
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
	if d == nil {
		tb.Skip("exponent not invertible for this fixture key")
	}
	nk := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: k.N, E: e}, D: d, Primes: k.Primes}
	nk.Precompute()
	if err := nk.Validate(); err != nil {
		tb.Fatal(err)
	}
	return nk
}

// TestVerifyThumbprintFirst: with an expected thumbprint, a proof by
// another key is refused as a key mismatch before its signature is
// checked, so a token holder cannot make the server verify signatures by
// keys the token is not bound to.
func TestVerifyThumbprintFirst(t *testing.T) {
	t.Parallel()
	k := keys(t)
	badSig := post(func(p string) string {
		i := strings.LastIndexByte(p, '.')
		return p[:i+1] + b64u(make([]byte, 64))
	})
	runVerifyCases(t, []verifyCase{
		{name: "K1 proof, bad signature, JKT of K2", edit: badSig, expect: func(e *Expect) { e.JKT = mustThumb(k["ES256b"]) }, want: ErrKeyMismatch, why: rKeyMismatch},
		{name: "K1 proof, bad signature, JKT of K1", edit: badSig, expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrInvalidProof, why: rSignature},
		{name: "K1 proof, bad signature, no JKT", edit: badSig, want: ErrInvalidProof, why: rSignature},
		{name: "RSA 4096 proof, JKT of K1", proof: rsaJWKProof(oddBits(4096), 65537), expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrKeyMismatch, why: rKeyMismatch},
		// Key checks still come first: a malformed key is an invalid
		// proof whatever the token (ADV-23, ADV-25 against a bound token).
		{name: "RSA 8192 proof, JKT of K1", proof: rsaJWKProof(oddBits(8192), 65537), expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrInvalidProof, why: rRSASize},
		{name: "small-order Ed25519 proof, JKT of K1", proof: edForgery(le32(big.NewInt(1), false)), expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrInvalidProof, why: rEdSmallOrder},
		{name: "RSA 1024 proof, JKT of K1", edit: useKey("RSA1024", "PS256"), expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrInvalidProof, why: rRSASize},
		{name: "EdDSA proof, bad signature, JKT of K1", edit: func(t *testing.T, b *pb) {
			useKey("EdDSA", "EdDSA")(t, b)
			badSig(t, b)
		}, expect: func(e *Expect) { e.JKT = mustThumb(k["ES256"]) }, want: ErrKeyMismatch, why: rKeyMismatch},
	})
}
