package replaycache

import (
	"context"
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
	// allocated per entry as claims arrive, about 200 bytes each on 64-bit
	// platforms (the golang-lru list element plus the Go map slot), not
	// reserved up front.
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
// # Concurrency
//
// All methods are safe for concurrent use. The check and the insert of one
// claim happen under one shard lock, so among concurrent claims of the same
// key exactly one is fresh. Shards are chosen with a keyed hash (seeded per
// LRU), so clients cannot aim their keys at one shard.
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
	lru      *simplelru.LRU[[32]byte, int64]
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
		l, err := simplelru.NewLRU[[32]byte, int64](per, nil)
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

	s := &c.shards[hashKey(c, key)&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.lru.Peek(key); ok {
		if nowN <= d {
			s.replays++
			return false, nil
		}
		s.lru.Remove(key)
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
	s.lru.Add(key, deadline)
	s.claims++
	return true, nil
}

// hashKey returns the keyed hash that selects key's shard.
func hashKey(c *LRU, key [32]byte) uint64 {
	return maphash.Comparable(c.seed, key)
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

// unixNano is t.UnixNano saturated to the int64 range instead of wrapping.
func unixNano(t time.Time) int64 {
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
