package fallback

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
)

func TestIssue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	for _, name := range []string{"P256", "P384", "P521", "Ed25519", "RSA2048", "RSA4096"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := key(t, name)
			chain, err := w.ca.Issue(context.Background(), csrFor(t, key), "svc/a b", registered, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 2 || chain[1] != w.root.Cert {
				t.Fatal("chain is not leaf + CA")
			}
			c := chain[0]
			if err := c.CheckSignatureFrom(w.root.Cert); err != nil {
				t.Fatal(err)
			}
			if !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Fatal("certificate is not for the CSR's key")
			}
			if c.IsCA || !c.BasicConstraintsValid {
				t.Fatal("leaf is a CA or lacks basic constraints")
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Fatalf("key usage %v", c.KeyUsage)
			}
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(c.UnknownExtKeyUsage) != 0 {
				t.Fatalf("extended key usage %v", c.ExtKeyUsage)
			}
			if len(c.URIs) != 1 || c.URIs[0].String() != "urn:senderbound:client:svc%2Fa%20b" {
				t.Fatalf("URIs %v", c.URIs)
			}
			if c.Subject.CommonName != "svc/a b" {
				t.Fatalf("subject %v", c.Subject)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Fatalf("serial of %d bits", c.SerialNumber.BitLen())
			}
			if !bytes.Equal(c.AuthorityKeyId, w.root.Cert.SubjectKeyId) || len(c.AuthorityKeyId) == 0 {
				t.Fatal("authority key identifier is not the CA's key identifier")
			}
			if !c.NotBefore.Equal(testNow.Add(-time.Minute)) || !c.NotAfter.Equal(testNow.Add(DefaultLifetime)) {
				t.Fatalf("validity %v to %v", c.NotBefore, c.NotAfter)
			}
			got, err := ScopesFromCertificate(c, nil)
			if err != nil || !slices.Equal(got, registered) {
				t.Fatalf("scopes %q, %v", got, err)
			}
			for _, e := range c.Extensions {
				if e.Id.Equal(DefaultScopesOID) && e.Critical {
					t.Fatal("scopes extension is critical")
				}
			}
			id, err := w.v.VerifyChain(context.Background(), chain)
			if err != nil {
				t.Fatal(err)
			}
			if id.ClientID != "svc/a b" || !slices.Equal(id.Scopes, registered) || id.Serial.Cmp(c.SerialNumber) != 0 {
				t.Fatalf("identity %+v", id)
			}
		})
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	a := w.issue(t, keys(t)["P256b"], "c1")[0]
	b := w.issue(t, keys(t)["P256b"], "c1")[0]
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Fatal("two certificates share a serial number")
	}
}

func TestIssueScopes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	csr := csrFor(t, keys(t)["P256b"])
	tests := []struct {
		name      string
		requested []string
		want      []string
		wantErr   error
		reason    oautherr.Reason
	}{
		{name: "empty request gets all registered", requested: nil, want: registered},
		{name: "subset", requested: []string{"write"}, want: []string{"write"}},
		{name: "repeated request collapses", requested: []string{"read", "read"}, want: []string{"read"}},
		{name: "scope not registered", requested: []string{"read", "delete"}, wantErr: ErrScopeNotGranted, reason: oautherr.ReasonFallbackScopeNotRegistered},
		{name: "prefix of a registered scope", requested: []string{"admin"}, wantErr: ErrScopeNotGranted, reason: oautherr.ReasonFallbackScopeNotRegistered},
		{name: "two scopes in one token", requested: []string{"read write"}, wantErr: ErrScopeNotGranted, reason: oautherr.ReasonFallbackScopeSyntax},
		{name: "empty scope", requested: []string{""}, wantErr: ErrScopeNotGranted, reason: oautherr.ReasonFallbackScopeSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chain, err := w.ca.Issue(context.Background(), csr, "c1", registered, tc.requested)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || ReasonOf(err) != tc.reason || chain != nil {
					t.Fatalf("got %v, want %v (%s)", err, tc.wantErr, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := ScopesFromCertificate(chain[0], nil)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("scopes %q, %v", got, err)
			}
		})
	}
}

// corrupt returns csr with the last byte of its signature flipped.
func corrupt(der []byte) []byte {
	b := slices.Clone(der)
	b[len(b)-1] ^= 1
	return b
}

// withEd25519Key returns an Ed25519 CSR whose public key bytes are
// replaced by pub (its signature no longer verifies).
func withEd25519Key(tb testing.TB, pub []byte) []byte {
	tb.Helper()
	k := keys(tb)["Ed25519"]
	der := csrFor(tb, k)
	old := []byte(k.Public().(ed25519.PublicKey))
	i := bytes.Index(der, old)
	if i < 0 {
		tb.Fatal("key not found in CSR")
	}
	out := slices.Clone(der)
	copy(out[i:], pub)
	return out
}

// otherExponent returns an RSA-2048 CSR whose public exponent is changed
// from 65537 to 65539 (same length; the signature no longer verifies).
func otherExponent(tb testing.TB) []byte {
	tb.Helper()
	der := csrFor(tb, keys(tb)["RSA2048"])
	i := bytes.Index(der, []byte{0x02, 0x03, 0x01, 0x00, 0x01})
	if i < 0 {
		tb.Fatal("exponent not found in CSR")
	}
	out := slices.Clone(der)
	out[i+4] = 0x03
	return out
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	good := csrFor(t, k["P256b"])
	small := make([]byte, 32) // y = 0: a point of order 4
	nonCanonical := bytes.Repeat([]byte{0xff}, 32)
	nonCanonical[0], nonCanonical[31] = 0xee, 0x7f // y = p + 1
	otherEd, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		csr      []byte
		clientID string
		want     error
		reason   oautherr.Reason
	}{
		{name: "bad CSR signature", csr: corrupt(good), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRSignature},
		{name: "truncated CSR", csr: good[:len(good)/2], want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRMalformed},
		{name: "trailing bytes after CSR", csr: append(slices.Clone(good), 0), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRMalformed},
		{name: "garbage", csr: []byte("-----BEGIN CERTIFICATE REQUEST-----"), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRMalformed},
		{name: "empty", csr: nil, want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRMalformed},
		{name: "too large", csr: make([]byte, DefaultMaxCSRBytes+1), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRTooLarge},
		{name: "RSA 1024", csr: csrFor(t, k["RSA1024"]), want: ErrKeyNotAccepted, reason: oautherr.ReasonFallbackKeySize},
		{name: "RSA e=65539", csr: otherExponent(t), want: ErrKeyNotAccepted, reason: oautherr.ReasonFallbackKeySize},
		{name: "P-224", csr: csrFor(t, k["P224"]), want: ErrKeyNotAccepted, reason: oautherr.ReasonFallbackKeyType},
		{name: "Ed25519 small order", csr: withEd25519Key(t, small), want: ErrKeyNotAccepted, reason: oautherr.ReasonFallbackKeyWeak},
		{name: "Ed25519 non-canonical", csr: withEd25519Key(t, nonCanonical), want: ErrKeyNotAccepted, reason: oautherr.ReasonFallbackKeyWeak},
		{name: "Ed25519 key of another holder", csr: withEd25519Key(t, otherEd), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackCSRSignature},
		{name: "empty client_id", csr: good, clientID: "-", want: ErrInvalidCSR, reason: oautherr.ReasonFallbackClientIDInvalid},
		{name: "control character in client_id", csr: good, clientID: "a\nb", want: ErrInvalidCSR, reason: oautherr.ReasonFallbackClientIDInvalid},
		{name: "invalid UTF-8 client_id", csr: good, clientID: "a\xffb", want: ErrInvalidCSR, reason: oautherr.ReasonFallbackClientIDInvalid},
		{name: "overlong client_id", csr: good, clientID: strings.Repeat("c", MaxClientIDLen+1), want: ErrInvalidCSR, reason: oautherr.ReasonFallbackClientIDInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := tc.clientID
			switch id {
			case "":
				id = "c1"
			case "-":
				id = ""
			}
			chain, err := w.ca.Issue(context.Background(), tc.csr, id, registered, nil)
			if !errors.Is(err, tc.want) || chain != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.reason != "" && ReasonOf(err) != tc.reason {
				t.Fatalf("reason %q, want %q", ReasonOf(err), tc.reason)
			}
		})
	}
}

func TestNewCARefuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	leaf := w.issue(t, keys(t)["P256b"], "c1")[0]
	tests := []struct {
		name string
		cfg  CAConfig
	}{
		{name: "no certificate", cfg: CAConfig{Signer: w.root.Key}},
		{name: "no signer", cfg: CAConfig{Certificate: w.root.Cert}},
		{name: "not a CA", cfg: CAConfig{Certificate: leaf, Signer: keys(t)["P256b"]}},
		{name: "signer of another key", cfg: CAConfig{Certificate: w.root.Cert, Signer: keys(t)["P256b"]}},
		{name: "prefix with percent", cfg: CAConfig{Certificate: w.root.Cert, Signer: w.root.Key, ClientURIPrefix: "urn:x:%"}},
		{name: "relative prefix", cfg: CAConfig{Certificate: w.root.Cert, Signer: w.root.Key, ClientURIPrefix: "client/"}},
		{name: "CRL point not http", cfg: CAConfig{Certificate: w.root.Cert, Signer: w.root.Key, CRLDistributionPoint: "ldap://x/crl"}},
		{name: "negative lifetime", cfg: CAConfig{Certificate: w.root.Cert, Signer: w.root.Key, Lifetime: -time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewCA(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestIssueLifetimeCappedByCA(t *testing.T) {
	t.Parallel()
	root, err := certs.NewCA(certs.Options{NotBefore: testNow.Add(-time.Hour), TTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA(CAConfig{Certificate: root.Cert, Signer: root.Key, Now: fixedClock(testNow), Lifetime: 365 * 24 * time.Hour, CRLDistributionPoint: "https://as.example.test/crl"})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.Issue(context.Background(), csrFor(t, keys(t)["P256"]), "c1", registered, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].NotAfter.Equal(root.Cert.NotAfter) {
		t.Fatalf("notAfter %v, CA's %v", chain[0].NotAfter, root.Cert.NotAfter)
	}
	if !slices.Equal(chain[0].CRLDistributionPoints, []string{"https://as.example.test/crl"}) {
		t.Fatalf("CRL distribution points %v", chain[0].CRLDistributionPoints)
	}
}

func TestClientURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id, uri string
	}{
		{"c1", "urn:senderbound:client:c1"},
		{"a-b.c_d~e", "urn:senderbound:client:a-b.c_d~e"},
		{"svc/a b", "urn:senderbound:client:svc%2Fa%20b"},
		{"%41", "urn:senderbound:client:%2541"},
		{"é", "urn:senderbound:client:%C3%A9"},
		{"a:b?c#d", "urn:senderbound:client:a%3Ab%3Fc%23d"},
	}
	for _, tc := range tests {
		if got := ClientURI(DefaultClientURIPrefix, tc.id); got != tc.uri {
			t.Errorf("ClientURI(%q) = %q, want %q", tc.id, got, tc.uri)
		}
		if got, ok := ClientIDFromURI(DefaultClientURIPrefix, tc.uri); !ok || got != tc.id {
			t.Errorf("ClientIDFromURI(%q) = %q, %v", tc.uri, got, ok)
		}
	}
	for _, bad := range []string{
		"urn:senderbound:client:",            // empty
		"urn:senderbound:client:svc%2fa",     // lower-case hex
		"urn:senderbound:client:%61",         // escaped unreserved
		"urn:senderbound:client:svc/a",       // unescaped reserved
		"urn:senderbound:client:a%2",         // truncated escape
		"urn:senderbound:client:a%0A",        // control character
		"urn:senderbound:clientx:a",          // other prefix
		"URN:senderbound:client:a",           // case differs
		"urn:senderbound:client:a?x=1",       // query
		"urn:senderbound:client:%C3",         // invalid UTF-8
		"https://as.example.test/clients/c1", // another form
	} {
		if id, ok := ClientIDFromURI(DefaultClientURIPrefix, bad); ok {
			t.Errorf("ClientIDFromURI(%q) accepted as %q", bad, id)
		}
	}
}
