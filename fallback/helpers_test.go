package fallback

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
)

// testNow is the fixed clock of the tests, a whole second so that CRL
// times survive their encoding.
var testNow = time.Now().UTC().Truncate(time.Second)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var (
	keyOnce  sync.Once
	testKeys map[string]crypto.Signer
)

// keys returns keys generated once per test binary: P256, P256b, P384,
// P521, Ed25519, RSA2048, RSA1024, P224 (RSA4096 comes from key).
func keys(tb testing.TB) map[string]crypto.Signer {
	tb.Helper()
	keyOnce.Do(func() {
		must := func(k crypto.Signer, err error) crypto.Signer {
			if err != nil {
				panic(err)
			}
			return k
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		testKeys = map[string]crypto.Signer{
			"P256":    must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)),
			"P256b":   must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)),
			"P384":    must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
			"P521":    must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)),
			"P224":    must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader)),
			"Ed25519": ed,
			"RSA2048": must(rsa.GenerateKey(rand.Reader, 2048)),
			"RSA1024": must(rsa.GenerateKey(rand.Reader, 1024)),
		}
	})
	return testKeys
}

var (
	rsa4096Once sync.Once
	rsa4096     crypto.Signer
)

// key returns keys(tb)[name], generating the slow RSA-4096 key on first
// use only.
func key(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	if name != "RSA4096" {
		return keys(tb)[name]
	}
	rsa4096Once.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 4096)
		if err != nil {
			panic(err)
		}
		rsa4096 = k
	})
	return rsa4096
}

// csrFor returns a DER CSR signed with key.
func csrFor(tb testing.TB, key crypto.Signer) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// world is one fallback CA with a verifier in front of it.
type world struct {
	root *certs.CA // the CA certificate and key
	ca   *CA
	crl  *RevocationList
	v    *Verifier
}

var registered = []string{"read", "write", "admin:all"}

// newWorld builds a CA (key type caKey: "P256", "RSA2048", "RSA4096")
// whose clock is testNow, its first CRL, and a verifier with a replay
// store and a dpop verifier for signed requests.
func newWorld(tb testing.TB, caKey string) *world {
	tb.Helper()
	root, err := certs.NewCA(certs.Options{CommonName: "fallback test CA", Key: key(tb, caKey), NotBefore: testNow.Add(-time.Hour), TTL: 3 * 365 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return newWorldFrom(tb, root)
}

func newWorldFrom(tb testing.TB, root *certs.CA) *world {
	tb.Helper()
	ca, err := NewCA(CAConfig{Certificate: root.Cert, Signer: root.Key, Now: fixedClock(testNow)})
	if err != nil {
		tb.Fatal(err)
	}
	w := &world{root: root, ca: ca}
	w.refreshCRL(tb)
	w.v = w.verifier(tb, 0)
	return w
}

// verifier returns a new Verifier of the world's CA and CRL, with its own
// replay store and the given Config.ChainCacheSize.
func (w *world) verifier(tb testing.TB, cacheSize int) *Verifier {
	tb.Helper()
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.Config{
		Algorithms:    []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"},
		ReplayStore:   store,
		Now:           fixedClock(testNow),
		MaxProofBytes: 16 << 10,
	})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := NewVerifier(Config{
		CAs: []*x509.Certificate{w.root.Cert}, CRL: sourceFunc(func() *RevocationList { return w.crl }),
		Proofs: proofs, Now: fixedClock(testNow), ChainCacheSize: cacheSize,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// sourceFunc adapts a function to CRLSource.
type sourceFunc func() *RevocationList

func (f sourceFunc) Current() *RevocationList { return f() }

// refreshCRL signs a new CRL and makes it current.
func (w *world) refreshCRL(tb testing.TB) {
	tb.Helper()
	der, err := w.ca.CRL(context.Background(), testNow)
	if err != nil {
		tb.Fatal(err)
	}
	if w.crl, err = ParseRevocationList(der, w.root.Cert); err != nil {
		tb.Fatal(err)
	}
}

// issue issues a certificate for key with the registered scopes.
func (w *world) issue(tb testing.TB, key crypto.Signer, clientID string) []*x509.Certificate {
	tb.Helper()
	chain, err := w.ca.Issue(context.Background(), csrFor(tb, key), clientID, registered, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return chain
}

// craft signs a leaf for key with signer under parent (nil: self-signed), starting from a
// template like the one CA.Issue uses, after edit.
func craft(tb testing.TB, parent *x509.Certificate, signer crypto.Signer, key crypto.PublicKey, edit func(*x509.Certificate)) *x509.Certificate {
	tb.Helper()
	ext, err := MarshalScopes([]string{"read"})
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := randomSerial(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	u, _ := url.Parse(ClientURI(DefaultClientURIPrefix, "crafted"))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "crafted"},
		NotBefore:             testNow.Add(-time.Minute),
		NotAfter:              testNow.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		ExtraExtensions:       []pkix.Extension{{Id: DefaultScopesOID, Value: ext}},
	}
	if edit != nil {
		edit(tmpl)
	}
	if parent == nil {
		parent = tmpl // self-signed
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key, signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
