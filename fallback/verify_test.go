package fallback

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
)

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	pub := k["P256b"].Public()
	good := w.issue(t, k["P256b"], "c1")
	revoked := w.issue(t, k["P256b"], "c2")
	if err := w.ca.Revoke(context.Background(), revoked[0].SerialNumber); err != nil {
		t.Fatal(err)
	}
	w.refreshCRL(t)

	foreign, err := certs.NewCA(certs.Options{CommonName: "foreign CA"})
	if err != nil {
		t.Fatal(err)
	}
	// A CA with the fallback CA's name and key identifier but another key.
	forger, err := certs.NewCA(certs.Options{Subject: w.root.Cert.Subject})
	if err != nil {
		t.Fatal(err)
	}
	forgerCert := *forger.Cert
	forgerCert.SubjectKeyId = w.root.Cert.SubjectKeyId
	inter, err := w.root.NewIntermediate(certs.Options{CommonName: "intermediate"})
	if err != nil {
		t.Fatal(err)
	}
	signed := func(edit func(*x509.Certificate)) *x509.Certificate {
		return craft(t, w.root.Cert, w.root.Key, pub, edit)
	}
	otherOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 9, 9}
	val, _ := MarshalScopes([]string{"read"})
	uri := func(s string) *url.URL { u, _ := url.Parse(s); return u }

	tests := []struct {
		name   string
		chain  []*x509.Certificate
		want   error
		reason oautherr.Reason
	}{
		{name: "issued by the CA", chain: good},
		{name: "leaf alone", chain: good[:1]},
		{name: "crafted with the same template", chain: []*x509.Certificate{signed(nil)}},
		{name: "empty", chain: nil, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackEmptyChain},
		{name: "nil leaf", chain: []*x509.Certificate{nil}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackEmptyChain},
		{name: "longer than the bound", chain: []*x509.Certificate{good[0], w.root.Cert, w.root.Cert, w.root.Cert}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackChainTooLong},
		{name: "foreign CA", chain: []*x509.Certificate{craft(t, foreign.Cert, foreign.Key, pub, nil), foreign.Cert}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackUntrustedChain},
		{name: "foreign CA presenting the fallback CA", chain: []*x509.Certificate{craft(t, foreign.Cert, foreign.Key, pub, nil), w.root.Cert}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackUntrustedChain},
		{name: "forged: same issuer name, other key", chain: []*x509.Certificate{craft(t, &forgerCert, forger.Key, pub, nil)}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackUntrustedChain},
		{name: "self-signed", chain: []*x509.Certificate{craft(t, nil, k["P256b"], pub, func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "self"} })}, want: ErrUntrustedChain},
		{name: "issued by an intermediate", chain: []*x509.Certificate{craft(t, inter.Cert, inter.Key, pub, nil), inter.Cert}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackUntrustedChain},
		{name: "expired", chain: []*x509.Certificate{signed(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = testNow.Add(-48*time.Hour), testNow.Add(-time.Second)
		})}, want: ErrExpired, reason: oautherr.ReasonFallbackExpired},
		{name: "not yet valid", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.NotBefore = testNow.Add(time.Hour) })}, want: ErrExpired, reason: oautherr.ReasonFallbackNotYetValid},
		{name: "serverAuth only", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNotClientAuth},
		{name: "no extended key usage", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.ExtKeyUsage = nil })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNotClientAuth},
		{name: "any extended key usage", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNotClientAuth},
		{name: "leaf is a CA", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackLeafIsCA},
		{name: "no URI SAN", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.URIs = nil; c.DNSNames = []string{"c1.example.test"} })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNoClientID},
		{name: "two URI SANs", chain: []*x509.Certificate{signed(func(c *x509.Certificate) {
			c.URIs = append(c.URIs, uri("urn:senderbound:client:admin"))
		})}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNoClientID},
		{name: "URI SAN with another prefix", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.URIs = []*url.URL{uri("https://as.example.test/c1")} })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNoClientID},
		{name: "URI SAN not canonical", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.URIs = []*url.URL{uri("urn:senderbound:client:%61dmin")} })}, want: ErrNotClientAuth, reason: oautherr.ReasonFallbackNoClientID},
		{name: "revoked", chain: revoked, want: ErrRevoked, reason: oautherr.ReasonFallbackRevoked},
		{name: "scopes extension missing", chain: []*x509.Certificate{signed(func(c *x509.Certificate) { c.ExtraExtensions = nil })}, want: ErrScopesMalformed, reason: oautherr.ReasonFallbackScopesMissing},
		{name: "scopes extension malformed", chain: []*x509.Certificate{signed(func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: DefaultScopesOID, Value: []byte{0x30, 0x03, 0x13, 0x01, 'a'}}}
		})}, want: ErrScopesMalformed, reason: oautherr.ReasonFallbackScopesMalformed},
		{name: "scopes extension critical", chain: []*x509.Certificate{signed(func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: DefaultScopesOID, Critical: true, Value: val}}
		})}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackCriticalExtension},
		{name: "unknown critical extension", chain: []*x509.Certificate{signed(func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: otherOID, Critical: true, Value: []byte{5, 0}})
		})}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackCriticalExtension},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := w.v.VerifyChain(context.Background(), tc.chain)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if id.CertThumbprint != mtlsbound.Thumbprint(tc.chain[0]) || !id.NotAfter.Equal(tc.chain[0].NotAfter) || id.Serial.Cmp(tc.chain[0].SerialNumber) != 0 {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if !errors.Is(err, tc.want) || id != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.reason != "" && ReasonOf(err) != tc.reason {
				t.Fatalf("reason %q, want %q", ReasonOf(err), tc.reason)
			}
		})
	}
	id, err := w.v.VerifyChain(context.Background(), good)
	if err != nil || id.ClientID != "c1" || !slices.Equal(id.Scopes, registered) {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

// TestVerifyChainCRLState: revocation fails closed.
func TestVerifyChainCRLState(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	chain := w.issue(t, keys(t)["P256b"], "c1")
	other := newWorld(t, "P256")
	next := w.crl.NextUpdate()
	tests := []struct {
		name   string
		crl    *RevocationList
		now    time.Time
		grace  time.Duration
		want   error
		reason oautherr.Reason
	}{
		{name: "fresh", crl: w.crl, now: testNow},
		{name: "past nextUpdate, within grace", crl: w.crl, now: next.Add(30 * time.Minute)},
		{name: "past nextUpdate and grace", crl: w.crl, now: next.Add(DefaultCRLGrace + time.Second), want: ErrCRLUnavailable, reason: oautherr.ReasonFallbackCRLStale},
		{name: "custom grace", crl: w.crl, now: next.Add(2 * time.Minute), grace: time.Minute, want: ErrCRLUnavailable, reason: oautherr.ReasonFallbackCRLStale},
		{name: "no CRL yet", crl: nil, now: testNow, want: ErrCRLUnavailable, reason: oautherr.ReasonFallbackCRLUnavailable},
		{name: "CRL of another CA", crl: other.crl, now: testNow, want: ErrCRLUnavailable, reason: oautherr.ReasonFallbackCRLOtherIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crl := tc.crl
			v, err := NewVerifier(Config{
				CAs: []*x509.Certificate{w.root.Cert}, CRL: sourceFunc(func() *RevocationList { return crl }),
				CRLGrace: tc.grace, Now: fixedClock(tc.now),
			})
			if err != nil {
				t.Fatal(err)
			}
			// The leaf is valid at every one of these instants.
			_, err = v.VerifyChain(context.Background(), chain)
			if !errors.Is(err, tc.want) || (tc.want != nil && ReasonOf(err) != tc.reason) {
				t.Fatalf("got %v, want %v (%s)", err, tc.want, tc.reason)
			}
		})
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	leaf := w.issue(t, keys(t)["P256b"], "c1")[0]
	src := sourceFunc(func() *RevocationList { return nil })
	cas := []*x509.Certificate{w.root.Cert}
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no CAs", cfg: Config{CRL: src}},
		{name: "no CRL source", cfg: Config{CAs: cas}},
		{name: "leaf as CA", cfg: Config{CAs: []*x509.Certificate{leaf}, CRL: src}},
		{name: "nil CA", cfg: Config{CAs: []*x509.Certificate{nil}, CRL: src}},
		{name: "negative grace", cfg: Config{CAs: cas, CRL: src, CRLGrace: -time.Second}},
		{name: "chain bound above MaxX5C", cfg: Config{CAs: cas, CRL: src, MaxChainLength: 9}},
		{name: "big OID arc", cfg: Config{CAs: cas, CRL: src, ScopesOID: asn1.ObjectIdentifier{2, 25, 1 << 40}}},
		{name: "bad prefix", cfg: Config{CAs: cas, CRL: src, ClientURIPrefix: "nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewVerifier(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
