package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/jwssign"
	"github.com/senderbound/senderbound/internal/keyfile"
)

// SigningKey is one access-token signing key. Signer may be any
// crypto.Signer (in memory, KMS, HSM): the issuer only calls Public and Sign.
type SigningKey struct {
	// Signer is the private key. Required.
	Signer crypto.Signer
	// Algorithm is the JWS algorithm: ES256, ES384, ES512, EdDSA, PS256 or
	// RS256. If empty it is inferred from the key: P-256 ES256, P-384 ES384,
	// P-521 ES512, Ed25519 EdDSA, RSA RS256 (the algorithm RFC 9068 §2.1
	// requires every party to support).
	Algorithm string
	// KeyID is the JWS "kid". If empty, the RFC 7638 SHA-256 thumbprint of
	// the public key is used.
	KeyID string
}

// ParseSigningKey reads a private signing key from a private JWK or a
// PKCS#8 ("PRIVATE KEY"), SEC 1 or PKCS#1 PEM block, keeping the JWK's
// "alg" and "kid" when present. A public-only JWK is an error.
func ParseSigningKey(data []byte) (SigningKey, error) {
	k, err := keyfile.Parse(data)
	if err != nil {
		return SigningKey{}, fmt.Errorf("issuer: signing key: %w", err)
	}
	return SigningKey{Signer: k.Signer, Algorithm: k.Algorithm, KeyID: k.KeyID}, nil
}

// key is a SigningKey prepared for fast signing: the protected header is
// encoded once.
type key struct {
	signer crypto.Signer
	alg    string
	kid    string
	js     *jwssign.Key
	header string // base64url of the protected header
	jwk    jose.JSONWebKey

	// lastExp is the latest exp (unix seconds) of any token signed by
	// this key; a retired key stays published until it has passed.
	lastExp atomic.Int64
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

func prepareKey(sk SigningKey) (*key, error) {
	if sk.Signer == nil {
		return nil, fmt.Errorf("%w: signing key has no Signer", ErrInvalidConfig)
	}
	pub := sk.Signer.Public()
	alg := sk.Algorithm
	if alg == "" {
		var err error
		if alg, err = inferAlgorithm(pub); err != nil {
			return nil, err
		}
	}
	k := &key{signer: sk.Signer, alg: alg}
	switch alg {
	case "ES256", "ES384", "ES512":
		p, ok := pub.(*ecdsa.PublicKey)
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if !ok || p.Curve != want {
			return nil, fmt.Errorf("%w: %s needs an ECDSA %s key", ErrInvalidConfig, alg, want.Params().Name)
		}
	case "EdDSA":
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("%w: EdDSA needs an Ed25519 key", ErrInvalidConfig)
		}
	case "PS256", "RS256":
		p, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s needs an RSA key", ErrInvalidConfig, alg)
		}
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA keys must have at least 2048 bits", ErrInvalidConfig)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported signing algorithm", ErrInvalidConfig)
	}
	js, err := jwssign.NewKey(sk.Signer, alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	k.js = js
	k.jwk = jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
	kid := sk.KeyID
	if kid == "" {
		tp, err := k.jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%w: thumbprint: %w", ErrInvalidConfig, err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	k.kid = kid
	k.jwk.KeyID = kid
	if !k.jwk.Valid() {
		return nil, fmt.Errorf("%w: invalid public key", ErrInvalidConfig)
	}
	h, err := json.Marshal(tokenHeader{Alg: alg, Kid: kid, Typ: "at+jwt"})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	k.header = base64.RawURLEncoding.EncodeToString(h)
	return k, nil
}

func inferAlgorithm(pub crypto.PublicKey) (string, error) {
	if _, ok := pub.(*rsa.PublicKey); ok {
		return "RS256", nil
	}
	alg, err := keyfile.DefaultAlgorithm(pub)
	if err != nil {
		return "", fmt.Errorf("%w: unsupported signing key type %T", ErrInvalidConfig, pub)
	}
	return alg, nil
}

func (k *key) noteExp(exp int64) {
	for {
		cur := k.lastExp.Load()
		if exp <= cur || k.lastExp.CompareAndSwap(cur, exp) {
			return
		}
	}
}

// KeySet holds the issuer's signing keys through rotation: at most one next
// key (published in the JWKS but not yet signing), exactly one active key
// (signs every new token) and any number of retired keys (no longer
// signing, published until every token they signed has expired).
//
// A KeySet is safe for concurrent use. To rotate without breaking resource
// servers that cache the JWKS, call [KeySet.AddNext], wait at least the
// JWKS cache lifetime (see [Server] JWKSMaxAge), then call [KeySet.Rotate].
type KeySet struct {
	mu      sync.Mutex
	active  atomic.Pointer[key]
	next    *key
	retired []*key
}

// NewKeySet returns a KeySet whose active key is active.
func NewKeySet(active SigningKey) (*KeySet, error) {
	k, err := prepareKey(active)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{}
	ks.active.Store(k)
	return ks, nil
}

// AddNext publishes k as the next key; it starts signing at the next
// [KeySet.Rotate]. A previous next key that never signed is replaced.
// Its kid must differ from every key in the set.
func (ks *KeySet) AddNext(k SigningKey) error {
	nk, err := prepareKey(k)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if nk.kid == ks.active.Load().kid {
		return fmt.Errorf("%w: duplicate kid", ErrInvalidConfig)
	}
	for _, r := range ks.retired {
		if r.kid == nk.kid {
			return fmt.Errorf("%w: duplicate kid", ErrInvalidConfig)
		}
	}
	ks.next = nk
	return nil
}

// Rotate makes the next key active and retires the active one. It fails
// when no next key was added.
func (ks *KeySet) Rotate() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.next == nil {
		return fmt.Errorf("%w: no next key to rotate to", ErrInvalidConfig)
	}
	old := ks.active.Swap(ks.next)
	ks.next = nil
	ks.retired = append(ks.retired, old)
	return nil
}

// pin returns the key to sign a token expiring at exp (Unix seconds), with
// exp already recorded on it, so that the key stays published until exp
// even when a rotation retires it while the signature is still being made
// (a KMS signer can take a while). If a rotation retired the loaded key and
// a JWKS call dropped it before exp was recorded, pin takes the new active
// key instead.
func (ks *KeySet) pin(exp int64) *key {
	for {
		k := ks.active.Load()
		k.noteExp(exp)
		if ks.active.Load() == k {
			// Still active after the note: a later Rotate retires it with
			// exp on it, and JWKS keeps it until then.
			return k
		}
		ks.mu.Lock()
		kept := slices.Contains(ks.retired, k)
		ks.mu.Unlock()
		if kept {
			// Retired but still published; JWKS reads lastExp under mu,
			// after the note, so it keeps k until exp.
			return k
		}
	}
}

// ActiveKeyID returns the kid of the key that signs new tokens.
func (ks *KeySet) ActiveKeyID() string { return ks.active.Load().kid }

// JWKS returns the public keys to publish at now: the next key, the active
// key and each retired key whose tokens have not all expired by now.
// Retired keys past that point are dropped from the set for good.
func (ks *KeySet) JWKS(now time.Time) jose.JSONWebKeySet {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	set := jose.JSONWebKeySet{}
	if ks.next != nil {
		set.Keys = append(set.Keys, ks.next.jwk)
	}
	set.Keys = append(set.Keys, ks.active.Load().jwk)
	kept := ks.retired[:0]
	for _, r := range ks.retired {
		if r.lastExp.Load() >= now.Unix() {
			kept = append(kept, r)
			set.Keys = append(set.Keys, r.jwk)
		}
	}
	for i := len(kept); i < len(ks.retired); i++ {
		ks.retired[i] = nil
	}
	ks.retired = kept
	return set
}

// algorithms returns the JWS algorithms of the published keys, active first.
func (ks *KeySet) algorithms() []string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	algs := []string{ks.active.Load().alg}
	add := func(a string) {
		for _, x := range algs {
			if x == a {
				return
			}
		}
		algs = append(algs, a)
	}
	if ks.next != nil {
		add(ks.next.alg)
	}
	for _, r := range ks.retired {
		add(r.alg)
	}
	return algs
}

// lookup returns the active or a still-published retired key by kid, for
// introspection. The next key has signed nothing yet and is not returned.
func (ks *KeySet) lookup(kid string, now time.Time) (*key, bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if a := ks.active.Load(); a.kid == kid {
		return a, true
	}
	for _, r := range ks.retired {
		if r.kid == kid && r.lastExp.Load() >= now.Unix() {
			return r, true
		}
	}
	return nil, false
}
