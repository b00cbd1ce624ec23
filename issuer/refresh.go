package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
)

// RefreshRecord is what a [RefreshStore] keeps for one refresh token, or
// for one opaque access token (Config.AccessTokens). The token itself is
// never stored, only its SHA-256.
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
	// IssuedAt and ID are the "iat" and "jti" of an opaque access token;
	// zero for a refresh token. A record with an ID is never taken for a
	// refresh token, and one without is never taken for an access token.
	IssuedAt time.Time
	ID       string
	// Family names the chain of rotations that began with one original
	// grant: the server gives the first refresh token of a grant a random
	// family and every successor inherits it, with the same ExpiresAt.
	// Empty for an opaque access token (and for a refresh token stored
	// before families existed, which is single use without reuse
	// detection).
	Family string
	// Used marks the record Get returns for a redeemed member of a family
	// (see [RefreshStore]): the token was presented again. Its ClientID,
	// Subject, Family and ExpiresAt are those of the redeemed token. Put
	// never receives a record with Used set.
	Used bool
}

// RefreshStore keeps refresh tokens by the SHA-256 of their value. A
// refresh token is single use: the token endpoint reads its record with Get,
// checks the request against it, and then redeems it with Take; the
// response carries a new refresh token for the same grant and the same
// family (rotation, RFC 9700 §4.14.2).
//
// # Reuse detection
//
// Take of a record with a Family leaves a used marker in its place until
// the record's ExpiresAt, which is the family's expiry (rotation never
// extends it). Get of a marker returns a record with Used set: an
// already-redeemed token was presented again, either replayed by a thief
// or by the legitimate client after a thief rotated it (RFC 9700
// §4.14.2). The server then calls Revoke for the family, so that its live
// member is refused too, and answers invalid_grant. Each redeemed token
// thus costs one marker (about the size of its record) until its family
// expires: at most RefreshTokenTTL divided by the shortest interval
// between refreshes, per grant.
//
// Implementations must be safe for concurrent use; issuer/redisrefresh
// keeps the tokens of several issuer instances in Redis, and
// issuer/refreshtest checks an implementation against this contract.
type RefreshStore interface {
	// Put stores rec under id, replacing any record there.
	Put(ctx context.Context, id [32]byte, rec RefreshRecord) error
	// Get returns the record for id, or an error wrapping
	// [ErrTokenNotFound] when it is unknown, expired, or a live member of
	// a revoked family. For a used marker it returns a record with Used
	// set. Any other error means the store could not answer; the request
	// is refused.
	Get(ctx context.Context, id [32]byte) (*RefreshRecord, error)
	// Take redeems id and returns its record in one atomic step: of
	// concurrent Takes of one id, at most one gets the record. A record
	// with a Family is replaced by a used marker; one without is removed.
	// A Take of an unknown, expired or already taken id (a used marker:
	// the loser of concurrent redemptions is refused as an invalid token,
	// not treated as reuse, since it may be a client's own retry), or of a
	// member of a revoked family, returns an error wrapping
	// [ErrTokenNotFound]. Any other error means the store could not answer
	// (the record may or may not be redeemed); the request is refused.
	Take(ctx context.Context, id [32]byte) (*RefreshRecord, error)
	// Revoke revokes family until the given time: from when Revoke returns,
	// Get and Take of every live member of family wrap [ErrTokenNotFound];
	// used markers stay. A redemption that ran concurrently with Revoke may
	// still complete, but its successor belongs to the revoked family.
	Revoke(ctx context.Context, family string, until time.Time) error
}

// MemoryRefreshStore is an in-memory [RefreshStore] for one instance. It
// drops expired records, used markers and revocations as it goes and is
// safe for concurrent use. A used marker keeps the redeemed record's
// ClientID, Subject, Family and ExpiresAt only.
type MemoryRefreshStore struct {
	now     func() time.Time
	mu      sync.Mutex
	recs    map[[32]byte]RefreshRecord
	revoked map[string]time.Time // family -> revoked until
	puts    int
}

var _ RefreshStore = (*MemoryRefreshStore)(nil)

// NewMemoryRefreshStore returns an empty store that judges expiry with now
// (time.Now if nil).
func NewMemoryRefreshStore(now func() time.Time) *MemoryRefreshStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryRefreshStore{now: now, recs: map[[32]byte]RefreshRecord{}, revoked: map[string]time.Time{}}
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
		for f, until := range m.revoked {
			if !now.Before(until) {
				delete(m.revoked, f)
			}
		}
	}
	rec.Used = false
	m.recs[id] = rec
	return nil
}

// Revoke implements [RefreshStore].
func (m *MemoryRefreshStore) Revoke(_ context.Context, family string, until time.Time) error {
	if family == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if until.After(m.revoked[family]) {
		m.revoked[family] = until
	}
	return nil
}

// revokedLocked reports whether rec is a live member of a revoked family.
func (m *MemoryRefreshStore) revokedLocked(rec RefreshRecord, now time.Time) bool {
	if rec.Family == "" || rec.Used {
		return false
	}
	until, ok := m.revoked[rec.Family]
	return ok && now.Before(until)
}

// Get implements [RefreshStore].
func (m *MemoryRefreshStore) Get(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[id]
	if !ok {
		return nil, ErrTokenNotFound
	}
	now := m.now()
	if !now.Before(rec.ExpiresAt) {
		delete(m.recs, id)
		return nil, ErrTokenNotFound
	}
	if m.revokedLocked(rec, now) {
		return nil, ErrTokenNotFound
	}
	return cloneRecord(rec), nil
}

// Take implements [RefreshStore].
func (m *MemoryRefreshStore) Take(_ context.Context, id [32]byte) (*RefreshRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[id]
	if !ok || rec.Used {
		return nil, ErrTokenNotFound
	}
	now := m.now()
	if !now.Before(rec.ExpiresAt) {
		delete(m.recs, id)
		return nil, ErrTokenNotFound
	}
	if rec.Family == "" {
		delete(m.recs, id)
	} else {
		m.recs[id] = RefreshRecord{ClientID: rec.ClientID, Subject: rec.Subject, Family: rec.Family, ExpiresAt: rec.ExpiresAt, Used: true}
	}
	if m.revokedLocked(rec, now) {
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

// newFamily returns a random refresh-token family id.
func newFamily(rnd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("issuer: refresh token family: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// familyHash is the short, log-safe name of a refresh-token family: the
// first 8 bytes of its SHA-256, in hex. It identifies the family in logs
// without revealing the id itself.
func familyHash(family string) string {
	h := sha256.Sum256([]byte(family))
	return hex.EncodeToString(h[:8])
}

// reused handles a redeemed refresh token presented again (RFC 9700
// §4.14.2): it logs one Warn record naming the client the token was issued
// to and the family's hash (never a token), revokes the token's family, so
// that its live member is refused too, and returns the invalid_grant
// refusal; if the store cannot revoke, the request is refused as
// unavailable and a retry detects the reuse again.
func (s *Server) reused(ctx context.Context, rec *RefreshRecord) error {
	if s.cfg.Logger != nil {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "issuer: refresh token reused; revoking its family",
			slog.String("client_id", rec.ClientID),
			slog.String("family", familyHash(rec.Family)),
			slog.String("reason", string(oautherr.ReasonRefreshTokenReused)))
	}
	if err := s.refresh.Revoke(ctx, rec.Family, rec.ExpiresAt); err != nil {
		return refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "refresh store unavailable", err)
	}
	return refuse(ErrInvalidGrant, oautherr.ReasonRefreshTokenReused, "refresh token was already used", nil)
}

// refreshGrant is RFC 6749 §6. A public client's refresh token is bound to
// the DPoP key or certificate it was issued with (RFC 9449 §5, RFC 8705
// §4); refreshing with another key or certificate is invalid_grant. The
// grant's scopes and audiences are narrowed to the client's registration
// at the time of the refresh. The token is only read here; it is redeemed
// (taken from the store) once the whole request has passed, so a refused
// request does not consume it.
func (s *Server) refreshGrant(ctx context.Context, req *GrantRequest) (*Grant, error) {
	rt := req.Params["refresh_token"]
	if rt == "" {
		return nil, newError(ErrInvalidRequest, "refresh_token is required")
	}
	rec, err := s.refresh.Get(ctx, refreshID(rt))
	if errors.Is(err, ErrTokenNotFound) {
		return nil, newError(ErrInvalidGrant, "refresh token is invalid or expired")
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "refresh store unavailable", err)
	}
	if rec.Used && rec.ID == "" && rec.Family != "" {
		return nil, s.reused(ctx, rec)
	}
	if rec.Used || rec.ID != "" || rec.ClientID != req.Client.ID || !s.is.now().Before(rec.ExpiresAt) {
		return nil, newError(ErrInvalidGrant, "refresh token is invalid or expired")
	}
	if rec.Binding.JKT != "" && rec.Binding.JKT != req.JKT {
		return nil, newError(ErrInvalidGrant, "refresh token is bound to another DPoP key")
	}
	if rec.Binding.X5TS256 != "" && (req.Certificate == nil || !mtlsbound.ThumbprintEqual(mtlsbound.Thumbprint(req.Certificate), rec.Binding.X5TS256)) {
		return nil, newError(ErrInvalidGrant, "refresh token is bound to another certificate")
	}
	// A refresh never yields more than the client is registered for now:
	// the grant is narrowed to the current registration, and a request may
	// narrow it further but never exceed it (RFC 6749 §6).
	granted := strings.Fields(rec.Scope)
	scopes := slices.DeleteFunc(slices.Clone(granted), func(sc string) bool { return !slices.Contains(req.Client.Scopes, sc) })
	registered := req.Client.Audiences
	if len(registered) == 0 {
		registered = s.is.cfg.Audience
	}
	aud := slices.DeleteFunc(slices.Clone(rec.Audience), func(a string) bool { return !slices.Contains(registered, a) })
	if len(scopes) == 0 && len(granted) > 0 || len(aud) == 0 && len(rec.Audience) > 0 {
		return nil, newError(ErrInvalidGrant, "refresh token grants nothing the client is still registered for")
	}
	scope, err := grantScope(req.Params["scope"], scopes)
	if err != nil {
		return nil, err
	}
	return &Grant{Subject: rec.Subject, Scope: scope, Audience: aud, Claims: rec.Claims, redeem: &redemption{id: refreshID(rt), rec: *rec}}, nil
}
