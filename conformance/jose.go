package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// clientKey is a proof-of-possession key held by the suite.
type clientKey struct {
	signer   crypto.Signer
	alg      jose.SignatureAlgorithm
	pub      jose.JSONWebKey
	pubJSON  []byte
	privJSON []byte
	jkt      string
}

func newClientKey(signer crypto.Signer, alg jose.SignatureAlgorithm) (*clientKey, error) {
	priv := jose.JSONWebKey{Key: signer}
	pub := priv.Public()
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return nil, err
	}
	privJSON, err := json.Marshal(priv)
	if err != nil {
		return nil, err
	}
	jkt, err := keyThumbprint(&pub)
	if err != nil {
		return nil, err
	}
	return &clientKey{signer: signer, alg: alg, pub: pub, pubJSON: pubJSON, privJSON: privJSON, jkt: jkt}, nil
}

func generateECKey() (*clientKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newClientKey(k, jose.ES256)
}

func b64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic("conformance: bad built-in key constant")
	}
	return b
}

// rfc7517ECKey is the RFC 7517 Appendix A.2 EC key (published private
// part), whose thumbprint is KAT-16's cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s.
func rfc7517ECKey() (*clientKey, error) {
	k := &ecdsa.PrivateKey{
		PublicKey: ecdsa.PublicKey{
			Curve: elliptic.P256(),
			X:     new(big.Int).SetBytes(b64("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4")),
			Y:     new(big.Int).SetBytes(b64("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM")),
		},
		D: new(big.Int).SetBytes(b64("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE")),
	}
	return newClientKey(k, jose.ES256)
}

// jws describes a JWS the suite builds: valid, or deliberately malformed.
type jws struct {
	// header members. "alg" defaults to the signing algorithm; a nil value
	// deletes the member.
	header map[string]any
	// claims is marshaled as the payload unless rawPayload is set.
	claims     map[string]any
	rawPayload []byte
	// rawHeader, if set, is used verbatim as the protected header.
	rawHeader []byte
	key       *clientKey
	// signAlg is the algorithm actually used to sign (default key.alg).
	signAlg jose.SignatureAlgorithm
	// hmacKey signs with HS256 instead of key.
	hmacKey []byte
	// unsigned leaves the signature segment empty (alg none).
	unsigned bool
	// flipSig flips one bit of the signature.
	flipSig bool
}

func (j *jws) payload() ([]byte, error) {
	if j.rawPayload != nil {
		return j.rawPayload, nil
	}
	return json.Marshal(j.claims)
}

// compact serializes the JWS. Well-formed headers are signed by go-jose;
// a verbatim or incomplete header (which go-jose refuses to produce) is
// signed directly over the RFC 7515 signing input.
func (j *jws) compact() (string, error) {
	payload, err := j.payload()
	if err != nil {
		return "", err
	}
	alg := j.signAlg
	if alg == "" && j.key != nil {
		alg = j.key.alg
	}
	if j.hmacKey != nil {
		alg = jose.HS256
	}
	_, hasAlg := j.header["alg"]
	if j.rawHeader != nil || (hasAlg && j.header["alg"] == nil) {
		return j.compactRaw(payload, alg)
	}
	opts := &jose.SignerOptions{}
	for k, v := range j.header {
		if v != nil {
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	var sk jose.SigningKey
	if j.hmacKey != nil {
		sk = jose.SigningKey{Algorithm: jose.HS256, Key: j.hmacKey}
	} else {
		sk = jose.SigningKey{Algorithm: alg, Key: j.key.signer}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", err
	}
	return j.finish(out), nil
}

func (j *jws) finish(compact string) string {
	if j.unsigned {
		i := strings.LastIndexByte(compact, '.')
		return compact[:i+1]
	}
	if j.flipSig {
		i := strings.LastIndexByte(compact, '.')
		sig, err := base64.RawURLEncoding.DecodeString(compact[i+1:])
		if err == nil && len(sig) > 0 {
			sig[len(sig)/2] ^= 0x01
			return compact[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}
	}
	return compact
}

// compactRaw signs an arbitrary header. Only ES256, RS256 and HS256 are
// needed for the malformed-header cases.
func (j *jws) compactRaw(payload []byte, alg jose.SignatureAlgorithm) (string, error) {
	hdr := j.rawHeader
	if hdr == nil {
		m := map[string]any{}
		for k, v := range j.header {
			if v != nil {
				m[k] = v
			}
		}
		var err error
		if hdr, err = json.Marshal(m); err != nil {
			return "", err
		}
	}
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch {
	case j.hmacKey != nil:
		m := hmac.New(sha256.New, j.hmacKey)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case alg == jose.ES256:
		k, ok := j.key.signer.(*ecdsa.PrivateKey)
		if !ok {
			return "", errors.New("conformance: ES256 needs an EC key")
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case alg == jose.RS256:
		k, ok := j.key.signer.(*rsa.PrivateKey)
		if !ok {
			return "", errors.New("conformance: RS256 needs an RSA key")
		}
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("conformance: raw signing does not support %s", alg)
	}
	return j.finish(input + "." + base64.RawURLEncoding.EncodeToString(sig)), nil
}

// decodeJWT decodes a compact JWS's header and claims without verifying it.
// It returns an error for anything that is not three base64url segments
// holding JSON objects.
func decodeJWT(tok string) (header, claims map[string]any, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, errors.New("header is not base64url")
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, errors.New("payload is not base64url")
	}
	if err := json.Unmarshal(hb, &header); err != nil || header == nil {
		return nil, nil, errors.New("header is not a JSON object")
	}
	if err := json.Unmarshal(cb, &claims); err != nil || claims == nil {
		return nil, nil, errors.New("payload is not a JSON object")
	}
	return header, claims, nil
}

// cnfMember returns claims["cnf"][name] as a string.
func cnfMember(claims map[string]any, name string) (string, bool) {
	cnf, ok := claims["cnf"].(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := cnf[name].(string)
	return v, ok
}

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("conformance: crypto/rand failed")
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// genEC generates an EC key for ES256, ES384 or ES512.
func genEC(alg jose.SignatureAlgorithm) (*clientKey, error) {
	curve := elliptic.P256()
	switch alg {
	case jose.ES384:
		curve = elliptic.P384()
	case jose.ES512:
		curve = elliptic.P521()
	}
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, err
	}
	return newClientKey(k, alg)
}

// genRSA generates an RSA key of the given size for RS256.
func genRSA(bits int) (*clientKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	return newClientKey(k, jose.RS256)
}
