package replaycache_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
)

// t0 is the fixed start time of every fake clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// key returns a distinct digest for each (space, i).
func key(space string, i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(append([]byte(space+"\x00"), b[:]...))
}

func newLRU(tb testing.TB, cfg replaycache.Config) *replaycache.LRU {
	tb.Helper()
	c, err := replaycache.NewLRU(cfg)
	if err != nil {
		tb.Fatalf("NewLRU: %v", err)
	}
	return c
}

func claim(tb testing.TB, c replaycache.Store, k [32]byte, exp time.Time) bool {
	tb.Helper()
	fresh, err := c.CheckAndStore(context.Background(), k, exp)
	if err != nil {
		tb.Fatalf("CheckAndStore: %v", err)
	}
	return fresh
}

func TestNewLRUConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     replaycache.Config
		wantErr bool
	}{
		{name: "zero value", cfg: replaycache.Config{}},
		{name: "explicit", cfg: replaycache.Config{Capacity: 100, Shards: 4, Grace: time.Second, Now: time.Now}},
		{name: "one shard of one", cfg: replaycache.Config{Capacity: 1, Shards: 1}},
		{name: "negative capacity", cfg: replaycache.Config{Capacity: -1}, wantErr: true},
		{name: "negative grace", cfg: replaycache.Config{Grace: -time.Nanosecond}, wantErr: true},
		{name: "negative shards", cfg: replaycache.Config{Shards: -2}, wantErr: true},
		{name: "shards not power of two", cfg: replaycache.Config{Shards: 3}, wantErr: true},
		{name: "more shards than capacity", cfg: replaycache.Config{Capacity: 4, Shards: 8}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := replaycache.NewLRU(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewLRU err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if c != nil {
					t.Fatal("NewLRU returned a cache with an error")
				}
				return
			}
			if !claim(t, c, key("cfg", 1), time.Now().Add(time.Minute)) {
				t.Fatal("first claim not fresh")
			}
		})
	}
}

func TestDefaultShards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		capacity, procs, want int
	}{
		{capacity: 1 << 20, procs: 1, want: 64},
		{capacity: 1 << 20, procs: 2, want: 64},
		{capacity: 1 << 20, procs: 33, want: 128},
		{capacity: 1 << 20, procs: 64, want: 128},
		{capacity: 1 << 20, procs: 65, want: 256},
		{capacity: 64 * 1024, procs: 2, want: 64},
		{capacity: 64*1024 - 1, procs: 2, want: 32},
		{capacity: 1000, procs: 2, want: 1},
		{capacity: 1, procs: 8, want: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("cap%d/procs%d", tt.capacity, tt.procs), func(t *testing.T) {
			t.Parallel()
			if got := replaycache.DefaultShards(tt.capacity, tt.procs); got != tt.want {
				t.Fatalf("defaultShards(%d, %d) = %d, want %d", tt.capacity, tt.procs, got, tt.want)
			}
		})
	}
}

// step is one action of a scripted scenario against a fake clock.
type step struct {
	at        time.Duration // clock offset from t0 before the claim
	key       int
	exp       time.Duration // expiry offset from t0
	wantFresh bool
	wantErr   error
}

func runSteps(t *testing.T, cfg replaycache.Config, steps []step) *replaycache.LRU {
	t.Helper()
	clk := newFakeClock()
	cfg.Now = clk.Now
	c := newLRU(t, cfg)
	for i, s := range steps {
		clk.Set(t0.Add(s.at))
		fresh, err := c.CheckAndStore(context.Background(), key("steps", s.key), t0.Add(s.exp))
		if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
			t.Fatalf("step %d (key %d at %v): err = %v, want %v", i, s.key, s.at, err, s.wantErr)
		}
		if fresh != s.wantFresh {
			t.Fatalf("step %d (key %d at %v): fresh = %v, want %v", i, s.key, s.at, fresh, s.wantFresh)
		}
	}
	return c
}

func TestLRUScenarios(t *testing.T) {
	t.Parallel()
	const grace = 30 * time.Second
	tests := []struct {
		name  string
		cfg   replaycache.Config
		steps []step
	}{
		{
			name: "DPOP-RS-15/second claim is a replay",
			steps: []step{
				{at: 0, key: 1, exp: time.Minute, wantFresh: true},
				{at: time.Second, key: 1, exp: time.Minute},
				{at: 2 * time.Second, key: 1, exp: time.Minute},
			},
		},
		{
			name: "DPOP-RS-15/distinct keys are all fresh",
			steps: []step{
				{at: 0, key: 1, exp: time.Minute, wantFresh: true},
				{at: 0, key: 2, exp: time.Minute, wantFresh: true},
				{at: 0, key: 3, exp: time.Minute, wantFresh: true},
				{at: 0, key: 2, exp: time.Minute},
			},
		},
		{
			name: "replay until the deadline inclusive, fresh just after",
			steps: []step{
				{at: 0, key: 1, exp: time.Minute, wantFresh: true},
				{at: time.Minute, key: 1, exp: 2 * time.Minute},
				{at: time.Minute + grace, key: 1, exp: 2 * time.Minute},
				{at: time.Minute + grace + 1, key: 1, exp: 3 * time.Minute, wantFresh: true},
				{at: time.Minute + grace + 2, key: 1, exp: 3 * time.Minute},
			},
		},
		{
			name: "the first claim's expiry counts, not the replay's",
			steps: []step{
				{at: 0, key: 1, exp: time.Second, wantFresh: true},
				{at: 0, key: 1, exp: time.Hour},
				{at: time.Second + grace + 1, key: 1, exp: time.Hour, wantFresh: true},
			},
		},
		{
			name: "exp already past is recorded for Grace",
			steps: []step{
				{at: time.Hour, key: 1, exp: 0, wantFresh: true},
				{at: time.Hour, key: 1, exp: 0},
				{at: time.Hour + grace, key: 1, exp: 0},
				{at: time.Hour + grace + 1, key: 1, exp: 0, wantFresh: true},
			},
		},
		{
			name: "clock stepped backwards does not resurrect",
			steps: []step{
				{at: 0, key: 1, exp: 10 * time.Second, wantFresh: true},
				// Past exp but inside Grace; other claims run reclamation.
				{at: 10*time.Second + grace, key: 2, exp: time.Hour, wantFresh: true},
				{at: 10*time.Second + grace, key: 3, exp: time.Hour, wantFresh: true},
				// The clock steps back by Grace: the proof would be
				// inside its window again, and must still be a replay.
				{at: 10 * time.Second, key: 1, exp: 10 * time.Second},
				{at: -time.Hour, key: 1, exp: 10 * time.Second},
				{at: -time.Hour, key: 2, exp: time.Hour},
			},
		},
		{
			name: "custom grace",
			cfg:  replaycache.Config{Grace: time.Millisecond},
			steps: []step{
				{at: 0, key: 1, exp: time.Second, wantFresh: true},
				{at: time.Second + time.Millisecond, key: 1, exp: time.Second},
				{at: time.Second + time.Millisecond + 1, key: 1, exp: time.Second, wantFresh: true},
			},
		},
		{
			name: "far future expiry saturates and stays claimed",
			steps: []step{
				{at: 0, key: 1, exp: 1<<63 - 1, wantFresh: true},
				{at: 200 * 365 * 24 * time.Hour, key: 1, exp: 1<<63 - 1},
			},
		},
		{
			name: "ADV-105/full of live entries fails closed with ErrFull",
			cfg:  replaycache.Config{Capacity: 3, Shards: 1},
			steps: []step{
				{at: 0, key: 1, exp: time.Minute, wantFresh: true},
				{at: 0, key: 2, exp: time.Minute, wantFresh: true},
				{at: 0, key: 3, exp: time.Minute, wantFresh: true},
				{at: 0, key: 4, exp: time.Minute, wantErr: replaycache.ErrFull},
				// Nothing live was evicted to make room.
				{at: time.Second, key: 1, exp: time.Minute},
				{at: time.Second, key: 2, exp: time.Minute},
				{at: time.Second, key: 3, exp: time.Minute},
				{at: time.Second, key: 4, exp: time.Minute, wantErr: replaycache.ErrFull},
			},
		},
		{
			name: "ADV-105/expired entries are reclaimed oldest first when full",
			cfg:  replaycache.Config{Capacity: 3, Shards: 1},
			steps: []step{
				{at: 0, key: 1, exp: time.Second, wantFresh: true},
				{at: 0, key: 2, exp: time.Second, wantFresh: true},
				{at: 0, key: 3, exp: time.Hour, wantFresh: true},
				{at: 0, key: 4, exp: time.Hour, wantErr: replaycache.ErrFull},
				// Keys 1 and 2 expire; claims 4 and 5 take their places.
				{at: time.Second + grace + 1, key: 4, exp: time.Hour, wantFresh: true},
				{at: time.Second + grace + 1, key: 5, exp: time.Hour, wantFresh: true},
				{at: time.Second + grace + 1, key: 6, exp: time.Hour, wantErr: replaycache.ErrFull},
				{at: time.Second + grace + 1, key: 3, exp: time.Hour},
				{at: time.Second + grace + 1, key: 4, exp: time.Hour},
				{at: time.Second + grace + 1, key: 5, exp: time.Hour},
			},
		},
		{
			name: "reclamation stops at the oldest live entry",
			cfg:  replaycache.Config{Capacity: 3, Shards: 1},
			steps: []step{
				{at: 0, key: 1, exp: time.Second, wantFresh: true},
				{at: 0, key: 2, exp: time.Hour, wantFresh: true},
				{at: 0, key: 3, exp: time.Second, wantFresh: true},
				{at: time.Second + grace + 1, key: 4, exp: time.Hour, wantFresh: true},
				// Key 3 has expired but sits behind live key 2.
				{at: time.Second + grace + 1, key: 5, exp: time.Hour, wantErr: replaycache.ErrFull},
				// Claiming an expired key itself replaces it in place.
				{at: time.Second + grace + 1, key: 3, exp: time.Hour, wantFresh: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, tt.cfg, tt.steps)
		})
	}
}

func TestLRUStats(t *testing.T) {
	t.Parallel()
	c := runSteps(t, replaycache.Config{Capacity: 2, Shards: 1}, []step{
		{at: 0, key: 1, exp: time.Second, wantFresh: true},
		{at: 0, key: 1, exp: time.Second},
		{at: 0, key: 2, exp: time.Hour, wantFresh: true},
		{at: 0, key: 3, exp: time.Hour, wantErr: replaycache.ErrFull},
		{at: time.Hour, key: 3, exp: 2 * time.Hour, wantFresh: true},
		{at: time.Hour, key: 2, exp: 2 * time.Hour},
	})
	want := replaycache.Stats{Claims: 3, Replays: 2, Full: 1, Expired: 1, Entries: 2}
	if got := c.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	if got := c.Len(); got != 2 {
		t.Fatalf("Len() = %d, want 2", got)
	}
}

// TestLRUMemoryFollowsLiveSet checks that expired entries are reclaimed by
// later claims without a sweep, so the cache does not grow to Capacity under
// a steady load (ADV-105).
func TestLRUMemoryFollowsLiveSet(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	c := newLRU(t, replaycache.Config{Capacity: 1 << 16, Shards: 1, Grace: time.Second, Now: clk.Now})
	const perWindow = 1000
	for w := 0; w < 20; w++ {
		for i := 0; i < perWindow; i++ {
			if !claim(t, c, key("live", w*perWindow+i), clk.Now().Add(time.Second)) {
				t.Fatalf("window %d key %d not fresh", w, i)
			}
		}
		clk.Advance(2*time.Second + 1)
	}
	if got := c.Len(); got > 2*perWindow {
		t.Fatalf("Len() = %d after 20 windows of %d, want at most %d", got, perWindow, 2*perWindow)
	}
	if st := c.Stats(); st.Expired < 18*perWindow {
		t.Fatalf("Expired = %d, want at least %d", st.Expired, 18*perWindow)
	}
}

func TestLRUContextDone(t *testing.T) {
	t.Parallel()
	c := newLRU(t, replaycache.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh, err := c.CheckAndStore(ctx, key("ctx", 1), time.Now().Add(time.Minute))
	if !errors.Is(err, context.Canceled) || fresh {
		t.Fatalf("CheckAndStore(canceled) = %v, %v; want false, context.Canceled", fresh, err)
	}
	// The canceled claim recorded nothing.
	if !claim(t, c, key("ctx", 1), time.Now().Add(time.Minute)) {
		t.Fatal("key claimed by a canceled call")
	}
}

// TestLRUConcurrentClaims is ADV-107: many goroutines claim the same keys at
// once and exactly one wins each key; distinct keys are never refused.
func TestLRUConcurrentClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		shards int
	}{
		{name: "one shard", shards: 1},
		{name: "default shards"},
		{name: "many shards", shards: 256},
	}
	for _, tt := range tests {
		t.Run("ADV-107/"+tt.name, func(t *testing.T) {
			t.Parallel()
			const goroutines, keys = 16, 2000
			c := newLRU(t, replaycache.Config{Capacity: 1 << 18, Shards: tt.shards})
			exp := time.Now().Add(time.Hour)
			var wins [keys]atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < keys; i++ {
						k := (i + g*keys/goroutines) % keys
						fresh, err := c.CheckAndStore(context.Background(), key("same", k), exp)
						if err != nil {
							errs <- err
							return
						}
						if fresh {
							wins[k].Add(1)
						}
						// A key of this goroutine's own: always fresh.
						fresh, err = c.CheckAndStore(context.Background(), key(fmt.Sprintf("own%d", g), i), exp)
						if err != nil {
							errs <- err
							return
						}
						if !fresh {
							errs <- fmt.Errorf("goroutine %d: distinct key %d refused", g, i)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for k := range wins {
				if n := wins[k].Load(); n != 1 {
					t.Fatalf("key %d won %d times, want exactly 1", k, n)
				}
			}
			st := c.Stats()
			if want := uint64(keys + goroutines*keys); st.Claims != want {
				t.Fatalf("Claims = %d, want %d", st.Claims, want)
			}
			if want := uint64((goroutines - 1) * keys); st.Replays != want {
				t.Fatalf("Replays = %d, want %d", st.Replays, want)
			}
		})
	}
}

// TestLRUShardFull checks that filling one shard refuses claims in that shard
// only, and that shard selection spreads keys over all shards.
func TestLRUShardFull(t *testing.T) {
	t.Parallel()
	c := newLRU(t, replaycache.Config{Capacity: 64, Shards: 4})
	per := c.ShardCapacity()
	exp := time.Now().Add(time.Hour)
	counts := make([]int, 4)
	var other [32]byte
	for i := 0; ; i++ {
		k := key("shard", i)
		s := c.ShardOf(k)
		if s != 0 {
			other = k
			counts[s]++
			continue
		}
		if counts[0] == per {
			fresh, err := c.CheckAndStore(context.Background(), k, exp)
			if !errors.Is(err, replaycache.ErrFull) || fresh {
				t.Fatalf("claim in full shard = %v, %v; want false, ErrFull", fresh, err)
			}
			break
		}
		if !claim(t, c, k, exp) {
			t.Fatalf("key %d not fresh", i)
		}
		counts[0]++
	}
	for s, n := range counts {
		if n == 0 {
			t.Fatalf("no key mapped to shard %d", s)
		}
	}
	if !claim(t, c, other, exp) {
		t.Fatal("claim in a shard with room was refused")
	}
}

// TestLRUFloodStaysBounded is DPOP-RS-16 and ADV-105: a flood of 10^5 unique
// keys within one window never grows the cache past Capacity, and the keys
// already claimed stay claimed (nothing live is forgotten to make room).
func TestLRUFloodStaysBounded(t *testing.T) {
	t.Parallel()
	const capacity, flood = 1000, 100_000
	clk := newFakeClock()
	c := newLRU(t, replaycache.Config{Capacity: capacity, Now: clk.Now})
	exp := clk.Now().Add(time.Minute)
	accepted := 0
	for i := 0; i < flood; i++ {
		fresh, err := c.CheckAndStore(context.Background(), key("flood", i), exp)
		switch {
		case errors.Is(err, replaycache.ErrFull):
		case err != nil:
			t.Fatalf("claim %d: %v", i, err)
		case fresh:
			accepted++
		default:
			t.Fatalf("claim %d of a unique key was a replay", i)
		}
		if i%1000 == 0 && c.Len() > capacity {
			t.Fatalf("DPOP-RS-16: Len = %d after %d claims, Capacity %d", c.Len(), i+1, capacity)
		}
	}
	st := c.Stats()
	if st.Entries != accepted || accepted > capacity || st.Full != uint64(flood-accepted) {
		t.Fatalf("Stats = %+v, accepted %d; want Entries == accepted <= %d and Full == rest", st, accepted, capacity)
	}
	// Every accepted key is still a replay.
	for i := 0; i < flood; i++ {
		fresh, err := c.CheckAndStore(context.Background(), key("flood", i), exp)
		if fresh {
			t.Fatalf("ADV-105: key %d fresh again while live", i)
		}
		if err == nil {
			accepted--
		}
	}
	if accepted != 0 {
		t.Fatalf("%d accepted keys were not reported as replays", accepted)
	}
	// After the window (plus Grace) passes, the cache takes new keys again.
	clk.Advance(time.Minute + replaycache.DefaultGrace + time.Nanosecond)
	if !claim(t, c, key("after-flood", 0), clk.Now().Add(time.Minute)) {
		t.Fatal("claim after the window refused")
	}
}

// TestLRUShardSeed checks that shard selection is keyed per LRU: clients who
// know the key derivation still cannot predict which shard a key lands in,
// so they cannot aim a flood at one shard.
func TestLRUShardSeed(t *testing.T) {
	t.Parallel()
	a := newLRU(t, replaycache.Config{Capacity: 1 << 16, Shards: 64})
	b := newLRU(t, replaycache.Config{Capacity: 1 << 16, Shards: 64})
	for i := 0; i < 64; i++ {
		if a.ShardOf(key("seed", i)) != b.ShardOf(key("seed", i)) {
			return
		}
	}
	t.Fatal("64 keys landed in the same shards of two LRUs: shard hash is not seeded")
}

// TestLRUStatsDuringClaims reads Stats and Len while claims run (for -race).
func TestLRUStatsDuringClaims(t *testing.T) {
	t.Parallel()
	c := newLRU(t, replaycache.Config{Capacity: 1 << 16})
	exp := time.Now().Add(time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			if fresh, err := c.CheckAndStore(context.Background(), key("stats", i), exp); err != nil || !fresh {
				t.Errorf("key %d: fresh %v, err %v", i, fresh, err)
				return
			}
		}
	}()
	var last uint64
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		st := c.Stats()
		if st.Claims < last || st.Entries < 0 || c.Len() < int(st.Claims) {
			t.Fatalf("inconsistent snapshot %+v after %d claims", st, last)
		}
		last = st.Claims
	}
	if st := c.Stats(); st.Claims != 5000 || st.Entries != 5000 {
		t.Fatalf("Stats = %+v, want 5000 claims and entries", st)
	}
}

func TestShardPadding(t *testing.T) {
	t.Parallel()
	if replaycache.ShardSize%128 != 0 {
		t.Fatalf("shard is %d bytes, want a multiple of 128 (two cache lines)", replaycache.ShardSize)
	}
}

// TestLRUZeroExpiry checks that an expiry before the int64 nanosecond range
// (the zero time.Time) saturates instead of wrapping: it counts as already
// past, so the key is recorded for Grace.
func TestLRUZeroExpiry(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	c := newLRU(t, replaycache.Config{Grace: time.Second, Now: clk.Now})
	k := key("zero", 1)
	if !claim(t, c, k, time.Time{}) {
		t.Fatal("first claim not fresh")
	}
	clk.Advance(time.Second)
	if claim(t, c, k, time.Time{}) {
		t.Fatal("claim within Grace was fresh")
	}
	clk.Advance(1)
	if !claim(t, c, k, time.Time{}) {
		t.Fatal("claim after Grace was a replay")
	}
}

// TestLRUInternalKey pins the documented internal key (the first 8 bytes of
// the key, read little-endian) and its two consequences: keys that differ
// anywhere in those 8 bytes are distinct, and keys that agree on them count
// as one, which can only refuse a fresh claim (a false rejection), never
// make a replay fresh or shorten a live entry.
func TestLRUInternalKey(t *testing.T) {
	t.Parallel()
	var seq [32]byte
	for i := range seq {
		seq[i] = byte(i + 1)
	}
	if got, want := replaycache.InternalKey(seq), uint64(0x0807060504030201); got != want {
		t.Fatalf("InternalKey(01 02 … 20) = %#x, want %#x (first 8 bytes, little-endian)", got, want)
	}
	for i := 0; i < 1000; i++ {
		k := key("ikey", i)
		if got, want := replaycache.InternalKey(k), binary.LittleEndian.Uint64(k[:8]); got != want {
			t.Fatalf("InternalKey(key %d) = %#x, want %#x", i, got, want)
		}
	}

	const grace = time.Second
	clk := newFakeClock()
	c := newLRU(t, replaycache.Config{Capacity: 1 << 13, Grace: grace, Now: clk.Now})
	exp := clk.Now().Add(time.Minute)
	base := key("ikey-base", 0)
	if !claim(t, c, base, exp) {
		t.Fatal("first claim of base not fresh")
	}
	// Every key that differs from base in the retained bytes is fresh:
	// each single bit, and each other value of each byte.
	fresh := 0
	for pos := 0; pos < 8; pos++ {
		for v := 0; v < 256; v++ {
			k := base
			k[pos] = byte(v)
			if k == base {
				continue
			}
			if !claim(t, c, k, exp) {
				t.Fatalf("key differing from base in byte %d (%#02x) collided", pos, v)
			}
			fresh++
		}
	}
	if fresh != 8*255 {
		t.Fatalf("claimed %d keys, want %d", fresh, 8*255)
	}
	// Single bit flips are among them: all still held, each distinct.
	for bit := 0; bit < 64; bit++ {
		k := base
		k[bit/8] ^= 1 << (bit % 8)
		if claim(t, c, k, exp) {
			t.Fatalf("key with bit %d flipped was forgotten", bit)
		}
	}
	// Keys that differ from base only outside the retained bytes are the
	// same internal key: refused while base is live, and base stays held.
	for pos := 8; pos < 32; pos++ {
		k := base
		k[pos] ^= 0xff
		if claim(t, c, k, exp) {
			t.Fatalf("key differing from base only in byte %d was fresh: the internal key is not the first 8 bytes", pos)
		}
	}
	if claim(t, c, base, exp) {
		t.Fatal("base fresh again after colliding claims")
	}
	// Once base's deadline has passed, a colliding key takes its place, and
	// base itself is then a replay until that key's deadline.
	clk.Set(exp.Add(grace + 1))
	other := base
	other[31] ^= 1
	if !claim(t, c, other, clk.Now().Add(time.Minute)) {
		t.Fatal("colliding key not fresh after base expired")
	}
	if claim(t, c, base, clk.Now().Add(time.Minute)) {
		t.Fatal("base fresh while a colliding key is live")
	}
}
