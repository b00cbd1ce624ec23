package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// NonceSource issues and checks server nonces (RFC 9449 §8, §9).
// Implementations must be safe for concurrent use.
type NonceSource interface {
	// NewNonce returns a fresh nonce of 1*NQCHAR characters.
	NewNonce() (string, error)
	// CheckNonce returns nil when nonce is currently valid for this server,
	// and otherwise an error for which errors.Is(err, ErrUseNonce) holds.
	CheckNonce(nonce string) error
}

// NonceConfig configures [NewNonces].
type NonceConfig struct {
	// Secrets are HMAC keys of at least 32 bytes each. The first signs new
	// nonces; all of them verify, so a secret can be rotated in by putting
	// it first and rotated out after one Lifetime. Required.
	Secrets [][]byte
	// Label binds nonces to one server, e.g. its public URL; a nonce from a
	// server with another label does not validate (RFC 9449 §9). Required.
	Label string
	// Lifetime is how long a nonce stays valid. 0 means 5 minutes.
	Lifetime time.Duration
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Rand is the source of the 128-bit salt. nil means crypto/rand.Reader.
	Rand io.Reader
}

// DefaultNonceLifetime is the nonce lifetime when NonceConfig.Lifetime is 0.
const DefaultNonceLifetime = 5 * time.Minute

const (
	nonceVersion  = 1
	nonceSaltLen  = 16
	nonceMACLen   = 32
	nonceRawLen   = 1 + 8 + nonceSaltLen + nonceMACLen
	nonceEncLen   = (nonceRawLen*8 + 5) / 6
	nonceDomain   = "senderbound dpop nonce v1\x00"
	minSecretSize = 32
)

// Nonces is a stateless [NonceSource]: a nonce is base64url(version ‖
// expiry ‖ 128-bit random salt ‖ HMAC-SHA-256(secret, domain ‖ label ‖
// version ‖ expiry ‖ salt)). Any instance holding the same secrets and
// label accepts any other instance's nonces; no storage is needed. A nonce
// may be used by many proofs until it expires; single use of proofs is the
// replay store's job. Nonces is immutable and safe for concurrent use.
type Nonces struct {
	secrets  [][]byte
	label    []byte
	lifetime time.Duration
	now      func() time.Time
	rand     io.Reader
}

var _ NonceSource = (*Nonces)(nil)

// NewNonces validates cfg and returns a Nonces that owns a copy of it.
func NewNonces(cfg NonceConfig) (*Nonces, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("dpop: nonce secrets required")
	}
	if cfg.Label == "" {
		return nil, errors.New("dpop: nonce label required")
	}
	if cfg.Lifetime < 0 {
		return nil, errors.New("dpop: negative nonce lifetime")
	}
	n := &Nonces{label: []byte(cfg.Label), lifetime: cfg.Lifetime, now: cfg.Now, rand: cfg.Rand}
	for i, s := range cfg.Secrets {
		if len(s) < minSecretSize {
			return nil, fmt.Errorf("dpop: nonce secret %d shorter than %d bytes", i, minSecretSize)
		}
		n.secrets = append(n.secrets, append([]byte(nil), s...))
	}
	if n.lifetime == 0 {
		n.lifetime = DefaultNonceLifetime
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.rand == nil {
		n.rand = rand.Reader
	}
	return n, nil
}

func (n *Nonces) mac(secret []byte, head []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(nonceDomain))
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(n.label)))
	m.Write(l[:])
	m.Write(n.label)
	m.Write(head)
	return m.Sum(nil)
}

// NewNonce returns a fresh nonce valid for the configured Lifetime.
func (n *Nonces) NewNonce() (string, error) {
	var raw [nonceRawLen]byte
	raw[0] = nonceVersion
	exp := n.now().Add(n.lifetime).Unix()
	binary.BigEndian.PutUint64(raw[1:9], uint64(exp))
	if _, err := io.ReadFull(n.rand, raw[9:9+nonceSaltLen]); err != nil {
		return "", fmt.Errorf("dpop: nonce salt: %w", err)
	}
	copy(raw[9+nonceSaltLen:], n.mac(n.secrets[0], raw[:9+nonceSaltLen]))
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

var (
	errNonceMalformed = fmt.Errorf("%w: malformed nonce", ErrUseNonce)
	errNonceBad       = fmt.Errorf("%w: nonce not issued here", ErrUseNonce)
	errNonceExpired   = fmt.Errorf("%w: nonce expired", ErrUseNonce)
)

// expiry authenticates nonce and returns its expiry time.
func (n *Nonces) expiry(nonce string) (time.Time, error) {
	if len(nonce) != nonceEncLen {
		return time.Time{}, errNonceMalformed
	}
	var raw [nonceRawLen + 2]byte
	dec, ok := decodeB64(raw[:], bytesOf(nonce))
	if !ok || len(dec) != nonceRawLen || dec[0] != nonceVersion {
		return time.Time{}, errNonceMalformed
	}
	head, tag := dec[:9+nonceSaltLen], dec[9+nonceSaltLen:]
	for _, s := range n.secrets {
		if hmac.Equal(n.mac(s, head), tag) {
			exp := int64(binary.BigEndian.Uint64(dec[1:9]))
			if exp < 0 {
				return time.Time{}, errNonceBad
			}
			return time.Unix(exp, 0), nil
		}
	}
	return time.Time{}, errNonceBad
}

// CheckNonce returns nil for a nonce this server issued (same label, one of
// the secrets) that has not expired. Errors wrap [ErrUseNonce].
func (n *Nonces) CheckNonce(nonce string) error {
	exp, err := n.expiry(nonce)
	if err != nil {
		return err
	}
	now := n.now()
	if !now.Before(exp) {
		return errNonceExpired
	}
	if exp.Sub(now) > n.lifetime+time.Minute {
		// Issued by a clock far ahead of ours: treat as not ours.
		return errNonceBad
	}
	return nil
}

// Due reports whether the client should be sent a fresh nonce: the nonce
// is invalid, expired, or has less than a third of its Lifetime left.
// Resource servers and issuers call it on accepted requests to decide
// whether to attach a DPoP-Nonce header.
func (n *Nonces) Due(nonce string) bool {
	if n.CheckNonce(nonce) != nil {
		return true
	}
	exp, _ := n.expiry(nonce)
	return exp.Sub(n.now()) < n.lifetime/3
}

// validNonceSyntax reports whether s is 1*NQCHAR (RFC 9449 §8.1):
// %x21 / %x23-5B / %x5D-7E.
func validNonceSyntax(s string) bool {
	if s == "" || len(s) > maxURL {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isScopeChar(s[i]) {
			return false
		}
	}
	return true
}

// SetNonce puts nonce in h as the DPoP-Nonce response header (RFC 9449
// §8.1, §9) and marks the response Cache-Control: no-store, so that no
// cache hands one client's nonce to another. It replaces any earlier
// DPoP-Nonce: a response carries exactly one. The resource and issuer
// packages set their nonces through it.
func SetNonce(h http.Header, nonce string) {
	h.Set("DPoP-Nonce", nonce)
	h.Set("Cache-Control", "no-store")
}
