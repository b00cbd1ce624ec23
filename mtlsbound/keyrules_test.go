package mtlsbound

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// smallOrderSigner "holds" the Ed25519 identity point as its public key
// and signs everything with R = identity, S = 0, which crypto/ed25519
// accepts for that key: no private key is involved at all.
type smallOrderSigner struct{}

func (smallOrderSigner) Public() crypto.PublicKey {
	k := make(ed25519.PublicKey, ed25519.PublicKeySize)
	k[0] = 1
	return k
}

func (smallOrderSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	sig := make([]byte, ed25519.SignatureSize)
	sig[0] = 1
	return sig, nil
}

// smallOrderCert returns a client certificate for the identity key:
// self-signed when parent is nil, else issued by parent with parentKey.
func smallOrderCert(tb testing.TB, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "anyone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, DNSNames: []string{"anyone.example.test"},
	}
	var signer crypto.Signer = smallOrderSigner{}
	if parent == nil {
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(nil, tmpl, parent, smallOrderSigner{}.Public(), signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestSmallOrderCertificateHandshake shows the attack the key rules stop:
// a TLS client with no private key completes a handshake with a
// small-order Ed25519 certificate, so registering such a certificate
// would let anyone who has seen it authenticate.
func TestSmallOrderCertificateHandshake(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	cert := smallOrderCert(t, nil, nil)
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{f.server.TLSCertificate()},
		ClientAuth:   tls.RequireAnyClientCert,
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *x509.Certificate, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil || len(tc.ConnectionState().PeerCertificates) == 0 {
			got <- nil
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0]
	}()
	cliCfg := &tls.Config{
		RootCAs:      f.ca1.Pool(),
		ServerName:   "localhost",
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: smallOrderSigner{}}},
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("x"))
	peer := <-got
	if peer == nil {
		t.Fatal("the server refused the handshake; the test needs another witness, the rule stays")
	}
	auth := SelfSignedAuth{Certificates: []*x509.Certificate{cert}}
	if err := auth.Authenticate(context.Background(), peer); !errors.Is(err, ErrUntrustedCertificate) {
		t.Fatalf("Authenticate = %v, want ErrUntrustedCertificate", err)
	}
}

func TestClientCertificateKeyRules(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	self := smallOrderCert(t, nil, nil)
	issued := smallOrderCert(t, f.ca1.Cert, f.ca1.Key)
	pemOf := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	jwksOf := func(c *x509.Certificate) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: c.PublicKey, Certificates: []*x509.Certificate{c}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "rsa1024"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	rsaDER, err := x509.CreateCertificate(rand.Reader, rsaTmpl, rsaTmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := x509.ParseCertificate(rsaDER)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"SelfSignedFromPEM small order", func() error { _, err := SelfSignedFromPEM(pemOf(self)); return err }, ErrInvalidConfig},
		{"SelfSignedFromPEM RSA 1024", func() error { _, err := SelfSignedFromPEM(pemOf(rsa1024)); return err }, ErrInvalidConfig},
		{"SelfSignedFromJWKS RSA 1024", func() error { _, err := SelfSignedFromJWKS(jwksOf(rsa1024)); return err }, ErrInvalidConfig},
		{"SelfSignedAuth RSA 1024", func() error {
			return SelfSignedAuth{Certificates: []*x509.Certificate{rsa1024}}.Authenticate(ctx, rsa1024)
		}, ErrUntrustedCertificate},
		{"SelfSignedFromJWKS good key", func() error { _, err := SelfSignedFromJWKS(jwksOf(f.s1.Cert)); return err }, nil},
		{"SelfSignedAuth small order", func() error {
			return SelfSignedAuth{Certificates: []*x509.Certificate{self}}.Authenticate(ctx, self)
		}, ErrUntrustedCertificate},
		{"PKIAuth small order issued by a trusted CA", func() error {
			return PKIAuth{Roots: f.ca1.Pool(), SANDNS: "anyone.example.test"}.Authenticate(ctx, issued, nil)
		}, ErrUntrustedCertificate},
		{"SelfSignedFromPEM good key", func() error { _, err := SelfSignedFromPEM(pemOf(f.s1.Cert)); return err }, nil},
		{"SelfSignedAuth good key", func() error {
			return SelfSignedAuth{Certificates: []*x509.Certificate{f.s1.Cert}}.Authenticate(ctx, f.s1.Cert)
		}, nil},
	}
	for _, tc := range tests {
		if err := tc.run(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
