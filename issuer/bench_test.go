package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"hash"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/google/uuid"

	"github.com/senderbound/senderbound/dpop"
)

var benchJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

func benchRequest() MintRequest {
	return MintRequest{Subject: "alice@example.com", ClientID: "client-1234", Scope: "read write", Binding: Binding{JKT: benchJKT}}
}

// rawSign measures the bare signature a token of this algorithm needs: the
// digest of a token-sized signing input plus crypto.Signer.Sign.
func rawSign(b *testing.B, alg string, signer crypto.Signer) {
	input := []byte(strings.Repeat("x", 420))
	var (
		h    func() hash.Hash
		opts crypto.SignerOpts
	)
	switch alg {
	case "ES256", "RS256":
		h, opts = sha256.New, crypto.SHA256
	case "PS256":
		h, opts = sha256.New, &rsaPSS
	case "ES384":
		h, opts = sha512.New384, crypto.SHA384
	case "ES512":
		h, opts = sha512.New, crypto.SHA512
	case "EdDSA":
		opts = crypto.Hash(0)
	}
	b.ReportAllocs()
	for b.Loop() {
		msg := input
		if h != nil {
			d := h()
			d.Write(input)
			msg = d.Sum(nil)
		}
		if _, err := signer.Sign(rand.Reader, msg, opts); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	rawMu    sync.Mutex
	rawCache = map[string]float64{}
)

// rawNsPerOp runs the raw-signature baseline once per algorithm per process
// and returns its ns/op, so every mint benchmark reports its ratio to a
// baseline measured in the same run.
func rawNsPerOp(alg string, signer crypto.Signer) float64 {
	rawMu.Lock()
	defer rawMu.Unlock()
	if v, ok := rawCache[alg]; ok {
		return v
	}
	r := testing.Benchmark(func(b *testing.B) { rawSign(b, alg, signer) })
	v := float64(r.T.Nanoseconds()) / float64(r.N)
	rawCache[alg] = v
	return v
}

func reportRatio(b *testing.B, raw float64) {
	b.StopTimer()
	if b.N > 0 && raw > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/raw, "x-raw")
	}
}

// BenchmarkMint measures tokens minted per second for each algorithm next
// to the raw signature ("raw" sub-benchmark); the mint sub-benchmark
// reports its ratio to the raw signature as x-raw.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "PS256", "RS256"} {
		signer := testSigner(b, alg)
		b.Run(alg+"/raw-sign", func(b *testing.B) { rawSign(b, alg, signer) })
		b.Run(alg+"/mint", func(b *testing.B) {
			raw := rawNsPerOp(alg, signer)
			is := newTestIssuer(b, SigningKey{Signer: signer, Algorithm: alg}, nil)
			req := benchRequest()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := is.Mint(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			reportRatio(b, raw)
		})
	}
	// The same ES256 token built the way Mint builds it, but signed and
	// serialized through go-jose's opaque-signer path (the path a KMS key
	// would take), to compare with the purpose-built serialization above.
	b.Run("ES256/go-jose-opaque", func(b *testing.B) {
		signer := testSigner(b, "ES256")
		raw := rawNsPerOp("ES256", signer)
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(signer)},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k"))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			id, err := uuid.NewRandomFromReader(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().Unix()
			payload, err := json.Marshal(accessClaims{
				Iss: "https://as.example.test", Sub: "alice@example.com", Aud: audience{"https://rs.example.test/resource"},
				Exp: now + 300, Iat: now, Jti: id.String(), ClientID: "client-1234", Scope: "read write",
				Cnf: &cnfClaim{JKT: benchJKT},
			})
			if err != nil {
				b.Fatal(err)
			}
			obj, err := js.Sign(payload)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := obj.CompactSerialize(); err != nil {
				b.Fatal(err)
			}
		}
		reportRatio(b, raw)
	})
}

var rsaPSS = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

// BenchmarkTokenEndpointDPoP is a full client_credentials round trip for a
// DPoP client over loopback TLS with keep-alive: the client signs a proof,
// the server verifies it, authenticates the client and mints a token.
// x-raw is the ratio to the crypto floor of that exchange measured in the
// same run: two raw ES256 signatures plus one raw ES256 verification.
func BenchmarkTokenEndpointDPoP(b *testing.B) {
	h := newHarness(b, harnessOpts{realClock: true})
	signer := testSigner(b, "ES256")
	rawS := rawNsPerOp("ES256", signer)
	rawV := rawVerifyNs(signer.(*ecdsa.PrivateKey))
	p, err := dpop.NewProver(newES256(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := h.client(nil)
	hc := &http.Client{Transport: &dpop.Transport{Base: c.Transport, Prover: p}}
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	auth := formatBasic("conf", confSecret)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	reportRatio(b, 2*rawS+rawV)
}

func rawVerifyNs(k *ecdsa.PrivateKey) float64 {
	d := sha256.Sum256([]byte("x"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	r := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			sum := sha256.Sum256([]byte(strings.Repeat("x", 420)))
			_ = sum
			if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
				b.Fatal("verify")
			}
		}
	})
	return float64(r.T.Nanoseconds()) / float64(r.N)
}
