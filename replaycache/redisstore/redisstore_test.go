package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// key returns a distinct digest for each (space, i).
func key(space string, i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(append([]byte(space+"\x00"), b[:]...))
}

func newStore(tb testing.TB, client redis.UniversalClient, cfg redisstore.Config) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(client, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

func claim(tb testing.TB, s *redisstore.Store, k [32]byte, exp time.Time) bool {
	tb.Helper()
	fresh, err := s.CheckAndStore(context.Background(), k, exp)
	if err != nil {
		tb.Fatalf("CheckAndStore: %v", err)
	}
	return fresh
}

// wantUnavailable checks that a claim failed closed.
func wantUnavailable(tb testing.TB, fresh bool, err error) {
	tb.Helper()
	if fresh || !errors.Is(err, redisstore.ErrUnavailable) {
		tb.Fatalf("CheckAndStore = %v, %v; want false and an error wrapping ErrUnavailable", fresh, err)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	tests := []struct {
		name    string
		client  redis.UniversalClient
		cfg     redisstore.Config
		wantErr bool
	}{
		{name: "zero config", client: client},
		{name: "explicit", client: client, cfg: redisstore.Config{Prefix: "p:", Timeout: time.Millisecond, Grace: time.Second, MaxInFlight: 1, Now: time.Now}},
		{name: "nil client", cfg: redisstore.Config{}, wantErr: true},
		{name: "negative timeout", client: client, cfg: redisstore.Config{Timeout: -1}, wantErr: true},
		{name: "negative grace", client: client, cfg: redisstore.Config{Grace: -1}, wantErr: true},
		{name: "negative max in flight", client: client, cfg: redisstore.Config{MaxInFlight: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := redisstore.New(tt.client, tt.cfg)
			if (err != nil) != tt.wantErr || (err == nil) == (s == nil) {
				t.Fatalf("New = %v, %v; wantErr %v", s, err, tt.wantErr)
			}
		})
	}
}

func TestFreshAndReplay(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(), redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	tests := []struct {
		name      string
		key       [32]byte
		wantFresh bool
	}{
		{name: "DPOP-RS-15/first claim is fresh", key: key("fr", 1), wantFresh: true},
		{name: "DPOP-RS-15/second claim is a replay", key: key("fr", 1)},
		{name: "DPOP-RS-15/third claim is a replay", key: key("fr", 1)},
		{name: "another key is fresh", key: key("fr", 2), wantFresh: true},
		{name: "ADV-47/same jti under another thumbprint is fresh", key: sha256.Sum256([]byte("other-thumbprint\x00jti")), wantFresh: true},
		{name: "zero key works like any other", key: [32]byte{}, wantFresh: true},
		{name: "zero key replayed", key: [32]byte{}},
	}
	// Sequential on purpose: each step depends on the ones before.
	for _, tt := range tests {
		if got := claim(t, s, tt.key, exp); got != tt.wantFresh {
			t.Fatalf("%s: fresh = %v, want %v", tt.name, got, tt.wantFresh)
		}
	}
}

// TestKeyAndTTL checks the Redis key layout and the relative TTL computed
// from the injected clock, whatever the real clock says.
func TestKeyAndTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // far from the real clock
	const grace = 30 * time.Second
	s := newStore(t, rdb, redisstore.Config{Prefix: "ttl:", Grace: grace, Now: func() time.Time { return now }})
	tests := []struct {
		name             string
		exp              time.Time
		wantMin, wantMax time.Duration
	}{
		{name: "expiry ahead", exp: now.Add(10 * time.Second), wantMin: 10*time.Second + grace - time.Second, wantMax: 10*time.Second + grace},
		{name: "sub-millisecond rounds up", exp: now.Add(10*time.Second + time.Microsecond), wantMin: 10*time.Second + grace - time.Second, wantMax: 10*time.Second + grace + time.Millisecond},
		{name: "expiry past is recorded for grace", exp: now.Add(-time.Hour), wantMin: grace - time.Second, wantMax: grace},
		{name: "zero expiry is recorded for grace", exp: time.Time{}, wantMin: grace - time.Second, wantMax: grace},
		{name: "far future is capped", exp: now.Add(1<<63 - 1), wantMin: 99 * 365 * 24 * time.Hour, wantMax: 100 * 365 * 24 * time.Hour},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key("ttl", i)
			if !claim(t, s, k, tt.exp) {
				t.Fatal("first claim not fresh")
			}
			name := "ttl:" + base64.RawURLEncoding.EncodeToString(k[:])
			ttl, err := rdb.PTTL(context.Background(), name).Result()
			if err != nil {
				t.Fatalf("PTTL %s: %v", name, err)
			}
			if ttl < tt.wantMin || ttl > tt.wantMax {
				t.Fatalf("PTTL = %v, want in [%v, %v]", ttl, tt.wantMin, tt.wantMax)
			}
			if claim(t, s, k, tt.exp) {
				t.Fatal("second claim fresh")
			}
		})
	}
}

func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := newStore(t, rdb, redisstore.Config{Prefix: "a:"})
	b := newStore(t, rdb, redisstore.Config{Prefix: "b:"})
	def := newStore(t, rdb, redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	k := key("prefix", 1)
	for _, s := range []*redisstore.Store{a, b, def} {
		if !claim(t, s, k, exp) {
			t.Fatal("key claimed under one prefix is a replay under another")
		}
		if claim(t, s, k, exp) {
			t.Fatal("replay under the same prefix was fresh")
		}
	}
	n, err := rdb.Exists(context.Background(), redisstore.DefaultPrefix+base64.RawURLEncoding.EncodeToString(k[:])).Result()
	if err != nil || n != 1 {
		t.Fatalf("EXISTS default-prefixed key = %d, %v; want 1", n, err)
	}
}

// TestTwoInstances is DPOP-RS-15 across two resource-server instances that
// share one Redis: each has its own client and Store.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs1 := newStore(t, srv.Client(), redisstore.Config{})
	rs2 := newStore(t, srv.Client(), redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	tests := []struct {
		name        string
		first, then *redisstore.Store
	}{
		{name: "DPOP-RS-15/claimed at rs1, replayed at rs2", first: rs1, then: rs2},
		{name: "DPOP-RS-15/claimed at rs2, replayed at rs1", first: rs2, then: rs1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key("two", i)
			if !claim(t, tt.first, k, exp) {
				t.Fatal("first claim not fresh")
			}
			if claim(t, tt.then, k, exp) {
				t.Fatal("replay at the other instance was fresh")
			}
		})
	}
}

// TestExpiry waits once, for real, for a key recorded with an expiry already
// in the past to expire after Grace.
func TestExpiry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(), redisstore.Config{Grace: time.Second})
	k := key("exp", 1)
	past := time.Now().Add(-time.Minute)
	if !claim(t, s, k, past) {
		t.Fatal("first claim not fresh")
	}
	if claim(t, s, k, past) {
		t.Fatal("claim with a past expiry was not recorded")
	}
	time.Sleep(1100 * time.Millisecond)
	if !claim(t, s, k, past) {
		t.Fatal("key still held after its lifetime")
	}
}

// TestFailClosedServerStopped is ADV-108: with Redis gone, claims fail with
// an error, never fresh, and work again once it is back.
func TestFailClosedServerStopped(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(), redisstore.Config{Timeout: 500 * time.Millisecond})
	exp := time.Now().Add(time.Minute)
	if !claim(t, s, key("down", 1), exp) {
		t.Fatal("claim before stop not fresh")
	}
	srv.Stop()
	for i, k := range [][32]byte{key("down", 1), key("down", 2)} {
		start := time.Now()
		fresh, err := s.CheckAndStore(context.Background(), k, exp)
		wantUnavailable(t, fresh, err)
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("claim %d took %v with Timeout 500ms", i, d)
		}
	}
	srv.Restart()
	// The server came back empty: the store detects it and, for LossHold,
	// refuses claims that carry no since time, failing closed.
	fresh, err := s.CheckAndStore(context.Background(), key("down", 3), exp)
	if fresh || !errors.Is(err, replaycache.ErrStateLost) {
		t.Fatalf("claim without since after an empty restart = %v, %v; want ErrStateLost", fresh, err)
	}
	// A request issued after the detection is claimed normally.
	fresh, err = s.CheckAndStoreSince(context.Background(), key("down", 4), time.Now(), exp)
	if err != nil || !fresh {
		t.Fatalf("claim issued after the restart = %v, %v; want fresh", fresh, err)
	}
}

// TestSlowServer pauses Redis so that claims hit their deadline: the store
// gives up on time and reports an error, whether the deadline comes from the
// context or from Config.Timeout, even though the client itself would wait
// for its ReadTimeout (3 s by default).
func TestSlowServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
	}{
		{
			name:    "ADV-108/Config.Timeout",
			timeout: 200 * time.Millisecond,
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		},
		{
			name:    "ADV-108/context deadline",
			timeout: time.Minute,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A server of its own: it stays paused until the test ends.
			srv := redistest.Start(t)
			s := newStore(t, srv.Client(), redisstore.Config{Timeout: tt.timeout})
			exp := time.Now().Add(time.Minute)
			// Warm the pool so the claim does not wait on a dial.
			if !claim(t, s, key("slow-warm", 0), exp) {
				t.Fatal("warm-up claim not fresh")
			}
			if err := srv.Client().Do(context.Background(), "CLIENT", "PAUSE", "30000", "ALL").Err(); err != nil {
				t.Fatalf("CLIENT PAUSE: %v", err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			fresh, err := s.CheckAndStore(ctx, key("slow", 0), exp)
			elapsed := time.Since(start)
			wantUnavailable(t, fresh, err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want it to wrap context.DeadlineExceeded", err)
			}
			if elapsed > 2500*time.Millisecond {
				t.Fatalf("claim took %v, want about 200ms", elapsed)
			}
		})
	}
}

func TestContextDone(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	s := newStore(t, rdb, redisstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k := key("ctx", 1)
	fresh, err := s.CheckAndStore(ctx, k, time.Now().Add(time.Minute))
	wantUnavailable(t, fresh, err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want it to wrap context.Canceled", err)
	}
	if !claim(t, s, k, time.Now().Add(time.Minute)) {
		t.Fatal("a canceled claim recorded the key")
	}
}

// TestRedisFull checks that a Redis refusing writes (out of memory under
// maxmemory-policy noeviction) makes claims fail, not succeed.
func TestRedisFull(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	ctx := context.Background()
	s := newStore(t, rdb, redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	if !claim(t, s, key("oom", 1), exp) {
		t.Fatal("claim before the limit not fresh")
	}
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatalf("CONFIG SET %s: %v", kv[0], err)
		}
	}
	fresh, err := s.CheckAndStore(ctx, key("oom", 2), exp)
	wantUnavailable(t, fresh, err)
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		t.Fatalf("err = %v, want it to wrap the Redis error", err)
	}
}

// TestConcurrentClaims is ADV-107 against real Redis: goroutines spread over
// two instances claim the same keys at once; exactly one wins each key.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	stores := []*redisstore.Store{
		newStore(t, srv.Client(), redisstore.Config{}),
		newStore(t, srv.Client(), redisstore.Config{}),
	}
	const goroutines, keys = 16, 200
	exp := time.Now().Add(time.Minute)
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%len(stores)]
			for i := 0; i < keys; i++ {
				k := (i + g*keys/goroutines) % keys
				fresh, err := s.CheckAndStore(context.Background(), key("conc", k), exp)
				if err != nil {
					errs <- err
					return
				}
				if fresh {
					wins[k].Add(1)
				}
				fresh, err = s.CheckAndStore(context.Background(), key(fmt.Sprintf("own%d", g), i), exp)
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
			t.Fatalf("ADV-107: key %d won %d times, want exactly 1", k, n)
		}
	}
}
