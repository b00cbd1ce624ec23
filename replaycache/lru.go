package replaycache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultCapacity is the number of live entries an [LRU] holds when
// [Config.Capacity] is zero.
const DefaultCapacity = 1 << 20

// DefaultGrace is the margin an entry is kept past its expiry when
// [Config.Grace] is zero.
const DefaultGrace = 30 * time.Second

// minShardCapacity is the smallest per-shard capacity the default shard count
// allows, so that small caches are not split into shards so small that an
// uneven spread of keys fills one of them early.
const minShardCapacity = 1024

// reclaimPerClaim is how many expired entries a claim removes, at most, from
// the old end of its shard before inserting. Removing more than one per
// insertion keeps the number of expired entries from growing, so memory
// follows the live set without a background goroutine.
const reclaimPerClaim = 2

// Config configures an [LRU]. The zero value is valid and selects every
// default. NewLRU copies the Config; changing it later has no effect.
type Config struct {
	// Capacity is the maximum number of entries held at once, live or
	// expired-but-not-yet-reclaimed. Zero means DefaultCapacity; negative is
	// an error. Size it as (peak accepted requests per second) × (acceptance
	// window + Grace), with headroom: when a shard is full of live entries,
	// new claims fail with ErrFull, and because keys spread unevenly over
	// shards the first shard fills before the whole cache does (with 64
	// shards of 15,625 entries, at about 98% of Capacity). Memory is
	// allocated per entry as claims arrive, not reserved up front: on 64-bit
	// platforms (Go 1.24+ maps) about 100 to 120 bytes per entry, 118 at
	// 1,000,000 entries. Of that, 80 bytes are the golang-lru list element
	// (72 bytes: three pointers, the 8-byte key, the 8-byte deadline and
	// the element's unused expiry fields, in the 80-byte size class); the
	// rest is the Go map slot (8-byte key, 8-byte pointer and a control
	// byte, 17 bytes per slot) divided by the map's load, which moves
	// between 7/16 and 7/8 as its tables fill and split, plus the
	// allocator's rounding of the map's slot arrays.
	Capacity int

	// Shards is the number of independently locked shards. It must be a
	// power of two no larger than Capacity. Zero means the smallest power of
	// two that is at least 64 and at least 2×GOMAXPROCS, reduced (down to 1)
	// so that every shard holds at least 1024 entries. Capacity is split
	// evenly between shards (rounded up), so ErrFull can occur in one shard
	// slightly before the whole cache is full.
	Shards int

	// Grace is how long an entry is kept after its expiry, so that a wall
	// clock stepped backwards by up to Grace cannot bring a claimed key back
	// to life (see the LRU documentation). Zero means DefaultGrace; negative
	// is an error.
	Grace time.Duration

	// Now returns the current time. If nil, time.Now is used. It is called
	// once per claim and must be safe for concurrent use.
	Now func() time.Time
}

// Stats are cumulative counters of an [LRU] since it was created, plus its
// current size.
type Stats struct {
	// Claims counts claims that returned fresh == true.
	Claims uint64
	// Replays counts claims refused because the key was already claimed.
	Replays uint64
	// Full counts claims refused with ErrFull.
	Full uint64
	// Expired counts entries removed because they expired.
	Expired uint64
	// Entries is the number of entries currently held (live or expired but
	// not yet reclaimed).
	Entries int
}

// LRU is an in-memory [Store] for a single server instance, built on the
// plain (non-expiring) LRU of github.com/hashicorp/golang-lru/v2 and split
// into shards, each behind its own mutex. Keys are never touched after
// insertion, so LRU order is insertion order and the oldest entries are
// checked first when reclaiming expired ones.
//
// # Expiry and clock steps
//
// A claim at time now with expiry exp records the deadline
// max(exp, now) + Grace. The entry counts as claimed, and is never removed,
// while the injected clock reads at or before that deadline; a claim whose
// exp is already in the past is therefore still recorded, for Grace, and a
// second claim of it within that time is a replay. An entry is removed only
// once the clock reads strictly after its deadline, either when its key is
// claimed again (that claim is then fresh) or when claims reclaim expired
// entries from the old end of the shard. Expiry is judged against the clock
// only; there is no background goroutine and nothing to close.
//
// If the wall clock steps backwards by up to Grace, no claimed key is
// forgotten early: a key whose proof the caller would accept again at the
// stepped-back time is still present. Larger backward steps are not
// covered; set Grace to the largest step you expect.
//
// # Capacity
//
// A live (unexpired) entry is never evicted to make room. When a claim's
// shard is full, its expired entries are first reclaimed, oldest first,
// stopping at the first live one; if the shard is still full, the claim fails
// with ErrFull, which callers treat as a rejection. Reclamation follows
// insertion order, so an entry with a long expiry delays the reclamation of
// shorter-lived entries inserted after it until it too expires. When every
// claim uses the same acceptance window, deadlines follow insertion order up
// to the spread of the clients' clocks, and the delay is at most that spread.
//
// # Internal key
//
// An LRU keeps only the first 8 bytes of each 32-byte key, read as a
// little-endian uint64, and treats two keys with equal first 8 bytes as the
// same key. At 1,000,000 entries this takes about 118 bytes per entry instead
// of 197 with the full key (see Config.Capacity), and it is safe because a
// collision can only refuse, never accept:
//
//   - A claim whose 64 bits match a live entry is reported as a replay
//     (fresh == false): a false rejection, which the caller turns into a
//     refused request and the client retries with a new jti. A claim whose
//     bits match an expired entry replaces it, and an expired entry may be
//     forgotten anyway. No claim ever removes or shortens a live entry, so
//     a true replay is refused exactly as with the full key.
//   - For keys that are digests (SHA-256 over the thumbprint and jti), a
//     fresh claim collides with one of n live entries with probability at
//     most n/2^64: 5.7e-14 at n = 2^20, the default Capacity. A cache of
//     that size filled at its sustainable rate (2^20 entries over a 105 s
//     DPoP window with the default Grace, about 10,000 claims/s) sees one
//     false rejection in about 56 years; even 3,000,000 claims/s against
//     2^20 live entries gives one in about 68 days. Collisions among live
//     entries themselves have no effect.
//   - An attacker who controls their own proof key and jti can compute
//     their keys' 64 bits, but a victim's key covers the victim's
//     thumbprint and a jti the attacker has not seen (RFC 9449 §4.2 asks
//     for at least 96 bits of pseudorandom data; the Prover of package
//     github.com/senderbound/senderbound/dpop uses 192). Filling the whole
//     cache with chosen keys raises a victim's chance of a false rejection
//     to at most Capacity/2^64 per claim, the same as honest load, and a
//     full cache already refuses with ErrFull. Aiming at one victim claim
//     requires knowing its jti before it is sent and about 2^64 SHA-256
//     evaluations to find a matching jti, and buys one refused request.
//
// A 128-bit internal key would bring the collision probability down to
// 2^-108 per claim but costs about 136 bytes per entry at 1,000,000 entries
// (the list element stays at 80 bytes, the map slot grows from 17 to 25);
// at 64 bits a false rejection is already far rarer than a refused request
// from any other cause. Keys that are not uniformly distributed in their
// first 8 bytes (for example counters) must be hashed by the caller first;
// the [Store] contract already requires a digest.
//
// # Concurrency
//
// All methods are safe for concurrent use. The check and the insert of one
// claim happen under one shard lock, so among concurrent claims of the same
// key exactly one is fresh. Shards are chosen with a keyed hash of the
// internal key (seeded per LRU), so clients cannot aim their keys at one
// shard, and keys that collide in their 64 bits always share a shard.
type LRU struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
	grace  int64
	now    func() time.Time
}

// shard is one independently locked part of an LRU, padded to a multiple of
// 128 bytes (two cache lines) so that cores working on neighbouring shards do
// not contend for one line.
type shard struct {
	shardState
	_ [(128 - unsafe.Sizeof(shardState{})%128) % 128]byte
}

type shardState struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[uint64, int64]
	capacity int
	claims   uint64
	replays  uint64
	full     uint64
	expired  uint64
}

// NewLRU returns an empty LRU configured by cfg, or an error if cfg is
// invalid.
func NewLRU(cfg Config) (*LRU, error) {
	capacity := cfg.Capacity
	switch {
	case capacity < 0:
		return nil, errors.New("replaycache: Capacity must not be negative")
	case capacity == 0:
		capacity = DefaultCapacity
	}
	grace := cfg.Grace
	switch {
	case grace < 0:
		return nil, errors.New("replaycache: Grace must not be negative")
	case grace == 0:
		grace = DefaultGrace
	}
	n := cfg.Shards
	switch {
	case n < 0:
		return nil, errors.New("replaycache: Shards must not be negative")
	case n == 0:
		n = defaultShards(capacity, runtime.GOMAXPROCS(0))
	case n&(n-1) != 0:
		return nil, fmt.Errorf("replaycache: Shards must be a power of two, got %d", n)
	case n > capacity:
		return nil, fmt.Errorf("replaycache: Shards (%d) must not exceed Capacity (%d)", n, capacity)
	}
	per := (capacity + n - 1) / n
	c := &LRU{
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		grace:  int64(grace),
		now:    cfg.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	for i := range c.shards {
		l, err := simplelru.NewLRU[uint64, int64](per, nil)
		if err != nil {
			return nil, fmt.Errorf("replaycache: %w", err)
		}
		c.shards[i].lru = l
		c.shards[i].capacity = per
	}
	return c, nil
}

// defaultShards returns the smallest power of two ≥ max(64, 2×procs), halved
// until each shard holds at least minShardCapacity entries (but at least 1).
func defaultShards(capacity, procs int) int {
	n := 64
	if want := 2 * procs; want > n {
		n = 1 << bits.Len(uint(want-1))
	}
	for n > 1 && capacity/n < minShardCapacity {
		n /= 2
	}
	return n
}

// CheckAndStore implements [Store]. It returns (true, nil) for the first claim
// of key, (false, nil) for a claim of a key already claimed whose deadline
// has not passed, (false, ErrFull) when the key's shard holds only live
// entries, and (false, ctx.Err()) if ctx is already done. It never blocks
// beyond a shard lock held for a few map operations.
func (c *LRU) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := c.now()
	nowN := unixNano(now)
	deadline := unixNano(exp)
	if deadline < nowN {
		deadline = nowN
	}
	deadline = addSat(deadline, c.grace)

	k := internalKey(key)
	s := &c.shards[hashKey(c, k)&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.lru.Peek(k); ok {
		if nowN <= d {
			s.replays++
			return false, nil
		}
		s.lru.Remove(k)
		s.expired++
	}
	s.reclaim(nowN, reclaimPerClaim)
	if s.lru.Len() >= s.capacity {
		s.reclaim(nowN, math.MaxInt)
		if s.lru.Len() >= s.capacity {
			s.full++
			return false, ErrFull
		}
	}
	s.lru.Add(k, deadline)
	s.claims++
	return true, nil
}

// internalKey returns the key an LRU stores for key: its first 8 bytes,
// read little-endian. See "Internal key" in the LRU documentation for why 64
// bits are enough and why a collision can only refuse a fresh claim.
func internalKey(key [32]byte) uint64 {
	return binary.LittleEndian.Uint64(key[:8])
}

// hashKey returns the keyed hash of an internal key that selects its shard.
func hashKey(c *LRU, k uint64) uint64 {
	return maphash.Comparable(c.seed, k)
}

// reclaim removes up to limit expired entries from the old end of the shard,
// stopping at the first live one. The caller holds s.mu.
func (s *shardState) reclaim(nowN int64, limit int) {
	for i := 0; i < limit; i++ {
		_, d, ok := s.lru.GetOldest()
		if !ok || nowN <= d {
			return
		}
		s.lru.RemoveOldest()
		s.expired++
	}
}

// Len returns the number of entries currently held, live or expired but not
// yet reclaimed. It is safe for concurrent use; under concurrent claims the
// result is a snapshot taken shard by shard.
func (c *LRU) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Stats returns the counters accumulated since the LRU was created. It is
// safe for concurrent use; under concurrent claims the result is a snapshot
// taken shard by shard.
func (c *LRU) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Claims += s.claims
		st.Replays += s.replays
		st.Full += s.full
		st.Expired += s.expired
		st.Entries += s.lru.Len()
		s.mu.Unlock()
	}
	return st
}

var (
	maxNanoTime = time.Unix(0, math.MaxInt64)
	minNanoTime = time.Unix(0, math.MinInt64)
)

// safeUnixSec bounds the seconds for which t.UnixNano cannot overflow, with a
// second of margin; unixNano checks the exact limits only outside it.
const safeUnixSec = math.MaxInt64/int64(time.Second) - 1

// unixNano is t.UnixNano saturated to the int64 range instead of wrapping.
func unixNano(t time.Time) int64 {
	if s := t.Unix(); -safeUnixSec <= s && s <= safeUnixSec {
		return t.UnixNano()
	}
	switch {
	case t.After(maxNanoTime):
		return math.MaxInt64
	case t.Before(minNanoTime):
		return math.MinInt64
	}
	return t.UnixNano()
}

// addSat returns a+b (b ≥ 0), saturated at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
