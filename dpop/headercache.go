package dpop

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"hash/maphash"
	"sync/atomic"

	"github.com/senderbound/senderbound/internal/jwsverify"
)

// headerCacheSlots is the number of protected headers with x5c a Verifier
// remembers. A client signing requests with a certificate chain sends the
// same header (typ, alg, jwk, x5c) with every proof; each slot holds one
// header of at most MaxProofBytes and its x5c strings.
const headerCacheSlots = 64

// headerCache remembers protected headers with x5c that passed every
// check of the header and its key, in a proof whose signature verified,
// so that the same header presented again is neither decoded, parsed nor
// turned into a key: it is found by the exact bytes of its base64url
// segment. It is a direct-mapped table of immutable entries: a slot is
// replaced by the latest header hashed to it, lookups take no lock, and
// memory is bounded by headerCacheSlots entries. It is consulted only for
// callers that take x5c as sent ([Expect.X5CEncoded]).
type headerCache struct {
	seed  maphash.Seed
	slots [headerCacheSlots]atomic.Pointer[headerEntry]
}

// headerEntry is what a header yields once checked. It is never changed
// after it is stored.
type headerEntry struct {
	seg string           // the protected header segment (base64url), exact bytes
	alg string           // canonical alg
	key crypto.PublicKey // built and checked under the internal/pubkey rules
	jkt string           // RFC 7638 thumbprint of key
	x5c []string         // the x5c strings as sent, at least one
}

func newHeaderCache() *headerCache { return &headerCache{seed: maphash.MakeSeed()} }

func (c *headerCache) slot(seg []byte) *atomic.Pointer[headerEntry] {
	return &c.slots[maphash.Bytes(c.seed, seg)%headerCacheSlots]
}

// get returns the entry of the header segment seg, or nil. Entries are
// compared by the segment's bytes, so a hash collision is a miss.
func (c *headerCache) get(seg []byte) *headerEntry {
	if e := c.slot(seg).Load(); e != nil && e.seg == string(seg) {
		return e
	}
	return nil
}

// put remembers e (seg set by put) for seg.
func (c *headerCache) put(seg []byte, e *headerEntry) {
	e.seg = string(seg)
	c.slot(seg).Store(e)
}

// verifyCachedHeader finishes parseAndVerify for a proof whose protected
// header is e: the checks that depend on the request and the rest of the
// proof, in the order parseAndVerify runs them once the header passed
// (alg allowed, claims, thumbprint, signature).
func verifyCachedHeader(e *headerEntry, in []byte, d1, d2 int, allowed func(string) bool, wantJKT string, p *parsed) reason {
	bp := bufPool.Get().(*[]byte)
	need := base64.RawURLEncoding.DecodedLen(len(in) - d1)
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	buf := (*bp)[:need]
	p.buf = bp
	payload, ok := decodeB64(buf, in[d1+1:d2])
	if !ok {
		return rBase64
	}
	sig, ok := decodeB64(buf[len(payload):], in[d2+1:])
	if !ok {
		return rBase64
	}
	if !allowed(e.alg) {
		return rAlgNotAllowed
	}
	p.alg = e.alg
	if r := parsePayload(payload, &p.cl); r != rOK {
		return r
	}
	if p.jkt = e.jkt; !jktMatches(wantJKT, p.jkt) {
		return rKeyMismatch
	}
	// As in verifyKeyAndSig: PS* salts as long as the hash.
	var pss *rsa.PSSOptions
	if _, ok := e.key.(*rsa.PublicKey); ok {
		pss = jwsverify.PSSSaltEqualsHash
	}
	if !jwsverify.Verify(e.alg, e.key, in[:d2], sig, pss) {
		return rSignature
	}
	p.key = e.key
	p.hdr.hasX5C, p.hdr.nX5C = true, len(e.x5c)
	p.x5c = e.x5c
	return rOK
}
