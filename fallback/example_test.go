package fallback_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

// Example walks the fallback from issuance to a signed request: the
// issuer's CA certifies a client key with its scopes and publishes a CRL;
// the resource server fetches the CRL and verifies a signed request, and
// refuses its replay.
func Example() {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }

	// Issuer: the CA role, with any crypto.Signer as its key.
	root, _ := certs.NewCA(certs.Options{CommonName: "fallback CA"})
	ca, err := fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Now: clock})
	if err != nil {
		panic(err)
	}
	crlServer := httptest.NewServer(ca.CRLHandler())
	defer crlServer.Close()

	// Client: a key, a CSR, a certificate with a subset of its scopes.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	chain, err := ca.Issue(ctx, csr, "billing", []string{"invoices:read", "invoices:write"}, []string{"invoices:read"})
	if err != nil {
		panic(err)
	}
	fmt.Println("URI SAN:", chain[0].URIs[0])

	// Resource server: the CRL in the background, proofs as for DPoP.
	fetcher, _ := fallback.NewCRLFetcher(fallback.CRLFetcherConfig{URL: crlServer.URL, CA: root.Cert, Now: clock})
	if err := fetcher.Refresh(ctx); err != nil { // Start(ctx) in a server
		panic(err)
	}
	store, _ := replaycache.NewLRU(replaycache.Config{})
	proofs, _ := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store, Now: clock})
	v, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{root.Cert}, CRL: fetcher, Proofs: proofs, Now: clock})
	if err != nil {
		panic(err)
	}

	// The client signs a request with its certificate key.
	prover, _ := fallback.NewProver(key, chain, &dpop.ProverOptions{Now: clock})
	proof, _ := prover.Proof(http.MethodGet, "https://api.example.test/invoices", dpop.ProofOptions{})

	want := dpop.Expect{Method: http.MethodGet, URL: "https://api.example.test/invoices"}
	id, err := v.VerifyRequest(ctx, proof, want)
	if err != nil {
		panic(err)
	}
	fmt.Println("client:", id.ClientID, "scopes:", strings.Join(id.Scopes, " "))

	_, err = v.VerifyRequest(ctx, proof, want)
	fmt.Println("replay refused:", errors.Is(err, dpop.ErrReplay))
	// Output:
	// URI SAN: urn:senderbound:client:billing
	// client: billing scopes: invoices:read
	// replay refused: true
}

// ExampleCA_Revoke shows that removing a scope is revoke + reissue: the
// old certificate is refused once the CRL lists it.
func ExampleCA_Revoke() {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	root, _ := certs.NewCA(certs.Options{})
	ca, _ := fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Now: clock})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)

	old, _ := ca.Issue(ctx, csr, "reports", []string{"read", "export"}, nil)
	_ = ca.Revoke(ctx, old[0].SerialNumber)
	renewed, _ := ca.Issue(ctx, csr, "reports", []string{"read"}, nil)

	der, _ := ca.CRL(ctx, now)
	crl, _ := fallback.ParseRevocationList(der, root.Cert)
	v, _ := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{root.Cert}, CRL: crl, Now: clock})

	_, err := v.VerifyChain(ctx, old)
	var fe *fallback.Error
	if errors.As(err, &fe) {
		// The reason comes from the project's one error model: log it,
		// count it; the client sees only the code.
		fmt.Println("old:", errors.Is(err, fallback.ErrRevoked), fe.Code, fe.Reason == oautherr.ReasonFallbackRevoked)
	}
	id, _ := v.VerifyChain(ctx, renewed)
	fmt.Println("renewed:", id.Scopes)
	// Output:
	// old: true invalid_token true
	// renewed: [read]
}

// ExampleConfig_chainCacheSize shows the verified-chain cache: a chain
// presented again is served from it, but a CRL that revokes the
// certificate refuses it on the very next request.
func ExampleConfig_chainCacheSize() {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	root, _ := certs.NewCA(certs.Options{})
	ca, _ := fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Now: clock})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	chain, _ := ca.Issue(ctx, csr, "reports", []string{"read"}, nil)

	var current atomic.Pointer[fallback.RevocationList]
	install := func() {
		der, _ := ca.CRL(ctx, now)
		crl, _ := fallback.ParseRevocationList(der, root.Cert)
		current.Store(crl)
	}
	install()
	v, _ := fallback.NewVerifier(fallback.Config{
		CAs:            []*x509.Certificate{root.Cert},
		CRL:            crlSource{&current},
		ChainCacheSize: 1000, // 0: DefaultChainCacheSize; negative: no cache
		Now:            clock,
	})

	for range 2 { // the second time from the cache
		_, err := v.VerifyChain(ctx, chain)
		fmt.Println("accepted:", err == nil)
	}
	_ = ca.Revoke(ctx, chain[0].SerialNumber)
	install()
	_, err := v.VerifyChain(ctx, chain)
	fmt.Println("after the new CRL:", fallback.ReasonOf(err))
	// Output:
	// accepted: true
	// accepted: true
	// after the new CRL: fallback_revoked
}

// crlSource serves the CRL installed last (a CRLFetcher does this in a
// server).
type crlSource struct {
	p *atomic.Pointer[fallback.RevocationList]
}

func (s crlSource) Current() *fallback.RevocationList { return s.p.Load() }
