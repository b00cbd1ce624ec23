package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySet supplies an issuer's token-signing keys. Implementations must be
// safe for concurrent use.
//
// Keys returns the current snapshot, fetching it first when none exists;
// it returns an error only when no usable snapshot exists. It is called on
// every request, so once a snapshot exists it should not wait on the
// network: a remote set serves its last good keys while it revalidates
// them in the background, and keeps them when a refresh fails.
// Refresh is called when a token names a key id the snapshot lacks, and
// may wait for a fetch; an implementation may rate-limit it and return the
// current snapshot. Errors
// that should refuse tokens outright (rather than answer 503) wrap
// [ErrIssuerMismatch].
type KeySet interface {
	Keys(ctx context.Context) (*Keys, error)
	Refresh(ctx context.Context) (*Keys, error)
}

// Keys is an immutable snapshot of verification keys. Build one with
// [NewKeys]; it is safe for concurrent use.
type Keys struct {
	byKID map[string][]*verificationKey
	all   []*verificationKey
	ids   map[string]struct{}
}

type verificationKey struct {
	pub  crypto.PublicKey          // jwk.Key, extracted once: *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey
	algs []jose.SignatureAlgorithm // algorithms this key may verify
	id   string                    // kid + "." + RFC 7638 thumbprint: identity for the token cache
}

// NewKeys validates a JWK Set and builds a snapshot. Only public
// asymmetric signature keys are kept: keys marked "use":"enc" are skipped;
// symmetric ("oct") keys and private keys are
// refused with an error, RSA keys below 2048 bits likewise. A key's "alg",
// when published, is the only algorithm it verifies; without "alg" an EC
// key verifies the one algorithm of its curve, an Ed25519 key EdDSA, and an
// RSA key any of RS256..RS512 and PS256..PS512 (narrowed again by
// [Config.Algorithms]).
func NewKeys(set jose.JSONWebKeySet) (*Keys, error) {
	k := &Keys{byKID: map[string][]*verificationKey{}, ids: map[string]struct{}{}}
	for i := range set.Keys {
		jwk := set.Keys[i]
		vk, err := newVerificationKey(jwk)
		if err != nil {
			return nil, fmt.Errorf("resource: key %d: %w", i, err)
		}
		if vk == nil {
			continue
		}
		k.all = append(k.all, vk)
		k.byKID[jwk.KeyID] = append(k.byKID[jwk.KeyID], vk)
		k.ids[vk.id] = struct{}{}
	}
	if len(k.all) == 0 {
		return nil, errors.New("resource: key set has no usable signature keys")
	}
	return k, nil
}

// Len returns the number of usable keys in the snapshot.
func (k *Keys) Len() int { return len(k.all) }

func (k *Keys) has(id string) bool {
	_, ok := k.ids[id]
	return ok
}

func (k *Keys) lookup(kid string) []*verificationKey {
	if kid == "" {
		return k.all
	}
	return k.byKID[kid]
}

func newVerificationKey(jwk jose.JSONWebKey) (*verificationKey, error) {
	if jwk.Use == "enc" {
		return nil, nil
	}
	if !jwk.Valid() {
		return nil, errors.New("invalid JWK")
	}
	if !jwk.IsPublic() {
		return nil, errors.New("private key material in a verification key set")
	}
	var family []jose.SignatureAlgorithm
	switch pub := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			family = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			family = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			family = []jose.SignatureAlgorithm{jose.ES512}
		default:
			return nil, errors.New("unsupported curve")
		}
	case ed25519.PublicKey:
		family = []jose.SignatureAlgorithm{jose.EdDSA}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("RSA key shorter than 2048 bits")
		}
		family = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	default:
		return nil, errors.New("not an asymmetric public signature key")
	}
	algs := family
	if jwk.Algorithm != "" {
		a := jose.SignatureAlgorithm(jwk.Algorithm)
		if !containsAlg(family, a) {
			return nil, errors.New("published alg does not fit the key type")
		}
		algs = []jose.SignatureAlgorithm{a}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &verificationKey{
		pub:  jwk.Key,
		algs: algs,
		id:   jwk.KeyID + "." + base64.RawURLEncoding.EncodeToString(tp),
	}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAlg(list []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// StaticKeySet is a [KeySet] with a fixed snapshot, for issuers whose keys
// are configured locally. It is safe for concurrent use.
type StaticKeySet struct {
	keys *Keys
}

var _ KeySet = (*StaticKeySet)(nil)

// NewStaticKeySet builds a StaticKeySet from a JWK Set (see [NewKeys] for
// which keys are accepted).
func NewStaticKeySet(set jose.JSONWebKeySet) (*StaticKeySet, error) {
	k, err := NewKeys(set)
	if err != nil {
		return nil, err
	}
	return &StaticKeySet{keys: k}, nil
}

// Keys returns the fixed snapshot.
func (s *StaticKeySet) Keys(context.Context) (*Keys, error) { return s.keys, nil }

// Refresh returns the fixed snapshot; a static set never changes.
func (s *StaticKeySet) Refresh(context.Context) (*Keys, error) { return s.keys, nil }
