// Package restest holds the request-case table shared by the tests of the
// resource package and of its adapters, plus a token minter that controls
// every header and claim. It is NOT suitable for use outside of tests:
// helpers fail the test instead of returning errors.
package restest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer mints access tokens for tests with full control of the JOSE
// header and the claims.
type Issuer struct {
	ID  string
	Alg jose.SignatureAlgorithm
	Key crypto.Signer
	KID string
}

// NewIssuer generates a key for alg (ES256 or RS256/PS256) and returns an
// issuer with identifier id.
func NewIssuer(t testing.TB, id string, alg jose.SignatureAlgorithm, kid string) *Issuer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("restest: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{ID: id, Alg: alg, Key: key, KID: kid}
}

// JWK returns the public verification key with kid and alg set.
func (i *Issuer) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: i.Key.Public(), KeyID: i.KID, Algorithm: string(i.Alg), Use: "sig"}
}

// JWKS returns a JWK Set holding the issuer's public key.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{i.JWK()}}
}

// Claims returns a complete, valid claim set for audience aud at time now,
// lifetime 5 minutes, with scope "read write".
func (i *Issuer) Claims(aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss":       i.ID,
		"sub":       "user-1",
		"aud":       aud,
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"jti":       "jti-" + base64.RawURLEncoding.EncodeToString(randBytes(12)),
		"client_id": "client-1",
		"scope":     "read write",
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// Header returns the default JOSE header extras: typ at+jwt.
func Header() map[string]any { return map[string]any{"typ": "at+jwt"} }

// Mint signs claims with the issuer's key, alg and kid; extra holds the
// other header members (typ, crit, jku, ...).
func (i *Issuer) Mint(t testing.TB, extra map[string]any, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return i.MintRaw(t, extra, payload)
}

// MintRaw signs an arbitrary payload.
func (i *Issuer) MintRaw(t testing.TB, extra map[string]any, payload []byte) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range extra {
		opts.ExtraHeaders[jose.HeaderKey(k)] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: i.Alg, Key: jose.JSONWebKey{Key: i.Key, KeyID: i.KID}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Unsigned assembles header.payload.signature from raw parts without any
// signing library (for alg none and forged HMAC tokens).
func Unsigned(header map[string]any, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c) + "." + b64(sig)
}

// HMACWithPublicKey forges an HS256 token keyed with the issuer's public key
// bytes (DER SPKI), the classic algorithm-confusion attack.
func (i *Issuer) HMACWithPublicKey(t testing.TB, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(i.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": i.KID})
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	m := hmac.New(sha256.New, der)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
