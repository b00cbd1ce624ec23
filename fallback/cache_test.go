package fallback

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"hash/maphash"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// movingClock is a clock the test sets.
type movingClock struct{ ns atomic.Int64 }

func (c *movingClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *movingClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func newMovingClock(t time.Time) *movingClock {
	c := &movingClock{}
	c.set(t)
	return c
}

// TestChainCacheRevocation: a chain served from the cache is refused on
// the very next request once a CRL listing it is installed, for mTLS and
// for signed requests alike.
func TestChainCacheRevocation(t *testing.T) {
	t.Parallel()
	k := keys(t)["P256"]
	for _, form := range []string{"mtls", "signed"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "P256")
			chain := w.issue(t, k, "c1")
			p := proverFor(t, k, chain)
			ctx := context.Background()
			verify := func() (*Identity, error) {
				if form == "mtls" {
					return w.v.VerifyChain(ctx, chain)
				}
				proof, err := p.Proof("GET", reqURL, dpop.ProofOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return w.v.VerifyRequest(ctx, proof, dpop.Expect{Method: "GET", URL: reqURL})
			}
			for i := range 2 {
				if _, err := verify(); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if w.v.cache.Len() != 1 {
				t.Fatalf("cache holds %d chains, want 1", w.v.cache.Len())
			}
			// The cached identity is a copy: changing it changes nothing.
			id, err := verify()
			if err != nil {
				t.Fatal(err)
			}
			id.Scopes[0] = "admin"
			id.Serial.SetInt64(1)
			if id, err := verify(); err != nil || id.Scopes[0] != registered[0] || id.Serial.Cmp(chain[0].SerialNumber) != 0 {
				t.Fatalf("identity %+v, %v", id, err)
			}
			if err := w.ca.Revoke(ctx, chain[0].SerialNumber); err != nil {
				t.Fatal(err)
			}
			w.refreshCRL(t)
			if _, err := verify(); !errors.Is(err, ErrRevoked) || ReasonOf(err) != oautherr.ReasonFallbackRevoked {
				t.Fatalf("after the CRL: %v, want ErrRevoked", err)
			}
		})
	}
}

// TestChainCacheClock: a cached chain is refused once its certificate
// expires or its CRL goes stale, exactly as an uncached one.
func TestChainCacheClock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)["P256b"]
	leaf := craft(t, w.root.Cert, w.root.Key, k.Public(), func(c *x509.Certificate) {
		c.NotAfter = testNow.Add(time.Hour)
	})
	tests := []struct {
		name   string
		at     time.Time
		want   error
		reason oautherr.Reason
	}{
		{name: "valid", at: testNow},
		{name: "expired", at: testNow.Add(2 * time.Hour), want: ErrExpired, reason: oautherr.ReasonFallbackExpired},
		{name: "before notBefore", at: testNow.Add(-time.Hour), want: ErrExpired, reason: oautherr.ReasonFallbackNotYetValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newMovingClock(testNow)
			v, err := NewVerifier(Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: w.crl, Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyChain(context.Background(), []*x509.Certificate{leaf}); err != nil {
				t.Fatal(err)
			}
			clock.set(tc.at)
			_, err = v.VerifyChain(context.Background(), []*x509.Certificate{leaf})
			if !errors.Is(err, tc.want) || ReasonOf(err) != tc.reason {
				t.Fatalf("got %v (%s), want %v (%s)", err, ReasonOf(err), tc.want, tc.reason)
			}
		})
	}

	// A long-lived certificate outlives the CRL: the cached chain is
	// refused with ErrCRLUnavailable once the CRL is stale.
	clock := newMovingClock(testNow)
	long := w.issue(t, k, "long")
	v, err := NewVerifier(Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: w.crl, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyChain(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	clock.set(w.crl.NextUpdate().Add(DefaultCRLGrace + time.Second))
	if _, err := v.VerifyChain(context.Background(), long); !errors.Is(err, ErrCRLUnavailable) || ReasonOf(err) != oautherr.ReasonFallbackCRLStale {
		t.Fatalf("stale CRL: %v", err)
	}
}

// TestChainCacheKeyMismatch: a signed request whose x5c is a cached chain
// but whose proof key is another one is refused.
func TestChainCacheKeyMismatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	chain := w.issue(t, k["P256"], "c1")
	ctx := context.Background()
	expect := dpop.Expect{Method: "GET", URL: reqURL}
	good, err := proverFor(t, k["P256"], chain).Proof("GET", reqURL, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.v.VerifyRequest(ctx, good, expect); err != nil {
		t.Fatal(err)
	}
	bad := handProof(t, k["P256b"], jose.ES256, b64s(chain...))
	if _, err := w.v.VerifyRequest(ctx, bad, expect); !errors.Is(err, ErrKeyMismatch) || ReasonOf(err) != oautherr.ReasonFallbackKeyMismatch {
		t.Fatalf("got %v, want ErrKeyMismatch", err)
	}
}

// TestChainCacheSize: the cache is bounded, and a negative size disables
// it.
func TestChainCacheSize(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)["P256b"]
	chains := [][]*x509.Certificate{w.issue(t, k, "a"), w.issue(t, k, "b"), w.issue(t, k, "c")}
	for _, tc := range []struct {
		size, want int
	}{{size: 2, want: 2}, {size: 0, want: 3}, {size: -1, want: 0}} {
		v := w.verifier(t, tc.size)
		for _, c := range chains {
			if _, err := v.VerifyChain(context.Background(), c); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		if v.cache != nil {
			n = v.cache.Len()
		}
		if n != tc.want {
			t.Errorf("size %d: %d chains cached, want %d", tc.size, n, tc.want)
		}
	}
	// The leaf alone and the leaf with its CA are different chains.
	if chainKeyOf(chains[0][:1]) == chainKeyOf(chains[0]) {
		t.Fatal("chain key ignores the CA certificate")
	}
}

// makeCA returns a self-signed P-256 CA certificate made from a CA
// template changed by edit, and its key.
func makeCA(tb testing.TB, key crypto.Signer, edit func(*x509.Certificate)) *x509.Certificate {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: "edge CA"},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          []byte{1, 2, 3, 4},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestIssuerOfMatchesVerify: the direct issuer check gives, for every
// edge case of CA and leaf, the CA and the refusal x509.Verify gives.
func TestIssuerOfMatchesVerify(t *testing.T) {
	t.Parallel()
	k := keys(t)
	caKey, leafKey := k["P256"], k["P256b"]
	ca := makeCA(t, caKey, nil)
	leafOf := func(parent *x509.Certificate, edit func(*x509.Certificate)) *x509.Certificate {
		return craft(t, parent, caKey, leafKey.Public(), func(c *x509.Certificate) {
			c.AuthorityKeyId = parent.SubjectKeyId
			if edit != nil {
				edit(c)
			}
		})
	}
	expiredCA := makeCA(t, caKey, func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Minute) })
	futureCA := makeCA(t, caKey, func(c *x509.Certificate) { c.NotBefore = testNow.Add(time.Hour) })
	serverCA := makeCA(t, caKey, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	anyCA := makeCA(t, caKey, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} })
	clientCA := makeCA(t, caKey, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	noSignCA := makeCA(t, caKey, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	otherKeyID := makeCA(t, caKey, func(c *x509.Certificate) { c.SubjectKeyId = []byte{9, 9} })
	otherKeyCA := makeCA(t, k["P384"], nil)
	constrained := makeCA(t, caKey, func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.test"} })

	tests := []struct {
		name string
		cas  []*x509.Certificate
		leaf *x509.Certificate
		want error
	}{
		{name: "issued by the CA", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, nil)},
		{name: "leaf expired", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Second) }), want: ErrExpired},
		{name: "leaf not yet valid", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, func(c *x509.Certificate) { c.NotBefore = testNow.Add(time.Minute) }), want: ErrExpired},
		{name: "CA expired", cas: []*x509.Certificate{expiredCA}, leaf: leafOf(expiredCA, nil), want: ErrUntrustedChain},
		{name: "CA not yet valid", cas: []*x509.Certificate{futureCA}, leaf: leafOf(futureCA, nil), want: ErrUntrustedChain},
		{name: "expired and valid CA of one name and key", cas: []*x509.Certificate{expiredCA, ca}, leaf: leafOf(ca, nil)},
		{name: "CA for serverAuth only", cas: []*x509.Certificate{serverCA}, leaf: leafOf(serverCA, nil), want: ErrNotClientAuth},
		{name: "CA for any usage", cas: []*x509.Certificate{anyCA}, leaf: leafOf(anyCA, nil)},
		{name: "CA for clientAuth", cas: []*x509.Certificate{clientCA}, leaf: leafOf(clientCA, nil)},
		{name: "serverAuth CA before a clientAuth CA", cas: []*x509.Certificate{serverCA, clientCA}, leaf: leafOf(ca, nil)},
		{name: "CA without certSign", cas: []*x509.Certificate{noSignCA}, leaf: leafOf(noSignCA, nil), want: ErrUntrustedChain},
		{name: "key identifiers differ", cas: []*x509.Certificate{otherKeyID}, leaf: leafOf(ca, nil)},
		{name: "matching key identifier first", cas: []*x509.Certificate{otherKeyID, ca}, leaf: leafOf(ca, nil)},
		{name: "same name, other key", cas: []*x509.Certificate{otherKeyCA}, leaf: leafOf(ca, nil), want: ErrUntrustedChain},
		{name: "leaf serverAuth only", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), want: ErrNotClientAuth},
		{name: "leaf with the CA's name", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, func(c *x509.Certificate) { c.Subject = ca.Subject }), want: nil},
		{name: "leaf is the CA", cas: []*x509.Certificate{ca}, leaf: ca, want: ErrUntrustedChain},
		{name: "leaf with certificate policies", cas: []*x509.Certificate{ca}, leaf: leafOf(ca, func(c *x509.Certificate) {
			c.PolicyIdentifiers = nil
			c.Policies = []x509.OID{mustOID(t, "1.3.6.1.4.1.32473.2")}
		})},
		// x509.Verify refuses the client_id URI under a DNS name
		// constraint; such a CA is left to it.
		{name: "CA with name constraints", cas: []*x509.Certificate{constrained}, leaf: leafOf(constrained, nil), want: ErrUntrustedChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(Config{CAs: tc.cas, CRL: sourceFunc(func() *RevocationList { return nil }), Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			got, gotErr := v.issuerOf(tc.leaf, testNow)
			ref, refErr := v.issuerByVerify(tc.leaf, testNow)
			if got != ref || ReasonOf(gotErr) != ReasonOf(refErr) || (gotErr == nil) != (refErr == nil) {
				t.Fatalf("issuerOf: %v, %v (%s); x509.Verify: %v, %v (%s)", got != nil, gotErr, ReasonOf(gotErr), ref != nil, refErr, ReasonOf(refErr))
			}
			if tc.want == nil && gotErr != nil || tc.want != nil && !errors.Is(gotErr, tc.want) {
				t.Fatalf("got %v, want %v", gotErr, tc.want)
			}
			// The crypto/x509 error is the cause, as from x509.Verify.
			if gotErr != nil && !errors.As(gotErr, new(x509.CertificateInvalidError)) && !errors.As(gotErr, new(x509.UnknownAuthorityError)) {
				t.Fatalf("no crypto/x509 cause in %v", gotErr)
			}
		})
	}
	if v, err := NewVerifier(Config{CAs: []*x509.Certificate{constrained}, CRL: sourceFunc(func() *RevocationList { return nil })}); err != nil || !v.general {
		t.Fatal("a CA with name constraints does not send leaves to x509.Verify")
	}
}

func mustOID(tb testing.TB, s string) x509.OID {
	tb.Helper()
	o, err := x509.ParseOID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// TestChainCacheSignedRequestKey: a signed request's chain is cached under
// its x5c strings as sent, apart from the DER keys of VerifyChain; a chain
// presented again is served from that entry (here marked, to tell a hit
// from a verification) while any other strings miss; a hit still compares
// the proof's jwk with the cached leaf key; malformed strings are refused
// before the proof is claimed.
func TestChainCacheSignedRequestKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	chain := w.issue(t, k["P256"], "c1")
	ctx := context.Background()
	expect := dpop.Expect{Method: "GET", URL: reqURL}
	p := proverFor(t, k["P256"], chain)
	request := func(v *Verifier) (*Identity, error) {
		t.Helper()
		proof, err := p.Proof("GET", reqURL, dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return v.VerifyRequest(ctx, proof, expect)
	}
	v := w.verifier(t, 0)
	if _, err := request(v); err != nil {
		t.Fatal(err)
	}
	key := encodedChainKey(b64s(chain...))
	if v.cache.Len() != 1 || !v.cache.Contains(key) || v.cache.Contains(chainKeyOf(chain)) {
		t.Fatalf("cache holds %d entries, encoded key %v, DER key %v", v.cache.Len(), v.cache.Contains(key), v.cache.Contains(chainKeyOf(chain)))
	}
	if key == encodedChainKey(b64s(chain[0])) || key == encodedChainKey([]string{b64s(chain...)[0] + b64s(chain...)[1]}) {
		t.Fatal("the key does not tell the strings apart")
	}
	e, _ := v.cache.Peek(key)
	e.clientID = "served from the cache"
	id, err := request(v)
	if err != nil || id.ClientID != "served from the cache" {
		t.Fatalf("second request: %v, %v; want the cached entry", id, err)
	}
	// The leaf alone: other strings, a verification, a second entry.
	leafOnly := handProof(t, k["P256"], jose.ES256, b64s(chain[0]))
	if id, err := v.VerifyRequest(ctx, leafOnly, expect); err != nil || id.ClientID != "c1" {
		t.Fatalf("leaf alone: %v, %v", id, err)
	}
	if v.cache.Len() != 2 {
		t.Fatalf("%d entries, want 2", v.cache.Len())
	}
	// A hit by another key's proof.
	bad := handProof(t, k["P256b"], jose.ES256, b64s(chain...))
	if _, err := v.VerifyRequest(ctx, bad, expect); !errors.Is(err, ErrKeyMismatch) || ReasonOf(err) != oautherr.ReasonFallbackKeyMismatch {
		t.Fatalf("other key after a hit: %v, want ErrKeyMismatch", err)
	}
	// Malformed strings miss and are refused by the dpop rules, twice:
	// the proof was not claimed.
	malformed := handProof(t, k["P256"], jose.ES256, []string{b64s(chain[0])[0][:8] + "\n" + b64s(chain[0])[0][8:]})
	for i := range 2 {
		_, err := v.VerifyRequest(ctx, malformed, expect)
		var de *dpop.Error
		if !errors.As(err, &de) || !errors.Is(err, dpop.ErrInvalidProof) || de.Reason != oautherr.ReasonProofX5C {
			t.Fatalf("malformed x5c, attempt %d: %v", i, err)
		}
	}
}

// TestChainCacheConcurrentSignedRequests: many goroutines presenting two
// chains, verified and then served from the cache, all succeed with their
// own identity, and each chain has one entry (run with -race).
func TestChainCacheConcurrentSignedRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	provers := map[string]*dpop.Prover{
		"a": proverFor(t, k["P256"], w.issue(t, k["P256"], "a")),
		"b": proverFor(t, k["P256b"], w.issue(t, k["P256b"], "b")),
	}
	const perGoroutine = 6
	type job struct{ client, proof string }
	var jobs [][]job
	for g := range 8 {
		var js []job
		for range perGoroutine {
			client := []string{"a", "b"}[g%2]
			proof, err := provers[client].Proof("GET", reqURL, dpop.ProofOptions{})
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, job{client, proof})
		}
		jobs = append(jobs, js)
	}
	v := w.verifier(t, 0)
	errs := make(chan error, len(jobs)*perGoroutine)
	done := make(chan struct{})
	for _, js := range jobs {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, j := range js {
				id, err := v.VerifyRequest(context.Background(), j.proof, dpop.Expect{Method: "GET", URL: reqURL})
				if err == nil && id.ClientID != j.client {
					err = errors.New("identity of another chain: " + id.ClientID)
				}
				errs <- err
			}
		}()
	}
	for range jobs {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v.cache.Len() != 2 {
		t.Fatalf("%d entries, want 2", v.cache.Len())
	}
}

// TestX5CKeys: the table gives encodedChainKey of exactly the strings
// asked for, whatever its slots hold.
func TestX5CKeys(t *testing.T) {
	t.Parallel()
	tab := &x5cKeys{seed: maphash.MakeSeed()}
	a := []string{"AQID", "+/8="}
	b := []string{"AQID+/8="}
	c := []string{"AQID\x00+/8="}
	for range 2 { // a miss, then a hit
		for _, enc := range [][]string{a, b, c, a[:1]} {
			if tab.key(enc) != encodedChainKey(enc) {
				t.Fatalf("key of %q is not encodedChainKey", enc)
			}
		}
	}
	if encodedChainKey(a) == encodedChainKey(b) || encodedChainKey(b) == encodedChainKey(c) {
		t.Fatal("encodedChainKey does not tell the strings apart")
	}
	// Every slot holding b's entry: a still gets its own key.
	for i := range tab.slots {
		tab.slots[i].Store(&x5cKey{enc: b, key: encodedChainKey(b)})
	}
	if tab.key(a) != encodedChainKey(a) {
		t.Fatal("an entry of other strings answered")
	}
}
