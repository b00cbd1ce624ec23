package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names used by WriteDir, LoadCA and LoadLeaf.
const (
	// CACertFile holds the CA certificate followed by its chain.
	CACertFile = "ca.pem"
	// CAKeyFile holds the CA's PKCS#8 private key (mode 0600).
	CAKeyFile = "ca-key.pem"
	// LeafCertFile holds a leaf certificate followed by its chain.
	LeafCertFile = "cert.pem"
	// LeafKeyFile holds the leaf's PKCS#8 private key (mode 0600).
	LeafKeyFile = "key.pem"
)

// EncodeCertificates returns the PEM encoding of certs, in order.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertificates parses every CERTIFICATE block of a PEM file. It fails on
// any other block type, on trailing garbage, and on an input with no
// certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certs: unexpected PEM block %q", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("certs: no certificate in PEM data")
	}
	for _, ch := range rest {
		if ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t' {
			return nil, errors.New("certs: trailing data after PEM blocks")
		}
	}
	return out, nil
}

// EncodeKey returns key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey parses a PKCS#8 "PRIVATE KEY" PEM block.
func ParseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("certs: no PKCS#8 PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: parse key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: key type %T cannot sign", k)
	}
	return s, nil
}

func writePair(dir, certName, keyName string, certPEM []byte, key crypto.Signer) error {
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, certName), certPEM, 0o644); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := writePrivate(filepath.Join(dir, keyName), keyPEM); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// writePrivate writes data to path with mode 0600. Unlike os.WriteFile it
// also narrows the mode of an existing file, before any key byte is written,
// so that replacing a key in a file that was once world-readable does not
// expose the new key.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readPair(dir, certName, keyName string) ([]*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(filepath.Join(dir, certName))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	kb, err := os.ReadFile(filepath.Join(dir, keyName))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	chain, err := ParseCertificates(cb)
	if err != nil {
		return nil, nil, err
	}
	key, err := ParseKey(kb)
	if err != nil {
		return nil, nil, err
	}
	if !publicKeyEqual(chain[0].PublicKey, key.Public()) {
		return nil, nil, errors.New("certs: private key does not match certificate")
	}
	return chain, key, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// WriteDir writes the CA certificate followed by its chain to dir/ca.pem and
// its PKCS#8 key to dir/ca-key.pem (mode 0600), creating dir if needed.
func (ca *CA) WriteDir(dir string) error {
	return writePair(dir, CACertFile, CAKeyFile, EncodeCertificates(append([]*x509.Certificate{ca.Cert}, ca.Chain...)...), ca.Key)
}

// LoadCA reads a CA written by WriteDir. It refuses a certificate that is not
// a CA and a key that does not match it.
func LoadCA(dir string) (*CA, error) {
	chain, key, err := readPair(dir, CACertFile, CAKeyFile)
	if err != nil {
		return nil, err
	}
	if !chain[0].IsCA {
		return nil, errors.New("certs: ca.pem is not a CA certificate")
	}
	return &CA{Cert: chain[0], Key: key, Chain: chain[1:]}, nil
}

// WriteDir writes the leaf certificate followed by its chain to dir/cert.pem
// and its PKCS#8 key to dir/key.pem (mode 0600), creating dir if needed.
func (l *Leaf) WriteDir(dir string) error {
	return writePair(dir, LeafCertFile, LeafKeyFile, EncodeCertificates(append([]*x509.Certificate{l.Cert}, l.Chain...)...), l.Key)
}

// LoadLeaf reads a certificate written by WriteDir. It refuses a key that
// does not match the certificate.
func LoadLeaf(dir string) (*Leaf, error) {
	chain, key, err := readPair(dir, LeafCertFile, LeafKeyFile)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: chain[0], Key: key, Chain: chain[1:]}, nil
}
