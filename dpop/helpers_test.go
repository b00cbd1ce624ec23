package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testNow   = 1_800_000_000
	testURL   = "https://rs.example.test/resource"
	testToken = "at1-token"
)

var jtiCounter atomic.Int64

// uniqueJTI returns a jti not used by any other test in this binary.
func uniqueJTI() string { return fmt.Sprintf("jti-%d", jtiCounter.Add(1)) }

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// jwkJSON returns the public JWK of key as JSON.
func jwkJSON(tb testing.TB, key crypto.Signer) string {
	tb.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key.Public()})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// jwkMap returns the public JWK of key as a map, for edits.
func jwkMap(tb testing.TB, key crypto.Signer) map[string]any {
	tb.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(jwkJSON(tb, key)), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func hashFor(alg string) (crypto.Hash, func() hash.Hash) {
	switch {
	case strings.HasSuffix(alg, "384"):
		return crypto.SHA384, sha512.New384
	case strings.HasSuffix(alg, "512"):
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

// signRaw signs the JWS signing input for arbitrary header and payload bytes
// with key under alg and returns the compact serialization. It lets tests
// produce validly signed proofs with any header or claims.
func signRaw(tb testing.TB, key crypto.Signer, alg, header, payload string) string {
	tb.Helper()
	input := enc(header) + "." + enc(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(signBytes(tb, key, alg, []byte(input)))
}

func signBytes(tb testing.TB, key crypto.Signer, alg string, input []byte) []byte {
	tb.Helper()
	h, newHash := hashFor(alg)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		hh := newHash()
		hh.Write(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, hh.Sum(nil))
		if err != nil {
			tb.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		hh := newHash()
		hh.Write(input)
		var sig []byte
		var err error
		if strings.HasPrefix(alg, "RS") {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, h, hh.Sum(nil))
		} else {
			sig, err = rsa.SignPSS(rand.Reader, k, h, hh.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	tb.Fatalf("unsupported key %T", key)
	return nil
}

// hmacSign produces an HS256 "proof" keyed with secret.
func hmacSign(header, payload string, secret []byte) string {
	input := enc(header) + "." + enc(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// reasonOf returns the internal reason behind a Verify error.
func reasonOf(err error) (reason, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return 0, false
	}
	for i, s := range reasonText {
		if s == e.Description && reason(i).Reason() == e.Reason {
			return reason(i), true
		}
	}
	return 0, false
}

// flipS replaces s by n−s in a P-256 JWS signature (KAT-15).
func flipS(tb testing.TB, proof string) string {
	tb.Helper()
	i := strings.LastIndexByte(proof, '.')
	sig, err := base64.RawURLEncoding.DecodeString(proof[i+1:])
	if err != nil || len(sig) != 64 {
		tb.Fatal("not an ES256 signature")
	}
	n := ecdsaP256N()
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	s.FillBytes(sig[32:])
	return proof[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func ecdsaP256N() *big.Int {
	n, _ := new(big.Int).SetString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
	return n
}
