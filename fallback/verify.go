package fallback

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"time"

	"github.com/senderbound/senderbound/dpop"
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
func (v *Verifier) VerifyChain(ctx context.Context, chain []*x509.Certificate) (*Identity, error) {
	switch {
	case len(chain) == 0 || chain[0] == nil:
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackEmptyChain)
	case len(chain) > v.maxChain:
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackChainTooLong)
	}
	leaf := chain[0]
	now := v.now()
	if len(leaf.UnhandledCriticalExtensions) > 0 {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension)
	}
	opts := x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
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
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, chainError(err, leaf, now)
	}
	var ca *x509.Certificate
	for _, c := range chains {
		if len(c) == 2 {
			ca = c[1]
			break
		}
	}
	if ca == nil {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain)
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
	if err := v.checkRevocation(leaf, ca, now); err != nil {
		return nil, err
	}
	scopes, err := ScopesFromCertificate(leaf, v.oid)
	if err != nil {
		return nil, err
	}
	return &Identity{
		ClientID:       clientID,
		Scopes:         scopes,
		CertThumbprint: mtlsbound.Thumbprint(leaf),
		NotAfter:       leaf.NotAfter,
		Serial:         new(big.Int).Set(leaf.SerialNumber),
	}, nil
}

// chainError classifies an x509 verification error.
func chainError(err error, leaf *x509.Certificate, now time.Time) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			if inv.Cert == leaf {
				if now.Before(leaf.NotBefore) {
					return refuse(ErrExpired, oautherr.ReasonFallbackNotYetValid)
				}
				return refuse(ErrExpired, oautherr.ReasonFallbackExpired)
			}
		case x509.IncompatibleUsage:
			return refuse(ErrNotClientAuth, oautherr.ReasonFallbackNotClientAuth)
		}
	}
	if errors.As(err, new(x509.UnhandledCriticalExtension)) {
		return refuse(ErrUntrustedChain, oautherr.ReasonFallbackCriticalExtension)
	}
	return refuse(ErrUntrustedChain, oautherr.ReasonFallbackUntrustedChain)
}

// checkRevocation fails closed: no CRL, a CRL of another CA, or one past
// nextUpdate + grace refuses the request with ErrCRLUnavailable.
func (v *Verifier) checkRevocation(leaf, ca *x509.Certificate, now time.Time) error {
	l := v.crl.Current()
	switch {
	case l == nil:
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLUnavailable)
	case !l.issuer.Equal(ca):
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLOtherIssuer)
	case now.After(l.nextUpdate.Add(v.grace)):
		return refuse(ErrCRLUnavailable, oautherr.ReasonFallbackCRLStale)
	case l.Revoked(leaf.SerialNumber):
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
func (v *Verifier) VerifyRequest(ctx context.Context, proof string, want dpop.Expect) (*Identity, error) {
	if v.proofs == nil {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackSignedRequestsOff)
	}
	if want.AccessToken != "" || want.JKT != "" {
		return nil, errors.New("fallback: a signed request is verified without an access token or a bound key")
	}
	want.X5C = true
	p, err := v.proofs.Verify(ctx, proof, want)
	if err != nil {
		return nil, err
	}
	if len(p.X5C) > v.maxChain {
		return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackChainTooLong)
	}
	chain := make([]*x509.Certificate, len(p.X5C))
	for i, der := range p.X5C {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, refuse(ErrUntrustedChain, oautherr.ReasonFallbackCertificateMalformed)
		}
		chain[i] = c
	}
	k, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(p.PublicKey) {
		return nil, refuse(ErrKeyMismatch, oautherr.ReasonFallbackKeyMismatch)
	}
	return v.VerifyChain(ctx, chain)
}
