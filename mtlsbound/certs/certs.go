package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// KeyType selects the algorithm of a generated key.
type KeyType int

const (
	// ECDSAP256 is an ECDSA key on NIST P-256 (the default).
	ECDSAP256 KeyType = iota
	// RSA2048 is a 2048-bit RSA key.
	RSA2048
	// RSA3072 is a 3072-bit RSA key.
	RSA3072
)

// DefaultTTL is the validity used when Options.TTL is zero: 24 hours, short
// on purpose (short-lived certificates make revocation less critical).
const DefaultTTL = 24 * time.Hour

// DefaultCATTL is the validity of a CA created with a zero Options.TTL.
const DefaultCATTL = 365 * 24 * time.Hour

// Options describes a certificate to create. The zero value yields an ECDSA
// P-256 certificate with no names, valid from one minute ago for DefaultTTL
// (DefaultCATTL for a CA). Options is a plain value; it is not retained.
type Options struct {
	// CommonName is the subject CN. It overrides Subject.CommonName when set.
	CommonName string
	// Subject holds further subject attributes (O, OU, C, ...).
	Subject pkix.Name
	// RawSubject, when set, is used verbatim as the DER subject Name,
	// overriding CommonName and Subject (for multi-valued RDNs or unusual
	// string types).
	RawSubject []byte

	// DNSNames, URIs, IPAddresses and EmailAddresses are the SAN entries.
	DNSNames       []string
	URIs           []*url.URL
	IPAddresses    []net.IP
	EmailAddresses []string

	// NotBefore is the start of validity; zero means one minute before now.
	NotBefore time.Time
	// TTL is the validity length; zero means DefaultTTL (DefaultCATTL for CAs).
	// A negative TTL is refused; use NotBefore in the past to make an expired
	// certificate.
	TTL time.Duration

	// Client adds ExtKeyUsageClientAuth, Server adds ExtKeyUsageServerAuth.
	// A leaf with neither gets both.
	Client bool
	Server bool

	// KeyType selects the generated key's algorithm; ignored when Key is set.
	KeyType KeyType
	// Key, when set, is used instead of a fresh key (for example to re-issue
	// a certificate over the same key).
	Key crypto.Signer

	// ExtraExtensions are copied into the certificate verbatim.
	ExtraExtensions []pkix.Extension

	// CRLDistributionPoints are URLs of CRLs covering this certificate.
	CRLDistributionPoints []string
}

// CA is a certificate authority that issues leaf and intermediate
// certificates. A CA is safe for concurrent use once created.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Key is the CA's private key.
	Key crypto.Signer
	// Chain holds the certificates above Cert, nearest first, ending with the
	// root. It is empty for a root CA.
	Chain []*x509.Certificate
}

// Leaf is an issued end-entity certificate with its key.
type Leaf struct {
	// Cert is the end-entity certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// Chain holds the issuing CA certificates, nearest first, ending with the
	// root. It is empty for a self-signed certificate.
	Chain []*x509.Certificate
}

func newKey(o Options) (crypto.Signer, error) {
	if o.Key != nil {
		return o.Key, nil
	}
	switch o.KeyType {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("certs: unknown key type %d", o.KeyType)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func template(o Options, defTTL time.Duration) (*x509.Certificate, error) {
	if o.TTL < 0 {
		return nil, errors.New("certs: negative TTL")
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = defTTL
	}
	nb := o.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("certs: serial: %w", err)
	}
	subj := o.Subject
	if o.CommonName != "" {
		subj.CommonName = o.CommonName
	}
	return &x509.Certificate{
		SerialNumber:    sn,
		Subject:         subj,
		RawSubject:      append([]byte(nil), o.RawSubject...),
		NotBefore:       nb.UTC(),
		NotAfter:        nb.Add(ttl).UTC(),
		DNSNames:        append([]string(nil), o.DNSNames...),
		URIs:            append([]*url.URL(nil), o.URIs...),
		IPAddresses:     append([]net.IP(nil), o.IPAddresses...),
		EmailAddresses:  append([]string(nil), o.EmailAddresses...),
		ExtraExtensions: append([]pkix.Extension(nil), o.ExtraExtensions...),

		CRLDistributionPoints: append([]string(nil), o.CRLDistributionPoints...),
	}, nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse created certificate: %w", err)
	}
	return c, nil
}

// NewCA creates a self-signed root CA. CommonName defaults to
// "senderbound test CA" when neither CommonName nor Subject is set.
func NewCA(opts Options) (*CA, error) {
	key, err := newKey(opts)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(opts, key)
	if err != nil {
		return nil, err
	}
	c, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

func caTemplate(opts Options, key crypto.Signer) (*x509.Certificate, error) {
	tmpl, err := template(opts, DefaultCATTL)
	if err != nil {
		return nil, err
	}
	if tmpl.Subject.CommonName == "" && len(tmpl.Subject.Organization) == 0 {
		tmpl.Subject.CommonName = "senderbound test CA"
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if tmpl.SubjectKeyId, err = keyID(key.Public()); err != nil {
		return nil, err
	}
	return tmpl, nil
}

// NewIntermediate issues a subordinate CA signed by ca.
func (ca *CA) NewIntermediate(opts Options) (*CA, error) {
	key, err := newKey(opts)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(opts, key)
	if err != nil {
		return nil, err
	}
	c, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key, Chain: append([]*x509.Certificate{ca.Cert}, ca.Chain...)}, nil
}

// Issue creates an end-entity certificate signed by ca (basic constraints
// CA:false, key usage digitalSignature, plus keyEncipherment for RSA keys).
func (ca *CA) Issue(opts Options) (*Leaf, error) {
	key, err := newKey(opts)
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(opts, key)
	if err != nil {
		return nil, err
	}
	c, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: c, Key: key, Chain: append([]*x509.Certificate{ca.Cert}, ca.Chain...)}, nil
}

func leafTemplate(opts Options, key crypto.Signer) (*x509.Certificate, error) {
	tmpl, err := template(opts, DefaultTTL)
	if err != nil {
		return nil, err
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if opts.Client || !opts.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if opts.Server || !opts.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if tmpl.SubjectKeyId, err = keyID(key.Public()); err != nil {
		return nil, err
	}
	return tmpl, nil
}

// SelfSigned creates a self-signed end-entity certificate, as used by
// self_signed_tls_client_auth (RFC 8705 §2.2). With neither Client nor
// Server set it carries both EKUs.
func SelfSigned(opts Options) (*Leaf, error) {
	key, err := newKey(opts)
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(opts, key)
	if err != nil {
		return nil, err
	}
	c, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: c, Key: key}, nil
}

// Pool returns a new pool holding the root of ca's chain (ca itself for a
// root CA).
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root())
	return p
}

// Root returns the self-signed certificate at the top of ca's chain.
func (ca *CA) Root() *x509.Certificate {
	if len(ca.Chain) == 0 {
		return ca.Cert
	}
	return ca.Chain[len(ca.Chain)-1]
}

// Intermediates returns a pool holding the CA certificates of l's chain
// below the root (empty for a leaf issued by a root CA).
func (l *Leaf) Intermediates() *x509.CertPool {
	p := x509.NewCertPool()
	for i, c := range l.Chain {
		if i == len(l.Chain)-1 {
			break
		}
		p.AddCert(c)
	}
	return p
}

// TLSCertificate returns l as a tls.Certificate: the leaf followed by the
// intermediates (the root is not sent), with Leaf populated.
func (l *Leaf) TLSCertificate() tls.Certificate {
	chain := [][]byte{l.Cert.Raw}
	for i, c := range l.Chain {
		if i == len(l.Chain)-1 {
			break
		}
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: l.Key, Leaf: l.Cert}
}

// RevocationListOptions describes a CRL to sign.
type RevocationListOptions struct {
	// Revoked lists the certificates to revoke (by serial number).
	Revoked []*x509.Certificate
	// Number is the CRL number; zero means 1.
	Number int64
	// ThisUpdate defaults to now; NextUpdate defaults to ThisUpdate + 1 hour.
	ThisUpdate, NextUpdate time.Time
}

// RevocationList signs a DER-encoded X.509 v2 CRL with ca's key.
func (ca *CA) RevocationList(opts RevocationListOptions) ([]byte, error) {
	this := opts.ThisUpdate
	if this.IsZero() {
		this = time.Now()
	}
	next := opts.NextUpdate
	if next.IsZero() {
		next = this.Add(time.Hour)
	}
	num := opts.Number
	if num == 0 {
		num = 1
	}
	var entries []x509.RevocationListEntry
	for _, c := range opts.Revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: this})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(num),
		ThisUpdate:                this,
		NextUpdate:                next,
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CRL: %w", err)
	}
	return der, nil
}
