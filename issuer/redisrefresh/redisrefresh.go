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
// through Redis. Each operation is one command on one key,
// <prefix><base64url(id)>, where id is the SHA-256 of the refresh token
// (the token itself never reaches Redis):
//
//   - Put: SET key record PX ttl, ttl = ExpiresAt − Now() rounded up to a
//     whole millisecond (a record already expired is not stored);
//   - Get: GET key;
//   - Take: GETDEL key, which reads and removes the key atomically, so of
//     concurrent Takes of one id, at any instance, exactly one gets the
//     record (single-use redemption).
//
// The record is JSON; numbers in Claims come back as json.Number, so large
// integers keep their precision. The TTL is relative (PX), so the Redis
// server's clock does not need to agree with the issuers' clocks; Get and
// Take also compare ExpiresAt with Now, so a record outlives its expiry in
// no instance's view. Every operation addresses one key, so a single
// server (redis.NewClient), a Sentinel-managed primary
// (redis.NewFailoverClient) and a Redis Cluster (redis.NewClusterClient)
// all work, without hash tags. GETDEL needs Redis 6.2 or later.
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
// legitimate refresh may be refused, a token is never redeemed twice.
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
}

// Put implements [issuer.RefreshStore].
func (s *Store) Put(ctx context.Context, id [32]byte, rec issuer.RefreshRecord) error {
	ttl := rec.ExpiresAt.Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	data, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	_, err = do(s, ctx, func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, s.key(id), data, ttl).Result()
	})
	return err
}

// Get implements [issuer.RefreshStore].
func (s *Store) Get(ctx context.Context, id [32]byte) (*issuer.RefreshRecord, error) {
	return s.read(ctx, func(ctx context.Context) (string, error) { return s.client.Get(ctx, s.key(id)).Result() })
}

// Take implements [issuer.RefreshStore] with one GETDEL.
func (s *Store) Take(ctx context.Context, id [32]byte) (*issuer.RefreshRecord, error) {
	return s.read(ctx, func(ctx context.Context) (string, error) { return s.client.GetDel(ctx, s.key(id)).Result() })
}

// read runs cmd and decodes its reply: redis.Nil is an unknown token.
func (s *Store) read(ctx context.Context, cmd func(context.Context) (string, error)) (*issuer.RefreshRecord, error) {
	val, err := do(s, ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisrefresh: %w", issuer.ErrTokenNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(val, s.now())
}

// encodeRecord returns the stored form of rec.
func encodeRecord(rec issuer.RefreshRecord) ([]byte, error) {
	r := record{
		ClientID: rec.ClientID, Subject: rec.Subject, Scope: rec.Scope, Audience: rec.Audience, Claims: rec.Claims,
		JKT: rec.Binding.JKT, X5TS256: rec.Binding.X5TS256, ExpiresAt: rec.ExpiresAt.UnixNano(),
		ID: rec.ID,
	}
	if !rec.IssuedAt.IsZero() {
		r.IssuedAt = rec.IssuedAt.UnixNano()
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("redisrefresh: encode record: %w", err)
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
	var r record
	dec := json.NewDecoder(strings.NewReader(val))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() || r.ExpiresAt <= 0 || r.IssuedAt < 0 || r.ClientID == "" {
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
