package replaycache

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultQuotaLimit is the number of claims one owner may make per window
// when [QuotaConfig.Limit] is zero: 65536, 1/16 of [DefaultCapacity], so
// that one owner can hold at most an eighth of a default store (see
// QuotaConfig.Limit) and may sustain about 620 claims per second over the
// default window.
const DefaultQuotaLimit = 1 << 16

// DefaultQuotaWindow is the window over which an owner's claims are counted
// when [QuotaConfig.Window] is zero. It equals the lifetime of a DPoP replay
// entry with the dpop package's default MaxAge (60 s) and FutureSkew (15 s)
// plus [DefaultGrace] (30 s), rounded up.
const DefaultQuotaWindow = 105 * time.Second

// DefaultQuotaOwners is the number of owners a [Quota] tracks at once when
// [QuotaConfig.Owners] is zero.
const DefaultQuotaOwners = 1 << 16

// quotaShards is the number of independently locked parts of a Quota.
const quotaShards = 16

// QuotaConfig configures a [Quota]. The zero value is valid and selects
// every default. NewQuota copies it.
type QuotaConfig struct {
	// Limit is the number of claims one owner may make per Window. Zero
	// means DefaultQuotaLimit; negative is an error. An owner's entries live
	// in the store for the acceptance window plus the store's grace, so with
	// a Window at least that long one owner holds at most 2×Limit live
	// entries at any time.
	Limit int

	// Window is the fixed period over which claims are counted; an owner's
	// count restarts Window after its first counted claim. Zero means
	// DefaultQuotaWindow; negative is an error.
	Window time.Duration

	// Owners bounds how many owners are tracked at once, and so the memory
	// of the Quota (about 100 bytes per owner). Zero means
	// DefaultQuotaOwners; negative is an error. When it is full, the least
	// recently active owner is forgotten and its count starts again from
	// zero. The table is split in 16 parts by a keyed hash of the owner;
	// an owner flooding claims stays among the most recently active of its
	// part and is forgotten only if Owners/16 other owners of that part
	// claim between two of its claims.
	Owners int

	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
}

// Quota bounds the replay entries one owner can create, so that a single
// client or proof key cannot fill a shared [Store] and have every other
// client's claims refused. Callers ask [Quota.Allow] before claiming a key
// and refuse the request, without claiming, when it reports false. Owners
// are compared by a keyed 64-bit hash; two owners whose hashes collide
// share one count, which can refuse but never accept.
//
// Quota is safe for concurrent use; its memory is bounded by
// QuotaConfig.Owners whatever the number of distinct owners presented.
type Quota struct {
	shards [quotaShards]quotaShard
	seed   maphash.Seed
	limit  int
	window int64
	now    func() time.Time
}

type quotaShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[uint64, quotaCount]
}

type quotaCount struct {
	start int64 // unix nanoseconds of the window's first claim
	n     int
}

// NewQuota returns an empty Quota configured by cfg, or an error if cfg is
// invalid.
func NewQuota(cfg QuotaConfig) (*Quota, error) {
	q := &Quota{seed: maphash.MakeSeed(), limit: cfg.Limit, window: int64(cfg.Window), now: cfg.Now}
	switch {
	case q.limit < 0:
		return nil, errors.New("replaycache: Quota Limit must not be negative")
	case q.limit == 0:
		q.limit = DefaultQuotaLimit
	}
	switch {
	case q.window < 0:
		return nil, errors.New("replaycache: Quota Window must not be negative")
	case q.window == 0:
		q.window = int64(DefaultQuotaWindow)
	}
	owners := cfg.Owners
	switch {
	case owners < 0:
		return nil, errors.New("replaycache: Quota Owners must not be negative")
	case owners == 0:
		owners = DefaultQuotaOwners
	}
	if q.now == nil {
		q.now = time.Now
	}
	per := (owners + quotaShards - 1) / quotaShards
	for i := range q.shards {
		l, err := simplelru.NewLRU[uint64, quotaCount](per, nil)
		if err != nil {
			return nil, err
		}
		q.shards[i].lru = l
	}
	return q, nil
}

// Allow counts one claim for owner and reports whether it is within the
// owner's quota. A refused claim is not counted.
func (q *Quota) Allow(owner string) bool {
	h := maphash.String(q.seed, owner)
	now := unixNano(q.now())
	s := &q.shards[h%quotaShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.lru.Get(h)
	if !ok || now-c.start >= q.window || now < c.start {
		c = quotaCount{start: now}
	}
	if c.n >= q.limit {
		return false
	}
	c.n++
	s.lru.Add(h, c)
	return true
}
