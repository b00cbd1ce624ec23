package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/benchratio"

	"github.com/senderbound/senderbound/dpop"
)

// BenchmarkProofPool measures how fast the DPoP proof pool hands out
// ES256 proofs (with ath for a token of typical size) when its signers
// have every core, and compares it per core with raw ECDSA P-256 signing
// (SHA-256 of a signing input of the same size, then ecdsa.SignASN1) on
// the same cores. The two alternate in 16 rounds, so that a load spike
// from other processes hits both; the ratio is the median of the rounds'.
//
//	proofs/s/core  proofs delivered per second per core
//	x-raw-sign     pool time per proof / raw time per signature (1 would
//	               be no overhead)
func BenchmarkProofPool(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	p, err := dpop.NewProver(key, nil)
	if err != nil {
		b.Fatal(err)
	}
	token := strings.Repeat("t", 700) // the size of an ES256 JWT access token
	const target = "https://rs.example.test/resource"
	d, err := NewDPoP(DPoPConfig{Prover: p, Token: token, Method: http.MethodGet, URL: target})
	if err != nil {
		b.Fatal(err)
	}
	sample, err := p.Proof(http.MethodGet, target, dpop.ProofOptions{AccessToken: token})
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(sample[:strings.LastIndexByte(sample, '.')])
	cores := runtime.GOMAXPROCS(0)

	const rounds = 16
	var ratios benchratio.Ratios
	var poolTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if n == 0 {
			continue
		}
		// The signers run only while the pool is timed, so that they
		// do not compete with the raw signatures.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { d.Run(ctx) })
		st := d.state.Load()
		start := time.Now()
		for range n {
			if _, err := d.take(st); err != nil {
				b.Fatal(err)
			}
		}
		took := time.Since(start)
		b.StopTimer()
		cancel()
		wg.Wait()
		for len(d.ready) > 0 {
			<-d.ready
		}
		poolTime += took
		raw := rawSignTime(b, key, input, cores, max(n, cores))
		// Per proof over per signature: took/n over raw/max(n, cores).
		ratios.Add(took*time.Duration(max(n, cores))/time.Duration(n), raw)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/poolTime.Seconds()/float64(cores), "proofs/s/core")
	b.ReportMetric(ratios.Median(), "x-raw-sign")
}

// rawSignTime signs n digests of input with key on cores goroutines and
// returns the wall time.
func rawSignTime(b *testing.B, key *ecdsa.PrivateKey, input []byte, cores, n int) time.Duration {
	b.Helper()
	var wg sync.WaitGroup
	start := time.Now()
	for g := range cores {
		share := n / cores
		if g < n%cores {
			share++
		}
		wg.Go(func() {
			for range share {
				sum := sha256.Sum256(input)
				if _, err := ecdsa.SignASN1(rand.Reader, key, sum[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
