package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// testClock is a settable clock shared by provers, verifiers and stores.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLossDetectedAfterEmptyRestart kills a real redis-server running
// without persistence and restarts it empty. Before the fix every proof
// accepted before the kill was accepted again afterwards (DPOP-RS-15,
// ADV-108); now each replay is refused with ErrReplayStateLost, as
// use_dpop_nonce when the verifier requires nonces and invalid_dpop_proof
// otherwise, at both instances that share the Redis, while proofs issued
// after the restart are accepted.
func TestLossDetectedAfterEmptyRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		nonces   bool
		wantCode string
	}{
		{name: "DPOP-RS-15/nonces required", nonces: true, wantCode: oautherr.UseDPoPNonce},
		{name: "DPOP-RS-15/no nonces", nonces: false, wantCode: oautherr.InvalidDPoPProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			clock := &testClock{t: time.Unix(1_900_000_000, 0)}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			prover, err := dpop.NewProver(key, &dpop.ProverOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			var nonces *dpop.Nonces
			if tt.nonces {
				nonces, err = dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{make([]byte, 32)}, Label: "https://rs.example.test", Now: clock.Now})
				if err != nil {
					t.Fatal(err)
				}
			}
			// Two resource-server instances, each with its own client and
			// store, sharing the Redis.
			verifiers := make([]*dpop.Verifier, 2)
			for i := range verifiers {
				store := newStore(t, srv.Client(), redisstore.Config{Now: clock.Now})
				cfg := dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store, Now: clock.Now}
				if nonces != nil {
					cfg.Nonces = nonces
				}
				verifiers[i], err = dpop.NewVerifier(cfg)
				if err != nil {
					t.Fatal(err)
				}
			}
			const url = "https://rs.example.test/data"
			newProof := func() string {
				t.Helper()
				opts := dpop.ProofOptions{}
				if nonces != nil {
					n, err := nonces.NewNonce()
					if err != nil {
						t.Fatal(err)
					}
					opts.Nonce = n
				}
				p, err := prover.Proof("GET", url, opts)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			ctx := context.Background()
			want := dpop.Expect{Method: "GET", URL: url}

			const n = 40
			accepted := make([]string, n)
			for i := range accepted {
				accepted[i] = newProof()
				if _, err := verifiers[i%2].Verify(ctx, accepted[i], want); err != nil {
					t.Fatalf("proof %d before the restart: %v", i, err)
				}
			}
			srv.Stop()
			srv.Restart()
			clock.Add(5 * time.Second)

			for i, p := range accepted {
				_, err := verifiers[(i+1)%2].Verify(ctx, p, want)
				if !errors.Is(err, dpop.ErrReplayStateLost) || dpop.Code(err) != tt.wantCode {
					t.Fatalf("replay %d after the empty restart: err = %v (code %q), want ErrReplayStateLost with %s", i, err, dpop.Code(err), tt.wantCode)
				}
			}
			clock.Add(time.Second)
			for i := 0; i < 4; i++ {
				p := newProof()
				if _, err := verifiers[i%2].Verify(ctx, p, want); err != nil {
					t.Fatalf("fresh proof %d after the restart: %v", i, err)
				}
				if _, err := verifiers[(i+1)%2].Verify(ctx, p, want); !errors.Is(err, dpop.ErrReplay) {
					t.Fatalf("replay of fresh proof %d: err = %v, want ErrReplay", i, err)
				}
			}
		})
	}
}

// TestLossSinceRules pins the store's rules after a detected loss at D:
// claims with since before D are refused with ErrStateLost, claims with
// since at or after D are answered normally, and claims without since are
// refused until D + LossHold. A store that first meets an epoch refuses
// only what was issued before that epoch was created.
func TestLossSinceRules(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := &testClock{t: time.Unix(1_900_000_000, 0)}
	const hold = time.Minute
	s := newStore(t, srv.Client(), redisstore.Config{Now: clock.Now, LossHold: hold})
	ctx := context.Background()
	exp := clock.Now().Add(time.Minute)
	if fresh, err := s.CheckAndStoreSince(ctx, key("since", 0), clock.Now(), exp); err != nil || !fresh {
		t.Fatalf("first claim = %v, %v", fresh, err)
	}
	srv.Stop()
	srv.Restart()
	clock.Add(10 * time.Second)
	d := clock.Now()
	tests := []struct {
		name      string
		advance   time.Duration
		since     *time.Time
		wantFresh bool
		wantLost  bool
	}{
		{name: "issued before the loss", since: ptr(d.Add(-time.Second)), wantLost: true},
		{name: "issued at the detection", since: ptr(d), wantFresh: true},
		{name: "no since within the hold", wantLost: true},
		{name: "issued long before, still refused", advance: hold, since: ptr(d.Add(-time.Millisecond)), wantLost: true},
		{name: "no since after the hold", advance: time.Millisecond, wantFresh: true},
	}
	for i, tc := range tests {
		clock.Add(tc.advance)
		var (
			fresh bool
			err   error
		)
		if tc.since != nil {
			fresh, err = s.CheckAndStoreSince(ctx, key("since", i+1), *tc.since, exp.Add(time.Hour))
		} else {
			fresh, err = s.CheckAndStore(ctx, key("since", i+1), exp.Add(time.Hour))
		}
		if tc.wantLost {
			var lost interface{ ReplayStateLost() bool }
			if fresh || !errors.Is(err, replaycache.ErrStateLost) || !errors.As(err, &lost) || !lost.ReplayStateLost() {
				t.Fatalf("%s: = %v, %v; want ErrStateLost", tc.name, fresh, err)
			}
			continue
		}
		if err != nil || fresh != tc.wantFresh {
			t.Fatalf("%s: = %v, %v; want %v, nil", tc.name, fresh, err, tc.wantFresh)
		}
	}

	// A store whose first claim finds the epoch created at the detection
	// refuses what was issued before it, and (its creator having detected
	// a loss) claims without since until the creation + LossHold.
	late := newStore(t, srv.Client(), redisstore.Config{Now: clock.Now, LossHold: 10 * hold})
	if _, err := late.CheckAndStoreSince(ctx, key("late", 0), d.Add(-time.Second), exp.Add(time.Hour)); !errors.Is(err, replaycache.ErrStateLost) {
		t.Fatalf("late store, issued before the epoch: err = %v, want ErrStateLost", err)
	}
	if fresh, err := late.CheckAndStoreSince(ctx, key("late", 1), d.Add(time.Second), exp.Add(time.Hour)); err != nil || !fresh {
		t.Fatalf("late store, issued after the epoch = %v, %v; want fresh", fresh, err)
	}
	if _, err := late.CheckAndStore(ctx, key("late", 2), exp.Add(time.Hour)); !errors.Is(err, replaycache.ErrStateLost) {
		t.Fatalf("late store, no since within its hold: err = %v, want ErrStateLost", err)
	}
}

// TestFirstStart checks that a store whose first claim meets an empty
// Redis takes it as a fresh start: requests issued before are accepted,
// and nothing is held, at it and at a second instance that adopts its
// epoch.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := &testClock{t: time.Unix(1_900_000_000, 0)}
	ctx := context.Background()
	exp := clock.Now().Add(time.Minute)
	for i := 0; i < 2; i++ {
		s := newStore(t, srv.Client(), redisstore.Config{Now: clock.Now})
		if fresh, err := s.CheckAndStoreSince(ctx, key("first", 2*i), clock.Now().Add(-time.Second), exp); err != nil || !fresh {
			t.Fatalf("instance %d: first claim, issued before = %v, %v; want fresh", i, fresh, err)
		}
		if fresh, err := s.CheckAndStore(ctx, key("first", 2*i+1), exp); err != nil || !fresh {
			t.Fatalf("instance %d: claim without since = %v, %v; want fresh", i, fresh, err)
		}
		clock.Add(time.Second)
	}
}

func ptr[T any](v T) *T { return &v }
