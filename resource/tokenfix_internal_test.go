package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// tokenFixture is a key set and two verifiers for driving verifyToken
// directly with tokens signed over arbitrary header and payload bytes.
type tokenFixture struct {
	ec256, ec384, ec256NoKID, ec256B *ecdsa.PrivateKey
	rsa                              *rsa.PrivateKey
	ed                               ed25519.PrivateKey
	rogueEC, p521                    *ecdsa.PrivateKey
	rogueRSA                         *rsa.PrivateKey
	certB64                          string // a self-signed certificate, base64 DER, for x5c
	pubJWK, privJWK                  string // JWK JSON of ec256 (public, private)

	strict, relaxed *Verifier
}

const (
	fixIssuer   = "https://as.example.test"
	fixIssuer2  = "https://as2.example.test"
	fixAudience = "https://rs.example.test"
)

var (
	fixOnce sync.Once
	fix     *tokenFixture
)

// newTokenFixture builds the shared fixture once per test binary: issuer
// fixIssuer has an ES256 key (kid ec1, alg published), an RSA-2048 key
// (kid rsa1, RS*/PS*), an Ed25519 key (kid ed1), a P-384 key (kid ec384)
// and a P-256 key without kid; fixIssuer2 has another P-256 key, also with
// kid ec1. Both verifiers allow every asymmetric algorithm; relaxed also
// accepts untyped tokens and requires no optional claim.
func newTokenFixture(tb testing.TB) *tokenFixture {
	tb.Helper()
	fixOnce.Do(func() {
		f := &tokenFixture{}
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		f.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		f.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		f.ec256NoKID, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		f.ec256B, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		f.rogueEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		f.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		f.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		f.rogueRSA, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		_, f.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x5c"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, f.ec256.Public(), f.ec256)
		must(err)
		f.certB64 = base64.StdEncoding.EncodeToString(der)
		pj, err := json.Marshal(jose.JSONWebKey{Key: f.ec256.Public()})
		must(err)
		f.pubJWK = string(pj)
		sj, err := json.Marshal(jose.JSONWebKey{Key: f.ec256})
		must(err)
		f.privJWK = string(sj)

		set1 := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: f.ec256.Public(), KeyID: "ec1", Algorithm: "ES256"},
			{Key: f.rsa.Public(), KeyID: "rsa1"},
			{Key: f.ed.Public(), KeyID: "ed1"},
			{Key: f.ec384.Public(), KeyID: "ec384"},
			{Key: f.ec256NoKID.Public()},
		}}
		set2 := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.ec256B.Public(), KeyID: "ec1"}}}
		ks1, err := NewStaticKeySet(set1)
		must(err)
		ks2, err := NewStaticKeySet(set2)
		must(err)
		all := []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		cfg := Config{
			Issuers:        []Issuer{{Identifier: fixIssuer, Keys: ks1}, {Identifier: fixIssuer2, Keys: ks2}},
			Audience:       fixAudience,
			Algorithms:     all,
			TokenCacheSize: -1,
			Now:            func() time.Time { return time.Unix(1_900_000_000, 0) },
		}
		f.strict, err = New(cfg)
		must(err)
		cfg.InsecureAllowUntypedTokens = true
		cfg.RequiredClaims = []string{}
		f.relaxed, err = New(cfg)
		must(err)
		fix = f
	})
	return fix
}

// expandHeader replaces the placeholders "$JWK", "$PRIVJWK" and "$X5C"
// (with their quotes) by a public JWK, a private JWK and an x5c array
// holding a real certificate.
func (f *tokenFixture) expandHeader(h []byte) []byte {
	s := string(h)
	if !strings.Contains(s, `"$`) {
		return h
	}
	s = strings.ReplaceAll(s, `"$JWK"`, f.pubJWK)
	s = strings.ReplaceAll(s, `"$PRIVJWK"`, f.privJWK)
	s = strings.ReplaceAll(s, `"$X5C"`, `["`+f.certB64+`"]`)
	return []byte(s)
}

// signer picks the key for alg: the issuer's own key of that family, the
// rogue key, or (ES256 only) the second issuer's key.
func (f *tokenFixture) signer(alg string, rogue, second bool) crypto.Signer {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		if rogue {
			return f.rogueRSA
		}
		return f.rsa
	case alg == "EdDSA":
		return f.ed
	case alg == "ES384":
		return f.ec384
	case alg == "ES512":
		return f.p521 // no such key in the set
	}
	if rogue {
		return f.rogueEC
	}
	if second {
		return f.ec256B
	}
	return f.ec256
}

var b64url = base64.RawURLEncoding

// jwsSign signs signingInput for alg with key, returning the JWS
// signature bytes (r||s for ECDSA). pssMax uses the largest PSS salt.
// highS replaces an ECDSA s by n-s (an equally valid signature).
func jwsSign(tb testing.TB, key crypto.Signer, alg string, signingInput []byte, pssMax, highS bool) []byte {
	tb.Helper()
	var h crypto.Hash
	switch {
	case strings.HasSuffix(alg, "384"):
		h = crypto.SHA384
	case strings.HasSuffix(alg, "512"):
		h = crypto.SHA512
	default:
		h = crypto.SHA256
	}
	digest := func() []byte {
		switch h {
		case crypto.SHA384:
			d := sha512.Sum384(signingInput)
			return d[:]
		case crypto.SHA512:
			d := sha512.Sum512(signingInput)
			return d[:]
		}
		d := sha256.Sum256(signingInput)
		return d[:]
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		// the hash follows the curve, as a conforming signer would
		switch size {
		case 48:
			h = crypto.SHA384
		case 66:
			h = crypto.SHA512
		default:
			h = crypto.SHA256
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest())
		if err != nil {
			tb.Fatal(err)
		}
		if highS {
			s = new(big.Int).Sub(k.Curve.Params().N, s)
		}
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case ed25519.PrivateKey:
		return ed25519.Sign(k, signingInput)
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if strings.HasPrefix(alg, "PS") {
			salt := rsa.PSSSaltLengthEqualsHash
			if pssMax {
				salt = rsa.PSSSaltLengthAuto
			}
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest(), &rsa.PSSOptions{SaltLength: salt})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, h, digest())
		}
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	tb.Fatalf("unsupported key %T", key)
	return nil
}

// headerAlg returns the alg a lenient reader finds in header, or "".
func headerAlg(header []byte) string {
	var m map[string]any
	if json.Unmarshal(header, &m) != nil {
		return ""
	}
	a, _ := m["alg"].(string)
	return a
}

// signToken signs header and payload (raw JSON bytes, placeholders
// expanded) with the key that fits the header's alg (ES256 when it names
// none) and returns the compact serialization.
func (f *tokenFixture) signToken(tb testing.TB, header, payload string) string {
	tb.Helper()
	h := f.expandHeader([]byte(header))
	in := b64url.EncodeToString(h) + "." + b64url.EncodeToString([]byte(payload))
	alg := headerAlg(h)
	if alg == "" {
		alg = "ES256"
	}
	return in + "." + b64url.EncodeToString(jwsSign(tb, f.signer(alg, false, false), alg, []byte(in), false, false))
}

// verify runs verifyToken with the strict verifier.
func (f *tokenFixture) verify(raw string) (*token, error) {
	return f.strict.verifyToken(context.Background(), raw)
}

// reasonOf returns the failure reason of err, or "" for nil.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	if f, ok := err.(*failure); ok {
		return string(f.reason)
	}
	return "not a failure: " + err.Error()
}
