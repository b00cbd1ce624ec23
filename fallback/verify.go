package fallback

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"math/big"
	"slices"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/jwsverify"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
)

// Defaults applied by [NewVerifier] for zero Config fields.
const (
	// DefaultCRLGrace is how long after its nextUpdate a CRL is still
	// used when no newer one could be fetched.
	DefaultCRLGrace = time.Hour
	// DefaultMaxChainLength bounds the certificates a client may present:
	// the leaf, the fallback CA and one more (a root above it).
	DefaultMaxChainLength = 3
	// DefaultChainCacheSize is the number of verified chains a Verifier
	// remembers: one per client certificate in use, a few hundred bytes
	// each.
	DefaultChainCacheSize = 4096
)

// Config configures a [Verifier]. NewVerifier copies it.
type Config struct {
	// CAs are the fallback CA certificates; a leaf must be issued directly
	// by one of them. They are the only trust anchors: system roots are
	// never used. Required.
	CAs []*x509.Certificate
	// CRL supplies the current revocation list of the issuing CA, usually
	// a [CRLFetcher]. Required: there is no mode without revocation.
	CRL CRLSource
	// CRLGrace is how long past its nextUpdate a CRL is still used.
	// Later, fallback requests fail with ErrCRLUnavailable. 0 means
	// DefaultCRLGrace.
	CRLGrace time.Duration
	// ScopesOID is the scopes extension's OID. nil means DefaultScopesOID.
	ScopesOID asn1.ObjectIdentifier
	// ClientURIPrefix is the prefix of the client_id URI SAN. "" means
	// DefaultClientURIPrefix.
	ClientURIPrefix string
	// MaxChainLength bounds the number of certificates presented, leaf
	// included. 0 means DefaultMaxChainLength; at most dpop.MaxX5C.
	MaxChainLength int
	// Proofs verifies the DPoP-format proofs of signed requests
	// ([Verifier.VerifyRequest]): replay, htm, htu, iat window and nonces
	// are enforced exactly as for DPoP. nil means signed requests are
	// refused; certificate chains can still be verified. Its
	// MaxProofBytes must leave room for the chain in x5c: 16 KiB holds a
	// leaf and a CA certificate with RSA-4096 keys, the default 8 KiB
	// holds them with ECDSA or RSA-2048 keys.
	Proofs *dpop.Verifier
	// ChainCacheSize bounds the cache of verified chains, in entries. A
	// chain presented again (the same DER, leaf and intermediates) then
	// costs a SHA-256, the validity check and the revocation lookup
	// instead of a signature verification, parsing and the scopes. An
	// entry lives until the certificate (or its CA) expires, is evicted
	// (least recently used first), or a new CRL is installed; revocation
	// is checked against the current CRL on every request. 0 means
	// DefaultChainCacheSize; a negative size disables the cache.
	ChainCacheSize int
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// Verifier authorizes requests by fallback client certificates: chains
// to a configured fallback CA alone, with the clientAuth extended key
// usage, within their validity, not revoked per the current CRL, with the
// client_id and scopes they carry. Build it once with [NewVerifier]; it is
// safe for concurrent use. It does NOT check the scopes against a route's
// requirements: that is the caller's policy.
type Verifier struct {
	roots    *x509.CertPool
	cas      []*x509.Certificate
	crl      CRLSource
	grace    time.Duration
	oid      asn1.ObjectIdentifier
	prefix   string
	maxChain int
	proofs   *dpop.Verifier
	now      func() time.Time
	general  bool                              // a CA has name constraints: x509.Verify decides
	cache    *lru.Cache[[32]byte, *chainEntry] // verified chains by chainKey; nil when disabled
	x5cKeys  *x5cKeys                          // keys of chains in x5c, with the cache
}

// Identity is what a verified fallback certificate says about its holder.
type Identity struct {
	// ClientID is the client_id from the URI SAN.
	ClientID string
	// Scopes are the scopes of the certificate's extension, in its order.
	Scopes []string
	// CertThumbprint is the RFC 8705 x5t#S256 of the leaf certificate.
	CertThumbprint string
	// NotAfter is the leaf's expiry.
	NotAfter time.Time
	// Serial is the leaf's serial number.
	Serial *big.Int
}

// NewVerifier validates cfg and returns a Verifier holding a copy of it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.CAs) == 0 || cfg.CRL == nil {
		return nil, errors.New("fallback: Config.CAs and Config.CRL are required")
	}
	if cfg.CRLGrace < 0 || cfg.MaxChainLength < 0 || cfg.MaxChainLength > dpop.MaxX5C {
		return nil, errors.New("fallback: negative grace or chain length out of range in Config")
	}
	v := &Verifier{
		roots: x509.NewCertPool(), cas: slices.Clone(cfg.CAs), crl: cfg.CRL, grace: cfg.CRLGrace,
		oid: slices.Clone(cfg.ScopesOID), prefix: cfg.ClientURIPrefix, maxChain: cfg.MaxChainLength,
		proofs: cfg.Proofs, now: cfg.Now,
	}
	for _, c := range v.cas {
		if c == nil || !c.BasicConstraintsValid || !c.IsCA {
			return nil, errors.New("fallback: Config.CAs holds a certificate that is not a CA")
		}
		v.roots.AddCert(c)
		if hasExtension(c, oidNameConstraints) {
			v.general = true
		}
	}
	if cfg.ChainCacheSize >= 0 {
		size := cfg.ChainCacheSize
		if size == 0 {
			size = DefaultChainCacheSize
		}
		c, err := lru.New[[32]byte, *chainEntry](size)
		if err != nil {
			return nil, fmt.Errorf("fallback: chain cache: %w", err)
		}
		v.cache = c
		v.x5cKeys = &x5cKeys{seed: maphash.MakeSeed()}
	}
	if v.grace == 0 {
		v.grace = DefaultCRLGrace
	}
	if v.oid == nil {
		v.oid = DefaultScopesOID
	}
	if err := checkOID(v.oid); err != nil {
		return nil, err
	}
	if v.prefix == "" {
		v.prefix = DefaultClientURIPrefix
	}
	if err := checkURIPrefix(v.prefix); err != nil {
		return nil, err
	}
	if v.maxChain == 0 {
		v.maxChain = DefaultMaxChainLength
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// VerifyChain verifies a presented certificate chain, leaf first (the
// TLS peer certificates, a forwarded RFC 9440 chain, or a signed
// request's x5c), and returns the client's identity. The leaf must be
// issued directly by a configured CA; the certificates after it (the CA
// certificate itself, usually) count against Config.MaxChainLength but
// are otherwise not used. Errors are [*Error] values wrapping
// ErrUntrustedChain, ErrExpired, ErrNotClientAuth, ErrRevoked,
// ErrScopesMalformed or ErrCRLUnavailable (the last one means 503: the
// request may be fine but revocation cannot be checked). ctx is not used
// for I/O: a Verifier never blocks on the network.
//
// A chain that verified is remembered (see Config.ChainCacheSize) under
// the SHA-256 of its certificates' DER; presented again, it costs a hash,
// the validity check, the CRL's freshness and the revocation lookup of
// its serial in the current CRL. The certificates must be as parsed by
// crypto/x509 (Raw is their DER).
func (v *Verifier) VerifyChain(ctx context.Context, chain []*x509.Certificate) (*Identity, error) {
	switch {
	case len(chain) == 0 || chain[0] == nil:
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackEmptyChain)
	case len(chain) > v.maxChain:
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackChainTooLong)
	}
	leaf := chain[0]
	if len(leaf.UnhandledCriticalExtensions) > 0 {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension)
	}
	// The leaf must be issued directly by a configured CA, so the other
	// certificates presented are not offered to chain building: they
	// could only add signature checks (a copy of the CA certificate,
	// say), never a valid chain.
	for _, c := range chain[1:] {
		if c == nil {
			return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCertificateMalformed)
		}
	}
	now := v.now()
	if v.cache == nil {
		e, err := v.verifyChain(chain, now)
		if err != nil {
			return nil, err
		}
		return e.identity(), nil
	}
	key := chainKeyOf(chain)
	if e := v.cached(key, now); e != nil {
		return v.fromCache(e, now)
	}
	return v.verifyAndRemember(chain, key, now)
}

// verifyAndRemember verifies chain (of a checked shape) and adds it to the
// cache under key.
func (v *Verifier) verifyAndRemember(chain []*x509.Certificate, key [32]byte, now time.Time) (*Identity, error) {
	e, err := v.verifyChain(chain, now)
	if err != nil {
		return nil, err
	}
	v.remember(key, chain, e)
	return e.identity(), nil
}

// chainEntry holds what a verified chain says, and what the checks that
// depend on the clock and the CRL need to repeat.
type chainEntry struct {
	crl      *RevocationList   // the CRL current when the chain verified
	ca       *x509.Certificate // the CA that issued the leaf
	from     time.Time         // the later notBefore of leaf and CA
	until    time.Time         // the earlier notAfter of leaf and CA
	serial   *big.Int
	pub      crypto.PublicKey // the leaf's key, for signed requests
	clientID string
	scopes   []string
	thumb    string
	notAfter time.Time // the leaf's
}

// identity returns a fresh Identity: callers may change it.
func (e *chainEntry) identity() *Identity {
	return &Identity{
		ClientID:       e.clientID,
		Scopes:         slices.Clone(e.scopes),
		CertThumbprint: e.thumb,
		NotAfter:       e.notAfter,
		Serial:         new(big.Int).Set(e.serial),
	}
}

// chainKey is the cache key of a chain: SHA-256 over each certificate's
// DER, each preceded by its length, so that no two chains share a key.
func chainKey(ders [][]byte) [32]byte {
	h := sha256.New()
	for _, d := range ders {
		writeDER(h, d)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// encodedChainKey is the cache key of a chain in x5c, by its strings as
// sent: SHA-256 over a domain byte and each string, preceded by its
// length. Strict base64 makes each string name one DER value; the domain
// byte keeps these keys apart from those of chainKey.
func encodedChainKey(enc []string) [32]byte {
	h := sha256.New()
	h.Write([]byte{'x'})
	var n [4]byte
	for _, s := range enc {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write(jwsverify.BytesOf(s)) // read only: no copy of the string
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// x5cKeySlots is the number of x5c chains whose cache key a Verifier
// keeps at hand, so that a chain presented again is looked up without a
// SHA-256 over its strings.
const x5cKeySlots = 64

// x5cKeys maps x5c strings to encodedChainKey of them: a direct-mapped
// table of immutable entries, found by a seeded maphash and compared by
// the strings' bytes, so a hash collision only costs the SHA-256. A slot
// is replaced by the latest chain hashed to it; lookups take no lock.
type x5cKeys struct {
	seed  maphash.Seed
	slots [x5cKeySlots]atomic.Pointer[x5cKey]
}

type x5cKey struct {
	enc []string // never changed once stored
	key [32]byte
}

// key returns encodedChainKey(enc). enc must not be changed afterwards.
func (t *x5cKeys) key(enc []string) [32]byte {
	var h maphash.Hash
	h.SetSeed(t.seed)
	for _, s := range enc {
		h.WriteString(s)
		h.WriteByte(0) // not in the base64 alphabet
	}
	slot := &t.slots[h.Sum64()%x5cKeySlots]
	if e := slot.Load(); e != nil && slices.Equal(e.enc, enc) {
		return e.key
	}
	k := encodedChainKey(enc)
	slot.Store(&x5cKey{enc: enc, key: k})
	return k
}

// chainKeyOf is chainKey of the certificates' DER (Raw).
func chainKeyOf(chain []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range chain {
		writeDER(h, c.Raw)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func writeDER(h hash.Hash, der []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(der)))
	h.Write(n[:])
	h.Write(der)
}

// cached returns the entry for key when it is still usable: verified
// under the current CRL and within the validity of leaf and CA. An entry
// of an older CRL is dropped: the chain is verified again.
func (v *Verifier) cached(key [32]byte, now time.Time) *chainEntry {
	e, ok := v.cache.Get(key)
	if !ok {
		return nil
	}
	if e.crl != v.crl.Current() || now.Before(e.from) || now.After(e.until) {
		v.cache.Remove(key)
		return nil
	}
	return e
}

// fromCache repeats, for a remembered chain, the checks that depend on
// the current CRL: its presence, issuer and freshness, and the serial.
func (v *Verifier) fromCache(e *chainEntry, now time.Time) (*Identity, error) {
	if err := v.checkRevocation(e.serial, e.ca, now); err != nil {
		return nil, err
	}
	return e.identity(), nil
}

// remember adds a verified chain, unless one of its certificates has no
// DER (then the key would not name it).
func (v *Verifier) remember(key [32]byte, chain []*x509.Certificate, e *chainEntry) {
	for _, c := range chain {
		if len(c.Raw) == 0 {
			return
		}
	}
	v.cache.Add(key, e)
}

// verifyChain does every check of VerifyChain but the shape of the chain.
func (v *Verifier) verifyChain(chain []*x509.Certificate, now time.Time) (*chainEntry, error) {
	leaf := chain[0]
	crl := v.crl.Current()
	ca, err := v.issuerOf(leaf, now)
	if err != nil {
		return nil, err
	}
	if leaf.IsCA {
		return nil, refuse(ErrNotClientAuth, oautherr.ReasonFallbackLeafIsCA)
	}
	// x509 treats a leaf without extended key usage as good for any use;
	// a fallback certificate names clientAuth.
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, refuse(ErrNotClientAuth, oautherr.ReasonFallbackNotClientAuth)
	}
	if len(leaf.URIs) != 1 {
		return nil, refuse(ErrNotClientAuth, oautherr.ReasonFallbackNoClientID)
	}
	clientID, ok := ClientIDFromURI(v.prefix, leaf.URIs[0].String())
	if !ok {
		return nil, refuse(ErrNotClientAuth, oautherr.ReasonFallbackNoClientID)
	}
	if err := v.checkRevocationIn(crl, leaf.SerialNumber, ca, now); err != nil {
		return nil, err
	}
	scopes, err := ScopesFromCertificate(leaf, v.oid)
	if err != nil {
		return nil, err
	}
	e := &chainEntry{
		crl: crl, ca: ca, from: leaf.NotBefore, until: leaf.NotAfter,
		serial: new(big.Int).Set(leaf.SerialNumber), pub: leaf.PublicKey, clientID: clientID, scopes: scopes,
		thumb: mtlsbound.Thumbprint(leaf), notAfter: leaf.NotAfter,
	}
	if ca.NotBefore.After(e.from) {
		e.from = ca.NotBefore
	}
	if ca.NotAfter.Before(e.until) {
		e.until = ca.NotAfter
	}
	return e, nil
}

// Certificate extensions whose rules crypto/x509's Verify applies beyond
// the checks of issuerOf: name constraints and certificate policies. A
// leaf that carries one, or a configured CA with name constraints, is
// verified by x509.Verify itself.
var (
	oidNameConstraints     = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidCertificatePolicies = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidPolicyMappings      = asn1.ObjectIdentifier{2, 5, 29, 33}
	oidPolicyConstraints   = asn1.ObjectIdentifier{2, 5, 29, 36}
	oidInhibitAnyPolicy    = asn1.ObjectIdentifier{2, 5, 29, 54}
)

func hasExtension(c *x509.Certificate, oids ...asn1.ObjectIdentifier) bool {
	for i := range c.Extensions {
		for _, oid := range oids {
			if c.Extensions[i].Id.Equal(oid) {
				return true
			}
		}
	}
	return false
}

// needsGeneral reports whether leaf must go through x509.Verify: the
// configuration or the leaf has features issuerOf does not implement, or
// the leaf claims the name of a configured CA (x509 treats a copy of a
// root, or a certificate of a root's subject and key, specially).
func (v *Verifier) needsGeneral(leaf *x509.Certificate) bool {
	if v.general || len(leaf.Raw) == 0 ||
		hasExtension(leaf, oidNameConstraints, oidCertificatePolicies, oidPolicyMappings, oidPolicyConstraints, oidInhibitAnyPolicy) {
		return true
	}
	for _, c := range v.cas {
		if bytes.Equal(c.RawSubject, leaf.RawSubject) {
			return true
		}
	}
	return false
}

// issuerOf returns the configured CA that issued leaf, with the result
// x509.Verify gives for a chain of the leaf and one root (Roots: the
// configured CAs, KeyUsages: clientAuth) but without its general
// machinery: the leaf within its validity; a CA of the leaf's issuer name
// (tried in x509's order: matching key identifiers first), within its
// validity, without unhandled critical extensions, whose signature on the
// leaf verifies (CheckSignatureFrom: the CA's basic constraints and
// certSign key usage, no SHA-1); and the extended key usages of CA and
// leaf, where present, allowing clientAuth (or any). Leaves and
// configurations with name constraints or certificate policies go to
// x509.Verify itself.
func (v *Verifier) issuerOf(leaf *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if v.needsGeneral(leaf) {
		return v.issuerByVerify(leaf, now)
	}
	if now.Before(leaf.NotBefore) {
		return nil, refuseCause(ErrExpired, oautherr.ReasonFallbackNotYetValid, x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired})
	}
	if now.After(leaf.NotAfter) {
		return nil, refuseCause(ErrExpired, oautherr.ReasonFallbackExpired, x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired})
	}
	var signer *x509.Certificate
	for pass := range 3 {
		for _, c := range v.cas {
			if !bytes.Equal(c.RawSubject, leaf.RawIssuer) || keyIDRank(c, leaf) != pass {
				continue
			}
			if c.PublicKey == nil || leaf.CheckSignatureFrom(c) != nil ||
				now.Before(c.NotBefore) || now.After(c.NotAfter) || len(c.UnhandledCriticalExtensions) > 0 {
				continue
			}
			if signer == nil {
				signer = c
			}
			if allowsClientAuth(c) && allowsClientAuth(leaf) {
				return c, nil
			}
		}
	}
	if signer != nil {
		return nil, refuseCause(ErrNotClientAuth, oautherr.ReasonFallbackNotClientAuth, x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage})
	}
	return nil, refuseCause(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain, x509.UnknownAuthorityError{Cert: leaf})
}

// keyIDRank is x509's order of candidate issuers: 0 when the CA's subject
// key identifier equals the leaf's authority key identifier, 1 when only
// one of them is present, 2 when they differ.
func keyIDRank(ca, leaf *x509.Certificate) int {
	switch {
	case bytes.Equal(ca.SubjectKeyId, leaf.AuthorityKeyId):
		return 0
	case (len(ca.SubjectKeyId) == 0) != (len(leaf.AuthorityKeyId) == 0):
		return 1
	}
	return 2
}

// allowsClientAuth is x509's extended key usage rule for one certificate
// of a chain verified for clientAuth: no extended key usage at all, the
// any usage, or clientAuth.
func allowsClientAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
}

// issuerByVerify returns the configured CA that issued leaf, by
// x509.Verify.
func (v *Verifier) issuerByVerify(leaf *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, chainError(err, leaf, now)
	}
	for _, c := range chains {
		if len(c) == 2 {
			return c[1], nil
		}
	}
	// The leaf is a configured CA itself.
	return nil, refuseCause(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain, x509.UnknownAuthorityError{Cert: leaf})
}

// chainError classifies an x509 verification error.
func chainError(err error, leaf *x509.Certificate, now time.Time) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			if inv.Cert == leaf {
				if now.Before(leaf.NotBefore) {
					return refuseCause(ErrExpired, oautherr.ReasonFallbackNotYetValid, err)
				}
				return refuseCause(ErrExpired, oautherr.ReasonFallbackExpired, err)
			}
		case x509.IncompatibleUsage:
			return refuseCause(ErrNotClientAuth, oautherr.ReasonFallbackNotClientAuth, err)
		}
	}
	if errors.As(err, new(x509.UnhandledCriticalExtension)) {
		return refuseCause(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension, err)
	}
	return refuseCause(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain, err)
}

// checkRevocation checks serial against the current CRL.
func (v *Verifier) checkRevocation(serial *big.Int, ca *x509.Certificate, now time.Time) error {
	return v.checkRevocationIn(v.crl.Current(), serial, ca, now)
}

// checkRevocationIn fails closed: no CRL, a CRL of another CA, or one past
// nextUpdate + grace refuses the request with ErrCRLUnavailable.
func (v *Verifier) checkRevocationIn(l *RevocationList, serial *big.Int, ca *x509.Certificate, now time.Time) error {
	switch {
	case l == nil:
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLUnavailable)
	case !l.issuer.Equal(ca):
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLOtherIssuer)
	case now.After(l.nextUpdate.Add(v.grace)):
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLStale)
	case l.Revoked(serial):
		return refuse(ErrRevoked, oautherr.ReasonFallbackRevoked)
	}
	return nil
}

// VerifyRequest verifies a signed request: proof is the DPoP header
// value, a DPoP-format proof (RFC 9449 §4.2 claims htm, htu, iat, jti,
// optional nonce) whose protected header carries the client's certificate
// chain in x5c and whose jwk is the leaf certificate's public key. The
// proof is verified by Config.Proofs with want.X5C set, so replay
// (single use of the key and jti), htm, htu, the iat window and nonces
// are enforced exactly as for DPoP; want.AccessToken must be empty (a
// signed request carries no token). Then the leaf key must equal the
// jwk (ErrKeyMismatch) and the chain must pass [Verifier.VerifyChain].
//
// Errors from the proof check are the dpop package's *dpop.Error values
// (invalid_dpop_proof, use_dpop_nonce, ...), so a resource server answers
// them as for DPoP; the others are [*Error] values as for VerifyChain.
// The proof's jti is spent as soon as the proof itself verifies, even if
// the chain is then refused.
//
// With the chain cache on, a chain is looked up by the SHA-256 of its x5c
// strings as sent (each names one DER value under strict base64), so a
// chain presented before costs that hash, the comparison of the jwk with
// the cached leaf key and the checks of a cached chain, without decoding
// or parsing a certificate.
func (v *Verifier) VerifyRequest(ctx context.Context, proof string, want dpop.Expect) (*Identity, error) {
	if v.proofs == nil {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackSignedRequestsOff)
	}
	if want.AccessToken != "" || want.JKT != "" {
		return nil, errors.New("fallback: a signed request is verified without an access token or a bound key")
	}
	want.X5C, want.X5CEncoded = true, true
	p, err := v.proofs.Check(proof, want)
	if err != nil {
		return nil, err
	}
	// A chain presented before is found by its strings as sent, which
	// then need no decoding: the strict decoding gives one DER value for
	// each string and refuses every other. A new chain is decoded before
	// the proof is claimed, as Verify would.
	var (
		key  [32]byte
		e    *chainEntry
		ders [][]byte
	)
	if v.cache != nil {
		key = v.x5cKeys.key(p.X5CEncoded)
		e = v.cached(key, v.now())
	}
	if e == nil {
		if ders, err = dpop.DecodeX5C(p.X5CEncoded); err != nil {
			return nil, err
		}
	}
	if err := v.proofs.Claim(ctx, p); err != nil {
		return nil, err
	}
	if len(p.X5CEncoded) > v.maxChain {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackChainTooLong)
	}
	if e != nil {
		if !samePublicKey(e.pub, p.PublicKey) {
			return nil, refuse(ErrKeyMismatch, oautherr.ReasonFallbackKeyMismatch)
		}
		return v.fromCache(e, v.now())
	}
	chain := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if i > 0 {
			// The certificates after the leaf are usually a configured
			// CA's: the same bytes parse to the same certificate.
			if ca := v.caWithDER(der); ca != nil {
				chain[i] = ca
				continue
			}
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, refuseCause(ErrUntrustedChain, oautherr.ReasonFallbackCertificateMalformed, err)
		}
		chain[i] = c
	}
	if !samePublicKey(chain[0].PublicKey, p.PublicKey) {
		return nil, refuse(ErrKeyMismatch, oautherr.ReasonFallbackKeyMismatch)
	}
	if v.cache == nil {
		return v.VerifyChain(ctx, chain)
	}
	// The shape checks of VerifyChain, then its verification under the
	// key already computed.
	if len(chain[0].UnhandledCriticalExtensions) > 0 {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension)
	}
	return v.verifyAndRemember(chain, key, v.now())
}

// caWithDER returns the configured CA whose DER is der, or nil.
func (v *Verifier) caWithDER(der []byte) *x509.Certificate {
	for _, c := range v.cas {
		if bytes.Equal(c.Raw, der) {
			return c
		}
	}
	return nil
}

// samePublicKey reports whether the certificate key cert equals the proof
// key pub.
func samePublicKey(cert, pub crypto.PublicKey) bool {
	k, ok := cert.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}
