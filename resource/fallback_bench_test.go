package resource_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/internal/benchratio"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// tableURL is the resource the table's requests address.
const tableURL = "https://rs.example.test/resource"

// tableKey is one key type of the table: the same key signs the access
// tokens, is the fallback CA's key and the client's key, so that every
// row of the type compares with one raw signature verification.
type tableKey struct {
	name string
	alg  jose.SignatureAlgorithm
	gen  func() (crypto.Signer, error)
}

var tableKeys = []tableKey{
	{"RS256-2048", jose.RS256, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
	{"RS256-4096", jose.RS256, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 4096) }},
	{"ES256", jose.ES256, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
}

var (
	tableKeyOnce sync.Once
	tableSigners map[string]crypto.Signer
	tableKeyErr  error
)

// tableSigner returns the key of k, generated once per test binary (an
// RSA-4096 key takes seconds).
func tableSigner(tb testing.TB, k tableKey) crypto.Signer {
	tb.Helper()
	tableKeyOnce.Do(func() {
		tableSigners = map[string]crypto.Signer{}
		for _, k := range tableKeys {
			s, err := k.gen()
			if err != nil {
				tableKeyErr = err
				return
			}
			tableSigners[k.name] = s
		}
	})
	if tableKeyErr != nil {
		tb.Fatal(tableKeyErr)
	}
	return tableSigners[k.name]
}

// tableRow is one line of the table. prepare does the setup of n calls
// (signing n single-use proofs, warming a cache) outside any timing and
// returns the operation; call i (0 to n-1) uses the i-th prepared input.
// The operation returns an error when the call does not succeed as the
// row expects.
type tableRow struct {
	name    string
	raw     func()
	prepare func(tb testing.TB, n int) func(i int) error
}

// tableRawVerify returns the raw signature verification of key: the CA's
// signature over the leaf, SHA-256 of the TBS certificate included, as
// the chain check cannot avoid it; the access token's and the proof's
// signatures cost the same with the same key. It panics if the signature
// does not verify.
func tableRawVerify(tb testing.TB, leaf *x509.Certificate, key crypto.Signer) func() {
	tb.Helper()
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return func() {
			d := sha256.Sum256(leaf.RawTBSCertificate)
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], leaf.Signature) != nil {
				panic("raw verify failed")
			}
		}
	case *ecdsa.PublicKey:
		return func() {
			d := sha256.Sum256(leaf.RawTBSCertificate)
			if !ecdsa.VerifyASN1(pub, d[:], leaf.Signature) {
				panic("raw verify failed")
			}
		}
	}
	tb.Fatalf("unexpected key type %T", key)
	return nil
}

// checkAs returns an error unless Check accepted r under p with binding
// want.
func checkAs(v *resource.Verifier, r *http.Request, p resource.Policy, want resource.Binding) error {
	pr, err := v.Check(r, p)
	if err != nil {
		return err
	}
	if pr.Binding != want {
		return fmt.Errorf("binding %q, want %q", pr.Binding, want)
	}
	return nil
}

// fallbackTableRows builds the rows of one key type: access-token
// validation, chain validation from parsed, DER and base64 (chain cache
// off), and the two fallback paths through Check, mTLS and signed
// request, each with the chain cache off (cold) and on (warm).
func fallbackTableRows(tb testing.TB, k tableKey) []tableRow {
	tb.Helper()
	ctx := context.Background()
	key := tableSigner(tb, k)
	t0 := time.Unix(1_900_000_000, 0)
	now := func() time.Time { return t0 }
	root, err := certs.NewCA(certs.Options{CommonName: "Fallback CA", Key: key, NotBefore: t0.Add(-time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Now: now, CRLLifetime: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		tb.Fatal(err)
	}
	chain, err := ca.Issue(ctx, csr, "svc", []string{"read", "write"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := ca.CRL(ctx, t0)
	if err != nil {
		tb.Fatal(err)
	}
	crl, err := fallback.ParseRevocationList(der, root.Cert)
	if err != nil {
		tb.Fatal(err)
	}
	src := &crlSource{}
	src.p.Store(crl)
	fallbackVerifier := func(cacheSize int) *fallback.Verifier {
		store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 22, Now: now})
		if err != nil {
			tb.Fatal(err)
		}
		proofs, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{string(k.alg)}, ReplayStore: store, Now: now, MaxProofBytes: 16 << 10})
		if err != nil {
			tb.Fatal(err)
		}
		fv, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{root.Cert}, CRL: src, Proofs: proofs, Now: now, ChainCacheSize: cacheSize})
		if err != nil {
			tb.Fatal(err)
		}
		return fv
	}
	cold, warm := fallbackVerifier(-1), fallbackVerifier(0)
	// The token issuer signs with key; the token cache is off, so every
	// Check verifies the token's signature.
	e := restest.NewEnv(tb, restest.Options{Mod: func(e *restest.Env, c *resource.Config) {
		e.AS = &restest.Issuer{ID: e.AS.ID, Alg: k.alg, Key: key, KID: "table-1"}
		ks, err := resource.NewStaticKeySet(e.AS.JWKS())
		if err != nil {
			tb.Fatal(err)
		}
		c.Issuers = []resource.Issuer{{Identifier: e.AS.ID, Keys: ks}}
		c.TokenCacheSize = -1
		c.PublicURL = "https://rs.example.test"
		c.Fallback = cold
	}})
	resourceVerifier := func(fv *fallback.Verifier) *resource.Verifier {
		cfg := e.Config
		cfg.Fallback = fv
		v, err := resource.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	prover, err := fallback.NewProver(key, chain, &dpop.ProverOptions{Now: now, Algorithm: string(k.alg)})
	if err != nil {
		tb.Fatal(err)
	}
	leaf := chain[0]
	b64 := base64.StdEncoding.EncodeToString(leaf.Raw)
	raw := tableRawVerify(tb, leaf, key)
	row := func(name string, prepare func(tb testing.TB, n int) func(i int) error) tableRow {
		return tableRow{name: k.name + "/" + name, raw: raw, prepare: prepare}
	}
	same := func(op func() error) func(testing.TB, int) func(int) error {
		return func(testing.TB, int) func(int) error { return func(int) error { return op() } }
	}
	chainCheck := func(c *x509.Certificate) error {
		_, err := cold.VerifyChain(ctx, []*x509.Certificate{c})
		return err
	}
	bearer := bearerRequest(e.Token(tb, nil))
	rows := []tableRow{
		row("token", same(func() error {
			return checkAs(e.Verifier, bearer, resource.Policy{Accept: resource.AcceptAny}, resource.BindingBearer)
		})),
		row("chain-parsed", same(func() error { return chainCheck(leaf) })),
		row("chain-der", same(func() error {
			c, err := x509.ParseCertificate(leaf.Raw)
			if err != nil {
				return err
			}
			return chainCheck(c)
		})),
		row("chain-base64", same(func() error {
			d, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return err
			}
			c, err := x509.ParseCertificate(d)
			if err != nil {
				return err
			}
			return chainCheck(c)
		})),
	}
	fallbackPolicy := resource.Policy{Fallback: true}
	for _, mode := range []struct {
		name string
		fv   *fallback.Verifier
	}{{"cold", cold}, {"warm", warm}} {
		v := resourceVerifier(mode.fv)
		mtls := httptest.NewRequest(http.MethodGet, tableURL, nil)
		mtls.TLS = &tls.ConnectionState{PeerCertificates: chain}
		rows = append(rows, row("mtls-"+mode.name, func(tb testing.TB, _ int) func(int) error {
			tb.Helper()
			if err := checkAs(v, mtls, fallbackPolicy, resource.BindingFallback); err != nil { // warms the cache
				tb.Fatal(err)
			}
			return func(int) error { return checkAs(v, mtls, fallbackPolicy, resource.BindingFallback) }
		}))
		rows = append(rows, row("signed-"+mode.name, func(tb testing.TB, n int) func(int) error {
			tb.Helper()
			// Proofs are single use: one fresh proof per call, signed
			// here, and one more to warm the cache.
			proofs := make([][]string, n+1)
			for i := range proofs {
				p, err := prover.Proof(http.MethodGet, tableURL, dpop.ProofOptions{})
				if err != nil {
					tb.Fatal(err)
				}
				proofs[i] = []string{p}
			}
			r := httptest.NewRequest(http.MethodGet, tableURL, nil)
			r.Header["Dpop"] = proofs[n]
			if err := checkAs(v, r, fallbackPolicy, resource.BindingFallback); err != nil {
				tb.Fatal(err)
			}
			return func(i int) error {
				r.Header["Dpop"] = proofs[i]
				return checkAs(v, r, fallbackPolicy, resource.BindingFallback)
			}
		}))
	}
	return rows
}

// fallbackTable returns every row of the table: the rows of each key
// type, then a DPoP request with a cached ES256 token against the ES256
// raw verification.
func fallbackTable(tb testing.TB) []tableRow {
	tb.Helper()
	var rows []tableRow
	for _, k := range tableKeys {
		rows = append(rows, fallbackTableRows(tb, k)...)
	}
	es256 := rows[len(rows)-1].raw
	e := benchEnv(tb, 0)
	rows = append(rows, tableRow{name: "ES256/dpop-cached-token", raw: es256, prepare: func(tb testing.TB, n int) func(int) error {
		tb.Helper()
		r, proofs := dpopRequests(tb, e, n+1)
		r.Header["Dpop"] = proofs[n] // puts the token in the cache
		if err := checkAs(e.Verifier, r, resource.Policy{Accept: resource.AcceptAny}, resource.BindingDPoP); err != nil {
			tb.Fatal(err)
		}
		return func(i int) error {
			r.Header["Dpop"] = proofs[i]
			return checkAs(e.Verifier, r, resource.Policy{Accept: resource.AcceptAny}, resource.BindingDPoP)
		}
	}})
	return rows
}

// BenchmarkFallbackTable measures, in one run, for RS256-2048, RS256-4096
// and ES256: access-token validation (Check of a Bearer token, token
// cache off), chain validation (fallback.Verifier.VerifyChain, chain
// cache off, from a parsed certificate, from DER and from base64), and
// the two fallback paths through Check, mTLS with the CRL lookup and a
// signed request (x5c proof), with the chain cache off (cold) and on
// (warm); then a DPoP request with a cached ES256 token. x-raw-ilv is
// each row's ratio to one raw signature verification with the row's key
// (the CA's signature on the leaf, hash included), measured interleaved
// (see reportInterleaved). A signed request cold cannot avoid two such
// verifications (the proof and the CA's signature), warm one (the
// proof); mTLS cold one (the CA's signature), warm none.
func BenchmarkFallbackTable(b *testing.B) {
	for _, row := range fallbackTable(b) {
		b.Run(row.name, func(b *testing.B) {
			op := row.prepare(b, b.N)
			runtime.GC() // the setup garbage is not the row's
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := op(i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			op = row.prepare(b, ilvRounds*ilvBatch)
			runtime.GC()
			var failed error
			ratio := benchratio.Interleaved(ilvRounds, ilvBatch, row.raw, func(i int) {
				if err := op(i); err != nil && failed == nil {
					failed = err
				}
			})
			if failed != nil {
				b.Fatal(failed)
			}
			b.ReportMetric(ratio, "x-raw-ilv")
		})
	}
}

// TestFallbackTablePaths runs every row of BenchmarkFallbackTable, and its
// raw verification, on two fresh inputs, so that go test keeps the
// benchmark's paths working: each must succeed as the row expects.
func TestFallbackTablePaths(t *testing.T) {
	t.Parallel()
	rows := fallbackTable(t)
	if want := 8*len(tableKeys) + 1; len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			row.raw()
			op := row.prepare(t, 2)
			for i := range 2 {
				if err := op(i); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
		})
	}
}
