package mtlsbound

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/pubkey"
)

// PKIAuth is the tls_client_auth method (RFC 8705 §2.1) for one registered
// client: the client certificate must chain to Roots (optionally through
// Intermediates or the chain the client sent), list the clientAuth extended
// key usage, be within its validity period, and match exactly one
// registered subject selector. Exactly one of SubjectDN, SANDNS, SANURI,
// SANIP and SANEmail must be set (MTLS-CA-05); a SAN selector matches only
// SAN entries of its own type (MTLS-CA-07). SAN selectors must be printable
// ASCII without spaces, as SAN entries are (IA5 strings); Validate refuses
// any other, which could match only through Unicode case folding.
//
// Roots should hold only the few CAs whose issuance policy is acceptable for
// this client (RFC 8705 §7.4); the system pool is never used implicitly. A
// PKIAuth is a value; it is safe for concurrent use as long as it is not
// modified, and Revocation must itself be safe for concurrent use.
type PKIAuth struct {
	// Roots are the trust anchors. Required.
	Roots *x509.CertPool
	// Intermediates are extra intermediate CAs; may be nil.
	Intermediates *x509.CertPool

	// SubjectDN is tls_client_auth_subject_dn, an RFC 4514 string compared
	// as described at ParseDistinguishedName (MTLS-CA-06).
	SubjectDN string
	// SANDNS is tls_client_auth_san_dns, compared with each dNSName SAN
	// case-insensitively in ASCII only; wildcards are not expanded and a
	// trailing dot is significant.
	SANDNS string
	// SANURI is tls_client_auth_san_uri, for example a SPIFFE ID
	// ("spiffe://example.org/ns/a/sa/b"), compared exactly with each
	// uniformResourceIdentifier SAN: both in net/url's String form, so the
	// scheme is compared without regard to case (RFC 3986 §3.1) and
	// everything else as written, with no normalization of host case,
	// percent-encoding, dot segments or a trailing slash.
	SANURI string
	// SANIP is tls_client_auth_san_ip, an IPv4 or IPv6 address compared in
	// binary form with each iPAddress SAN (MTLS-CA-08), so any textual form
	// of one IPv6 address matches; an IPv4-mapped IPv6 SAN does not match an
	// IPv4 registration, nor the reverse.
	SANIP string
	// SANEmail is tls_client_auth_san_email, compared with each rfc822Name
	// SAN: the local part exactly, the domain case-insensitively in ASCII.
	SANEmail string

	// Now returns the time used for validity checks. If nil, time.Now is used.
	Now func() time.Time
	// Revocation, if set, is asked about every certificate of the verified
	// chain below the root (MTLS-CA-09). If nil, revocation is not checked;
	// prefer short-lived certificates.
	Revocation RevocationChecker
}

type selector int

const (
	selDN selector = iota
	selDNS
	selURI
	selIP
	selEmail
)

// compiled is a validated PKIAuth selector.
type compiled struct {
	kind  selector
	dn    DistinguishedName
	ip    netip.Addr
	value string
}

// Validate checks the registration: Roots set and exactly one well-formed
// selector. It returns an error wrapping ErrInvalidConfig.
func (a PKIAuth) Validate() error {
	_, err := a.compile()
	return err
}

func (a PKIAuth) compile() (compiled, error) {
	if a.Roots == nil {
		return compiled{}, fmt.Errorf("%w: PKIAuth.Roots is required", ErrInvalidConfig)
	}
	var c compiled
	n := 0
	for i, v := range []string{a.SubjectDN, a.SANDNS, a.SANURI, a.SANIP, a.SANEmail} {
		if v != "" {
			n++
			c.kind = selector(i)
			c.value = v
		}
	}
	if n != 1 {
		return compiled{}, fmt.Errorf("%w: exactly one subject selector must be registered, found %d", ErrInvalidConfig, n)
	}
	// SAN entries are IA5 strings (crypto/x509 refuses a dNSName or
	// rfc822Name that is not), so a SAN selector is printable ASCII too: a
	// registration outside it could match only through Unicode case folding
	// (the Kelvin sign folds to "k") or re-encoding, never as written.
	if c.kind != selDN && !printableASCII(c.value) {
		return compiled{}, fmt.Errorf("%w: a SAN selector must be printable ASCII without spaces", ErrInvalidConfig)
	}
	switch c.kind {
	case selDN:
		dn, err := ParseDistinguishedName(c.value)
		if err != nil {
			return compiled{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		c.dn = dn
	case selDNS:
		if strings.ContainsAny(c.value, " \t\r\n/@") {
			return compiled{}, fmt.Errorf("%w: bad tls_client_auth_san_dns", ErrInvalidConfig)
		}
	case selURI:
		u, err := url.Parse(c.value)
		if err != nil || !u.IsAbs() {
			return compiled{}, fmt.Errorf("%w: tls_client_auth_san_uri must be an absolute URI", ErrInvalidConfig)
		}
		// crypto/x509 hands SAN URIs over as *url.URL; compare both sides
		// in the same url.URL.String form.
		c.value = u.String()
	case selIP:
		ip, err := netip.ParseAddr(c.value)
		if err != nil || ip.Zone() != "" {
			return compiled{}, fmt.Errorf("%w: bad tls_client_auth_san_ip", ErrInvalidConfig)
		}
		c.ip = ip
	case selEmail:
		at := strings.LastIndexByte(c.value, '@')
		if at <= 0 || at == len(c.value)-1 {
			return compiled{}, fmt.Errorf("%w: bad tls_client_auth_san_email", ErrInvalidConfig)
		}
	}
	return c, nil
}

func (c compiled) match(cert *x509.Certificate) bool {
	switch c.kind {
	case selDN:
		return c.dn.Match(cert)
	case selDNS:
		for _, d := range cert.DNSNames {
			if strings.EqualFold(d, c.value) {
				return true
			}
		}
	case selURI:
		for _, u := range cert.URIs {
			if u.String() == c.value {
				return true
			}
		}
	case selIP:
		for _, raw := range cert.IPAddresses {
			if ip, ok := netip.AddrFromSlice(raw); ok && ip == c.ip {
				return true
			}
		}
	case selEmail:
		for _, e := range cert.EmailAddresses {
			if emailEqual(e, c.value) {
				return true
			}
		}
	}
	return false
}

// printableASCII reports whether s holds only ASCII from '!' to '~'.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func emailEqual(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ia < 0 || ib < 0 {
		return false
	}
	return a[:ia] == b[:ib] && strings.EqualFold(a[ia+1:], b[ib+1:])
}

// Authenticate checks cert (the TLS client certificate) against the
// registration. chain holds any further certificates the client sent
// (r.TLS.PeerCertificates[1:]); they are used only as intermediates. The
// certificate itself must list the clientAuth extended key usage (a
// certificate without the extension is refused, although crypto/x509 would
// accept it for any purpose), and every CA above it must allow clientAuth. It
// returns nil on success, or an error wrapping ErrInvalidConfig,
// ErrNoCertificate, ErrUntrustedCertificate (no chain to Roots with
// clientAuth, expired, or a CA certificate), ErrCertificateMismatch
// (selector), ErrRevoked or ErrRevocationUnavailable. Token endpoints map
// all of them except ErrInvalidConfig to invalid_client.
func (a PKIAuth) Authenticate(ctx context.Context, cert *x509.Certificate, chain []*x509.Certificate) error {
	sel, err := a.compile()
	if err != nil {
		return err
	}
	if cert == nil {
		return ErrNoCertificate
	}
	if isCA(cert) {
		return fmt.Errorf("%w: CA certificate presented as client certificate", ErrUntrustedCertificate)
	}
	if err := checkKey(cert); err != nil {
		return err
	}
	if !hasClientAuth(cert) {
		return fmt.Errorf("%w: certificate does not list the clientAuth extended key usage", ErrUntrustedCertificate)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%w: certificate expired or not yet valid", ErrUntrustedCertificate)
	}
	inter := x509.NewCertPool()
	if a.Intermediates != nil {
		inter = a.Intermediates.Clone()
	}
	for _, c := range chain {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         a.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		// The x509 error may quote names from the attacker's certificate.
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return fmt.Errorf("%w: a certificate in the chain is expired or not yet valid", ErrUntrustedCertificate)
		}
		return fmt.Errorf("%w: no chain to a trusted root with clientAuth", ErrUntrustedCertificate)
	}
	if !sel.match(cert) {
		return fmt.Errorf("%w: %w", ErrCertificateMismatch, errSubjectMismatch)
	}
	if a.Revocation == nil {
		return nil
	}
	var lastErr error
	for _, ch := range chains {
		lastErr = checkChain(ctx, a.Revocation, ch)
		if lastErr == nil {
			return nil
		}
		if errors.Is(lastErr, ErrRevoked) {
			return lastErr
		}
	}
	return lastErr
}

// hasClientAuth reports whether cert explicitly lists clientAuth (or
// anyExtendedKeyUsage). crypto/x509 treats a leaf without the extension as
// valid for every purpose; tls_client_auth asks for an explicit grant.
func hasClientAuth(cert *x509.Certificate) bool {
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func checkChain(ctx context.Context, rc RevocationChecker, chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := rc.CheckRevocation(ctx, chain[i], chain[i+1]); err != nil {
			if errors.Is(err, ErrRevoked) || errors.Is(err, ErrRevocationUnavailable) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrRevocationUnavailable, err)
		}
	}
	return nil
}

// SelfSignedAuth is the self_signed_tls_client_auth method (RFC 8705 §2.2)
// for one registered client: the presented certificate must be byte-for-byte
// equal to one of Certificates. No chain is built and validity dates are not
// checked: registration is the trust decision. A certificate with the same
// key but other bytes (new serial or validity) does not match (ADV-93);
// rotating a certificate means registering the new one. A SelfSignedAuth is
// safe for concurrent use as long as it is not modified.
type SelfSignedAuth struct {
	// Certificates are the registered certificates.
	Certificates []*x509.Certificate
}

// MaxJWKSBytes caps the size of a JWKS or PEM registration document.
const MaxJWKSBytes = 1 << 20

// SelfSignedFromJWKS builds a SelfSignedAuth from a client's registered
// JWK Set (the jwks metadata or the document at jwks_uri). For each key with
// an x5c member the first certificate is registered; that certificate's
// public key must equal the JWK's key members (MTLS-CA-12) or the whole set
// is refused. Keys without x5c are skipped; a set with private key material,
// or with no certificate at all, is refused. Errors wrap ErrInvalidConfig.
func SelfSignedFromJWKS(jwks []byte) (SelfSignedAuth, error) {
	if len(jwks) > MaxJWKSBytes {
		return SelfSignedAuth{}, fmt.Errorf("%w: JWKS too large", ErrInvalidConfig)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		// go-jose refuses an x5c whose key differs from the JWK here.
		return SelfSignedAuth{}, fmt.Errorf("%w: bad JWKS (unparsable, or x5c does not match the key)", ErrInvalidConfig)
	}
	var out SelfSignedAuth
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return SelfSignedAuth{}, fmt.Errorf("%w: JWKS holds private key material", ErrInvalidConfig)
		}
		if len(k.Certificates) == 0 {
			continue
		}
		leaf := k.Certificates[0]
		pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(k.Key) {
			return SelfSignedAuth{}, fmt.Errorf("%w: x5c certificate key does not match the JWK", ErrInvalidConfig)
		}
		if err := pubkey.Check(leaf.PublicKey); err != nil {
			return SelfSignedAuth{}, fmt.Errorf("%w: certificate key: %w", ErrInvalidConfig, err)
		}
		out.Certificates = append(out.Certificates, leaf)
	}
	if len(out.Certificates) == 0 {
		return SelfSignedAuth{}, fmt.Errorf("%w: JWKS has no x5c certificate", ErrInvalidConfig)
	}
	return out, nil
}

// SelfSignedFromPEM builds a SelfSignedAuth from PEM CERTIFICATE blocks.
// Any other block type, trailing data, or no certificate is refused. Errors
// wrap ErrInvalidConfig.
func SelfSignedFromPEM(data []byte) (SelfSignedAuth, error) {
	if len(data) > MaxJWKSBytes {
		return SelfSignedAuth{}, fmt.Errorf("%w: PEM too large", ErrInvalidConfig)
	}
	var out SelfSignedAuth
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return SelfSignedAuth{}, fmt.Errorf("%w: unexpected PEM block", ErrInvalidConfig)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return SelfSignedAuth{}, fmt.Errorf("%w: bad certificate", ErrInvalidConfig)
		}
		if err := pubkey.Check(c.PublicKey); err != nil {
			return SelfSignedAuth{}, fmt.Errorf("%w: certificate key: %w", ErrInvalidConfig, err)
		}
		out.Certificates = append(out.Certificates, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 || len(out.Certificates) == 0 {
		return SelfSignedAuth{}, fmt.Errorf("%w: no certificate or trailing data", ErrInvalidConfig)
	}
	return out, nil
}

// Authenticate returns nil when cert is byte-equal to a registered
// certificate whose key meets the rules in the package documentation, an
// error wrapping ErrNoCertificate when cert is nil, one wrapping
// ErrUntrustedCertificate when the key does not meet them, and one
// wrapping ErrCertificateMismatch otherwise (MTLS-CA-10).
func (a SelfSignedAuth) Authenticate(ctx context.Context, cert *x509.Certificate) error {
	if cert == nil {
		return ErrNoCertificate
	}
	for _, c := range a.Certificates {
		if c != nil && len(c.Raw) > 0 && bytes.Equal(c.Raw, cert.Raw) {
			return checkKey(cert)
		}
	}
	return fmt.Errorf("%w: certificate is not registered", ErrCertificateMismatch)
}

// checkKey applies the client key rules of internal/pubkey to a client
// certificate's key. The TLS handshake proves possession of the key with a
// signature, which an Ed25519 key of small order does not make: anyone
// holding such a certificate could present it.
func checkKey(cert *x509.Certificate) error {
	if err := pubkey.Check(cert.PublicKey); err != nil {
		return fmt.Errorf("%w: certificate key not accepted: %w", ErrUntrustedCertificate, err)
	}
	return nil
}
