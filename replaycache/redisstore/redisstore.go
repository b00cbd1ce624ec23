package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// DefaultLossHold is how long after a detected loss a claim made without
// a since time is refused, when [Config.LossHold] is zero.
const DefaultLossHold = 10 * time.Minute

// epochName is the suffix of the epoch key (see "Loss detection" in the
// Store documentation); claim keys end in 43 base64url characters, so it
// cannot collide with one.
const epochName = "epoch"

// clusterTags is the number of hash tags keys are spread over when the
// client shards keys (Redis Cluster, Ring): one per base64url character.
const clusterTags = 64

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

	// LossHold is how long after a detected loss of the Redis data a claim
	// made through CheckAndStore, which carries no since time, is refused
	// with an error wrapping replaycache.ErrStateLost. Make it at least the
	// longest lifetime of such claims (for client assertions, their
	// maximum lifetime plus skew). Claims made through CheckAndStoreSince
	// do not use it. Zero means DefaultLossHold; negative is an error.
	LossHold time.Duration

	// Now returns the current time, used to turn the expiry into a
	// relative TTL. If nil, time.Now is used. It must be safe for
	// concurrent use.
	Now func() time.Time
}

// Store is a [replaycache.Store] shared by several resource-server instances
// through Redis. Each claim is one round trip: one EVALSHA of a short Lua
// script (EVAL if the server does not have it cached, as after a restart)
// that checks the store's epoch key and then runs the atomic
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
// # Loss detection
//
// A Redis that restarts without persistence, or whose data is flushed,
// forgets every claimed key, and proofs accepted shortly before could be
// accepted again until their acceptance window ends. To detect this, the
// Store keeps an epoch key, <prefix>epoch, that never expires: a random
// value and the time it was created. The script of every claim reads it
// first. When it is missing, the script creates a new one; when it differs
// from the epoch this Store last saw, another instance created it. Either
// way this Store records the moment of detection D and from then on
// refuses, with an error wrapping replaycache.ErrStateLost:
//
//   - claims through CheckAndStoreSince whose since is before D (the proof
//     was issued before the loss and may have been accepted already);
//     fresh proofs, issued after D, are claimed normally;
//   - claims through CheckAndStore (no since) until D + Config.LossHold.
//
// The detection is atomic with the claim, so no claim of a running Store
// reaches an emptied server unnoticed. Proof iat values are whole seconds,
// so proofs issued in the second of D are refused too; clients retry with
// a new proof. Not covered: a proof that a client issued with an iat ahead
// of the server's clock and that was accepted shortly before the loss (its
// iat may be after D; keep clients' clocks in sync, or FutureSkew small);
// and a Store whose first claim meets an empty Redis, which cannot tell a
// fresh start from a loss and takes it as a fresh start, so a loss while
// every instance restarts at once goes undetected. Another instance that
// was running detects the change, and a Store that starts later adopts an
// epoch created after a detected loss together with that loss.
//
// With a Redis Cluster or a Ring (any client but *redis.Client), every
// claim key carries a hash tag, <prefix>{c}<rest> where c is the first
// character of the base64url key, and each of the 64 tags has its own epoch
// key <prefix>{c}epoch, so that a claim and its epoch key share a slot
// while claims spread evenly over 64 slots, and so over up to 64 masters.
// The prefix must then contain no brace. Before its first claim such a
// Store reads (creating the missing ones) the epoch keys of all 64 tags in
// one pipeline, so that a loss of any master's data is detected by every
// running Store, including on tags it has not claimed on yet; until that
// read succeeds (every master answers), claims fail with ErrUnavailable.
//
// # Persistence
//
// Loss detection is a fallback that refuses requests after a loss. To keep
// claims across restarts, run Redis with appendonly yes and appendfsync
// always (every claim is on disk before it is acknowledged); appendfsync
// everysec can lose up to about a second of claims on a host crash, and
// that loss is not detected because the epoch key survives. RDB snapshots
// alone (save) lose every claim since the last snapshot, undetected.
//
// # Deployment
//
// Every claim addresses keys of one slot, so a single server
// (redis.NewClient), a Sentinel-managed primary (redis.NewFailoverClient)
// and a Redis Cluster (redis.NewClusterClient) all work; each is tested
// against a real server. Point the client at the primary: a claim
// acknowledged by a primary that fails before replicating it can be lost,
// and a replica never accepts the write. Capacity and eviction are Redis's:
// every claim key this Store writes has a TTL, so any volatile-* or
// allkeys-* maxmemory-policy may evict live claims and let them be
// replayed. Use maxmemory-policy noeviction, under which a full Redis
// rejects the write and this Store reports an error.
//
// # Timeouts and retries
//
// A claim returns when its context is done, even if the client does not have
// ContextTimeoutEnabled: the command then finishes in the background, bounded
// by the client's own timeouts (ReadTimeout, PoolTimeout), and its result is
// discarded. At most Config.MaxInFlight commands are outstanding at once. The go-redis
// client retries commands on network errors (MaxRetries); a retried claim whose
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
	hold     time.Duration
	now      func() time.Time
	tagged   bool   // keys carry a hash tag (sharding clients)
	id       string // random, names the epochs this Store creates

	mu       sync.Mutex
	primed   bool          // every tag's epoch is known (sharding clients)
	priming  chan struct{} // closed when the running epoch read ends
	primeErr error         // why the last epoch read failed
	epochs   []epochState  // one per tag (one without tags)
}

// epochState is what a Store knows of one epoch key.
type epochState struct {
	value     string // last epoch seen, "" before the first claim
	lostAt    int64  // unix nanoseconds of the latest possible loss, 0 if none
	holdUntil int64  // unix nanoseconds until which claims without since are refused
}

var (
	_ replaycache.Store      = (*Store)(nil)
	_ replaycache.SinceStore = (*Store)(nil)
)

// claimScript checks the epoch key (KEYS[2]) against the epoch this Store
// last saw (ARGV[2]), creating it as ARGV[3] when missing, and then claims
// KEYS[1] for ARGV[1] milliseconds. When the epoch is the one expected it
// returns the SET reply unchanged (OK or nil); otherwise
// {fresh (1 or 0), 1 if it created the epoch else 2, current epoch}.
var claimScript = redis.NewScript(`local e = redis.call('GET', KEYS[2])
local lost = 0
if not e then
  redis.call('SET', KEYS[2], ARGV[3])
  e = ARGV[3]
  lost = 1
elseif e ~= ARGV[2] then
  lost = 2
end
local r = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
if lost == 0 then return r end
if r then return {1, lost, e} end
return {0, lost, e}`)

// errStateLost is returned for a claim refused after a detected loss.
var errStateLost = fmt.Errorf("redisstore: %w", replaycache.ErrStateLost)

// New returns a Store that keeps its keys in client. The client is used as
// is (its pool, retries and timeouts apply) and is not closed by the Store.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	s := &Store{client: client, prefix: cfg.Prefix, timeout: cfg.Timeout, grace: cfg.Grace, hold: cfg.LossHold, now: cfg.Now}
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
	switch {
	case s.hold < 0:
		return nil, errors.New("redisstore: LossHold must not be negative")
	case s.hold == 0:
		s.hold = DefaultLossHold
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
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	s.id = hex.EncodeToString(id[:])
	_, single := client.(*redis.Client)
	s.tagged = !single
	if s.tagged && strings.ContainsAny(s.prefix, "{}") {
		// Redis hashes the first {...} of a key: a brace in the prefix
		// would put every key in one slot, or a claim and its epoch key
		// in different slots.
		return nil, errors.New("redisstore: Prefix must not contain { or } with a sharding client")
	}
	s.epochs = make([]epochState, 1)
	if s.tagged {
		s.epochs = make([]epochState, clusterTags)
	}
	return s, nil
}

// redisKey returns the Redis key under which s records key, the epoch key
// of that key's tag, and the tag's index: without tags, the prefix followed
// by the unpadded base64url encoding of the 32 bytes, and <prefix>epoch;
// with tags, <prefix>{c}<rest> and <prefix>{c}epoch, c being the first
// character of the encoding.
func (s *Store) redisKey(key [32]byte) (claim, epoch string, tag int) {
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], key[:])
	if !s.tagged {
		return s.prefix + string(enc[:]), s.prefix + epochName, 0
	}
	t := s.prefix + "{" + string(enc[:1]) + "}"
	return t + string(enc[1:]), t + epochName, int(key[0] >> 2)
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

// CheckAndStore implements [replaycache.Store] with one round trip.
// It returns (true, nil) when the key was not held, (false, nil) when it
// was, (false, err) with err wrapping replaycache.ErrStateLost within
// Config.LossHold of a detected loss of the Redis data, and (false, err)
// with err wrapping ErrUnavailable otherwise. If ctx has no deadline, the
// claim is bounded by Config.Timeout.
func (s *Store) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	return s.claim(ctx, key, time.Time{}, false, exp)
}

// CheckAndStoreSince implements [replaycache.SinceStore] with one round
// trip: it is CheckAndStore for a key that cannot have been claimed before
// since, refused with an error wrapping replaycache.ErrStateLost when since
// is before a detected loss of the Redis data (see "Loss detection").
func (s *Store) CheckAndStoreSince(ctx context.Context, key [32]byte, since, exp time.Time) (bool, error) {
	return s.claim(ctx, key, since, true, exp)
}

func (s *Store) claim(ctx context.Context, key [32]byte, since time.Time, hasSince bool, exp time.Time) (bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.tagged {
		if err := s.prime(ctx); err != nil {
			return false, err
		}
	}
	now := s.now()
	ttl := s.ttl(now, exp)
	claimKey, epochKey, tag := s.redisKey(key)
	s.mu.Lock()
	known := s.epochs[tag].value
	s.mu.Unlock()
	// An epoch created after this Store saw another one records a loss
	// (L); one created at this Store's first claim may be a fresh start (F).
	mark := ".F"
	if known != "" {
		mark = ".L"
	}
	newEpoch := s.id + "." + strconv.FormatInt(now.UnixMilli(), 10) + mark
	keys := []string{claimKey, epochKey}
	args := []any{ttl.Milliseconds(), known, newEpoch}

	// The command runs on its own goroutine so that the claim returns at
	// its deadline even when the client does not watch ctx; the goroutine
	// holds an in-flight slot until the client gives up or answers.
	select {
	case s.inFlight <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: too many commands in flight: %w", ErrUnavailable, ctx.Err())
	}
	type result struct {
		val any
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-s.inFlight }()
		v, err := claimScript.Run(ctx, s.client, keys, args...).Result()
		done <- result{v, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	var fresh bool
	switch v := res.val; {
	case errors.Is(res.err, redis.Nil):
		fresh = false
	case res.err != nil:
		return false, fmt.Errorf("%w: %w", ErrUnavailable, res.err)
	case v == "OK":
		fresh = true
	default:
		f, lost, epoch, ok := parseEpochReply(v)
		if !ok {
			return false, fmt.Errorf("%w: unexpected reply to the claim", ErrUnavailable)
		}
		fresh = f
		s.observe(tag, known, lost, epoch)
	}
	s.mu.Lock()
	st := s.epochs[tag]
	s.mu.Unlock()
	if hasSince && unixNano(since) < st.lostAt || !hasSince && unixNano(s.now()) < st.holdUntil {
		return false, errStateLost
	}
	return fresh, nil
}

// primeScript returns the epoch key KEYS[1], creating it as ARGV[1] when
// missing: {1, ARGV[1]} when it created it, {2, epoch} otherwise.
var primeScript = redis.NewScript(`local e = redis.call('GET', KEYS[1])
if e then return {2, e} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[1]}`)

// prime reads, once, the epoch key of every tag, creating the missing
// ones, before the first claim of a Store with a sharding client. Without
// it a Store would learn a tag's epoch at its first claim on that tag,
// possibly long after it started, and would take an epoch key erased by
// the loss of that tag's master as a fresh start, accepting again the
// proofs another instance had accepted there. After prime, a missing
// epoch key is a detected loss on every tag, as it is on the single epoch
// key of a single server. The reads run on their own goroutine, so prime
// returns when ctx is done; if they fail, the claim fails with
// ErrUnavailable and the next claim tries again.
func (s *Store) prime(ctx context.Context) error {
	s.mu.Lock()
	if s.primed {
		s.mu.Unlock()
		return nil
	}
	wait := s.priming
	if wait == nil {
		wait = make(chan struct{})
		s.priming = wait
		go s.readEpochs(wait)
	}
	s.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.primed {
		return fmt.Errorf("%w: %w", ErrUnavailable, s.primeErr)
	}
	return nil
}

// readEpochs reads every tag's epoch for prime, then closes done.
func (s *Store) readEpochs(done chan struct{}) {
	err := s.pipelineEpochs()
	s.mu.Lock()
	s.primed = err == nil
	s.primeErr = err
	s.priming = nil
	s.mu.Unlock()
	close(done)
}

// pipelineEpochs sends primeScript for every tag in one pipeline and
// records the epochs. It is bounded by Config.Timeout.
func (s *Store) pipelineEpochs() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	newEpoch := s.id + "." + strconv.FormatInt(s.now().UnixMilli(), 10) + ".F"
	var tagKey [32]byte
	cmds := make([]*redis.Cmd, clusterTags)
	// EVAL, not EVALSHA: a node that has not cached the script needs no
	// second round trip.
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for tag := range cmds {
			tagKey[0] = byte(tag << 2)
			_, epochKey, _ := s.redisKey(tagKey)
			cmds[tag] = primeScript.Eval(ctx, p, []string{epochKey}, newEpoch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	errReply := errors.New("unexpected reply to the epoch read")
	for _, cmd := range cmds {
		a, ok := cmd.Val().([]any)
		if !ok || len(a) != 2 {
			return errReply
		}
		lost, ok1 := a[0].(int64)
		epoch, ok2 := a[1].(string)
		if !ok1 || !ok2 || lost < 1 || lost > 2 || epoch == "" {
			return errReply
		}
	}
	for tag, cmd := range cmds {
		a := cmd.Val().([]any)
		s.observe(tag, "", a[0].(int64), a[1].(string))
	}
	return nil
}

// parseEpochReply reads the script's reply for a changed epoch:
// {fresh 1|0, lost 1|2, epoch}.
func parseEpochReply(v any) (fresh bool, lost int64, epoch string, ok bool) {
	a, isArr := v.([]any)
	if !isArr || len(a) != 3 {
		return false, 0, "", false
	}
	f, ok1 := a[0].(int64)
	l, ok2 := a[1].(int64)
	e, ok3 := a[2].(string)
	if !ok1 || !ok2 || !ok3 || f < 0 || f > 1 || l < 1 || l > 2 || e == "" {
		return false, 0, "", false
	}
	return f == 1, l, e, true
}

// observe records what a claim learned of tag's epoch: lost is 1 when the
// script found no epoch key and created epoch, 2 when it found epoch
// instead of known.
//
// A change seen after this Store knew an epoch is a loss detected now:
// claims issued before now are refused, and claims without since for
// LossHold. At this Store's first claim (known == "") a missing epoch is
// as likely a fresh start as a loss, and is taken as a fresh start; an
// existing epoch whose creator had detected a loss (mark L) is adopted
// with that loss, dated at its creation.
func (s *Store) observe(tag int, known string, lost int64, epoch string) {
	now := unixNano(s.now())
	at := now
	if known == "" {
		ms, loss, ok := parseEpoch(epoch)
		if lost == 1 || !ok || !loss {
			s.mu.Lock()
			s.epochs[tag].value = epoch
			s.mu.Unlock()
			return
		}
		if created := ms * int64(time.Millisecond); created < now {
			at = created
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.epochs[tag]
	st.value = epoch
	st.lostAt = max(st.lostAt, at)
	st.holdUntil = max(st.holdUntil, at+int64(s.hold))
}

// parseEpoch returns the creation time, in unix milliseconds, and the loss
// mark of an epoch value "<id>.<ms>.<L|F>".
func parseEpoch(epoch string) (ms int64, loss, ok bool) {
	_, mark, found := strings.Cut(epoch, ".")
	if !found {
		return 0, false, false
	}
	msText, mark, found := strings.Cut(mark, ".")
	if !found || (mark != "L" && mark != "F") {
		return 0, false, false
	}
	ms, err := strconv.ParseInt(msText, 10, 64)
	return ms, mark == "L", err == nil && ms > 0
}

// unixNano is t.UnixNano saturated to the int64 range; the zero time maps
// to the minimum.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, minInt64)):
		return minInt64
	case t.After(time.Unix(0, maxInt64)):
		return maxInt64
	}
	return t.UnixNano()
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)
