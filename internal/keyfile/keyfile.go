// Package keyfile generates signing keys and reads and writes them as
// private JWKs (RFC 7517) or PKCS#8 PEM, the two formats the senderbound
// command accepts wherever it takes a key file.
package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms lists the JWS algorithms Generate accepts, ES256 first (the default).
var Algorithms = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"}

// Generate creates a fresh private key suited to the JWS algorithm alg, using
// rnd (crypto/rand when nil). RSA keys are 3072 bits.
func Generate(alg string, rnd io.Reader) (crypto.Signer, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rnd)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rnd)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rnd)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rnd)
		return k, err
	case "PS256", "RS256":
		return rsa.GenerateKey(rnd, 3072)
	}
	return nil, fmt.Errorf("keyfile: unsupported algorithm %q (want one of %s)", alg, strings.Join(Algorithms, ", "))
}

// DefaultAlgorithm names the JWS algorithm conventionally used with key:
// ES256/ES384/ES512 by curve, EdDSA for Ed25519, PS256 for RSA.
func DefaultAlgorithm(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *rsa.PublicKey:
		return "PS256", nil
	}
	return "", fmt.Errorf("keyfile: unsupported key type %T", key)
}

// Key is a private signing key read from a file, with the algorithm its JWK
// named (empty for PEM files and JWKs without "alg").
type Key struct {
	Signer    crypto.Signer
	Algorithm string
	KeyID     string
}

// MarshalJWK encodes k as a private JWK with "alg", "use":"sig" and a "kid"
// equal to the RFC 7638 thumbprint of its public part.
func MarshalJWK(k crypto.Signer, alg string) ([]byte, error) {
	pub := jose.JSONWebKey{Key: k.Public()}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keyfile: thumbprint: %w", err)
	}
	jwk := jose.JSONWebKey{Key: k, Algorithm: alg, Use: "sig", KeyID: base64.RawURLEncoding.EncodeToString(tp)}
	out, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return append(out, '\n'), nil
}

// Parse reads a private key from a JWK or PKCS#8 ("PRIVATE KEY"), SEC 1
// ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM block. A public-only
// JWK is an error.
func Parse(data []byte) (*Key, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON([]byte(trimmed)); err != nil {
			return nil, fmt.Errorf("keyfile: invalid JWK: %w", err)
		}
		if jwk.IsPublic() {
			return nil, errors.New("keyfile: the JWK holds no private key")
		}
		s, ok := jwk.Key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("keyfile: JWK key type %T cannot sign", jwk.Key)
		}
		return &Key{Signer: s, Algorithm: jwk.Algorithm, KeyID: jwk.KeyID}, nil
	}
	block, _ := pem.Decode([]byte(trimmed))
	if block == nil {
		return nil, errors.New("keyfile: neither a JWK nor a PEM private key")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("keyfile: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keyfile: key type %T cannot sign", k)
	}
	return &Key{Signer: s}, nil
}

// Load reads and parses the key file at path.
func Load(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return Parse(data)
}
