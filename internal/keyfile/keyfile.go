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
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
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

// ErrExposed reports a key or secret file whose permissions let users other
// than its owner read or write it.
var ErrExposed = errors.New("keyfile: file is accessible to group or others (restrict it to its owner: chmod 600)")

// maxPrivateFile caps what ReadPrivate reads: far more than any key or
// secret needs.
const maxPrivateFile = 1 << 20

// ReadPrivate reads the file at path, which holds a private key or a
// secret. It refuses anything but a regular file (symbolic links to one are
// followed) and a file larger than 1 MiB, and on systems with Unix
// permissions a file that group or others may read or write (wrapping
// [ErrExposed]): whoever can read a signing key can mint tokens. Error
// messages never include the file's content.
func ReadPrivate(path string) ([]byte, error) {
	// Stat first, so that a FIFO or a device is refused before an open that
	// could block.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyfile: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyfile: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o", ErrExposed, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPrivateFile+1))
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if len(data) > maxPrivateFile {
		return nil, fmt.Errorf("keyfile: %s is larger than %d bytes", path, maxPrivateFile)
	}
	return data, nil
}

// LoadPrivate reads the key file at path with [ReadPrivate]'s checks and
// parses it.
func LoadPrivate(path string) (*Key, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// LoadOrCreate loads the key file at path with [LoadPrivate] or, when there
// is none, generates a key for alg (using rnd, crypto/rand when nil) and
// writes it there as a private JWK readable by its owner only (mode 0600),
// creating missing directories with mode 0700. created reports whether the
// key is new. The file appears complete or not at all: it is written under
// a temporary name and linked into place, so two processes starting at
// once end up with the same key. An existing file is never replaced.
func LoadOrCreate(path, alg string, rnd io.Reader) (k *Key, created bool, err error) {
	k, err = LoadPrivate(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	signer, err := Generate(alg, rnd)
	if err != nil {
		return nil, false, err
	}
	data, err := MarshalJWK(signer, alg)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyfile-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		// Another process created it first: use its key.
		k, err = LoadPrivate(path)
		return k, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable where the system allows it
		d.Close()
	}
	k, err = Parse(data)
	return k, err == nil, err
}
