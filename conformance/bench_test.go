package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/benchratio"
)

var (
	rawOnce sync.Once
	rawNs   float64
)

// rawVerifyNs measures one raw ECDSA P-256 verification in this run, the
// floor every ratio is reported against.
func rawVerifyNs() float64 {
	rawOnce.Do(func() {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		d := sha256.Sum256([]byte("conformance"))
		sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
		// A timed loop rather than a nested testing.Benchmark, which
		// cannot run inside a running benchmark.
		rawNs = benchratio.BestNs(1, 100*time.Millisecond, func() {
			if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
				panic("raw verify failed")
			}
		})
	})
	return rawNs
}

func reportRatio(b *testing.B) {
	b.Helper()
	if per := benchratio.NsPerOp(b); per > 0 && rawVerifyNs() > 0 {
		b.ReportMetric(per/rawVerifyNs(), "x-raw")
	}
}

// BenchmarkBuildProof measures building and signing one DPoP proof (the
// suite's per-request cost).
func BenchmarkBuildProof(b *testing.B) {
	rawVerifyNs()
	s := &session{now: time.Now}
	k, err := generateECKey()
	if err != nil {
		b.Fatal(err)
	}
	f := s.proof(k, http.MethodGet, "https://rs.example.test/resource", "token-value", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f(""); err != nil {
			b.Fatal(err)
		}
	}
	reportRatio(b)
}

// BenchmarkParseChallenges measures parsing a two-scheme challenge field.
func BenchmarkParseChallenges(b *testing.B) {
	rawVerifyNs()
	in := []string{`Bearer error="invalid_request", error_description="Multiple methods used to include access token", DPoP algs="ES256 PS256", error="invalid_request", error_description="Multiple methods used to include access token"`}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ParseChallenges(in); err != nil {
			b.Fatal(err)
		}
	}
	reportRatio(b)
}

// BenchmarkJWKThumbprint measures the independent RFC 7638 computation.
func BenchmarkJWKThumbprint(b *testing.B) {
	rawVerifyNs()
	jwk := []byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := jwkThumbprint(jwk); err != nil {
			b.Fatal(err)
		}
	}
	reportRatio(b)
}
