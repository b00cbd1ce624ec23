package jwssign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	keysOnce sync.Once
	keys     map[string]crypto.Signer
)

// testKey returns a cached key for alg (RSA generation is slow).
func testKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	keysOnce.Do(func() {
		must := func(k crypto.Signer, err error) crypto.Signer {
			if err != nil {
				panic(err)
			}
			return k
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		keys = map[string]crypto.Signer{
			"P-256": must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)),
			"P-384": must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
			"P-521": must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)),
			"Ed":    must(ed, err),
			"RSA":   must(rsa.GenerateKey(rand.Reader, 2048)),
		}
	})
	switch {
	case alg == "ES256":
		return keys["P-256"]
	case alg == "ES384":
		return keys["P-384"]
	case alg == "ES512":
		return keys["P-521"]
	case alg == "EdDSA":
		return keys["Ed"]
	}
	return keys["RSA"]
}

var allAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// opaque hides the concrete key type, like an HSM or KMS signer.
type opaque struct{ crypto.Signer }

func TestSignCompactVerifiesWithGoJose(t *testing.T) {
	t.Parallel()
	for _, alg := range allAlgs {
		for _, wrap := range []string{"memory", "opaque"} {
			t.Run(alg+"/"+wrap, func(t *testing.T) {
				t.Parallel()
				var signer crypto.Signer = testKey(t, alg)
				if wrap == "opaque" {
					signer = opaque{signer}
				}
				k, err := NewKey(signer, alg)
				if err != nil {
					t.Fatal(err)
				}
				if k.Algorithm() != alg {
					t.Fatal("accessors")
				}
				header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"x+jwt"}`))
				payload := []byte(`{"sub":"a\"b\\c","n":1}`)
				for range 20 { // covers short ECDSA r and s
					raw, err := k.SignCompact(rand.Reader, header, payload)
					if err != nil {
						t.Fatal(err)
					}
					if len(raw) != k.CompactLen(len(header), len(payload)) {
						t.Fatalf("length %d, CompactLen says %d", len(raw), k.CompactLen(len(header), len(payload)))
					}
					jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
					if err != nil {
						t.Fatal(err)
					}
					got, err := jws.Verify(signer.Public())
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, payload) {
						t.Fatalf("payload %q", got)
					}
					sig := jws.Signatures[0].Signature
					if len(sig) != k.SignatureLen() {
						t.Fatalf("signature length %d, want %d", len(sig), k.SignatureLen())
					}
					if alg[0] == 'P' {
						// go-jose accepts any salt length; RFC 7518 §3.5 and
						// strict verifiers want the hash length.
						h := k.hash.New()
						h.Write([]byte(raw[:strings.LastIndexByte(raw, '.')]))
						pub := signer.Public().(*rsa.PublicKey)
						if err := rsa.VerifyPSS(pub, k.hash, h.Sum(nil), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
							t.Fatalf("PSS salt is not the hash length: %v", err)
						}
					}
				}
			})
		}
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	k, err := NewKey(testKey(t, "ES256"), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	input := []byte("header.payload")
	sig, err := k.Sign(rand.Reader, input)
	if err != nil || len(sig) != 64 {
		t.Fatalf("sig %x, %v", sig, err)
	}
	d := sha256.Sum256(input)
	pub := testKey(t, "ES256").Public().(*ecdsa.PublicKey)
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("raw signature does not verify")
	}
}

func TestNewKeyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		signer crypto.Signer
		alg    string
	}{
		{"nil", nil, "ES256"},
		{"ES384 on P-256", testKey(t, "ES256"), "ES384"},
		{"ES256 on RSA", testKey(t, "RS256"), "ES256"},
		{"EdDSA on P-256", testKey(t, "ES256"), "EdDSA"},
		{"PS256 on Ed25519", testKey(t, "EdDSA"), "PS256"},
		{"RS256 on P-256", testKey(t, "ES256"), "RS256"},
		{"HS256", testKey(t, "ES256"), "HS256"},
		{"none", testKey(t, "ES256"), "none"},
		{"empty", testKey(t, "ES256"), ""},
		{"PS1", testKey(t, "RS256"), "PS1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewKey(tc.signer, tc.alg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// badSigner returns a fixed signature or error.
type badSigner struct {
	crypto.Signer
	sig []byte
	err error
}

func (b badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return b.sig, b.err }

func TestSignerFailures(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name   string
		alg    string
		signer badSigner
	}{
		{"error", "ES256", badSigner{Signer: testKey(t, "ES256"), err: boom}},
		{"raw ECDSA instead of DER", "ES256", badSigner{Signer: testKey(t, "ES256"), sig: make([]byte, 64)}},
		{"DER too large for the curve", "ES256", badSigner{Signer: testKey(t, "ES256"), sig: mustDER(t, testKey(t, "ES384"))}},
		{"short Ed25519 signature", "EdDSA", badSigner{Signer: testKey(t, "EdDSA"), sig: make([]byte, 63)}},
		{"short RSA signature", "RS256", badSigner{Signer: testKey(t, "RS256"), sig: make([]byte, 255)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := NewKey(tc.signer, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := k.SignCompact(rand.Reader, "e30", []byte("{}")); err == nil || s != "" {
				t.Fatalf("SignCompact = %q, %v", s, err)
			}
			if s, err := k.Sign(rand.Reader, []byte("x")); err == nil || s != nil {
				t.Fatalf("Sign = %x, %v", s, err)
			}
			if tc.signer.err != nil {
				if _, err := k.SignCompact(rand.Reader, "e30", nil); !errors.Is(err, boom) {
					t.Fatalf("signer error not wrapped: %v", err)
				}
			}
		})
	}
	k, _ := NewKey(testKey(t, "ES256"), "ES256")
	if _, err := k.SignCompact(nil, "e30", nil); err == nil {
		t.Fatal("nil random source accepted (deterministic ECDSA)")
	}
}

// mustDER returns a DER signature made with k whose r is as long as k's
// curve, forcing a value too large for a smaller curve.
func mustDER(tb testing.TB, k crypto.Signer) []byte {
	tb.Helper()
	for {
		d := sha256.Sum256([]byte("x"))
		der, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			tb.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err == nil && rs.R.BitLen() > 264 {
			return der
		}
	}
}
