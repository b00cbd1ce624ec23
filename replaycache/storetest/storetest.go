// Package storetest checks that an implementation of
// [github.com/senderbound/senderbound/replaycache.Store] keeps the Store
// contract, in the manner of testing/fstest: a store author calls [Run]
// from a test with a constructor for fresh stores, and Run reports every
// breach as a test failure.
//
// The checks, each a subtest:
//
//   - fresh-then-replay: the first claim of a key is fresh, later claims
//     before its expiry are replays, and keys are independent;
//   - kept-until-exp: a key stays claimed until its exp, by the real clock;
//   - expiry (when Config.Retention is set): a key whose exp passed
//     Retention ago can be claimed again, so memory follows the live set;
//   - atomic: among concurrent claims of one key exactly one is fresh, for
//     one key and for many keys at once;
//   - context-done: a claim with a context already done fails, never fresh;
//   - fail-closed (when Config.NewUnavailable is set): a store that cannot
//     decide answers every claim with an error and never fresh;
//   - since (when the store implements replaycache.SinceStore):
//     CheckAndStoreSince with a current since is the same single-use
//     register as CheckAndStore.
//
// Every claim is also checked for the forbidden combination fresh == true
// with a non-nil error. Keys are random digests, as the contract requires.
// Checks that wait on expiry use the real clock and take about
// Retention plus a few hundred milliseconds.
//
// # Example
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, storetest.Config{
//			New: func(t *testing.T) replaycache.Store {
//				s, err := replaycache.NewLRU(replaycache.Config{Grace: 50 * time.Millisecond})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			},
//			Retention: 50 * time.Millisecond,
//		})
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
)

// Config describes the store under test to [Run].
type Config struct {
	// New returns a new, empty store that uses the real clock. Stores from
	// separate calls must not share keys. Required. It is called from the
	// subtest's goroutine and may call t.Fatal and t.Cleanup.
	New func(t *testing.T) replaycache.Store

	// Retention, when positive, is the longest a store keeps a key past
	// its exp (for the built-in stores, their Grace). The expiry check then
	// requires a key to be claimable again once exp + Retention has passed,
	// plus a margin. Zero skips that check.
	Retention time.Duration

	// NewUnavailable, when set, returns a store that cannot decide any
	// claim (its backend stopped, or an in-memory store full of live
	// keys). The fail-closed check requires every claim on it to return an
	// error and fresh == false. Nil skips that check.
	NewUnavailable func(t *testing.T) replaycache.Store

	// Concurrency is the number of goroutines racing in the atomic check.
	// Zero means 16.
	Concurrency int
}

// margin is added to waits on the real clock, for slow machines and for
// stores that round lifetimes up.
const margin = 250 * time.Millisecond

// Run runs the contract checks against cfg as subtests of t. It runs them
// in parallel with each other (t.Parallel in each subtest).
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("storetest: Config.New is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	t.Run("fresh-then-replay", func(t *testing.T) {
		t.Parallel()
		s := cfg.New(t)
		exp := time.Now().Add(time.Minute)
		a, b := randomKey(t), randomKey(t)
		wantClaim(t, s, a, exp, true, "first claim of a")
		wantClaim(t, s, a, exp, false, "second claim of a")
		wantClaim(t, s, b, exp, true, "first claim of b, after a")
		wantClaim(t, s, a, exp, false, "third claim of a")
		wantClaim(t, s, b, exp, false, "second claim of b")
		wantClaim(t, s, a, exp.Add(time.Hour), false, "claim of a with a later exp")
	})
	t.Run("kept-until-exp", func(t *testing.T) {
		t.Parallel()
		s := cfg.New(t)
		k := randomKey(t)
		exp := time.Now().Add(2 * margin)
		wantClaim(t, s, k, exp, true, "first claim")
		time.Sleep(margin)
		if time.Now().Before(exp) {
			wantClaim(t, s, k, exp, false, "claim before exp")
		}
	})
	if cfg.Retention > 0 {
		t.Run("expiry", func(t *testing.T) {
			t.Parallel()
			s := cfg.New(t)
			k := randomKey(t)
			exp := time.Now()
			wantClaim(t, s, k, exp, true, "first claim")
			deadline := exp.Add(cfg.Retention + 4*margin)
			time.Sleep(cfg.Retention + margin)
			for {
				fresh, err := s.CheckAndStore(context.Background(), k, time.Now().Add(time.Minute))
				checkPair(t, fresh, err)
				if err == nil && fresh {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("key still claimed %v after its exp (Retention %v): %v, %v", time.Since(exp), cfg.Retention, fresh, err)
				}
				time.Sleep(margin / 5)
			}
			wantClaim(t, s, k, time.Now().Add(time.Minute), false, "claim after the renewed claim")
		})
	}
	t.Run("atomic", func(t *testing.T) {
		t.Parallel()
		s := cfg.New(t)
		exp := time.Now().Add(time.Minute)
		tests := []struct {
			name string
			keys int
		}{
			{name: "one key", keys: 1},
			{name: "many keys", keys: 64},
		}
		for _, tt := range tests {
			keys := make([][32]byte, tt.keys)
			for i := range keys {
				keys[i] = randomKey(t)
			}
			fresh := make([]int, tt.keys)
			var (
				mu    sync.Mutex
				wg    sync.WaitGroup
				errs  []error
				start = make(chan struct{})
			)
			for g := 0; g < cfg.Concurrency; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := range keys {
						f, err := s.CheckAndStore(context.Background(), keys[(i+g)%len(keys)], exp)
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else if f {
							fresh[(i+g)%len(keys)]++
						}
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%s: %d claims failed, first: %v", tt.name, len(errs), errs[0])
			}
			for i, n := range fresh {
				if n != 1 {
					t.Fatalf("%s: key %d was fresh for %d of %d concurrent claims, want exactly 1", tt.name, i, n, cfg.Concurrency)
				}
			}
		}
	})
	t.Run("context-done", func(t *testing.T) {
		t.Parallel()
		s := cfg.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		fresh, err := s.CheckAndStore(ctx, randomKey(t), time.Now().Add(time.Minute))
		checkPair(t, fresh, err)
		if err == nil {
			t.Fatalf("claim with a canceled context = %v, nil; want an error", fresh)
		}
	})
	if cfg.NewUnavailable != nil {
		t.Run("fail-closed", func(t *testing.T) {
			t.Parallel()
			s := cfg.NewUnavailable(t)
			exp := time.Now().Add(time.Minute)
			for i := 0; i < 4; i++ {
				fresh, err := s.CheckAndStore(context.Background(), randomKey(t), exp)
				checkPair(t, fresh, err)
				if err == nil {
					t.Fatalf("claim %d on an unavailable store = %v, nil; want an error", i, fresh)
				}
			}
		})
	}
	if s, ok := cfg.New(t).(replaycache.SinceStore); ok {
		t.Run("since", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exp := time.Now().Add(time.Minute)
			a, b := randomKey(t), randomKey(t)
			for i, want := range []bool{true, false} {
				fresh, err := s.CheckAndStoreSince(ctx, a, time.Now(), exp)
				checkPair(t, fresh, err)
				if err != nil || fresh != want {
					t.Fatalf("CheckAndStoreSince of a, claim %d = %v, %v; want %v, nil", i, fresh, err, want)
				}
			}
			wantClaim(t, s, a, exp, false, "CheckAndStore of a claimed through CheckAndStoreSince")
			wantClaim(t, s, b, exp, true, "CheckAndStore of b")
			fresh, err := s.CheckAndStoreSince(ctx, b, time.Now(), exp)
			checkPair(t, fresh, err)
			if err != nil || fresh {
				t.Fatalf("CheckAndStoreSince of b claimed through CheckAndStore = %v, %v; want false, nil", fresh, err)
			}
		})
	}
}

// wantClaim claims k and fails t unless the result is (want, nil).
func wantClaim(t *testing.T, s replaycache.Store, k [32]byte, exp time.Time, want bool, what string) {
	t.Helper()
	fresh, err := s.CheckAndStore(context.Background(), k, exp)
	checkPair(t, fresh, err)
	if err != nil || fresh != want {
		t.Fatalf("%s: CheckAndStore = %v, %v; want %v, nil", what, fresh, err, want)
	}
}

// checkPair fails t on the combination the contract forbids.
func checkPair(t *testing.T, fresh bool, err error) {
	t.Helper()
	if fresh && err != nil {
		t.Fatalf("CheckAndStore = true, %v: a claim that fails must report fresh == false", err)
	}
}

// randomKey returns a uniformly random digest.
func randomKey(t *testing.T) [32]byte {
	t.Helper()
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}
