// Package jwsverify holds the strict building blocks for reading JWS
// compact serializations (RFC 7515 §7.1) without a general-purpose JOSE
// library on the hot path: canonical base64url decoding, a strict JSON
// scanner, and signature verification over the signing input exactly as
// received.
//
// It is shared by the DPoP proof verifier and the resource server's
// access-token verifier. Each caller keeps its own policy (which members
// it reads, which algorithms it allows, what a failure is called); this
// package only supplies mechanisms that refuse what they cannot read
// unambiguously:
//
//   - [DecodeB64] accepts the base64url alphabet only (no padding, no CR/LF
//     or other bytes a lenient decoder skips) and canonical trailing bits,
//     so one value has exactly one encoding.
//   - [Scanner] accepts RFC 8259 JSON only: valid UTF-8, no unpaired
//     surrogate escapes, no control characters in strings, and no
//     duplicate member names (which a lenient parser resolves silently,
//     and not always the same way as its neighbour), neither byte-equal
//     nor equal under case folding (which encoding/json uses to match
//     struct fields).
//   - [Verify] checks a signature with crypto/ecdsa, crypto/ed25519 or
//     crypto/rsa over the caller's bytes; the key must fit the algorithm.
package jwsverify

import (
	"bytes"
	"encoding/base64"
	"unsafe"
)

// BytesOf returns the bytes of s without copying. The result must only
// ever be read.
func BytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

var b64 = base64.RawURLEncoding.Strict()

// b64URLAlphabet marks the bytes of the base64url alphabet.
var b64URLAlphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// IsB64URL reports whether every byte of s is in the base64url alphabet
// (no padding, no CR/LF, which the standard decoder would skip).
func IsB64URL(s []byte) bool {
	for _, c := range s {
		if !b64URLAlphabet[c] {
			return false
		}
	}
	return true
}

// DecodeB64 strictly decodes src (base64url, no padding, canonical
// trailing bits) into dst and returns the filled prefix of dst. dst must
// hold at least base64.RawURLEncoding.DecodedLen(len(src)) bytes. An empty
// src is refused: callers that allow an empty segment test for it first.
func DecodeB64(dst []byte, src []byte) ([]byte, bool) {
	// The strict decoder refuses every byte outside the alphabet except CR
	// and LF, which it skips: refusing those two here makes the input
	// exactly IsB64URL.
	if len(src) == 0 || len(src)%4 == 1 || bytes.IndexByte(src, '\r') >= 0 || bytes.IndexByte(src, '\n') >= 0 {
		return nil, false
	}
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}
