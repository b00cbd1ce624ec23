package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/jwssign"
	"github.com/senderbound/senderbound/internal/pubkey"
)

// ProofType is the JOSE typ of a DPoP proof (RFC 9449 §4.2).
const ProofType = "dpop+jwt"

// jtiBytes is the number of random bytes in a jti (192 bits).
const jtiBytes = 24

// ProverOptions configures a [Prover]. A nil *ProverOptions means all defaults.
type ProverOptions struct {
	// Algorithm is the JWS algorithm. "" infers it from the key: P-256→ES256,
	// P-384→ES384, P-521→ES512, Ed25519→EdDSA, RSA (2048..4096 bits)→PS256.
	// RSA keys may also use PS384, PS512, RS256, RS384 or RS512.
	Algorithm string
	// Now is the clock for iat. nil means time.Now.
	Now func() time.Time
	// Rand is the entropy for jti. nil means crypto/rand.Reader.
	Rand io.Reader
	// X5C, when set, is a certificate chain (DER, leaf first) to carry in
	// every proof's protected header as x5c (standard base64, RFC 7515
	// §4.1.6), for verifiers that accept it ([Expect.X5C]). The leaf's
	// public key must be the signing key's; at most [MaxX5C] certificates
	// of at most [MaxX5CCertBytes] each. nil means no x5c, the DPoP form.
	X5C [][]byte
}

// Prover creates DPoP proofs (RFC 9449 §4.2) with one key. A Prover is
// immutable after NewProver and safe for concurrent use, provided the
// crypto.Signer is.
type Prover struct {
	alg    string
	key    *jwssign.Key
	header string // base64url of the protected header, the same for every proof
	jwk    jose.JSONWebKey
	jkt    string
	now    func() time.Time
	rand   io.Reader
}

// NewProver returns a Prover for key, which may be any crypto.Signer (an
// in-memory key, an HSM or a KMS) whose public key is ECDSA P-256/384/521,
// Ed25519 or RSA with a modulus of 2048 to 4096 bits and a public exponent
// of at most 65537 (what verifiers accept). opts may be nil.
func NewProver(key crypto.Signer, opts *ProverOptions) (*Prover, error) {
	if key == nil {
		return nil, errors.New("dpop: nil signing key")
	}
	var o ProverOptions
	if opts != nil {
		o = *opts
	}
	pub := key.Public()
	inferred, err := algorithmFor(pub)
	if err != nil {
		return nil, err
	}
	alg := o.Algorithm
	if alg == "" {
		alg = inferred
	} else if !algorithmFits(alg, pub) {
		return nil, fmt.Errorf("dpop: algorithm %s does not fit the key", alg)
	}
	// Proofs are signed through the crypto.Signer interface alone, so
	// that HSM and KMS keys work like in-memory ones.
	sk, err := jwssign.NewKey(key, alg)
	if err != nil {
		return nil, fmt.Errorf("dpop: signer: %w", err)
	}
	jwk := jose.JSONWebKey{Key: pub}
	jkt, err := Thumbprint(&jwk)
	if err != nil {
		return nil, err
	}
	jwkJSON, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("dpop: jwk: %w", err)
	}
	if err := checkX5C(o.X5C, pub); err != nil {
		return nil, err
	}
	// encoding/json writes each []byte as padded standard base64, the x5c
	// encoding.
	header, err := json.Marshal(proofHeader{Alg: alg, JWK: jwkJSON, Typ: ProofType, X5C: o.X5C})
	if err != nil {
		return nil, fmt.Errorf("dpop: header: %w", err)
	}
	p := &Prover{
		alg: alg, key: sk, header: base64.RawURLEncoding.EncodeToString(header),
		jwk: jwk, jkt: jkt, now: o.Now, rand: o.Rand,
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	return p, nil
}

// algorithmFor infers the default algorithm for a public key.
func algorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", errors.New("dpop: unsupported elliptic curve")
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *rsa.PublicKey:
		if pubkey.RSA(k.N, k.E) != nil {
			return "", errors.New("dpop: RSA key outside 2048..4096 bits or with an exponent above 65537")
		}
		return "PS256", nil
	}
	return "", errors.New("dpop: unsupported key type")
}

func algorithmFits(alg string, pub crypto.PublicKey) bool {
	inferred, err := algorithmFor(pub)
	if err != nil {
		return false
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		switch alg {
		case "PS256", "PS384", "PS512", "RS256", "RS384", "RS512":
			return true
		}
		return false
	}
	return alg == inferred
}

// proofHeader is the protected header of every proof of one Prover.
type proofHeader struct {
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
	Typ string          `json:"typ"`
	X5C [][]byte        `json:"x5c,omitempty"`
}

// checkX5C checks a chain for ProverOptions.X5C: within the verifier's
// bounds, each value a certificate, the first one for pub.
func checkX5C(chain [][]byte, pub crypto.PublicKey) error {
	if chain == nil {
		return nil
	}
	if len(chain) == 0 || len(chain) > MaxX5C {
		return fmt.Errorf("dpop: x5c must hold 1 to %d certificates", MaxX5C)
	}
	for _, der := range chain {
		if len(der) == 0 || len(der) > MaxX5CCertBytes {
			return fmt.Errorf("dpop: x5c certificate is empty or larger than %d bytes", MaxX5CCertBytes)
		}
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return fmt.Errorf("dpop: x5c leaf: %w", err)
	}
	k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(pub) {
		return errors.New("dpop: x5c leaf certificate is not for the signing key")
	}
	return nil
}

// ProofOptions are the per-request inputs of [Prover.Proof].
type ProofOptions struct {
	// AccessToken, when non-empty, adds ath = base64url(SHA-256(token)).
	AccessToken string
	// Nonce, when non-empty, is the server-provided DPoP-Nonce value.
	Nonce string
}

// Proof returns a compact DPoP proof JWT for one request: header typ
// dpop+jwt, alg and the public jwk; claims jti (192 random bits), htm =
// method, htu = targetURL without query and fragment, iat, and ath and nonce
// when opts carries them. It refuses a method that is not an HTTP token and
// a targetURL that is not an absolute http(s) URL.
func (p *Prover) Proof(method, targetURL string, opts ProofOptions) (string, error) {
	if method == "" || filter(method, isTokenChar) != method {
		return "", errors.New("dpop: invalid HTTP method")
	}
	htu, err := proofHTU(targetURL)
	if err != nil {
		return "", err
	}
	if opts.Nonce != "" && !validNonceSyntax(opts.Nonce) {
		return "", errors.New("dpop: nonce is not 1*NQCHAR")
	}
	var rnd [jtiBytes]byte
	if _, err := io.ReadFull(p.rand, rnd[:]); err != nil {
		return "", fmt.Errorf("dpop: jti: %w", err)
	}
	var buf [512]byte // the claims of a typical proof fit on the stack
	payload := p.appendClaims(buf[:0], &rnd, method, htu, opts)
	jws, err := p.key.SignCompact(rand.Reader, p.header, payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return jws, nil
}

// appendClaims appends the proof's claims object: jti, htm, htu, iat, and
// ath and nonce when present (RFC 9449 §4.2).
func (p *Prover) appendClaims(b []byte, rnd *[jtiBytes]byte, method, htu string, opts ProofOptions) []byte {
	b64 := base64.RawURLEncoding
	b = append(b, '{')
	b = jwssign.AppendMember(b, "jti")
	b = append(b, '"') // base64url needs no escaping
	b = b64.AppendEncode(b, rnd[:])
	b = append(b, '"')
	b = jwssign.AppendStringMember(b, "htm", method)
	b = jwssign.AppendStringMember(b, "htu", htu)
	b = jwssign.AppendIntMember(b, "iat", p.now().Unix())
	if opts.AccessToken != "" {
		b = jwssign.AppendMember(b, "ath")
		b = append(b, '"')
		b = appendATH(b, opts.AccessToken)
		b = append(b, '"')
	}
	if opts.Nonce != "" {
		b = jwssign.AppendStringMember(b, "nonce", opts.Nonce)
	}
	return append(b, '}')
}

// proofHTU strips query and fragment from an absolute http(s) URL and checks
// what remains with the verifier's own normalizer, so that a proof this
// package makes is one it accepts.
func proofHTU(target string) (string, error) {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	var buf [256]byte
	if _, err := appendNormalizedURL(buf[:0], target, false); err != nil {
		return "", errors.New("dpop: target URL is not an absolute http(s) URL")
	}
	return target, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of the public key of p.
func (p *Prover) Thumbprint() string { return p.jkt }

// Algorithm returns the JWS algorithm p signs with.
func (p *Prover) Algorithm() string { return p.alg }

// PublicJWK returns the public JWK that p embeds in its proofs.
func (p *Prover) PublicJWK() jose.JSONWebKey { return p.jwk }

// Thumbprint returns the base64url (unpadded) RFC 7638 SHA-256 thumbprint
// of the public part of jwk, as used in cnf.jkt and dpop_jkt. A private JWK
// yields its public part's thumbprint (THUMB-08).
func Thumbprint(jwk *jose.JSONWebKey) (string, error) {
	if jwk == nil || jwk.Key == nil {
		return "", errors.New("dpop: empty JWK")
	}
	pub := jwk.Public()
	if !pub.Valid() {
		return "", errors.New("dpop: JWK has no usable public key")
	}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// AccessTokenHash returns the ath value for token: base64url (unpadded) of
// SHA-256 over the token's ASCII bytes (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	var buf [43]byte
	return string(appendATH(buf[:0], token))
}

// appendATH appends the ath value for token to b.
func appendATH(b []byte, token string) []byte {
	// Hash the token's bytes in place: a token is often kilobytes, and
	// SHA-256 only reads them.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	return base64.RawURLEncoding.AppendEncode(b, sum[:])
}
