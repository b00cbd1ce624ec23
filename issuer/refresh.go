package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// RefreshRecord is what a [RefreshStore] keeps for one refresh token. The
// token itself is never stored, only its SHA-256.
type RefreshRecord struct {
	ClientID string
	Subject  string
	Scope    string
	Audience []string
	Claims   map[string]any
	// Binding constrains a public client's refresh token to its DPoP key
	// (RFC 9449 §5) or certificate (RFC 8705 §4); zero for confidential
	// clients, whose refresh tokens are constrained by client authentication.
	Binding   Binding
	ExpiresAt time.Time
}

// RefreshStore keeps refresh tokens by the SHA-256 of their value. A
// refresh token is single use: the token endpoint reads its record with Get,
// checks the request against it, and then redeems it with Take, which
// removes it; the response carries a new refresh token for the same grant
// (rotation, RFC 9700 §4.14.2). Implementations must be safe for concurrent
// use; issuer/redisrefresh keeps the tokens of several issuer instances in
// Redis, and issuer/refreshtest checks an implementation against this
// contract.
type RefreshStore interface {
	// Put stores rec under id, replacing any record there.
	Put(ctx context.Context, id [32]byte, rec RefreshRecord) error
	// Get returns the record for id, or an error wrapping
	// [ErrTokenNotFound] when it is unknown or expired. Any other error
	// means the store could not answer; the request is refused.
	Get(ctx context.Context, id [32]byte) (*RefreshRecord, error)
	// Take removes id and returns its record in one atomic step: of
	// concurrent Takes of one id, at most one gets the record. A Take of an
	// unknown, expired or already taken id returns an error wrapping
	// [ErrTokenNotFound]. Any other error means the store could not answer
	// (the record may or may not be gone); the request is refused.
	Take(ctx context.Context, id [32]byte) (*RefreshRecord, error)
}

// MemoryRefreshStore is an in-memory [RefreshStore] for one instance. It
// drops expired records as it goes and is safe for concurrent use.
type MemoryRefreshStore struct {
	now  func() time.Time
	mu   sync.Mutex
	recs map[[32]byte]RefreshRecord
	puts int
}

var _ RefreshStore = (*MemoryRefreshStore)(nil)

// NewMemoryRefreshStore returns an empty store that judges expiry with now
// (time.Now if nil).
func NewMemoryRefreshStore(now func() time.Time) *MemoryRefreshStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryRefreshStore{now: now, recs: map[[32]byte]RefreshRecord{}}
}

// Put implements [RefreshStore].
func (m *MemoryRefreshStore) Put(_ context.Context, id [32]byte, rec RefreshRecord) error {
	rec.Audience = slices.Clone(rec.Audience)
	rec.Claims = maps.Clone(rec.Claims)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.puts%1024 == 0 {
		now := m.now()
		for k, r := range m.recs {
			if !now.Before(r.ExpiresAt) {
				delete(m.recs, k)
			}
		}
	}
	m.recs[id] = rec
	return nil
}

// Get implements [RefreshStore].
func (m *MemoryRefreshStore) Get(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[id]
	if !ok {
		return nil, ErrTokenNotFound
	}
	if !m.now().Before(rec.ExpiresAt) {
		delete(m.recs, id)
		return nil, ErrTokenNotFound
	}
	return cloneRecord(rec), nil
}

// Take implements [RefreshStore].
func (m *MemoryRefreshStore) Take(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[id]
	if !ok {
		return nil, ErrTokenNotFound
	}
	delete(m.recs, id)
	if !m.now().Before(rec.ExpiresAt) {
		return nil, ErrTokenNotFound
	}
	return cloneRecord(rec), nil
}

// cloneRecord returns a copy of rec whose Audience and Claims the caller
// may change without reaching the store.
func cloneRecord(rec RefreshRecord) *RefreshRecord {
	rec.Audience = slices.Clone(rec.Audience)
	rec.Claims = maps.Clone(rec.Claims)
	return &rec
}

// newRefreshToken returns a random opaque refresh token and its store id.
func newRefreshToken(rnd io.Reader) (string, [32]byte, error) {
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", [32]byte{}, fmt.Errorf("issuer: refresh token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, refreshID(tok), nil
}

func refreshID(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }
