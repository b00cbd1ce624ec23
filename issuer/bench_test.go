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
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/google/uuid"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/benchratio"
)

var benchJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

func benchRequest() MintRequest {
	return MintRequest{Subject: "alice@example.com", ClientID: "client-1234", Scope: "read write", Binding: Binding{JKT: benchJKT}}
}

// rawSigner returns the bare signature a token of this algorithm needs:
// the digest of a signing input of inputLen bytes plus crypto.Signer.Sign.
func rawSigner(alg string, signer crypto.Signer, inputLen int) func() error {
	input := []byte(strings.Repeat("x", inputLen))
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
	return func() error {
		msg := input
		if h != nil {
			d := h()
			d.Write(input)
			msg = d.Sum(nil)
		}
		_, err := signer.Sign(rand.Reader, msg, opts)
		return err
	}
}

func rawSign(b *testing.B, alg string, signer crypto.Signer, inputLen int) {
	sign := rawSigner(alg, signer, inputLen)
	b.ReportAllocs()
	for b.Loop() {
		if err := sign(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWithRaw runs op as the benchmark and, after every block of 16 op
// calls, 16 calls of the raw baseline (timer stopped); it reports as x-raw
// the median over blocks of op's block time over the raw block time that
// follows it. Pairing neighbouring blocks and taking the median keeps the
// ratio honest on a machine whose load changes during the run: a load
// spike skews the few pairs it falls in, not the whole total.
func benchWithRaw(b *testing.B, raw, op func() error) {
	const block = 16
	runRaw := func() time.Duration {
		t := time.Now()
		for range block {
			if err := raw(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t)
	}
	var ratios benchratio.Ratios
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
		if n++; n%block == 0 {
			opDur := time.Since(start)
			b.StopTimer()
			ratios.Add(opDur, runRaw())
			b.StartTimer()
			start = time.Now()
		}
	}
	if len(ratios) == 0 { // fewer than one block: compare per-call means
		ratios.Add(b.Elapsed()*block/time.Duration(n), runRaw())
	}
	b.ReportMetric(ratios.Median(), "x-raw")
}

// BenchmarkMint measures tokens minted per second for each algorithm next
// to the raw signature ("raw" sub-benchmark) over a signing input as long
// as the minted token's; the mint sub-benchmark reports its ratio to the
// raw signature as x-raw.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"} {
		signer := testSigner(b, alg)
		is := newTestIssuer(b, SigningKey{Signer: signer, Algorithm: alg}, nil)
		req := benchRequest()
		ctx := context.Background()
		sample, err := is.Mint(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		inputLen := strings.LastIndexByte(sample.Raw, '.')
		b.Run(alg+"/raw-sign", func(b *testing.B) { rawSign(b, alg, signer, inputLen) })
		b.Run(alg+"/mint", func(b *testing.B) {
			benchWithRaw(b, rawSigner(alg, signer, inputLen), func() error {
				_, err := is.Mint(ctx, req)
				return err
			})
		})
	}
	// The same ES256 token built the way Mint builds it, but signed and
	// serialized through go-jose's opaque-signer path (the path a KMS key
	// would take), to compare with the purpose-built serialization above.
	b.Run("ES256/go-jose-opaque", func(b *testing.B) {
		signer := testSigner(b, "ES256")
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(signer)},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", benchJKT)) // a kid as long as a thumbprint
		if err != nil {
			b.Fatal(err)
		}
		mint := func() (string, error) {
			id, err := uuid.NewRandomFromReader(rand.Reader)
			if err != nil {
				return "", err
			}
			now := time.Now().Unix()
			payload, err := json.Marshal(benchClaims{
				Iss: "https://as.example.test", Sub: "alice@example.com", Aud: "https://rs.example.test/resource",
				Exp: now + 300, Iat: now, Jti: id.String(), ClientID: "client-1234", Scope: "read write",
				Cnf: &cnfClaim{JKT: benchJKT},
			})
			if err != nil {
				return "", err
			}
			obj, err := js.Sign(payload)
			if err != nil {
				return "", err
			}
			return obj.CompactSerialize()
		}
		sample, err := mint()
		if err != nil {
			b.Fatal(err)
		}
		benchWithRaw(b, rawSigner("ES256", signer, strings.LastIndexByte(sample, '.')), func() error {
			_, err := mint()
			return err
		})
	})
}

// benchClaims are the claims of benchRequest's token as a struct for
// encoding/json, the way Mint encoded them before it had its own encoder.
type benchClaims struct {
	Iss      string    `json:"iss"`
	Sub      string    `json:"sub"`
	Aud      string    `json:"aud"`
	Exp      int64     `json:"exp"`
	Iat      int64     `json:"iat"`
	Jti      string    `json:"jti"`
	ClientID string    `json:"client_id"`
	Scope    string    `json:"scope,omitempty"`
	Cnf      *cnfClaim `json:"cnf,omitempty"`
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
	sign := rawSigner("ES256", signer, 420)
	verify := rawVerifier(signer.(*ecdsa.PrivateKey))
	p, err := dpop.NewProver(newES256(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := h.client(nil)
	hc := &http.Client{Transport: &dpop.Transport{Base: c.Transport, Prover: p}}
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	auth := formatBasic("conf", confSecret)
	floor := func() error {
		if err := sign(); err != nil {
			return err
		}
		if err := sign(); err != nil {
			return err
		}
		return verify()
	}
	benchWithRaw(b, floor, func() error {
		req, _ := http.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drain so the connection is reused
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// rawVerifier returns one raw ES256 verification of a token-sized input.
func rawVerifier(k *ecdsa.PrivateKey) func() error {
	input := []byte(strings.Repeat("x", 420))
	d := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		panic(err)
	}
	return func() error {
		sum := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(&k.PublicKey, sum[:], sig) {
			return errors.New("verify failed")
		}
		return nil
	}
}
