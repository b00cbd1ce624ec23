package fallback

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/benchratio"
)

// benchCase names a key type used for both the CA and the client: the CA
// signature on the leaf and the proof signature use the same algorithm.
type benchCase struct {
	name, key, alg string
}

var benchCases = []benchCase{
	{name: "RS256-2048", key: "RSA2048", alg: "RS256"},
	{name: "RS256-4096", key: "RSA4096", alg: "RS256"},
	{name: "ES256", key: "P256", alg: "ES256"},
}

// rawVerifier returns a function doing the raw signature verification
// that chain validation cannot avoid: the CA's signature over the leaf
// (SHA-256 of the TBS certificate included).
func rawVerifier(tb testing.TB, leaf, ca *x509.Certificate) func() bool {
	tb.Helper()
	switch pub := ca.PublicKey.(type) {
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(leaf.RawTBSCertificate)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], leaf.Signature) == nil
		}
	case *ecdsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(leaf.RawTBSCertificate)
			return ecdsa.VerifyASN1(pub, d[:], leaf.Signature)
		}
	}
	tb.Fatal("unexpected CA key")
	return nil
}

// timeRaw measures f by hand (testing.Benchmark cannot run inside a
// benchmark): the best of 3 rounds of 100 ms, in ns per call.
func timeRaw(tb testing.TB, f func() bool) float64 {
	tb.Helper()
	return benchratio.BestNs(3, 100*time.Millisecond, func() {
		if !f() {
			tb.Fatal("raw verification failed")
		}
	})
}

// The interleaved ratio (x-raw-ilv) is the median over ilvRounds rounds
// of ilvBatch full calls against ilvBatch raw calls timed just before.
const (
	ilvRounds = 32
	ilvBatch  = 8
)

// interleavedRatio returns the interleaved ratio of full to raw; full
// receives the call's index, 0 to ilvRounds*ilvBatch-1.
func interleavedRatio(raw func() bool, full func(i int)) float64 {
	return benchratio.Interleaved(ilvRounds, ilvBatch, func() { raw() }, full)
}

// reportRatio reports x-raw: ns/op over raw, the raw ns per call.
func reportRatio(b *testing.B, raw float64) {
	b.Helper()
	if per := benchratio.NsPerOp(b); raw > 0 && per > 0 {
		b.ReportMetric(per/raw, "x-raw")
	}
}

// BenchmarkChain measures chain verification (VerifyChain with CRL lookup
// and scopes) from a parsed certificate, from DER (as from TLS or a
// forwarded header), and from standard base64 (as in x5c), beside the raw
// verification of the CA's signature measured in the same run; x-raw is
// the ratio to it. cold/ runs with the chain cache disabled: the honest
// cost of the cryptography. warm/ runs with the cache on and the chain
// presented before: what remains is a hash and the revocation lookup,
// measured alone in crl-lookup; compare ns/op and allocs.
func BenchmarkChain(b *testing.B) {
	for _, bc := range benchCases {
		w := newWorld(b, bc.key)
		k := key(b, bc.key)
		chain := w.issue(b, k, "bench")
		leaf := chain[0]
		raw := rawVerifier(b, leaf, w.root.Cert)
		rawNs := timeRaw(b, raw)
		b64 := base64.StdEncoding.EncodeToString(leaf.Raw)
		ctx := context.Background()
		b.Run(bc.name+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw()
			}
			reportRatio(b, rawNs)
		})
		b.Run(bc.name+"/crl-lookup", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := w.v.checkRevocation(leaf.SerialNumber, w.root.Cert, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, mode := range []struct {
			name string
			v    *Verifier
		}{{"cold", w.verifier(b, -1)}, {"warm", w.verifier(b, 0)}} {
			v := mode.v
			parsed := func() error {
				_, err := v.VerifyChain(ctx, chain[:1])
				return err
			}
			fromDER := func() error {
				c, err := x509.ParseCertificate(leaf.Raw)
				if err != nil {
					return err
				}
				_, err = v.VerifyChain(ctx, []*x509.Certificate{c})
				return err
			}
			fromBase64 := func() error {
				der, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					return err
				}
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				_, err = v.VerifyChain(ctx, []*x509.Certificate{c})
				return err
			}
			for _, step := range []struct {
				name string
				f    func() error
			}{{"parsed", parsed}, {"der", fromDER}, {"base64", fromBase64}} {
				b.Run(bc.name+"/"+mode.name+"/"+step.name, func(b *testing.B) {
					if err := step.f(); err != nil { // warms the cache
						b.Fatal(err)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if err := step.f(); err != nil {
							b.Fatal(err)
						}
					}
					reportRatio(b, rawNs)
					b.StopTimer()
					b.ReportMetric(interleavedRatio(raw, func(int) { _ = step.f() }), "x-raw-ilv")
				})
			}
		}
	}
}

// BenchmarkSignedRequest measures VerifyRequest (proof parsing and
// signature, htm/htu/iat, replay store, x5c decoding, certificate
// parsing, chain verification, CRL lookup, scopes). cold/ runs with the
// chain cache disabled, beside the two raw verifications it cannot avoid
// (the proof signature and the CA's signature on the leaf): x-raw is the
// ratio to their sum. warm/ runs with the chain already verified, beside
// the one raw verification left (the proof signature): x-raw is the
// ratio to it.
func BenchmarkSignedRequest(b *testing.B) {
	for _, bc := range benchCases {
		w := newWorld(b, bc.key)
		k := key(b, bc.key)
		chain := w.issue(b, k, "bench")
		p, err := NewProver(k, chain, &dpop.ProverOptions{Now: fixedClock(testNow), Algorithm: bc.alg})
		if err != nil {
			b.Fatal(err)
		}
		want := dpop.Expect{Method: "GET", URL: reqURL}
		one, err := p.Proof("GET", reqURL, dpop.ProofOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rawProof := rawProofVerifier(b, k, bc.alg, one)
		rawCA := rawVerifier(b, chain[0], w.root.Cert)
		twoRaw := func() bool { return rawProof() && rawCA() }
		ctx := context.Background()
		for _, mode := range []struct {
			name, rawName string
			raw           func() bool
			cacheSize     int
		}{{"cold", "two-raw", twoRaw, -1}, {"warm", "one-raw", rawProof, 0}} {
			rawNs := timeRaw(b, mode.raw)
			b.Run(bc.name+"/"+mode.rawName, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					mode.raw()
				}
				reportRatio(b, rawNs)
			})
			pool := make([]string, ilvRounds*ilvBatch)
			for i := range pool {
				if pool[i], err = p.Proof("GET", reqURL, dpop.ProofOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(bc.name+"/"+mode.name+"/verify", func(b *testing.B) {
				v := w.verifier(b, mode.cacheSize)
				warmup, err := p.Proof("GET", reqURL, dpop.ProofOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.VerifyRequest(ctx, warmup, want); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				proofs := make([]string, b.N)
				for i := range proofs {
					if proofs[i], err = p.Proof("GET", reqURL, dpop.ProofOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC() // the signing garbage is not the verifier's
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := v.VerifyRequest(ctx, proofs[i], want); err != nil {
						b.Fatal(err)
					}
				}
				reportRatio(b, rawNs)
				b.StopTimer()
				// A verifier with a fresh replay store, so that the pool's
				// proofs are new to it on every run.
				v = w.verifier(b, mode.cacheSize)
				if _, err := v.VerifyRequest(ctx, warmup, want); err != nil {
					b.Fatal(err)
				}
				var failed error
				ratio := interleavedRatio(mode.raw, func(i int) {
					if _, err := v.VerifyRequest(ctx, pool[i], want); err != nil {
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
}

// rawProofVerifier verifies the signature of a compact JWS with key's
// public key, as the proof check must.
func rawProofVerifier(tb testing.TB, key crypto.Signer, alg, jws string) func() bool {
	tb.Helper()
	i := len(jws) - 1
	for jws[i] != '.' {
		i--
	}
	input := []byte(jws[:i])
	sig, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return ecdsa.Verify(pub, d[:], bigInt(sig[:32]), bigInt(sig[32:]))
		}
	}
	tb.Fatal("unexpected key")
	return nil
}

func bigInt(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
