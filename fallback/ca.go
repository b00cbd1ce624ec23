package fallback

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/senderbound/senderbound/oautherr"
)

// Defaults applied by [NewCA] for zero CAConfig fields.
const (
	// DefaultLifetime is the validity of a client certificate: 180 days.
	// The use case is months to years; prefer months, since scopes in a
	// certificate cannot shrink before it expires.
	DefaultLifetime = 180 * 24 * time.Hour
	// DefaultCRLLifetime is the time from a CRL's thisUpdate to its
	// nextUpdate.
	DefaultCRLLifetime = 24 * time.Hour
	// DefaultCRLMaxAge is the longest Cache-Control max-age the CRL
	// handler sends; it never reaches past the CRL's nextUpdate.
	DefaultCRLMaxAge = 5 * time.Minute
	// DefaultClientURIPrefix is the prefix of the client_id URI SAN.
	DefaultClientURIPrefix = "urn:senderbound:client:"
	// MaxClientIDLen is the longest client_id certified, in bytes.
	MaxClientIDLen = 255
	// backdate is how far before issuance a certificate's notBefore lies,
	// for clocks that run slightly behind the CA's.
	backdate = time.Minute
)

// CAConfig configures a [CA]. NewCA copies it.
type CAConfig struct {
	// Certificate is the CA certificate: a CA (basic constraints) whose
	// key usage, when present, allows certificate and CRL signing.
	// Required.
	Certificate *x509.Certificate
	// Signer is the CA key, any crypto.Signer (in memory, HSM, KMS); its
	// public key must be the Certificate's. Only Public and Sign are
	// called. Required.
	Signer crypto.Signer
	// Lifetime is the validity of issued certificates, capped at the CA
	// certificate's notAfter. 0 means DefaultLifetime.
	Lifetime time.Duration
	// ScopesOID is the scopes extension's OID. nil means
	// DefaultScopesOID; set it to an OID under your own enterprise number.
	ScopesOID asn1.ObjectIdentifier
	// ClientURIPrefix is the prefix of the URI SAN that carries the
	// client_id (see [ClientURI]). "" means DefaultClientURIPrefix.
	ClientURIPrefix string
	// CRLDistributionPoint, when set, is an http(s) URL written into each
	// certificate as its CRL distribution point.
	CRLDistributionPoint string
	// Revocations holds revoked serials. nil means a new MemoryRevocations.
	Revocations RevocationStore
	// CRLLifetime is nextUpdate minus thisUpdate of the CRLs the CA signs.
	// 0 means DefaultCRLLifetime.
	CRLLifetime time.Duration
	// CRLMaxAge caps the Cache-Control max-age of the CRL handler's
	// responses. 0 means DefaultCRLMaxAge.
	CRLMaxAge time.Duration
	// MaxCSRBytes caps a CSR's DER size. 0 means DefaultMaxCSRBytes.
	MaxCSRBytes int
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Rand is the entropy for serial numbers and signatures. nil means
	// crypto/rand.Reader.
	Rand io.Reader
}

// CA is the issuer's certificate-authority role for the fallback: it
// certifies clients' keys ([CA.Issue]), records revocations
// ([CA.Revoke]) and signs CRLs ([CA.CRL], [CA.CRLHandler]). It never needs
// the private key's bytes. Build it with [NewCA]; it is safe for
// concurrent use.
//
// Removing a scope from a client = revoke its certificates and issue a new
// one: the scopes in a certificate hold until it expires or is revoked.
type CA struct {
	cert      *x509.Certificate
	signer    crypto.Signer
	lifetime  time.Duration
	oid       asn1.ObjectIdentifier
	prefix    string
	cdp       string
	store     RevocationStore
	crlLife   time.Duration
	crlMaxAge time.Duration
	maxCSR    int
	now       func() time.Time
	rand      io.Reader

	// signMu serializes CRL signing, so that CRL numbers are handed out
	// and published in order.
	signMu    sync.Mutex
	mu        sync.Mutex // guards the fields below
	lastCRL   *big.Int   // number of the last CRL signed
	cached    *signedCRL // the CRL the handler serves
	cachedFor [32]byte   // digest of the revocation list it was made from
}

type signedCRL struct {
	der                    []byte
	etag                   string
	thisUpdate, nextUpdate time.Time
}

// NewCA validates cfg and returns a CA holding a copy of it.
func NewCA(cfg CAConfig) (*CA, error) {
	if cfg.Certificate == nil || cfg.Signer == nil {
		return nil, errors.New("fallback: CAConfig.Certificate and Signer are required")
	}
	c := cfg.Certificate
	if !c.BasicConstraintsValid || !c.IsCA {
		return nil, errors.New("fallback: CAConfig.Certificate is not a CA certificate")
	}
	if c.KeyUsage != 0 && (c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0) {
		return nil, errors.New("fallback: CA key usage must allow certificate and CRL signing")
	}
	pub, ok := cfg.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(c.PublicKey) {
		return nil, errors.New("fallback: CAConfig.Signer is not the Certificate's key")
	}
	if cfg.Lifetime < 0 || cfg.CRLLifetime < 0 || cfg.CRLMaxAge < 0 || cfg.MaxCSRBytes < 0 {
		return nil, errors.New("fallback: negative duration or size in CAConfig")
	}
	ca := &CA{
		cert: c, signer: cfg.Signer, lifetime: cfg.Lifetime, oid: slices.Clone(cfg.ScopesOID),
		prefix: cfg.ClientURIPrefix, cdp: cfg.CRLDistributionPoint, store: cfg.Revocations,
		crlLife: cfg.CRLLifetime, crlMaxAge: cfg.CRLMaxAge, maxCSR: cfg.MaxCSRBytes,
		now: cfg.Now, rand: cfg.Rand,
	}
	if ca.lifetime == 0 {
		ca.lifetime = DefaultLifetime
	}
	if ca.oid == nil {
		ca.oid = DefaultScopesOID
	}
	if err := checkOID(ca.oid); err != nil {
		return nil, err
	}
	if ca.prefix == "" {
		ca.prefix = DefaultClientURIPrefix
	}
	if err := checkURIPrefix(ca.prefix); err != nil {
		return nil, err
	}
	if ca.cdp != "" {
		u, err := url.Parse(ca.cdp)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("fallback: CRLDistributionPoint must be an http(s) URL")
		}
	}
	if ca.store == nil {
		ca.store = &MemoryRevocations{}
	}
	if ca.crlLife == 0 {
		ca.crlLife = DefaultCRLLifetime
	}
	if ca.crlMaxAge == 0 {
		ca.crlMaxAge = DefaultCRLMaxAge
	}
	if ca.now == nil {
		ca.now = time.Now
	}
	if ca.rand == nil {
		ca.rand = rand.Reader
	}
	return ca, nil
}

// checkOID refuses OIDs that crypto/x509 cannot read back: fewer than two
// arcs, or an arc of 2^31 or more.
func checkOID(oid asn1.ObjectIdentifier) error {
	if len(oid) < 2 || oid[0] > 2 {
		return errors.New("fallback: scopes OID needs at least two arcs")
	}
	for _, a := range oid {
		if a < 0 || int64(a) >= 1<<31 {
			return errors.New("fallback: every arc of the scopes OID must be below 2^31")
		}
	}
	return nil
}

// checkURIPrefix accepts an absolute URI prefix ("scheme:...") without
// characters that would make the client_id part ambiguous.
func checkURIPrefix(p string) error {
	u, err := url.Parse(p + "x")
	if err != nil || u.Scheme == "" || strings.ContainsAny(p, "%?#") {
		return errors.New("fallback: client URI prefix must start an absolute URI and contain no %, ? or #")
	}
	return nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// ClientURI returns the URI SAN that carries clientID: prefix followed by
// clientID with every byte outside RFC 3986 unreserved (ALPHA DIGIT - . _
// ~) percent-encoded with upper-case hex, so that each client_id has one
// URI and each URI one client_id. For example client "svc/a b" with the
// default prefix is urn:senderbound:client:svc%2Fa%20b.
func ClientURI(prefix, clientID string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(prefix) + len(clientID))
	b.WriteString(prefix)
	for i := 0; i < len(clientID); i++ {
		c := clientID[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// ClientIDFromURI is the inverse of [ClientURI]: it returns the client_id
// in uri when uri starts with prefix and the rest is in the canonical
// form ClientURI writes; otherwise ok is false.
func ClientIDFromURI(prefix, uri string) (clientID string, ok bool) {
	rest, found := strings.CutPrefix(uri, prefix)
	if !found || rest == "" {
		return "", false
	}
	var b []byte
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case unreserved(c):
			b = append(b, c)
		case c == '%' && i+2 < len(rest) && upperHex(rest[i+1]) >= 0 && upperHex(rest[i+2]) >= 0:
			v := byte(upperHex(rest[i+1])<<4 | upperHex(rest[i+2]))
			if unreserved(v) {
				return "", false // must not have been escaped
			}
			b = append(b, v)
			i += 2
		default:
			return "", false
		}
	}
	if !validClientID(string(b)) {
		return "", false
	}
	return string(b), true
}

func upperHex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// validClientID: 1 to MaxClientIDLen bytes of UTF-8 without control
// characters.
func validClientID(s string) bool {
	if s == "" || len(s) > MaxClientIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Issue certifies the key of a PKCS#10 CSR (DER) for clientID. The CSR
// must pass [ParseCSR] (size, signature, key policy). The certificate
// carries the requested scopes when they are a subset of registered, or
// all of registered when requested is empty (ErrScopeNotGranted
// otherwise). It is a client-authentication leaf: not a CA, key usage
// digitalSignature, extended key usage clientAuth only, the client_id as
// its only URI SAN ([ClientURI]) and as its subject common name when at
// most 64 bytes, a random 128-bit serial number, the CA's key identifier
// as authority key identifier, the scopes extension (non-critical), and
// validity from one minute ago for the configured lifetime (never past
// the CA's notAfter). Nothing else is taken from the CSR. The returned
// chain is the new certificate followed by the CA certificate.
func (ca *CA) Issue(ctx context.Context, csrDER []byte, clientID string, registeredScopes, requestedScopes []string) ([]*x509.Certificate, error) {
	if !validClientID(clientID) {
		return nil, refuse(ErrInvalidCSR, oautherr.ReasonFallbackClientIDInvalid)
	}
	csr, err := ParseCSR(csrDER, ca.maxCSR)
	if err != nil {
		return nil, err
	}
	scopes, err := grantScopes(registeredScopes, requestedScopes)
	if err != nil {
		return nil, err
	}
	ext, err := MarshalScopes(scopes)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	serial, err := randomSerial(ca.rand)
	if err != nil {
		return nil, err
	}
	uri, err := url.Parse(ClientURI(ca.prefix, clientID))
	if err != nil {
		return nil, fmt.Errorf("fallback: client URI: %w", err)
	}
	now := ca.now()
	notAfter := now.Add(ca.lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
		ExtraExtensions:       []pkix.Extension{{Id: ca.oid, Value: ext}},
	}
	if len(clientID) <= 64 {
		tmpl.Subject = pkix.Name{CommonName: clientID}
	}
	if ca.cdp != "" {
		tmpl.CRLDistributionPoints = []string{ca.cdp}
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, ca.cert, csr.PublicKey, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("fallback: sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fallback: parse issued certificate: %w", err)
	}
	return []*x509.Certificate{leaf, ca.cert}, nil
}

// grantScopes returns requested when it is a subset of registered, or
// registered when requested is empty.
func grantScopes(registered, requested []string) ([]string, error) {
	if len(requested) == 0 {
		if err := checkScopes(registered); err != nil {
			return nil, fmt.Errorf("fallback: registered scopes: %w", err)
		}
		return slices.Clone(registered), nil
	}
	if len(requested) > MaxScopes {
		return nil, refuse(ErrScopeNotGranted, oautherr.ReasonFallbackScopeSyntax)
	}
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if !ValidScope(s) {
			return nil, refuse(ErrScopeNotGranted, oautherr.ReasonFallbackScopeSyntax)
		}
		if !slices.Contains(registered, s) {
			return nil, refuse(ErrScopeNotGranted, oautherr.ReasonFallbackScopeNotRegistered)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// randomSerial returns a positive serial number of 128 random bits
// (RFC 5280 §4.1.2.2: at most 20 octets; CA/B forum: at least 64 random
// bits).
func randomSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("fallback: serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// Revoke records serial as revoked now, in the CA's RevocationStore; the
// next CRL lists it.
func (ca *CA) Revoke(ctx context.Context, serial *big.Int) error {
	return ca.store.Revoke(ctx, serial, ca.now())
}

// RevokeCertificate revokes cert, which must have been issued by this CA
// (signature checked), so that a certificate of another CA cannot revoke
// an unrelated serial.
func (ca *CA) RevokeCertificate(ctx context.Context, cert *x509.Certificate) error {
	if cert == nil || cert.CheckSignatureFrom(ca.cert) != nil {
		return refuse(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain)
	}
	return ca.Revoke(ctx, cert.SerialNumber)
}

// CRL signs an RFC 5280 CRL (DER) listing every revocation in the store:
// issuer the CA, thisUpdate now, nextUpdate now + CRLLifetime, an
// authority key identifier, and a CRL number above every number this CA
// value signed before (at least now in microseconds since 1970, so that
// numbers also increase across restarts with a clock that does). A store
// error is returned and no CRL is signed (fail closed).
func (ca *CA) CRL(ctx context.Context, now time.Time) ([]byte, error) {
	list, err := ca.store.List(ctx)
	if err != nil {
		return nil, err
	}
	ca.signMu.Lock()
	defer ca.signMu.Unlock()
	return ca.sign(list, now)
}

// sign signs a CRL of list; the caller holds signMu.
func (ca *CA) sign(list []Revocation, now time.Time) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, len(list))
	for i, r := range list {
		entries[i] = x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.RevokedAt}
	}
	ca.mu.Lock()
	num := big.NewInt(now.UnixMicro())
	if ca.lastCRL != nil && num.Cmp(ca.lastCRL) <= 0 {
		num.Add(ca.lastCRL, big.NewInt(1))
	}
	ca.lastCRL = num
	ca.mu.Unlock()
	der, err := x509.CreateRevocationList(ca.rand, &x509.RevocationList{
		Number:                    num,
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.Add(ca.crlLife).UTC(),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.signer)
	if err != nil {
		return nil, fmt.Errorf("fallback: sign CRL: %w", err)
	}
	return der, nil
}

// digest identifies a revocation list's content.
func digest(list []Revocation) [32]byte {
	h := sha256.New()
	for _, r := range list {
		b := r.Serial.Bytes()
		h.Write([]byte{byte(len(b))})
		h.Write(b)
		h.Write(strconv.AppendInt(nil, r.RevokedAt.UnixNano(), 10))
		h.Write([]byte{0})
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// current returns the CRL to serve: the cached one while the revocation
// list is unchanged and less than half of its lifetime has passed, else a
// newly signed one.
func (ca *CA) current(ctx context.Context) (*signedCRL, error) {
	list, err := ca.store.List(ctx)
	if err != nil {
		return nil, err
	}
	d := digest(list)
	fresh := func(now time.Time) *signedCRL {
		ca.mu.Lock()
		defer ca.mu.Unlock()
		c := ca.cached
		if c != nil && ca.cachedFor == d && !now.Before(c.thisUpdate) && now.Before(c.thisUpdate.Add(ca.crlLife/2)) {
			return c
		}
		return nil
	}
	if c := fresh(ca.now()); c != nil {
		return c, nil
	}
	ca.signMu.Lock()
	defer ca.signMu.Unlock()
	now := ca.now()
	if c := fresh(now); c != nil { // signed while this one waited
		return c, nil
	}
	der, err := ca.sign(list, now)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	c := &signedCRL{der: der, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, thisUpdate: now.UTC().Truncate(time.Second), nextUpdate: now.Add(ca.crlLife)}
	ca.mu.Lock()
	ca.cached, ca.cachedFor = c, d
	ca.mu.Unlock()
	return c, nil
}

// CRLHandler returns an http.Handler that serves the CA's current CRL
// (DER, Content-Type application/pkix-crl) to GET and HEAD, with an
// ETag, a Last-Modified of its thisUpdate, and Cache-Control "public,
// max-age=N" where N is at most CRLMaxAge and never reaches past the
// CRL's nextUpdate, so that a CDN can cache it. Conditional requests
// (If-None-Match, If-Modified-Since) are answered 304 Not Modified. Other
// methods get 405. A CRL is re-signed when the revocation list changes
// and when half of the current one's lifetime has passed; if the
// revocation store fails, the answer is 503 and no CRL.
func (ca *CA) CRLHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		c, err := ca.current(r.Context())
		if err != nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "revocation list unavailable", http.StatusServiceUnavailable)
			return
		}
		maxAge := min(ca.crlMaxAge, c.nextUpdate.Sub(ca.now()))
		h := w.Header()
		h.Set("Content-Type", "application/pkix-crl")
		h.Set("ETag", c.etag)
		if maxAge > time.Second {
			h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", c.thisUpdate, bytes.NewReader(c.der))
	})
}
