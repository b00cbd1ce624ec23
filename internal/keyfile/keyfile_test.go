package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
)

func TestGenerateMarshalParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k, err := Generate(alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, err := MarshalJWK(k, alg)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			if m["alg"] != alg || m["use"] != "sig" || m["kid"] == "" {
				t.Fatalf("JWK members wrong: %v", m)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != alg {
				t.Fatalf("alg = %q", got.Algorithm)
			}
			if !publicEqual(got.Signer.Public(), k.Public()) {
				t.Fatal("parsed key differs from generated key")
			}
			def, err := DefaultAlgorithm(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if alg != "RS256" && def != alg {
				t.Fatalf("DefaultAlgorithm = %q, want %q", def, alg)
			}
		})
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(eq)
	return ok && e.Equal(b)
}

func TestParsePEM(t *testing.T) {
	t.Parallel()
	ec, _ := Generate("ES256", nil)
	rk, _ := Generate("PS256", nil)
	ed, _ := Generate("EdDSA", nil)
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(ec.(*ecdsa.PrivateKey))
	pkcs1 := x509.MarshalPKCS1PrivateKey(rk.(*rsa.PrivateKey))
	tests := []struct {
		name string
		in   []byte
		want crypto.PublicKey
	}{
		{"pkcs8 ec", pkcs8(ec), ec.Public()},
		{"pkcs8 rsa", pkcs8(rk), rk.Public()},
		{"pkcs8 ed25519", pkcs8(ed), ed.Public().(ed25519.PublicKey)},
		{"sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ec.Public()},
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}), rk.Public()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !publicEqual(k.Signer.Public(), tc.want) {
				t.Fatal("wrong key")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	ec, _ := Generate("ES256", nil)
	pubJWK, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256",
		"x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})
	spki, _ := x509.MarshalPKIXPublicKey(ec.Public())
	tests := []struct {
		name string
		in   []byte
	}{
		{"public jwk", pubJWK},
		{"public pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})},
		{"garbage", []byte("hello")},
		{"broken jwk", []byte(`{"kty":"EC"`)},
		{"broken pem body", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if k, err := Parse(tc.in); err == nil || k != nil {
				t.Fatalf("Parse accepted %s", tc.name)
			}
		})
	}
	if _, err := Generate("HS256", nil); err == nil {
		t.Fatal("Generate accepted HS256")
	}
}
