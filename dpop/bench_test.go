package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"

	"github.com/senderbound/senderbound/internal/benchratio"
)

// rawVerifier returns a function doing only the signature verification of
// proof with the standard library, the floor the verifier is measured
// against.
func rawVerifier(tb testing.TB, key crypto.Signer, proof string) func() bool {
	tb.Helper()
	i := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:i])
	sig, ok := decodeB64(make([]byte, len(proof)), []byte(proof[i+1:]))
	if !ok {
		tb.Fatal("bad signature segment")
	}
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		der := encodeECDSASig(nil, sig[:32], sig[32:])
		return func() bool {
			d := sha256.Sum256(input)
			return ecdsa.VerifyASN1(pub, d[:], der)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, input, sig) }
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	}
	tb.Fatal("unsupported key")
	return nil
}

// benchFixture holds pre-made proofs for one key, made once per run.
type benchFixture struct {
	key    crypto.Signer
	prover *Prover
	proofs []string
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*benchFixture{}
)

const benchNow = 1_800_000_000

func fixture(b *testing.B, keyName string) *benchFixture {
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[keyName]; f != nil {
		return f
	}
	key := keys(b)[keyName]
	p, err := NewProver(key, &ProverOptions{Now: fixedClock(benchNow)})
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{key: key, prover: p, proofs: make([]string, 1024)}
	for i := range f.proofs {
		if f.proofs[i], err = p.Proof("GET", "https://rs.example.test/resource", ProofOptions{AccessToken: "token"}); err != nil {
			b.Fatal(err)
		}
	}
	fixtures[keyName] = f
	return f
}

// benchAlg runs, in one run, the raw standard-library verification of a
// proof signature ("raw-verify"), full proof verification ("verify") and
// proof creation ("proof"). verify reports its ratio to the raw
// verification, proof its ratio to the raw signature (see benchProof), as
// metric x-raw.
func benchAlg(b *testing.B, keyName, alg string) {
	f := fixture(b, keyName)
	var rawNs float64
	b.Run("raw-verify", func(b *testing.B) {
		raw := rawVerifier(b, f.key, f.proofs[0])
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if !raw() {
				b.Fatal("raw verify failed")
			}
		}
		rawNs = benchratio.NsPerOp(b)
	})
	_ = rawNs
	raw := rawVerifier(b, f.key, f.proofs[0])
	b.Run("verify", func(b *testing.B) {
		want := Expect{Method: "GET", URL: "https://rs.example.test/resource", AccessToken: "token", JKT: f.prover.Thumbprint()}
		ctx := context.Background()
		n := len(f.proofs)
		var v *Verifier
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i%n == 0 {
				b.StopTimer()
				v, _ = NewVerifier(Config{Algorithms: []string{alg}, ReplayStore: newMemStore(), Now: fixedClock(benchNow)})
				b.StartTimer()
			}
			if _, err := v.Verify(ctx, f.proofs[i%n], want); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		// Ratio to the raw verification, measured interleaved so that load
		// from other processes affects both sides alike.
		b.ReportMetric(interleavedRatio(raw, func(i int) {
			if i%ratioBatch == 0 {
				v, _ = NewVerifier(Config{Algorithms: []string{alg}, ReplayStore: newMemStore(), Now: fixedClock(benchNow)})
			}
			if _, err := v.Verify(ctx, f.proofs[(ratioBatch+i)%n], want); err != nil {
				b.Fatal(err)
			}
		}), "x-raw")
	})
	b.Run("proof", func(b *testing.B) { benchProof(b, f.key, f.prover) })
}

// rawSigner returns a function doing only the signature a proof needs with
// the crypto.Signer: the digest of the proof's signing input and Sign (for
// Ed25519, Sign over the input itself). It is the floor of proof creation.
func rawSigner(tb testing.TB, key crypto.Signer, alg, proof string) func() bool {
	tb.Helper()
	input := []byte(proof[:strings.LastIndexByte(proof, '.')])
	h, newHash := hashFor(alg)
	var opts crypto.SignerOpts = h
	switch {
	case alg == "EdDSA":
		opts, newHash = crypto.Hash(0), nil
	case strings.HasPrefix(alg, "PS"):
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	return func() bool {
		msg := input
		if newHash != nil {
			d := newHash()
			d.Write(input)
			msg = d.Sum(nil)
		}
		_, err := key.Sign(rand.Reader, msg, opts)
		return err == nil
	}
}

// benchProof measures Prover.Proof and reports its ratio to the raw
// signature of the same signing input (metric x-raw), measured interleaved.
func benchProof(b *testing.B, key crypto.Signer, p *Prover) {
	proof := func() {
		if _, err := p.Proof("GET", "https://rs.example.test/resource", ProofOptions{AccessToken: "token"}); err != nil {
			b.Fatal(err)
		}
	}
	sample, err := p.Proof("GET", "https://rs.example.test/resource", ProofOptions{AccessToken: "token"})
	if err != nil {
		b.Fatal(err)
	}
	raw := rawSigner(b, key, p.Algorithm(), sample)
	b.ReportAllocs()
	for b.Loop() {
		proof()
	}
	b.StopTimer()
	b.ReportMetric(interleavedRatio(raw, func(int) { proof() }), "x-raw")
}

// BenchmarkProof measures proof creation for every algorithm next to the
// raw signature ("raw-sign") of a proof's signing input; the proof
// sub-benchmark reports its ratio to the raw signature as x-raw.
func BenchmarkProof(b *testing.B) {
	for _, tc := range []struct{ alg, key string }{
		{"ES256", "ES256"}, {"ES384", "ES384"}, {"ES512", "ES512"},
		{"EdDSA", "EdDSA"}, {"PS256", "RSA"}, {"RS256", "RSA"},
	} {
		key := keys(b)[tc.key]
		p, err := NewProver(key, &ProverOptions{Algorithm: tc.alg, Now: fixedClock(benchNow)})
		if err != nil {
			b.Fatal(err)
		}
		sample, err := p.Proof("GET", "https://rs.example.test/resource", ProofOptions{AccessToken: "token"})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.alg+"/raw-sign", func(b *testing.B) {
			raw := rawSigner(b, key, tc.alg, sample)
			b.ReportAllocs()
			for b.Loop() {
				if !raw() {
					b.Fatal("raw sign failed")
				}
			}
		})
		b.Run(tc.alg+"/proof", func(b *testing.B) { benchProof(b, key, p) })
	}
}

const (
	ratioRounds = 64
	ratioBatch  = 16
)

// interleavedRatio returns the median over ratioRounds rounds of
// time(ratioBatch calls of full) / time(ratioBatch raw operations) timed
// just before. full receives the call's index, 0 to
// ratioRounds·ratioBatch-1; each round starts at a multiple of ratioBatch.
func interleavedRatio(raw func() bool, full func(i int)) float64 {
	return benchratio.Interleaved(ratioRounds, ratioBatch, func() { raw() }, full)
}

func BenchmarkES256(b *testing.B) { benchAlg(b, "ES256", "ES256") }
func BenchmarkEdDSA(b *testing.B) { benchAlg(b, "EdDSA", "EdDSA") }
func BenchmarkPS256(b *testing.B) { benchAlg(b, "RSA", "PS256") }
