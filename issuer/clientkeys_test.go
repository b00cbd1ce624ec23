package issuer

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// unvalidatedRegistry serves one client as given, without the validation
// MemoryRegistry applies, as a database-backed registry might.
type unvalidatedRegistry struct {
	ClientRegistry
	extra []*Client
}

func (r unvalidatedRegistry) Client(ctx context.Context, id string) (*Client, error) {
	for _, c := range r.extra {
		if c.ID == id {
			return c, nil
		}
	}
	return r.ClientRegistry.Client(ctx, id)
}

// rsaWithExponent returns a 2048-bit key whose public exponent is e.
func rsaWithExponent(tb testing.TB, e int) *rsa.PrivateKey {
	tb.Helper()
	for {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		one := big.NewInt(1)
		phi := new(big.Int).Mul(new(big.Int).Sub(k.Primes[0], one), new(big.Int).Sub(k.Primes[1], one))
		d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
		if d == nil {
			continue
		}
		nk := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: k.N, E: e}, D: d, Primes: k.Primes}
		nk.Precompute()
		if err := nk.Validate(); err != nil {
			tb.Fatal(err)
		}
		return nk
	}
}

// rawAssertion builds a compact JWS from header and claims JSON and raw
// signature bytes.
func rawAssertion(header, claims string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString(sig)
}

// signedAssertion signs header and claims JSON as given with key (RS256
// or EdDSA).
func signedAssertion(tb testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, header, claims string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	var sig []byte
	var err error
	switch alg {
	case jose.RS256:
		h := crypto.SHA256.New()
		h.Write([]byte(input))
		sig, err = key.Sign(rand.Reader, h.Sum(nil), crypto.SHA256)
	case jose.EdDSA:
		sig, err = key.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	default:
		tb.Fatalf("signedAssertion: %s not supported", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// TestPrivateKeyJWTKeyRules: client keys follow internal/pubkey at the
// token endpoint, even when the registry does not validate its clients,
// and an assertion's names may not differ only in letter case.
func TestPrivateKeyJWTKeyRules(t *testing.T) {
	t.Parallel()
	identity := make(ed25519.PublicKey, 32)
	identity[0] = 1
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	bigE := rsaWithExponent(t, 1<<31-1)
	client := func(id string, pub crypto.PublicKey) *Client {
		return &Client{ID: id, AuthMethod: AuthPrivateKeyJWT, Scopes: []string{"read"},
			JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k"}}}}
	}
	extra := []*Client{
		client("weak-ed", identity),
		client("good-ed", edKey.Public()),
		client("rsa1024", rsa1024.Public()),
		client("rsa-big-e", bigE.Public()),
	}
	h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
		c.Clients = unvalidatedRegistry{ClientRegistry: c.Clients, extra: extra}
	}})
	c := h.client(nil)
	now := h.clock.Now()
	n := 0
	claims := func(id string, extra string) string {
		n++
		m := map[string]any{"iss": id, "sub": id, "aud": h.tokenURL(), "jti": "keyrules-" + strings.Repeat("x", n), "exp": now.Add(time.Minute).Unix()}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if extra != "" {
			return strings.TrimSuffix(string(b), "}") + "," + extra + "}"
		}
		return string(b)
	}
	forgery := make([]byte, 64)
	forgery[0] = 1 // R = identity, S = 0
	tests := []struct {
		name      string
		assertion string
		status    int
	}{
		{"Ed25519 small-order key, R = identity, S = 0", rawAssertion(`{"alg":"EdDSA","kid":"k"}`, claims("weak-ed", ""), forgery), 400},
		{"Ed25519 key accepted", signedAssertion(t, edKey, jose.EdDSA, `{"alg":"EdDSA","kid":"k"}`, claims("good-ed", "")), 200},
		{"RSA 1024", signedAssertion(t, rsa1024, jose.RS256, `{"alg":"RS256","kid":"k"}`, claims("rsa1024", "")), 400},
		{"RSA e 2^31-1", signedAssertion(t, bigE, jose.RS256, `{"alg":"RS256","kid":"k"}`, claims("rsa-big-e", "")), 400},
		{"claims iss and ISS", signedAssertion(t, edKey, jose.EdDSA, `{"alg":"EdDSA","kid":"k"}`, claims("good-ed", `"ISS":"other"`)), 400},
		{"claims with Kelvin-sign \u212aid twin of a nested kid", signedAssertion(t, edKey, jose.EdDSA, `{"alg":"EdDSA","kid":"k"}`, claims("good-ed", `"ext":{"kid":1,"\u212aid":2}`)), 400},
		{"header kid and KID", signedAssertion(t, edKey, jose.EdDSA, `{"alg":"EdDSA","kid":"k","KID":"other"}`, claims("good-ed", "")), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {tt.assertion}}
			r := h.post(c, h.tokenURL(), form, nil)
			h.checkTokenResponse(r)
			if r.status != tt.status || tt.status == 400 && r.str("error") != "invalid_client" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
}

// TestClientJWKSKeyRules: registration refuses keys outside the
// internal/pubkey rules.
func TestClientJWKSKeyRules(t *testing.T) {
	t.Parallel()
	identity := make(ed25519.PublicKey, 32)
	identity[0] = 1
	nonCanonical := make(ed25519.PublicKey, 32)
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	nonCanonical[0] = 0xf0
	nonCanonical[31] = 0x7f
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	big8192 := new(big.Int).Lsh(big.NewInt(1), 8191)
	big8192.SetBit(big8192, 0, 1)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want error
	}{
		{"Ed25519 identity", identity, ErrInvalidConfig},
		{"Ed25519 non-canonical", nonCanonical, ErrInvalidConfig},
		{"RSA 1024", rsa1024.Public(), ErrInvalidConfig},
		{"RSA 8192", &rsa.PublicKey{N: big8192, E: 65537}, ErrInvalidConfig},
		{"RSA e 2^31-1", &rsa.PublicKey{N: rsa2048.N, E: 1<<31 - 1}, ErrInvalidConfig},
		{"RSA 2048", rsa2048.Public(), nil},
		{"P-256", newES256(t).Public(), nil},
	}
	for _, tt := range tests {
		set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: tt.pub, KeyID: "k"}}}
		_, err := NewMemoryRegistry(Client{ID: "x", AuthMethod: AuthPrivateKeyJWT, JWKS: set})
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// smallOrderSigner "holds" the Ed25519 identity point and signs everything
// with R = identity, S = 0, which crypto/ed25519 accepts for that key.
type smallOrderSigner struct{}

func (smallOrderSigner) Public() crypto.PublicKey {
	k := make(ed25519.PublicKey, ed25519.PublicKeySize)
	k[0] = 1
	return k
}

func (smallOrderSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	sig := make([]byte, ed25519.SignatureSize)
	sig[0] = 1
	return sig, nil
}

// TestCertificateBindingKeyRules: a token is never bound to a certificate
// whose key anyone can "prove": the handshake with a small-order Ed25519
// certificate succeeds without any private key, so the request is refused
// instead of yielding a token that is bound in name only.
func TestCertificateBindingKeyRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "anyone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, smallOrderSigner{}.Public(), smallOrderSigner{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	weak := &certs.Leaf{Cert: cert, Key: smallOrderSigner{}}
	form := url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"mallory"}}
	r := h.post(h.client(weak), h.aliasTokenURL(), form, nil)
	h.checkTokenResponse(r)
	if r.status != 400 || r.str("error") != "invalid_request" {
		t.Fatalf("small-order certificate: %d %s", r.status, r.raw)
	}
	if r := h.post(h.client(h.s1), h.aliasTokenURL(), form, nil); r.status != 200 {
		t.Fatalf("good certificate: %d %s", r.status, r.raw)
	}
}
