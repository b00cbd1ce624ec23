package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// Defaults applied by [NewVerifier] for zero Config fields.
const (
	// DefaultMaxAge is how far iat may lie in the past by default.
	DefaultMaxAge = 60 * time.Second
	// DefaultFutureSkew is how far iat may lie in the future by default;
	// it accepts FAPI 2.0's 10 seconds.
	DefaultFutureSkew = 15 * time.Second
	// DefaultMaxProofBytes is the default cap on the proof length.
	DefaultMaxProofBytes = 8 << 10
)

// ReplayStore remembers which proofs were accepted, so that each is used
// once (RFC 9449 §11.1). Implementations must be safe for concurrent use.
type ReplayStore interface {
	// CheckAndStore atomically claims key until exp. fresh=true: first claim.
	// fresh=false: already claimed (replay). err != nil: unknown outcome;
	// callers MUST reject (fail closed).
	CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (fresh bool, err error)
}

// SinceReplayStore is a [ReplayStore] that can detect the loss of the keys
// it recorded (a shared store whose server restarted empty). A Verifier
// whose ReplayStore has this method claims keys through it, with the
// proof's iat as since. After a loss detected at time D, the store refuses
// proofs issued before D with an error that matches, through errors.As,
// interface{ ReplayStateLost() bool } reporting true; Verify then returns
// [ErrReplayStateLost]. replaycache/redisstore.Store implements it.
type SinceReplayStore interface {
	ReplayStore
	CheckAndStoreSince(ctx context.Context, key [32]byte, since, exp time.Time) (fresh bool, err error)
}

// KeyLimiter bounds how many replay-store entries one proof key can create.
// Allow counts one claim for owner (the proof key's RFC 7638 thumbprint)
// and reports whether it is within the key's quota; it must be safe for
// concurrent use. replaycache.Quota implements it.
type KeyLimiter interface {
	Allow(owner string) bool
}

// Config configures a [Verifier]. NewVerifier copies it; later changes to
// the caller's value have no effect.
type Config struct {
	// Algorithms is the allow-list of proof algorithms. Required, non-empty,
	// asymmetric only: ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256
	// RS384 RS512. none and HMAC algorithms are refused at construction.
	Algorithms []string
	// MaxAge is how far iat may lie in the past. 0 means DefaultMaxAge (60s).
	MaxAge time.Duration
	// FutureSkew is how far iat may lie in the future, for client clock
	// offset. 0 means DefaultFutureSkew (15s, which covers FAPI 2.0's 10s).
	FutureSkew time.Duration
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// ReplayStore enforces single use of each (key, jti). Required. When it
	// also implements [SinceReplayStore], claims go through
	// CheckAndStoreSince with the proof's iat.
	ReplayStore ReplayStore
	// KeyLimiter, when set, is asked before each claim whether the proof's
	// key may create another replay-store entry; when it refuses, the proof
	// is refused with ErrKeyQuota and the store is not touched, so that one
	// key cannot fill the store and lock every other key out. nil means no
	// per-key bound (the store's own capacity is the only one).
	KeyLimiter KeyLimiter
	// Nonces, when set, makes a valid server nonce mandatory in every proof
	// (ErrUseNonce otherwise, also for a nonce claim that is not a
	// non-empty string of NQCHAR, RFC 9449 §8.1). nil means nonces are not
	// required; a nonce claim is then not checked against any source, but
	// a malformed one makes the proof invalid (ErrInvalidProof).
	Nonces NonceSource
	// MaxProofBytes caps the proof length; longer proofs are refused before
	// any parsing. 0 means DefaultMaxProofBytes (8 KiB).
	MaxProofBytes int
}

// Verifier checks DPoP proofs (RFC 9449 §4.3). Build it once with
// [NewVerifier]; it is safe for concurrent use.
type Verifier struct {
	algs       []string
	algMask    uint16
	maxAge     time.Duration
	futureSkew time.Duration
	now        func() time.Time
	store      ReplayStore
	since      SinceReplayStore
	limiter    KeyLimiter
	nonces     NonceSource
	maxBytes   int
	headers    *headerCache // protected headers with x5c, for Expect.X5CEncoded
}

// NewVerifier validates cfg and returns a Verifier holding a copy of it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("dpop: Config.Algorithms must not be empty")
	}
	if cfg.ReplayStore == nil || isNilPointer(cfg.ReplayStore) {
		return nil, errors.New("dpop: Config.ReplayStore is required")
	}
	// A nil pointer in an interface passes a nil check and fails at the
	// first request; refuse it here, where the cause is plain.
	if cfg.Nonces != nil && isNilPointer(cfg.Nonces) {
		return nil, errors.New("dpop: Config.Nonces is a nil pointer (leave it nil for no nonces)")
	}
	if cfg.KeyLimiter != nil && isNilPointer(cfg.KeyLimiter) {
		return nil, errors.New("dpop: Config.KeyLimiter is a nil pointer (leave it nil for no limit)")
	}
	if cfg.MaxAge < 0 || cfg.FutureSkew < 0 || cfg.MaxProofBytes < 0 {
		return nil, errors.New("dpop: negative duration or size in Config")
	}
	v := &Verifier{
		maxAge:     cfg.MaxAge,
		futureSkew: cfg.FutureSkew,
		now:        cfg.Now,
		store:      cfg.ReplayStore,
		limiter:    cfg.KeyLimiter,
		nonces:     cfg.Nonces,
		maxBytes:   cfg.MaxProofBytes,
		headers:    newHeaderCache(),
	}
	v.since, _ = cfg.ReplayStore.(SinceReplayStore)
	for _, a := range cfg.Algorithms {
		i := slices.Index(algNames[:], a)
		if i < 0 {
			return nil, fmt.Errorf("dpop: unsupported or symmetric algorithm %q", a)
		}
		if v.algMask&(1<<i) == 0 {
			v.algs = append(v.algs, a)
		}
		v.algMask |= 1 << i
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.futureSkew == 0 {
		v.futureSkew = DefaultFutureSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBytes == 0 {
		v.maxBytes = DefaultMaxProofBytes
	}
	return v, nil
}

// Algorithms returns a copy of the allowed algorithms, in configuration
// order without duplicates, e.g. for the algs challenge parameter and the
// dpop_signing_alg_values_supported metadata.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

func (v *Verifier) allowed(alg string) bool {
	i := slices.Index(algNames[:], alg)
	return i >= 0 && v.algMask&(1<<i) != 0
}

// Expect describes the request a proof must match.
type Expect struct {
	// Method is the request method, compared exactly (case-sensitive).
	Method string
	// URL is the request's target URI; query and fragment are ignored; it
	// is normalized per RFC 3986 syntax and scheme rules (scheme and host lower-cased, default port and dot segments removed).
	URL string
	// AccessToken, when non-empty, requires ath = AccessTokenHash(AccessToken).
	AccessToken string
	// JKT, when non-empty, is the thumbprint the proof key must have
	// (cnf.jkt or dpop_jkt); compared exactly, else ErrKeyMismatch. The
	// comparison comes once the proof is parsed and its key checked, before
	// the signature, so a proof by another key costs no signature
	// verification; ErrKeyMismatch then takes precedence over the claim
	// checks.
	JKT string
	// X5C, when true, requires the protected header to carry an x5c member
	// (RFC 7515 §4.1.6): an array of 1 to [MaxX5C] standard base64 (not
	// base64url) strings, padded, without whitespace, each decoding to at
	// most [MaxX5CCertBytes] bytes; the decoded values are in [Proof.X5C].
	// Verify does NOT parse them as certificates nor relate them to the
	// jwk: that is the caller's job. When false (the default) a proof with
	// x5c is refused, like one with x5u, x5t or jku.
	X5C bool
	// X5CEncoded, with X5C, leaves the x5c values as sent: Check requires
	// the member and counts its strings as for X5C but does not decode
	// them; [Proof.X5C] is nil and [Proof.X5CEncoded] holds the strings,
	// which [DecodeX5C] decodes under the rules of X5C. It is for callers
	// that look the exact strings up (a cache of verified chains) before
	// they decode them; such a caller MUST decode them, and refuse the
	// request on error, before it relies on them. Without X5C it has no
	// effect.
	//
	// For such requests the Verifier remembers a few dozen protected
	// headers with x5c that passed every check of the header and its key
	// in a proof whose signature verified, by the exact bytes of their
	// segment: a client that signs every request with the same chain has
	// its header decoded, parsed and turned into a key once. Every check
	// that depends on the rest of the proof (alg allowed, claims,
	// thumbprint against JKT, signature) runs on each request. The
	// PublicKey of proofs with a remembered header is one value shared
	// by all of them: callers must not change it.
	X5CEncoded bool
}

// Proof is a verified DPoP proof. It is a plain value owned by the caller.
type Proof struct {
	JKT       string           // RFC 7638 thumbprint of the proof key (base64url SHA-256)
	JTI       string           // the proof's unique identifier
	Method    string           // htm
	URL       string           // htu as sent
	Nonce     string           // the server nonce, "" when absent
	Algorithm string           // the JWS alg, e.g. ES256
	IssuedAt  time.Time        // iat
	PublicKey crypto.PublicKey // *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
	// X5C holds the DER values of the protected header's x5c member, in
	// order, when [Expect.X5C] was set; nil otherwise. They are covered by
	// the proof's signature but are otherwise unverified.
	X5C [][]byte
	// X5CEncoded holds the x5c strings as sent (standard base64, after
	// JSON unescaping), in order, when [Expect.X5C] and
	// [Expect.X5CEncoded] were set; nil otherwise. They are covered by
	// the proof's signature but not yet checked: see [DecodeX5C].
	X5CEncoded []string
}

// replayDomain separates replay keys from any other SHA-256 use.
const replayDomain = "senderbound dpop replay v1\x00"

// replayKey returns the replay-store key of a proof: SHA-256 over a
// domain-separated, length-prefixed encoding of (jkt, jti). It never
// depends on the proof's bytes, so re-encoded or malleated signatures
// (KAT-15) map to the same key.
func replayKey(jkt, jti string) [32]byte {
	h := sha256.New()
	var l [4]byte
	h.Write([]byte(replayDomain))
	binary.BigEndian.PutUint32(l[:], uint32(len(jkt)))
	h.Write(l[:])
	h.Write(bytesOf(jkt))
	binary.BigEndian.PutUint32(l[:], uint32(len(jti)))
	h.Write(l[:])
	h.Write(bytesOf(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func fail(class error, r reason) error { return newError(class, r.Reason(), r.String()) }

// Verify checks proof against want and, when every check passes, claims
// its (jkt, jti) in the replay store: it is [Verifier.Check] followed by
// [Verifier.Claim]. The checks are those of RFC 9449 §4.3 plus the strict
// parsing rules in the package documentation. Errors are *Error values
// whose Err is ErrInvalidProof, ErrReplay, ErrUseNonce, ErrKeyMismatch,
// ErrKeyQuota, ErrReplayStateLost (with ErrUseNonce or ErrInvalidProof) or
// ErrStoreUnavailable; their text never contains any part of the proof.
// Verify does NOT validate the access token itself; it only checks ath
// against want.AccessToken.
func (v *Verifier) Verify(ctx context.Context, proof string, want Expect) (*Proof, error) {
	p, err := v.Check(proof, want)
	if err != nil {
		return nil, err
	}
	if err := v.Claim(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Check runs every check of [Verifier.Verify] except the replay claim: a
// proof that passes Check has not been recorded and can be presented again.
// A server that must do other work before it accepts the request (client
// authentication, a grant) calls Check first, that work next, and
// [Verifier.Claim] last, so that requests refused for other reasons do not
// occupy the replay store. The request MUST NOT be accepted until Claim
// returned nil.
func (v *Verifier) Check(proof string, want Expect) (*Proof, error) {
	if proof == "" {
		return nil, newError(ErrMissingProof, oautherr.ReasonProofMissing, "no proof")
	}
	if len(proof) > v.maxBytes {
		return nil, fail(ErrInvalidProof, rSize)
	}
	var p parsed
	var hc *headerCache
	if want.X5C && want.X5CEncoded {
		hc = v.headers
	}
	r := parseAndVerify(proof, v.allowed, want.JKT, want.X5C, hc, &p)
	defer release(&p)
	switch r {
	case rOK:
	case rKeyMismatch:
		return nil, fail(ErrKeyMismatch, r)
	default:
		return nil, fail(ErrInvalidProof, r)
	}
	c := &p.cl
	if !c.hasJTI || !c.hasHTM || !c.hasHTU || !c.hasIAT {
		return nil, fail(ErrInvalidProof, rClaimMissing)
	}
	if !validJTI(c.jti) {
		return nil, fail(ErrInvalidProof, rJTI)
	}
	if string(c.htm) != want.Method || want.Method == "" {
		return nil, fail(ErrInvalidProof, rHTM)
	}
	var hb, wb [256]byte
	got, err := appendNormalizedURL(hb[:0], string(c.htu), false)
	if err != nil {
		return nil, fail(ErrInvalidProof, rHTU)
	}
	exp, err := appendNormalizedURL(wb[:0], want.URL, true)
	if err != nil || string(got) != string(exp) {
		return nil, fail(ErrInvalidProof, rHTU)
	}
	iat, ok := parseNumericDate(c.iat)
	if !ok {
		return nil, fail(ErrInvalidProof, rClaimType)
	}
	now := v.now()
	if iat.Before(now.Add(-v.maxAge)) {
		return nil, fail(ErrInvalidProof, rIATPast)
	}
	if iat.After(now.Add(v.futureSkew)) {
		return nil, fail(ErrInvalidProof, rIATFuture)
	}
	if want.AccessToken != "" {
		ath := AccessTokenHash(want.AccessToken)
		if !c.hasATH || subtle.ConstantTimeCompare(c.ath, bytesOf(ath)) != 1 {
			return nil, fail(ErrInvalidProof, rATH)
		}
	}
	if c.hasNonce && !validNonceSyntax(string(c.nonce)) {
		if v.nonces == nil {
			// No nonce is on offer here: use_dpop_nonce would send the
			// client after one it cannot get. The proof is malformed.
			return nil, fail(ErrInvalidProof, rClaimType)
		}
		return nil, fail(ErrUseNonce, rNonceStale)
	}
	if v.nonces != nil {
		if !c.hasNonce {
			return nil, fail(ErrUseNonce, rNonceMissing)
		}
		if err := v.nonces.CheckNonce(string(c.nonce)); err != nil {
			return nil, fail(ErrUseNonce, rNonceStale)
		}
	}
	var (
		x5c [][]byte
		enc []string
	)
	if want.X5C {
		switch {
		case !p.hdr.hasX5C:
			return nil, fail(ErrInvalidProof, rX5CMissing)
		case p.hdr.nX5C == 0:
			return nil, fail(ErrInvalidProof, rX5C)
		case want.X5CEncoded:
			// The strings are the header cache's: the caller gets its
			// own slice of them (strings are immutable).
			enc = slices.Clone(p.x5c)
		default:
			if x5c, r = decodeX5C(&p.hdr); r != rOK {
				return nil, fail(ErrInvalidProof, r)
			}
		}
	}
	out := &Proof{
		JKT:        p.jkt,
		JTI:        string(c.jti),
		Method:     want.Method,
		URL:        string(c.htu),
		Algorithm:  p.alg,
		IssuedAt:   iat,
		PublicKey:  p.key,
		X5C:        x5c,
		X5CEncoded: enc,
	}
	if c.hasNonce {
		out.Nonce = string(c.nonce)
	}
	return out, nil
}

// Claim records the proof p, returned by [Verifier.Check], in the replay
// store: it asks the KeyLimiter, if any, then claims a SHA-256 digest of
// the domain-separated, length-prefixed pair (p.JKT, p.JTI)
// until p.IssuedAt + MaxAge + FutureSkew. The claim is atomic, so among
// concurrent requests carrying the same proof exactly one gets nil; every
// other gets ErrReplay. Errors are those of [Verifier.Verify] for the
// claim: ErrReplay, ErrKeyQuota, ErrReplayStateLost or ErrStoreUnavailable.
func (v *Verifier) Claim(ctx context.Context, p *Proof) error {
	if v.limiter != nil && !v.limiter.Allow(p.JKT) {
		return fail(ErrKeyQuota, rKeyQuota)
	}
	// The proof is acceptable until iat+MaxAge by our clock; keep the
	// claim for the forward skew longer to cover clock drift between
	// instances sharing the store.
	key, exp := replayKey(p.JKT, p.JTI), p.IssuedAt.Add(v.maxAge+v.futureSkew)
	var (
		fresh bool
		err   error
	)
	if v.since != nil {
		fresh, err = v.since.CheckAndStoreSince(ctx, key, p.IssuedAt, exp)
	} else {
		fresh, err = v.store.CheckAndStore(ctx, key, exp)
	}
	if err != nil {
		var lost interface{ ReplayStateLost() bool }
		if errors.As(err, &lost) && lost.ReplayStateLost() {
			class := ErrInvalidProof
			if v.nonces != nil {
				// A new proof carries a new iat and is accepted: send the
				// client after a nonce so that it retries at once.
				class = ErrUseNonce
			}
			return &Error{Code: codeOf(class), Description: rStateLost.String(), Reason: rStateLost.Reason(), Err: fmt.Errorf("%w: %w", class, ErrReplayStateLost)}
		}
		return &Error{Code: oautherr.ServerError, Description: rStore.String(), Reason: rStore.Reason(), Err: fmt.Errorf("%w: %w", ErrStoreUnavailable, err)}
	}
	if !fresh {
		return fail(ErrReplay, rReplay)
	}
	return nil
}

// decodeX5C decodes the x5c strings of h: at least one, each by
// decodeX5CValue.
func decodeX5C(h *header) ([][]byte, reason) {
	if h.nX5C == 0 {
		return nil, rX5C
	}
	out := make([][]byte, h.nX5C)
	for i, s := range h.x5c[:h.nX5C] {
		der, ok := decodeX5CValue(s)
		if !ok {
			return nil, rX5C
		}
		out[i] = der
	}
	return out, rOK
}

// decodeX5CValue decodes one x5c string: strict padded standard base64
// (RFC 7515 §4.1.6; not base64url, and without the CR and LF that
// encoding/base64 would skip: every other byte outside the alphabet, and
// padding anywhere but at the end, the strict decoder refuses itself),
// non-empty and at most MaxX5CCertBytes decoded.
func decodeX5CValue(s []byte) ([]byte, bool) {
	if len(s) == 0 || len(s)%4 != 0 || base64.StdEncoding.DecodedLen(len(s)) > MaxX5CCertBytes+2 ||
		bytes.IndexByte(s, '\r') >= 0 || bytes.IndexByte(s, '\n') >= 0 {
		return nil, false
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(der, s)
	if err != nil || n == 0 || n > MaxX5CCertBytes {
		return nil, false
	}
	return der[:n:n], true
}

// copyX5C returns the x5c strings of h (at least one), sharing one
// allocation.
func copyX5C(h *header) []string {
	var b strings.Builder
	n := 0
	for _, s := range h.x5c[:h.nX5C] {
		n += len(s)
	}
	b.Grow(n)
	for _, s := range h.x5c[:h.nX5C] {
		b.Write(s)
	}
	all := b.String()
	out := make([]string, h.nX5C)
	for i, s := range h.x5c[:h.nX5C] {
		out[i], all = all[:len(s)], all[len(s):]
	}
	return out
}

// DecodeX5C decodes x5c strings as sent (from [Proof.X5CEncoded]) under
// the rules of [Expect.X5C]: 1 to [MaxX5C] strings of padded standard
// base64 without whitespace and with canonical trailing bits, each
// decoding to 1 to [MaxX5CCertBytes] bytes. It returns the DER values in
// order. Its error is the one [Verifier.Check] returns when it decodes
// such strings itself: an *Error wrapping ErrInvalidProof with reason
// oautherr.ReasonProofX5C.
func DecodeX5C(encoded []string) ([][]byte, error) {
	if len(encoded) == 0 || len(encoded) > MaxX5C {
		return nil, fail(ErrInvalidProof, rX5C)
	}
	out := make([][]byte, len(encoded))
	for i, s := range encoded {
		der, ok := decodeX5CValue(bytesOf(s))
		if !ok {
			return nil, fail(ErrInvalidProof, rX5C)
		}
		out[i] = der
	}
	return out, nil
}

// validJTI: non-empty, at most maxJTI bytes, no control characters, not
// only whitespace (ADV-45).
func validJTI(b []byte) bool {
	if len(b) == 0 || len(b) > maxJTI {
		return false
	}
	blank := true
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c != ' ' {
			blank = false
		}
	}
	return !blank
}

// parseNumericDate parses iat. Integers and fractional values are both
// accepted (RFC 7519 NumericDate, ADV-43); negative values, values beyond
// year 9999 and non-finite values are refused.
func parseNumericDate(b []byte) (time.Time, bool) {
	if len(b) == 0 || len(b) > 32 || b[0] == '-' {
		return time.Time{}, false
	}
	integer := true
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			integer = false
			break
		}
		n = n*10 + int64(c-'0')
		if n > 253402300799 {
			return time.Time{}, false
		}
	}
	if integer {
		return time.Unix(n, 0), true
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// ProofFromHeader returns the single DPoP header field value of h. The
// field name is matched case-insensitively (all spellings are counted).
// No field gives ("", ErrMissingProof); more than one field, or a value
// that holds a list, gives an error wrapping ErrInvalidProof (DPOP-RS-01).
func ProofFromHeader(h http.Header) (string, error) {
	var val string
	n := 0
	for k, vs := range h {
		if len(k) == 4 && asciiEqualFold(k, "DPoP") {
			n += len(vs)
			if len(vs) > 0 {
				val = vs[0]
			}
		}
	}
	switch {
	case n == 0:
		return "", newError(ErrMissingProof, oautherr.ReasonProofMissing, "no proof")
	case n > 1:
		return "", newError(ErrInvalidProof, oautherr.ReasonMultipleDPoPFields, "more than one DPoP header field")
	}
	if val == "" {
		return "", newError(ErrInvalidProof, oautherr.ReasonProofMalformed, "empty DPoP header field")
	}
	return val, nil
}

// isNilPointer reports whether v, a non-nil interface value, holds a nil
// pointer (a typed nil).
func isNilPointer(v any) bool {
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}
