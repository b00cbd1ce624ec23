package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/replaycache"
)

// DefaultPrefix is the key prefix used when [Config.Prefix] is empty.
const DefaultPrefix = "senderbound:jti:"

// DefaultTimeout bounds a claim whose context has no deadline, when
// [Config.Timeout] is zero.
const DefaultTimeout = time.Second

// DefaultGrace is the margin a key is kept past its expiry when
// [Config.Grace] is zero.
const DefaultGrace = 30 * time.Second

// DefaultMaxInFlight is the limit on outstanding commands when
// [Config.MaxInFlight] is zero.
const DefaultMaxInFlight = 1024

// maxTTL caps the lifetime of a key, so that an expiry far in the future
// cannot overflow Redis's millisecond clock arithmetic.
const maxTTL = 100 * 365 * 24 * time.Hour

// ErrUnavailable wraps every error that leaves the outcome of a claim
// unknown: Redis unreachable, timed out, context done, or an unexpected
// reply. Callers MUST reject the request (fail closed); errors.Is also
// matches the underlying cause (for example context.DeadlineExceeded).
var ErrUnavailable = errors.New("redisstore: replay store unavailable")

// Config configures a [Store]. The zero value is valid and selects every
// default. New copies the Config; changing it later has no effect.
type Config struct {
	// Prefix is prepended to every Redis key. Empty means DefaultPrefix.
	// Give deployments that share a Redis but must not share replay state
	// different prefixes; give instances of one resource server the same
	// prefix, or a proof accepted by one can be replayed at another.
	Prefix string

	// Timeout bounds each claim whose context has no deadline. Zero means
	// DefaultTimeout; negative is an error. A context deadline, when set,
	// takes precedence.
	Timeout time.Duration

	// Grace is added to every key's lifetime, so that clock differences
	// between resource-server instances and backward clock steps of up to
	// Grace do not let a key expire while a proof carrying it could still
	// be accepted. It is also the minimum lifetime of a key whose expiry is
	// already past. Zero means DefaultGrace; negative is an error.
	Grace time.Duration

	// MaxInFlight bounds the number of SET commands outstanding at once,
	// counting commands whose claim already gave up at its deadline but
	// which still wait on the client's own timeouts. A claim that cannot
	// start a command before its deadline fails with ErrUnavailable, so a
	// hung Redis costs at most MaxInFlight goroutines, not one per request.
	// Zero means DefaultMaxInFlight; negative is an error.
	MaxInFlight int

	// Now returns the current time, used to turn the expiry into a
	// relative TTL. If nil, time.Now is used. It must be safe for
	// concurrent use.
	Now func() time.Time
}

// Store is a [replaycache.Store] shared by several resource-server instances
// through Redis. Each claim is one round trip, an atomic
//
//	SET <prefix><base64url(key)> 1 NX PX <ttl-ms>
//
// whose reply OK means fresh and whose nil reply means the key is already
// held (a replay). Every other outcome is an error wrapping ErrUnavailable,
// never a fresh claim.
//
// # Expiry
//
// The TTL is max(exp − Now(), 0) + Grace, rounded up to whole milliseconds
// and capped at 100 years. It is relative (PX, not PXAT), so the Redis
// server's own clock does not need to agree with the resource servers'
// clocks; only the clock of the instance making the claim is used. A claim
// whose exp is already past is still recorded, for Grace, so a second claim
// of it within that time is a replay.
//
// # Deployment
//
// Every command addresses one key, so a single server (redis.NewClient), a
// Sentinel-managed primary (redis.NewFailoverClient) and a Redis Cluster
// (redis.NewClusterClient) all work; each is tested against a real server.
// Point the client at the primary: a claim acknowledged by a primary that
// fails before replicating it can be lost, and a replica never accepts the
// write. Capacity and eviction are Redis's: every key this Store writes has a
// TTL, so any volatile-* or allkeys-* maxmemory-policy may evict live claims
// and let them be replayed. Use maxmemory-policy noeviction, under which a
// full Redis rejects the write and this Store reports an error.
//
// # Timeouts and retries
//
// A claim returns when its context is done, even if the client does not have
// ContextTimeoutEnabled: the command then finishes in the background, bounded
// by the client's own timeouts (ReadTimeout, PoolTimeout), and its result is
// discarded. At most Config.MaxInFlight commands are outstanding at once. The go-redis
// client retries commands on network errors (MaxRetries); a retried SET whose
// first attempt was applied reports a replay, which refuses a legitimate
// request but never accepts a replayed one.
//
// Store is safe for concurrent use by multiple goroutines.
type Store struct {
	inFlight chan struct{} // semaphore: one slot per outstanding command
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	grace    time.Duration
	now      func() time.Time
}

var _ replaycache.Store = (*Store)(nil)

// New returns a Store that keeps its keys in client. The client is used as
// is (its pool, retries and timeouts apply) and is not closed by the Store.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	s := &Store{client: client, prefix: cfg.Prefix, timeout: cfg.Timeout, grace: cfg.Grace, now: cfg.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	switch {
	case s.timeout < 0:
		return nil, errors.New("redisstore: Timeout must not be negative")
	case s.timeout == 0:
		s.timeout = DefaultTimeout
	}
	switch {
	case s.grace < 0:
		return nil, errors.New("redisstore: Grace must not be negative")
	case s.grace == 0:
		s.grace = DefaultGrace
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch n := cfg.MaxInFlight; {
	case n < 0:
		return nil, errors.New("redisstore: MaxInFlight must not be negative")
	case n == 0:
		s.inFlight = make(chan struct{}, DefaultMaxInFlight)
	default:
		s.inFlight = make(chan struct{}, n)
	}
	return s, nil
}

// redisKey returns the Redis key under which s records key: the prefix
// followed by the unpadded base64url encoding of the 32 bytes.
func (s *Store) redisKey(key [32]byte) string {
	b := make([]byte, len(s.prefix)+base64.RawURLEncoding.EncodedLen(len(key)))
	copy(b, s.prefix)
	base64.RawURLEncoding.Encode(b[len(s.prefix):], key[:])
	return string(b)
}

// ttl returns the lifetime a claim made now with expiry exp is given:
// max(exp − now, 0) + Grace, rounded up to a whole millisecond and capped.
func (s *Store) ttl(now, exp time.Time) time.Duration {
	ttl := exp.Sub(now) // saturates instead of overflowing
	if ttl < 0 {
		ttl = 0
	}
	if ttl > maxTTL-s.grace {
		return maxTTL
	}
	ttl += s.grace
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl
}

// CheckAndStore implements [replaycache.Store] with one SET NX PX round trip.
// It returns (true, nil) when the key was not held, (false, nil) when it was,
// and (false, err) with err wrapping ErrUnavailable otherwise. If ctx has no
// deadline, the claim is bounded by Config.Timeout.
func (s *Store) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ttl := s.ttl(s.now(), exp)
	cmd := redis.NewStatusCmd(ctx, "set", s.redisKey(key), "1", "nx", "px", ttl.Milliseconds())

	// The command runs on its own goroutine so that the claim returns at
	// its deadline even when the client does not watch ctx; the goroutine
	// holds an in-flight slot until the client gives up or answers.
	select {
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: too many commands in flight: %w", ErrUnavailable, ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-s.inFlight }()
		done <- s.client.Process(ctx, cmd)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case cmd.Val() != "OK":
		return false, fmt.Errorf("%w: unexpected reply to SET", ErrUnavailable)
	}
	return true, nil
}
