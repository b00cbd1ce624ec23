package redisrefresh

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/issuer"
)

// DefaultPrefix is the key prefix used when [Config.Prefix] is empty.
const DefaultPrefix = "senderbound:refresh:"

// DefaultTimeout bounds an operation whose context has no deadline, when
// [Config.Timeout] is zero.
const DefaultTimeout = time.Second

// DefaultMaxInFlight is the limit on outstanding commands when
// [Config.MaxInFlight] is zero.
const DefaultMaxInFlight = 1024

// maxValue bounds the size of a stored record that Get and Take decode.
const maxValue = 64 << 10

// ErrUnavailable wraps every error that leaves the outcome of an operation
// unknown: Redis unreachable, timed out, context done, or an unexpected
// reply. The token endpoint refuses the request (fail closed); errors.Is
// also matches the underlying cause (for example
// context.DeadlineExceeded).
var ErrUnavailable = errors.New("redisrefresh: refresh store unavailable")

// Config configures a [Store]. The zero value is valid and selects every
// default. New copies the Config; changing it later has no effect.
type Config struct {
	// Prefix is prepended to every Redis key. Empty means DefaultPrefix.
	// Give every instance of one issuer the same prefix, and issuers that
	// share a Redis but not their refresh tokens different ones.
	Prefix string

	// Timeout bounds each operation whose context has no deadline. Zero
	// means DefaultTimeout; negative is an error. A context deadline, when
	// set, takes precedence.
	Timeout time.Duration

	// MaxInFlight bounds the number of commands outstanding at once,
	// counting commands whose operation already gave up at its deadline
	// but which still wait on the client's own timeouts. An operation that
	// cannot start a command before its deadline fails with
	// ErrUnavailable. Zero means DefaultMaxInFlight; negative is an error.
	MaxInFlight int

	// Now returns the current time, used to turn a record's ExpiresAt into
	// a relative TTL and to judge expiry on read. If nil, time.Now is
	// used. It must be safe for concurrent use.
	Now func() time.Time
}

// Store is an [issuer.RefreshStore] shared by several issuer instances
// through Redis. A record is kept under <prefix><base64url(id)>, where id
// is the SHA-256 of the refresh token (the token itself never reaches
// Redis), and a revoked family under <prefix>family:<family>:
//
//   - Put: SET key record PX ttl, ttl = ExpiresAt − Now() rounded up to a
//     whole millisecond (a record already expired is not stored);
//   - Get: GET key;
//   - Take of a record without a family (an opaque access token, or a
//     refresh token stored before families): GETDEL key. Of a record with
//     a family: a script that reads the key and, in the same atomic step,
//     overwrites it with a used marker (the record, flagged) keeping its
//     TTL, so the marker lives until the family's expiry. Either way, of
//     concurrent Takes of one id, at any instance, exactly one gets the
//     record (single-use redemption);
//   - Revoke: SET familykey 1 PX ttl, ttl = until − Now();
//   - Get and Take of a live member of a family also read the family key
//     (EXISTS), after reading the record, and refuse a member of a
//     revoked family. A redemption concurrent with Revoke may thus
//     complete, as if it had run just before; its successor is refused.
//
// The record is JSON; numbers in Claims come back as json.Number, so large
// integers keep their precision. The TTL is relative (PX), so the Redis
// server's clock does not need to agree with the issuers' clocks; Get and
// Take also compare ExpiresAt with Now, so a record outlives its expiry in
// no instance's view. Every command and script addresses one key, so a
// single server (redis.NewClient), a Sentinel-managed primary
// (redis.NewFailoverClient) and a Redis Cluster (redis.NewClusterClient)
// all work, without hash tags. GETDEL and SET KEEPTTL need Redis 6.2 or
// later.
//
// # Storage cost of reuse detection
//
// Each redeemed refresh token leaves its used marker, about the size of
// its record (a few hundred bytes), until its family expires
// (issuer.ServerConfig.RefreshTokenTTL after the original grant), and a
// revoked family one small key for as long. A client that refreshes every
// N minutes thus keeps at most RefreshTokenTTL / N markers.
//
// # Persistence and eviction
//
// A Redis that loses its data (restart without persistence, flush,
// failover before replication) loses the refresh tokens: their clients
// must authenticate again, which is safe. A Redis that restores an old
// snapshot brings redeemed tokens back, which is not: run Redis with
// appendonly yes and appendfsync always, as for replaycache/redisstore,
// and maxmemory-policy noeviction (eviction only loses tokens, but it also
// evicts replay-store claims if they share the server).
//
// # Timeouts and retries
//
// An operation returns when its context is done, even if the client does
// not have ContextTimeoutEnabled: the command then finishes in the
// background, bounded by the client's own timeouts, and its result is
// discarded; a Take abandoned this way may still remove the record. At most
// Config.MaxInFlight commands are outstanding at once. A GETDEL that
// go-redis retries after a network error whose first attempt was applied
// answers nil, which the token endpoint refuses as an unknown token: a
// legitimate refresh may be refused, a token is never redeemed twice. The
// same holds for a family member: when the redemption was applied but its
// answer (or the family check after it) was lost, the request is refused
// and the token is redeemed; the client's retry presents a used token,
// which is reuse, and revokes the family. Reuse detection has no grace
// period, so an unreliable link to Redis costs sessions, never safety.
//
// Store is safe for concurrent use by multiple goroutines.
type Store struct {
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	now      func() time.Time
	inFlight chan struct{}
}

var _ issuer.RefreshStore = (*Store)(nil)

// New returns a Store that keeps its records in client. The client is used
// as is (its pool, retries and timeouts apply) and is not closed by the
// Store.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisrefresh: nil client")
	}
	s := &Store{client: client, prefix: cfg.Prefix, timeout: cfg.Timeout, now: cfg.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	switch {
	case s.timeout < 0:
		return nil, errors.New("redisrefresh: Timeout must not be negative")
	case s.timeout == 0:
		s.timeout = DefaultTimeout
	}
	switch n := cfg.MaxInFlight; {
	case n < 0:
		return nil, errors.New("redisrefresh: MaxInFlight must not be negative")
	case n == 0:
		s.inFlight = make(chan struct{}, DefaultMaxInFlight)
	default:
		s.inFlight = make(chan struct{}, n)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// key returns the Redis key of id.
func (s *Store) key(id [32]byte) string {
	return s.prefix + base64.RawURLEncoding.EncodeToString(id[:])
}

// record is the stored form of an issuer.RefreshRecord.
type record struct {
	ClientID  string         `json:"client_id"`
	Subject   string         `json:"sub"`
	Scope     string         `json:"scope,omitempty"`
	Audience  []string       `json:"aud,omitempty"`
	Claims    map[string]any `json:"claims,omitempty"`
	JKT       string         `json:"jkt,omitempty"`
	X5TS256   string         `json:"x5t#S256,omitempty"`
	ExpiresAt int64          `json:"exp_ns"`           // Unix nanoseconds
	IssuedAt  int64          `json:"iat_ns,omitempty"` // Unix nanoseconds, opaque access tokens only
	ID        string         `json:"jti,omitempty"`    // opaque access tokens only
	Family    string         `json:"fam,omitempty"`    // refresh-token family
}

// Stored values: a record without a family is its JSON; a record with a
// family is familyTag followed by its JSON, and its used marker usedTag
// followed by the same JSON. takeScript tells them apart by the first
// byte alone.
const (
	familyTag = 'F'
	usedTag   = 'U'
	// maxFamily bounds the length of a family id the store accepts.
	maxFamily = 128
)

// takeScript redeems KEYS[1] atomically: it returns false for an unknown
// key, "U" for a used marker (already redeemed), and otherwise the stored
// value, which it removes (a record without a family) or replaces with its
// used marker keeping the key's TTL (a record with a family).
var takeScript = redis.NewScript(`local v = redis.call('GET', KEYS[1])
if not v then return false end
local c = string.sub(v, 1, 1)
if c == 'U' then return 'U' end
if c == 'F' then
  redis.call('SET', KEYS[1], 'U' .. string.sub(v, 2), 'KEEPTTL')
else
  redis.call('DEL', KEYS[1])
end
return v`)

// Put implements [issuer.RefreshStore].
func (s *Store) Put(ctx context.Context, id [32]byte, rec issuer.RefreshRecord) error {
	ttl := rec.ExpiresAt.Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	rec.Used = false
	data, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	_, err = do(s, ctx, func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, s.key(id), data, ttl).Result()
	})
	return err
}

// familyKey returns the Redis key that marks family revoked.
func (s *Store) familyKey(family string) string { return s.prefix + "family:" + family }

// Get implements [issuer.RefreshStore].
func (s *Store) Get(ctx context.Context, id [32]byte) (*issuer.RefreshRecord, error) {
	return s.read(ctx, false, func(ctx context.Context) (string, error) { return s.client.Get(ctx, s.key(id)).Result() })
}

// Take implements [issuer.RefreshStore] with one script run (see Store).
func (s *Store) Take(ctx context.Context, id [32]byte) (*issuer.RefreshRecord, error) {
	return s.read(ctx, true, func(ctx context.Context) (string, error) {
		return takeScript.Run(ctx, s.client, []string{s.key(id)}).Text()
	})
}

// Revoke implements [issuer.RefreshStore].
func (s *Store) Revoke(ctx context.Context, family string, until time.Time) error {
	if family == "" {
		return nil
	}
	if len(family) > maxFamily {
		return errors.New("redisrefresh: family id too long")
	}
	ttl := until.Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	_, err := do(s, ctx, func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, s.familyKey(family), "1", ttl).Result()
	})
	return err
}

// read runs cmd and decodes its reply: redis.Nil is an unknown token, and a
// live member of a revoked family is one too; so is a used marker for a
// Take (take set).
func (s *Store) read(ctx context.Context, take bool, cmd func(context.Context) (string, error)) (*issuer.RefreshRecord, error) {
	val, err := do(s, ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisrefresh: %w", issuer.ErrTokenNotFound)
	}
	if err != nil {
		return nil, err
	}
	if take && val == string(usedTag) {
		// Take's answer for a used marker: already redeemed.
		return nil, fmt.Errorf("redisrefresh: %w", issuer.ErrTokenNotFound)
	}
	rec, err := decodeRecord(val, s.now())
	if err != nil || rec.Family == "" || rec.Used {
		return rec, err
	}
	n, err := do(s, ctx, func(ctx context.Context) (int64, error) {
		return s.client.Exists(ctx, s.familyKey(rec.Family)).Result()
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("redisrefresh: %w", issuer.ErrTokenNotFound)
	}
	return rec, nil
}

// encodeRecord returns the stored form of rec (a used marker when
// rec.Used is set).
func encodeRecord(rec issuer.RefreshRecord) ([]byte, error) {
	if len(rec.Family) > maxFamily {
		return nil, errors.New("redisrefresh: family id too long")
	}
	r := record{
		ClientID: rec.ClientID, Subject: rec.Subject, Scope: rec.Scope, Audience: rec.Audience, Claims: rec.Claims,
		JKT: rec.Binding.JKT, X5TS256: rec.Binding.X5TS256, ExpiresAt: rec.ExpiresAt.UnixNano(),
		ID: rec.ID, Family: rec.Family,
	}
	if !rec.IssuedAt.IsZero() {
		r.IssuedAt = rec.IssuedAt.UnixNano()
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("redisrefresh: encode record: %w", err)
	}
	switch {
	case rec.Used && rec.Family != "":
		data = append([]byte{usedTag}, data...)
	case rec.Family != "":
		data = append([]byte{familyTag}, data...)
	}
	return data, nil
}

// decodeRecord decodes a stored record, refusing one that is oversized or
// malformed (ErrUnavailable) and one expired at now (ErrTokenNotFound). On
// error the record is nil.
func decodeRecord(val string, now time.Time) (*issuer.RefreshRecord, error) {
	if len(val) > maxValue {
		return nil, fmt.Errorf("%w: oversized record", ErrUnavailable)
	}
	var tag byte
	if val != "" && (val[0] == familyTag || val[0] == usedTag) {
		tag, val = val[0], val[1:]
	}
	var r record
	dec := json.NewDecoder(strings.NewReader(val))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() || r.ExpiresAt <= 0 || r.IssuedAt < 0 || r.ClientID == "" ||
		(tag == 0) != (r.Family == "") || len(r.Family) > maxFamily {
		return nil, fmt.Errorf("%w: malformed record", ErrUnavailable)
	}
	// Put omits empty lists and maps; read them back as absent.
	if len(r.Audience) == 0 {
		r.Audience = nil
	}
	if len(r.Claims) == 0 {
		r.Claims = nil
	}
	exp := time.Unix(0, r.ExpiresAt)
	if !now.Before(exp) {
		return nil, fmt.Errorf("redisrefresh: %w", issuer.ErrTokenNotFound)
	}
	rec := &issuer.RefreshRecord{
		ClientID: r.ClientID, Subject: r.Subject, Scope: r.Scope, Audience: r.Audience, Claims: r.Claims,
		Binding: issuer.Binding{JKT: r.JKT, X5TS256: r.X5TS256}, ExpiresAt: exp, ID: r.ID,
		Family: r.Family, Used: tag == usedTag,
	}
	if r.IssuedAt != 0 {
		rec.IssuedAt = time.Unix(0, r.IssuedAt)
	}
	return rec, nil
}

// do runs cmd with the operation's deadline, returning when ctx is done
// even if the command is still outstanding. redis.Nil passes through
// unwrapped; every other error wraps ErrUnavailable.
func do[T any](s *Store, ctx context.Context, cmd func(context.Context) (T, error)) (T, error) {
	var zero T
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	select {
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-s.inFlight }()
		v, err := cmd(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		switch {
		case r.err == nil:
			return r.v, nil
		case errors.Is(r.err, redis.Nil):
			return zero, redis.Nil
		}
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, r.err)
	case <-ctx.Done():
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}
