package conformance

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// jwkThumbprint returns the RFC 7638 SHA-256 thumbprint (base64url, no
// padding) of a JSON Web Key, the value a DPoP-bound token carries in
// cnf.jkt. Private members and optional members do not change the result.
// It is computed here, independently of the implementation under test.
func jwkThumbprint(jwkJSON []byte) (string, error) {
	var k jose.JSONWebKey
	if err := json.Unmarshal(jwkJSON, &k); err != nil {
		return "", fmt.Errorf("conformance: parsing JWK: %w", err)
	}
	return keyThumbprint(&k)
}

func keyThumbprint(k *jose.JSONWebKey) (string, error) {
	pub := k.Public()
	if !pub.Valid() {
		return "", errors.New("conformance: JWK has no public part")
	}
	h, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("conformance: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(h), nil
}

// certificateThumbprint returns the RFC 8705 §3.1 x5t#S256 value of a DER
// certificate: base64url(SHA-256(DER)) without padding.
func certificateThumbprint(der []byte) string {
	h := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// tokenHash returns the RFC 9449 §4.2 "ath" value of an access token:
// base64url(SHA-256(ASCII token)).
func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// parseClientCertHeader decodes an RFC 9440 Client-Cert field value (an
// RFC 8941 Byte Sequence, ":base64:") into DER bytes. It does not check that
// the bytes are a certificate.
func parseClientCertHeader(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, errors.New("conformance: Client-Cert is not a byte sequence")
	}
	inner := v[1 : len(v)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
		if !ok {
			return nil, errors.New("conformance: Client-Cert has a character outside base64")
		}
	}
	enc := base64.RawStdEncoding.Strict()
	if strings.IndexByte(inner, '=') >= 0 {
		enc = base64.StdEncoding.Strict()
	}
	der, err := enc.DecodeString(inner)
	if err != nil {
		return nil, errors.New("conformance: Client-Cert is not valid base64")
	}
	return der, nil
}

// clientCertHeader encodes DER bytes as an RFC 9440 Client-Cert value.
func clientCertHeader(der []byte) string {
	return ":" + base64.StdEncoding.EncodeToString(der) + ":"
}

// newClientKeyFromPublic returns the RFC 7638 thumbprint of a public key.
func newClientKeyFromPublic(pub any) (string, error) {
	k := jose.JSONWebKey{Key: pub}
	return keyThumbprint(&k)
}
