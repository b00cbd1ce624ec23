package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// This file holds the purpose-built strict parser for the compact form of
// a proof. It is deliberately stricter than a general JOSE library (the
// rules are listed in doc.go under "Strict parsing") and is differentially
// fuzzed against go-jose (FuzzDifferential).

const (
	minRSABits = 2048
	maxRSABits = 8192
	// maxJSONDepth bounds nesting inside extension members.
	maxJSONDepth = 16
	// maxMembers bounds the number of members of the header, payload and jwk.
	maxMembers = 64
	// maxJTI caps the jti length in bytes (DPOP-RS-16).
	maxJTI = 256
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
	rNonce
	rKeyMismatch
	rReplay
	rStore
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
	rNonce:          "nonce invalid or missing",
	rKeyMismatch:    "proof key does not match the bound key",
	rReplay:         "proof replayed",
	rStore:          "replay store unavailable",
}

func (r reason) String() string { return reasonText[r] }

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
		rKeyAlgMismatch, rRSASize, // alg bound to key type/curve, RSA 2048..8192 bits
		rECPoint,   // point validation differs in error class only
		rSignature, // PS* salt must equal the hash length
		rAlgNotAllowed:
		return true
	}
	return false
}

// bytesOf returns the bytes of s without copying. The result is only ever
// read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

var b64 = base64.RawURLEncoding.Strict()

// isB64URL reports whether every byte of s is in the base64url alphabet
// (no padding, no CR/LF, which the standard decoder would skip).
func isB64URL(s []byte) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decodeB64 strictly decodes src (base64url, no padding, canonical trailing
// bits) into dst[:n] and returns the filled slice.
func decodeB64(dst []byte, src []byte) ([]byte, bool) {
	if len(src) == 0 || !isB64URL(src) || len(src)%4 == 1 {
		return nil, false
	}
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

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
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// parseAndVerify runs the strict compact parser, builds the key, checks
// alg against allowed and verifies the signature. It does not look at the
// claims' values. On success p.buf must be returned with release.
func parseAndVerify(proof string, allowed func(string) bool, p *parsed) reason {
	d1 := -1
	d2 := -1
	for i := 0; i < len(proof); i++ {
		if proof[i] == '.' {
			if d1 < 0 {
				d1 = i
			} else if d2 < 0 {
				d2 = i
			} else {
				return rSegments
			}
		}
	}
	if d2 < 0 || d1 == 0 || d2 == d1+1 || d2 == len(proof)-1 {
		return rSegments
	}
	in := bytesOf(proof)
	hSeg, pSeg, sSeg := in[:d1], in[d1+1:d2], in[d2+1:]

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
	if r := parseHeader(hdr, &p.hdr); r != rOK {
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
	r := verifyKeyAndSig(alg, &h.jwk, signingInput, sig, p)
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

// verifyKeyAndSig validates the jwk members for alg, builds the public key,
// computes the thumbprint and verifies the signature.
func verifyKeyAndSig(alg string, j *jwkFields, signingInput, sig []byte, p *parsed) reason {
	if j.alg != nil && string(j.alg) != alg {
		return rKeyAlgMismatch
	}
	if j.use != nil && string(j.use) != "sig" {
		return rJWKInvalid
	}
	if j.hasKeyOps && !j.keyOpsVerify {
		return rJWKInvalid
	}
	var tp [512 + 64]byte // thumbprint input for EC/OKP; RSA built separately
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
		if len(sig) != 2*size {
			return rSignature
		}
		var digest []byte
		var d256 [32]byte
		var d384 [48]byte
		var d512 [64]byte
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
		if !ecdsa.VerifyASN1(pub, digest, encodeECDSASig(der[:0], sig[:size], sig[size:])) {
			return rSignature
		}
		b := append(tp[:0], `{"crv":"`...)
		b = append(b, crv...)
		b = append(b, `","kty":"EC","x":"`...)
		b = append(b, j.x...)
		b = append(b, `","y":"`...)
		b = append(b, j.y...)
		b = append(b, `"}`...)
		p.jkt = thumb(b)
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
		if len(sig) != ed25519.SignatureSize {
			return rSignature
		}
		pub := ed25519.PublicKey(append([]byte(nil), xb...))
		if !ed25519.Verify(pub, signingInput, sig) {
			return rSignature
		}
		b := append(tp[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
		b = append(b, j.x...)
		b = append(b, `"}`...)
		p.jkt = thumb(b)
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
		if e < 3 || e&1 == 0 || e > 1<<31-1 {
			return rJWKInvalid
		}
		n := new(big.Int).SetBytes(nBytes)
		if bl := n.BitLen(); bl < minRSABits || bl > maxRSABits {
			return rRSASize
		}
		if n.Bit(0) == 0 {
			return rJWKInvalid
		}
		pub := &rsa.PublicKey{N: n, E: e}
		if len(sig) != pub.Size() {
			return rSignature
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
		var err error
		if alg[0] == 'P' {
			err = rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(pub, h, digest, sig)
		}
		if err != nil {
			return rSignature
		}
		b := make([]byte, 0, 40+len(j.n))
		b = append(b, `{"e":"`...)
		b = append(b, j.e...)
		b = append(b, `","kty":"RSA","n":"`...)
		b = append(b, j.n...)
		b = append(b, `"}`...)
		p.jkt = thumb(b)
		p.key = pub
	}
	return rOK
}

// thumb returns base64url(SHA-256(b)).
func thumb(b []byte) string {
	sum := sha256.Sum256(b)
	var out [43]byte
	base64.RawURLEncoding.Encode(out[:], sum[:])
	return string(out[:])
}

// encodeECDSASig appends the DER encoding of SEQUENCE{INTEGER r, INTEGER s}
// built from the fixed-size big-endian r and s of a JWS signature.
func encodeECDSASig(dst, r, s []byte) []byte {
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

// ---- strict JSON scanning ----

type scanner struct {
	b   []byte
	i   int
	dup bool
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws() {
	for s.i < len(s.b) && isWS(s.b[s.i]) {
		s.i++
	}
}

// str scans a JSON string at s.i and returns its decoded content. Without
// escapes it is a sub-slice of the input. It rejects control characters,
// invalid UTF-8 and unpaired surrogate escapes.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return nil, false
		case c < 0x80:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false
			}
			s.i += n
		}
	}
	return nil, false
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		v := hexVal(s.b[s.i+k])
		if v < 0 {
			return 0, false
		}
		r = r<<4 | v
	}
	s.i += 4
	return r, true
}

func (s *scanner) strSlow(start int) ([]byte, bool) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, true
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, false
				}
				if r >= 0xD800 && r < 0xDC00 {
					if s.i+2 > len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
						return nil, false
					}
					s.i += 2
					r2, ok := s.hex4()
					if !ok || r2 < 0xDC00 || r2 >= 0xE000 {
						return nil, false
					}
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				} else if r >= 0xDC00 && r < 0xE000 {
					return nil, false
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c < 0x80:
			out = append(out, c)
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false
			}
			out = append(out, s.b[s.i:s.i+n]...)
			s.i += n
		}
	}
	return nil, false
}

// number scans a JSON number (RFC 8259 §6 grammar) and returns its text.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	b := s.b
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(b) {
		return nil, false
	}
	if b[s.i] == '0' {
		s.i++
	} else if b[s.i] >= '1' && b[s.i] <= '9' {
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
	} else {
		return nil, false
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		d := s.i
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return nil, false
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		d := s.i
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return nil, false
		}
	}
	return b[start:s.i], true
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// skip scans any JSON value, bounded in depth. Duplicate names inside
// nested objects are rejected too.
func (s *scanner) skip(depth int) bool {
	if depth > maxJSONDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		return s.object(func(_ []byte) bool { return s.skip(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			if s.b[s.i] == ']' {
				s.i++
				return true
			}
			if s.b[s.i] != ',' {
				return false
			}
			s.i++
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		_, ok := s.number()
		return ok
	}
}

// object scans an object at s.i, calling member for each name with s.i at
// the start of the value; member must consume the value. Duplicate names
// and more than maxMembers members are rejected.
func (s *scanner) object(member func(name []byte) bool) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	var seenArr [16][]byte
	seen := seenArr[:0]
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		name, ok := s.str()
		if !ok {
			return false
		}
		for _, n := range seen {
			if string(n) == string(name) {
				s.dup = true
				return false
			}
		}
		if len(seen) >= maxMembers {
			return false
		}
		seen = append(seen, name)
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !member(name) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == '}' {
			s.i++
			return true
		}
		if s.b[s.i] != ',' {
			return false
		}
		s.i++
	}
}

// top scans a whole document that must be exactly one object.
func (s *scanner) top(member func(name []byte) bool) bool {
	s.ws()
	if !s.object(member) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

func parseHeader(b []byte, h *header) reason {
	s := scanner{b: b}
	bad := rHeaderJSON
	ok := s.top(func(name []byte) bool {
		switch string(name) {
		case "typ":
			v, ok := s.str()
			h.typ = v
			if !ok {
				bad = rTyp
			}
			return ok
		case "alg":
			v, ok := s.str()
			h.alg = v
			if !ok {
				bad = rAlgNotAllowed
			}
			return ok
		case "jwk":
			h.hasJWK = true
			if s.i >= len(s.b) || s.b[s.i] != '{' {
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
		case "jku", "x5u", "x5c", "x5t", "x5t#S256":
			if h.forbidden == rOK {
				h.forbidden = rKeyRef
			}
		case "b64", "zip", "enc", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c":
			if h.forbidden == rOK {
				h.forbidden = rHeaderJSON
			}
		}
		return s.skip(1)
	})
	if !ok {
		if s.dup {
			return rDuplicate
		}
		return bad
	}
	return rOK
}

func parseJWK(s *scanner, j *jwkFields) reason {
	bad := rJWKInvalid
	strField := func(dst *[]byte) bool {
		v, ok := s.str()
		*dst = v
		return ok
	}
	ok := s.object(func(name []byte) bool {
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
			if s.i >= len(s.b) || s.b[s.i] != '[' {
				return false
			}
			s.i++
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == ']' {
				s.i++
				return true
			}
			for {
				s.ws()
				v, ok := s.str()
				if !ok {
					return false
				}
				if string(v) == "verify" {
					j.keyOpsVerify = true
				}
				s.ws()
				if s.i >= len(s.b) {
					return false
				}
				if s.b[s.i] == ']' {
					s.i++
					return true
				}
				if s.b[s.i] != ',' {
					return false
				}
				s.i++
			}
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			bad = rJWKPrivate
			return false
		case "x5c", "x5u", "x5t", "x5t#S256":
			bad = rKeyRef
			return false
		}
		return s.skip(2)
	})
	if !ok {
		if s.dup {
			return rDuplicate
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
	s := scanner{b: b}
	bad := rPayloadJSON
	str := func(dst *[]byte, has *bool) bool {
		*has = true
		v, ok := s.str()
		if !ok {
			bad = rClaimType
		}
		*dst = v
		return ok
	}
	ok := s.top(func(name []byte) bool {
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
			return str(&c.nonce, &c.hasNonce)
		case "iat":
			c.hasIAT = true
			if s.i >= len(s.b) || !(s.b[s.i] == '-' || s.b[s.i] >= '0' && s.b[s.i] <= '9') {
				bad = rClaimType
				return false
			}
			v, ok := s.number()
			c.iat = v
			if !ok {
				bad = rClaimType
			}
			return ok
		}
		return s.skip(1)
	})
	if !ok {
		if s.dup {
			return rDuplicate
		}
		return bad
	}
	return rOK
}
