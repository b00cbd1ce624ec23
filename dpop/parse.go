package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math/big"
	"strings"
	"sync"

	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/internal/pubkey"
	"github.com/senderbound/senderbound/oautherr"
)

// This file holds the purpose-built strict parser for the compact form of
// a proof. It is deliberately stricter than a general JOSE library (the
// rules are listed in doc.go under "Strict parsing") and is differentially
// fuzzed against go-jose (FuzzDifferential).

const (
	minRSABits = pubkey.MinRSABits
	maxRSABits = pubkey.MaxRSABits
	// maxJSONDepth bounds nesting inside extension members.
	maxJSONDepth = 16
	// maxMembers bounds the number of members of the header, payload and jwk.
	maxMembers = 64
	// maxJTI caps the jti length in bytes (DPOP-RS-16).
	maxJTI = 256
	// MaxX5C is the most certificates an x5c header member may hold when
	// the caller accepts one ([Expect.X5C]).
	MaxX5C = 8
	// MaxX5CCertBytes caps the decoded size of each x5c certificate.
	MaxX5CCertBytes = 16 << 10
)

// reason identifies why a proof was rejected. Its description is a fixed
// string that is safe to send to clients.
type reason uint8

const (
	rOK reason = iota
	rSize
	rSegments
	rBase64
	rHeaderJSON
	rPayloadJSON
	rDuplicate
	rTyp
	rAlgMissing
	rAlgNotAllowed
	rJWKMissing
	rJWKInvalid
	rJWKPrivate
	rKeyRef
	rCrit
	rKeyAlgMismatch
	rRSASize
	rECPoint
	rSignature
	rClaimMissing
	rClaimType
	rJTI
	rHTM
	rHTU
	rIATPast
	rIATFuture
	rATH
	rNonceMissing
	rNonceStale
	rKeyMismatch
	rReplay
	rStore
	rStateLost
	rKeyQuota
	rDuplicateFold
	rEdNonCanonical
	rEdSmallOrder
	rRSAExponent
	rX5C
	rX5CMissing
)

var reasonText = [...]string{
	rOK:             "ok",
	rSize:           "proof too large",
	rSegments:       "proof is not a compact JWS",
	rBase64:         "proof is not strict base64url",
	rHeaderJSON:     "malformed proof header",
	rPayloadJSON:    "malformed proof claims",
	rDuplicate:      "duplicate member name",
	rTyp:            "typ is not dpop+jwt",
	rAlgMissing:     "alg missing",
	rAlgNotAllowed:  "alg not allowed",
	rJWKMissing:     "jwk missing",
	rJWKInvalid:     "invalid jwk",
	rJWKPrivate:     "jwk contains private key material",
	rKeyRef:         "key reference parameters are not accepted",
	rCrit:           "crit is not supported",
	rKeyAlgMismatch: "alg does not match the key",
	rRSASize:        "RSA key size not accepted",
	rECPoint:        "invalid EC public key",
	rSignature:      "signature verification failed",
	rClaimMissing:   "required claim missing",
	rClaimType:      "claim has the wrong type",
	rJTI:            "invalid jti",
	rHTM:            "htm mismatch",
	rHTU:            "htu mismatch",
	rIATPast:        "proof too old",
	rIATFuture:      "proof issued in the future",
	rATH:            "ath mismatch",
	rNonceMissing:   "nonce invalid or missing",
	rNonceStale:     "nonce invalid or missing",
	rKeyMismatch:    "proof key does not match the bound key",
	rReplay:         "proof replayed",
	rStore:          "replay store unavailable",
	rStateLost:      "proof issued before the replay store lost its state",
	rKeyQuota:       "too many proofs from this key",
	rDuplicateFold:  "member names differ only in letter case",
	rEdNonCanonical: "non-canonical Ed25519 key",
	rEdSmallOrder:   "Ed25519 key of small order",
	rRSAExponent:    "RSA exponent not accepted",
	rX5C:            "invalid x5c",
	rX5CMissing:     "x5c missing",
}

func (r reason) String() string { return reasonText[r] }

// reasonOf maps each check to its exported, stable reason. Several checks
// share a reason where an operator acts the same way on each.
var exportedReason = [...]oautherr.Reason{
	rOK:             "",
	rSize:           oautherr.ReasonProofTooLarge,
	rSegments:       oautherr.ReasonProofMalformed,
	rBase64:         oautherr.ReasonProofMalformed,
	rHeaderJSON:     oautherr.ReasonProofMalformed,
	rPayloadJSON:    oautherr.ReasonProofMalformed,
	rDuplicate:      oautherr.ReasonProofMalformed,
	rTyp:            oautherr.ReasonProofType,
	rAlgMissing:     oautherr.ReasonProofAlgorithm,
	rAlgNotAllowed:  oautherr.ReasonProofAlgorithm,
	rJWKMissing:     oautherr.ReasonProofKey,
	rJWKInvalid:     oautherr.ReasonProofKey,
	rJWKPrivate:     oautherr.ReasonProofKey,
	rKeyRef:         oautherr.ReasonProofKey,
	rCrit:           oautherr.ReasonProofMalformed,
	rKeyAlgMismatch: oautherr.ReasonProofKey,
	rRSASize:        oautherr.ReasonProofKey,
	rECPoint:        oautherr.ReasonProofKey,
	rSignature:      oautherr.ReasonProofSignature,
	rClaimMissing:   oautherr.ReasonProofClaimMissing,
	rClaimType:      oautherr.ReasonProofMalformed,
	rJTI:            oautherr.ReasonProofJTI,
	rHTM:            oautherr.ReasonProofHTMMismatch,
	rHTU:            oautherr.ReasonProofHTUMismatch,
	rIATPast:        oautherr.ReasonProofTooOld,
	rIATFuture:      oautherr.ReasonProofFromFuture,
	rATH:            oautherr.ReasonProofATHMismatch,
	rNonceMissing:   oautherr.ReasonNonceRequired,
	rNonceStale:     oautherr.ReasonNonceStale,
	rKeyMismatch:    oautherr.ReasonProofKeyMismatch,
	rReplay:         oautherr.ReasonProofReplayed,
	rStore:          oautherr.ReasonReplayStoreUnavailable,
	rStateLost:      oautherr.ReasonReplayStateLost,
	rKeyQuota:       oautherr.ReasonProofKeyQuota,
	rDuplicateFold:  oautherr.ReasonProofMalformed,
	rEdNonCanonical: oautherr.ReasonProofKey,
	rEdSmallOrder:   oautherr.ReasonProofKey,
	rRSAExponent:    oautherr.ReasonProofKey,
	rX5C:            oautherr.ReasonProofX5C,
	rX5CMissing:     oautherr.ReasonProofX5CMissing,
}

// Reason returns the exported reason of r.
func (r reason) Reason() oautherr.Reason { return exportedReason[r] }

// stricterThanJOSE reports the reasons for which this parser rejects input
// that a general JOSE library accepts by design. FuzzDifferential allows
// disagreement with go-jose only for these.
func (r reason) stricterThanJOSE() bool {
	switch r {
	case rBase64, // canonical base64url only, no CR/LF
		rHeaderJSON,              // b64, zip, enc and other non-JWS members refused
		rPayloadJSON, rClaimType, // go-jose does not parse the payload at all
		rDuplicate,               // duplicates refused at every level
		rTyp,                     // typ must be dpop+jwt
		rCrit,                    // crit refused, even for b64
		rKeyRef,                  // x5c/x5u/x5t/jku refused
		rJWKInvalid, rJWKPrivate, // minimal encodings, use/key_ops/alg policy, public keys only
		rKeyAlgMismatch, rRSASize, // alg bound to key type/curve, RSA 2048..4096 bits
		rRSAExponent,                   // RSA e at most 65537
		rEdNonCanonical, rEdSmallOrder, // Ed25519 keys that sign for anyone
		rDuplicateFold, // names equal under case folding
		rECPoint,       // point validation differs in error class only
		rSignature,     // PS* salt must equal the hash length
		rAlgNotAllowed:
		return true
	}
	return false
}

// The base64url, JSON and signature primitives live in internal/jwsverify,
// shared with the resource server's access-token verifier; these names
// keep the package's own call sites short.

func bytesOf(s string) []byte { return jwsverify.BytesOf(s) }

func isB64URL(s []byte) bool { return jwsverify.IsB64URL(s) }

func decodeB64(dst []byte, src []byte) ([]byte, bool) { return jwsverify.DecodeB64(dst, src) }

func encodeECDSASig(dst, r, s []byte) []byte { return jwsverify.AppendECDSASig(dst, r, s) }

func hexVal(c byte) rune { return jwsverify.HexVal(c) }

// jwkFields holds the members of the embedded jwk, as raw (still escaped
// only when hasEsc) JSON string contents.
type jwkFields struct {
	kty, crv, x, y, n, e, alg, use []byte
	keyOpsVerify, hasKeyOps        bool
}

type header struct {
	typ, alg  []byte
	hasJWK    bool
	hasKid    bool
	jwk       jwkFields
	forbidden reason
	// x5c holds the x5c strings (JSON-unescaped, still base64) when the
	// caller accepts x5c; nX5C of them are set.
	x5c    [MaxX5C][]byte
	nX5C   int
	hasX5C bool
}

// claims holds offsets into the payload buffer.
type claims struct {
	jti, htm, htu, ath, nonce []byte
	hasJTI, hasHTM, hasHTU    bool
	hasATH, hasNonce, hasIAT  bool
	iat                       []byte
}

// parsed is the result of the signature layer.
type parsed struct {
	alg  string
	key  crypto.PublicKey
	jkt  string
	hdr  header
	cl   claims
	buf  *[]byte
	plen int
	// x5c holds the x5c strings as sent when parseAndVerify was given a
	// header cache: shared with the cache, never to be changed.
	x5c []string
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// parseAndVerify runs the strict compact parser, builds the key, checks
// alg against allowed and verifies the signature. When wantJKT is not
// empty, the key's thumbprint must equal it (rKeyMismatch), which is
// checked before the signature. An x5c header member is refused unless x5c
// is true. It does not look at the claims' values. On success p.buf must
// be returned with release. With hc (only for callers that take x5c as
// sent), a protected header with x5c found in hc is not parsed again, and
// one that passes is remembered there, its x5c strings in p.x5c.
func parseAndVerify(proof string, allowed func(string) bool, wantJKT string, x5c bool, hc *headerCache, p *parsed) reason {
	d1 := strings.IndexByte(proof, '.')
	d2 := -1
	if d1 >= 0 {
		if j := strings.IndexByte(proof[d1+1:], '.'); j >= 0 {
			d2 = d1 + 1 + j
		}
	}
	if d2 >= 0 && strings.IndexByte(proof[d2+1:], '.') >= 0 {
		return rSegments
	}
	if d2 < 0 || d1 == 0 || d2 == d1+1 || d2 == len(proof)-1 {
		return rSegments
	}
	in := bytesOf(proof)
	hSeg, pSeg, sSeg := in[:d1], in[d1+1:d2], in[d2+1:]
	if hc != nil {
		if e := hc.get(hSeg); e != nil {
			return verifyCachedHeader(e, in, d1, d2, allowed, wantJKT, p)
		}
	}

	bp := bufPool.Get().(*[]byte)
	need := base64.RawURLEncoding.DecodedLen(len(proof))
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	buf := (*bp)[:need]
	p.buf = bp
	hdr, ok := decodeB64(buf, hSeg)
	if !ok {
		return rBase64
	}
	rest := buf[len(hdr):]
	payload, ok := decodeB64(rest, pSeg)
	if !ok {
		return rBase64
	}
	rest = rest[len(payload):]
	sig, ok := decodeB64(rest, sSeg)
	if !ok {
		return rBase64
	}
	p.plen = len(hdr) + len(payload)
	if r := parseHeader(hdr, x5c, &p.hdr); r != rOK {
		return r
	}
	h := &p.hdr
	if h.forbidden != rOK {
		return h.forbidden
	}
	if !h.hasJWK {
		if h.hasKid {
			return rKeyRef
		}
		return rJWKMissing
	}
	if h.alg == nil {
		return rAlgMissing
	}
	if h.typ == nil || string(h.typ) != ProofType {
		return rTyp
	}
	alg := canonicalAlg(h.alg)
	if alg == "" || !allowed(alg) {
		return rAlgNotAllowed
	}
	p.alg = alg
	if r := parsePayload(payload, &p.cl); r != rOK {
		return r
	}
	signingInput := in[:d2]
	r := verifyKeyAndSig(alg, &h.jwk, signingInput, sig, wantJKT, p)
	if r == rOK && hc != nil && h.hasX5C && h.nX5C > 0 {
		p.x5c = copyX5C(h)
		hc.put(hSeg, &headerEntry{alg: alg, key: p.key, jkt: p.jkt, x5c: p.x5c})
	}
	return r
}

// maxPooledBuf keeps buffers for unusually large MaxProofBytes settings
// out of the pool.
const maxPooledBuf = 64 << 10

func release(p *parsed) {
	if p.buf != nil && cap(*p.buf) > maxPooledBuf {
		p.buf = nil
	}
	if p.buf != nil {
		b := (*p.buf)[:0]
		*p.buf = b
		bufPool.Put(p.buf)
		p.buf = nil
	}
}

var algNames = [...]string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// canonicalAlg returns the interned name for a supported algorithm, or "".
// Names are case-sensitive (ADV-02).
func canonicalAlg(b []byte) string {
	for _, a := range algNames {
		if string(b) == a {
			return a
		}
	}
	return ""
}

// verifyKeyAndSig validates the jwk members for alg, builds the public key
// (internal/pubkey rules), computes the thumbprint, compares it with
// wantJKT (when not empty) and verifies the signature. The key checks are
// cheap and come first, so a malformed key is an invalid proof whatever
// the token; the thumbprint comes before the signature, so with a bound
// token a proof by any other key costs no signature verification.
func verifyKeyAndSig(alg string, j *jwkFields, signingInput, sig []byte, wantJKT string, p *parsed) reason {
	if j.alg != nil && string(j.alg) != alg {
		return rKeyAlgMismatch
	}
	if j.use != nil && string(j.use) != "sig" {
		return rJWKInvalid
	}
	if j.hasKeyOps && !j.keyOpsVerify {
		return rJWKInvalid
	}
	// Thumbprint input: the largest is RSA's, with n of maxRSABits.
	var tp [64 + maxRSABits/6 + 8]byte
	switch alg {
	case "ES256", "ES384", "ES512":
		if string(j.kty) != "EC" || j.n != nil || j.e != nil {
			return rKeyAlgMismatch
		}
		var curve elliptic.Curve
		var crv string
		var size int
		switch alg {
		case "ES256":
			curve, crv, size = elliptic.P256(), "P-256", 32
		case "ES384":
			curve, crv, size = elliptic.P384(), "P-384", 48
		default:
			curve, crv, size = elliptic.P521(), "P-521", 66
		}
		if string(j.crv) != crv {
			return rKeyAlgMismatch
		}
		if j.x == nil || j.y == nil {
			return rJWKInvalid
		}
		encLen := base64.RawURLEncoding.EncodedLen(size)
		if len(j.x) != encLen || len(j.y) != encLen {
			return rJWKInvalid // short or long coordinates (THUMB-10)
		}
		var pt [1 + 2*66 + 2]byte
		pt[0] = 4
		xb, ok1 := decodeB64(pt[1:], j.x)
		yb, ok2 := decodeB64(pt[1+size:], j.y)
		if !ok1 || !ok2 || len(xb) != size || len(yb) != size {
			return rJWKInvalid
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt[:1+2*size])
		if err != nil {
			return rECPoint
		}
		b := append(tp[:0], `{"crv":"`...)
		b = append(b, crv...)
		b = append(b, `","kty":"EC","x":"`...)
		b = append(b, j.x...)
		b = append(b, `","y":"`...)
		b = append(b, j.y...)
		b = append(b, `"}`...)
		if p.jkt = thumb(b); !jktMatches(wantJKT, p.jkt) {
			return rKeyMismatch
		}
		if !jwsverify.Verify(alg, pub, signingInput, sig, nil) {
			return rSignature
		}
		p.key = pub
	case "EdDSA":
		if string(j.kty) != "OKP" || string(j.crv) != "Ed25519" || j.y != nil || j.n != nil || j.e != nil {
			return rKeyAlgMismatch
		}
		if len(j.x) != 43 {
			return rJWKInvalid
		}
		var kb [33]byte
		xb, ok := decodeB64(kb[:], j.x)
		if !ok || len(xb) != ed25519.PublicKeySize {
			return rJWKInvalid
		}
		// Canonical and not of small order; a point that does not decode
		// fails the signature check.
		switch pubkey.Ed25519Encoding(xb) {
		case nil:
		case pubkey.ErrEd25519SmallOrder:
			return rEdSmallOrder
		default:
			return rEdNonCanonical
		}
		b := append(tp[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
		b = append(b, j.x...)
		b = append(b, `"}`...)
		if p.jkt = thumb(b); !jktMatches(wantJKT, p.jkt) {
			return rKeyMismatch
		}
		if len(sig) != ed25519.SignatureSize {
			return rSignature
		}
		pub := ed25519.PublicKey(append([]byte(nil), xb...))
		if !jwsverify.Verify(alg, pub, signingInput, sig, nil) {
			return rSignature
		}
		p.key = pub
	default: // PS*, RS*
		if string(j.kty) != "RSA" || j.crv != nil || j.x != nil || j.y != nil {
			return rKeyAlgMismatch
		}
		if j.n == nil || j.e == nil {
			return rJWKInvalid
		}
		if len(j.n) > base64.RawURLEncoding.EncodedLen(maxRSABits/8) {
			return rRSASize
		}
		var nb [maxRSABits/8 + 3]byte
		nBytes, ok := decodeB64(nb[:], j.n)
		if !ok || len(nBytes) == 0 || nBytes[0] == 0 {
			return rJWKInvalid // leading zero octet: non-minimal (THUMB-10)
		}
		var eb [8]byte
		if len(j.e) > 8 {
			return rJWKInvalid
		}
		eBytes, ok := decodeB64(eb[:], j.e)
		if !ok || len(eBytes) == 0 || len(eBytes) > 4 || eBytes[0] == 0 {
			return rJWKInvalid // "AAEAAQ" and friends (THUMB-10)
		}
		e := 0
		for _, c := range eBytes {
			e = e<<8 | int(c)
		}
		n := new(big.Int).SetBytes(nBytes)
		switch pubkey.RSA(n, e) {
		case nil:
		case pubkey.ErrRSASize:
			return rRSASize
		case pubkey.ErrRSAExponent:
			return rRSAExponent
		default:
			return rJWKInvalid // even modulus
		}
		b := append(tp[:0], `{"e":"`...)
		b = append(b, j.e...)
		b = append(b, `","kty":"RSA","n":"`...)
		b = append(b, j.n...)
		b = append(b, `"}`...)
		if p.jkt = thumb(b); !jktMatches(wantJKT, p.jkt) {
			return rKeyMismatch
		}
		pub := &rsa.PublicKey{N: n, E: e}
		// PS*: the salt must be as long as the hash (stricter than go-jose).
		if !jwsverify.Verify(alg, pub, signingInput, sig, jwsverify.PSSSaltEqualsHash) {
			return rSignature
		}
		p.key = pub
	}
	return rOK
}

// jktMatches reports whether got is the wanted thumbprint; an empty want
// matches any key.
func jktMatches(want, got string) bool {
	return want == "" || subtle.ConstantTimeCompare(bytesOf(want), bytesOf(got)) == 1
}

// thumb returns base64url(SHA-256(b)).
func thumb(b []byte) string {
	sum := sha256.Sum256(b)
	var out [43]byte
	base64.RawURLEncoding.Encode(out[:], sum[:])
	return string(out[:])
}

// newScanner returns a strict JSON scanner over b with the proof's limits.
func newScanner(b []byte) jwsverify.Scanner {
	return jwsverify.Scanner{B: b, MaxDepth: maxJSONDepth, MaxMembers: maxMembers}
}

func parseHeader(b []byte, x5c bool, h *header) reason {
	s := newScanner(b)
	bad := rHeaderJSON
	ok := s.Top(func(name []byte) bool {
		switch string(name) {
		case "typ":
			v, ok := s.Str()
			h.typ = v
			if !ok {
				bad = rTyp
			}
			return ok
		case "alg":
			v, ok := s.Str()
			h.alg = v
			if !ok {
				bad = rAlgNotAllowed
			}
			return ok
		case "jwk":
			h.hasJWK = true
			if s.Peek() != '{' {
				bad = rJWKInvalid
				return false
			}
			r := parseJWK(&s, &h.jwk)
			if r != rOK {
				bad = r
				return false
			}
			return true
		case "kid":
			h.hasKid = true
		case "crit":
			h.forbidden = rCrit
		case "x5c":
			if !x5c {
				if h.forbidden == rOK {
					h.forbidden = rKeyRef
				}
				break
			}
			h.hasX5C = true
			ok := s.Array(func() bool {
				v, ok := s.Str()
				if !ok || h.nX5C == MaxX5C {
					return false
				}
				h.x5c[h.nX5C] = v
				h.nX5C++
				return true
			})
			if !ok {
				bad = rX5C
			}
			return ok
		case "jku", "x5u", "x5t", "x5t#S256":
			if h.forbidden == rOK {
				h.forbidden = rKeyRef
			}
		case "b64", "zip", "enc", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c":
			if h.forbidden == rOK {
				h.forbidden = rHeaderJSON
			}
		}
		return s.Skip(1)
	})
	if !ok {
		if s.Dup {
			return rDuplicate
		}
		if s.FoldDup {
			return rDuplicateFold
		}
		return bad
	}
	return rOK
}

func parseJWK(s *jwsverify.Scanner, j *jwkFields) reason {
	bad := rJWKInvalid
	strField := func(dst *[]byte) bool {
		v, ok := s.Str()
		*dst = v
		return ok
	}
	ok := s.Object(1, func(name []byte) bool {
		switch string(name) {
		case "kty":
			return strField(&j.kty)
		case "crv":
			return strField(&j.crv)
		case "x":
			return strField(&j.x)
		case "y":
			return strField(&j.y)
		case "n":
			return strField(&j.n)
		case "e":
			return strField(&j.e)
		case "alg":
			return strField(&j.alg)
		case "use":
			return strField(&j.use)
		case "key_ops":
			j.hasKeyOps = true
			return s.Array(func() bool {
				v, ok := s.Str()
				if ok && string(v) == "verify" {
					j.keyOpsVerify = true
				}
				return ok
			})
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			bad = rJWKPrivate
			return false
		case "x5c", "x5u", "x5t", "x5t#S256":
			bad = rKeyRef
			return false
		}
		return s.Skip(2)
	})
	if !ok {
		if s.Dup {
			return rDuplicate
		}
		if s.FoldDup {
			return rDuplicateFold
		}
		return bad
	}
	if j.kty == nil {
		return rJWKInvalid
	}
	switch string(j.kty) {
	case "EC", "OKP", "RSA":
	case "oct":
		return rJWKPrivate
	default:
		return rJWKInvalid
	}
	return rOK
}

func parsePayload(b []byte, c *claims) reason {
	s := newScanner(b)
	bad := rPayloadJSON
	str := func(dst *[]byte, has *bool) bool {
		*has = true
		v, ok := s.Str()
		if !ok {
			bad = rClaimType
		}
		*dst = v
		return ok
	}
	ok := s.Top(func(name []byte) bool {
		switch string(name) {
		case "jti":
			return str(&c.jti, &c.hasJTI)
		case "htm":
			return str(&c.htm, &c.hasHTM)
		case "htu":
			return str(&c.htu, &c.hasHTU)
		case "ath":
			return str(&c.ath, &c.hasATH)
		case "nonce":
			if s.Peek() != '"' {
				// A nonce of another JSON type is a wrong nonce, not a
				// malformed proof: it is left empty, which the nonce
				// check refuses with use_dpop_nonce (ADV-80), so that the
				// client retries with the DPoP-Nonce it is sent.
				c.hasNonce = true
				return s.Skip(1)
			}
			return str(&c.nonce, &c.hasNonce)
		case "iat":
			c.hasIAT = true
			if ch := s.Peek(); !(ch == '-' || ch >= '0' && ch <= '9') {
				bad = rClaimType
				return false
			}
			v, ok := s.Number()
			c.iat = v
			if !ok {
				bad = rClaimType
			}
			return ok
		}
		return s.Skip(1)
	})
	if !ok {
		if s.Dup {
			return rDuplicate
		}
		if s.FoldDup {
			return rDuplicateFold
		}
		return bad
	}
	return rOK
}
