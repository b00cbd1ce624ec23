package dpop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// TestCheckThenClaim checks that Check records nothing (a checked proof
// can be checked again and is still fresh) and that Claim makes it single
// use, as Verify does.
func TestCheckThenClaim(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	v := testVerifier(t, func(c *Config) { c.ReplayStore = st })
	proof := newPB(t).build(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := v.Check(proof, defaultExpect()); err != nil {
			t.Fatalf("Check %d: %v", i, err)
		}
	}
	if len(st.m) != 0 {
		t.Fatalf("Check recorded %d keys, want 0", len(st.m))
	}
	p, err := v.Check(proof, defaultExpect())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Claim(ctx, p); err != nil {
		t.Fatalf("first Claim: %v", err)
	}
	if err := v.Claim(ctx, p); !errors.Is(err, ErrReplay) {
		t.Fatalf("DPOP-RS-15: second Claim: %v, want ErrReplay", err)
	}
	if _, err := v.Verify(ctx, proof, defaultExpect()); !errors.Is(err, ErrReplay) {
		t.Fatalf("DPOP-RS-15: Verify after Claim: %v, want ErrReplay", err)
	}
}

// countLimiter allows each owner n claims.
type countLimiter struct {
	mu   sync.Mutex
	n    int
	seen map[string]int
}

func (l *countLimiter) Allow(owner string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[owner] >= l.n {
		return false
	}
	l.seen[owner]++
	return true
}

// TestKeyLimiter checks that a key over its quota is refused with
// ErrKeyQuota (invalid_dpop_proof) before the store is touched, and that
// other keys are not affected.
func TestKeyLimiter(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	lim := &countLimiter{n: 2, seen: map[string]int{}}
	v := testVerifier(t, func(c *Config) { c.ReplayStore = st; c.KeyLimiter = lim })
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(ctx, newPB(t).build(t), defaultExpect()); err != nil {
			t.Fatalf("proof %d within quota: %v", i, err)
		}
	}
	_, err := v.Verify(ctx, newPB(t).build(t), defaultExpect())
	if !errors.Is(err, ErrKeyQuota) || !errors.Is(err, ErrInvalidProof) || Code(err) != oautherr.InvalidDPoPProof {
		t.Fatalf("ADV-105: proof over quota: %v (code %s), want ErrKeyQuota, invalid_dpop_proof", err, Code(err))
	}
	if len(st.m) != 2 {
		t.Fatalf("store holds %d keys, want 2: a refused proof was recorded", len(st.m))
	}
	b := newPB(t)
	k2 := keys(t)["ES256b"]
	b.key, b.hdr["jwk"] = k2, jwkMap(t, k2)
	if _, err := v.Verify(ctx, b.build(t), defaultExpect()); err != nil {
		t.Fatalf("another key: %v", err)
	}
}

// lostStore is a SinceReplayStore that has detected a loss at lostAt.
type lostStore struct {
	memStore
	lostAt    time.Time
	gotSince  time.Time
	sinceUsed bool
}

type lostErr struct{}

func (lostErr) Error() string         { return "store: state lost" }
func (lostErr) ReplayStateLost() bool { return true }

func (s *lostStore) CheckAndStoreSince(ctx context.Context, key [32]byte, since, exp time.Time) (bool, error) {
	s.mu.Lock()
	s.gotSince, s.sinceUsed = since, true
	s.mu.Unlock()
	if since.Before(s.lostAt) {
		return false, errors.Join(errors.New("wrapped"), lostErr{})
	}
	return s.memStore.CheckAndStore(ctx, key, exp)
}

// TestClaimStateLost checks the mapping of a store's lost-state refusal:
// the Verifier passes the proof's iat as since, and a proof issued before
// the loss is ErrReplayStateLost with use_dpop_nonce when nonces are
// required, invalid_dpop_proof otherwise; one issued after is accepted.
func TestClaimStateLost(t *testing.T) {
	t.Parallel()
	nonces, err := NewNonces(NonceConfig{Secrets: [][]byte{make([]byte, 32)}, Label: "rs", Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		nonces   NonceSource
		wantCode string
		wantIn   error
	}{
		{name: "nonces", nonces: nonces, wantCode: oautherr.UseDPoPNonce, wantIn: ErrUseNonce},
		{name: "no nonces", wantCode: oautherr.InvalidDPoPProof, wantIn: ErrInvalidProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &lostStore{memStore: *newMemStore(), lostAt: time.Unix(testNow-5, 0)}
			v := testVerifier(t, func(c *Config) {
				c.ReplayStore = st
				if tt.nonces != nil {
					c.Nonces = tt.nonces
				}
			})
			build := func(iat int64) string {
				b := newPB(t)
				b.cl["iat"] = iat
				if tt.nonces != nil {
					n, err := nonces.NewNonce()
					if err != nil {
						t.Fatal(err)
					}
					b.cl["nonce"] = n
				}
				return b.build(t)
			}
			_, err := v.Verify(context.Background(), build(testNow-10), defaultExpect())
			if !errors.Is(err, ErrReplayStateLost) || !errors.Is(err, tt.wantIn) || Code(err) != tt.wantCode {
				t.Fatalf("proof issued before the loss: %v (code %s), want ErrReplayStateLost, %s", err, Code(err), tt.wantCode)
			}
			if !st.sinceUsed || !st.gotSince.Equal(time.Unix(testNow-10, 0)) {
				t.Fatalf("since = %v (used %v), want the proof's iat", st.gotSince, st.sinceUsed)
			}
			if _, err := v.Verify(context.Background(), build(testNow), defaultExpect()); err != nil {
				t.Fatalf("proof issued after the loss: %v", err)
			}
		})
	}
}
