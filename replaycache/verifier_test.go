package replaycache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

// The LRU is what the dpop verifier consumes.
var _ dpop.ReplayStore = (*replaycache.LRU)(nil)

// TestVerifierWithLRU runs a dpop.Verifier on an LRU: a proof is accepted
// once (DPOP-RS-15); when the store is full of live entries a new proof is
// refused as a store failure wrapping ErrFull, without evicting the live
// claims (ADV-105); once the entries expire, new proofs are accepted again.
func TestVerifierWithLRU(t *testing.T) {
	t.Parallel()
	const url = "https://rs.example.test/resource"
	clk := newFakeClock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	prover, err := dpop.NewProver(key, &dpop.ProverOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cache := newLRU(t, replaycache.Config{Capacity: 2, Shards: 1, Grace: time.Second, Now: clk.Now})
	v, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: cache, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	newProof := func() string {
		p, err := prover.Proof("GET", url, dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1, p2, p3 := newProof(), newProof(), newProof()
	steps := []struct {
		name      string
		advance   time.Duration
		proof     func() string
		want      error // nil: accepted
		wantFull  bool
		wantStats replaycache.Stats
	}{
		{name: "DPOP-RS-15/first proof accepted", proof: func() string { return p1 }},
		{name: "DPOP-RS-15/same proof is a replay", proof: func() string { return p1 }, want: dpop.ErrReplay},
		{name: "second proof accepted", proof: func() string { return p2 }},
		{name: "ADV-105/full of live entries: refused, fail closed", proof: func() string { return p3 }, want: dpop.ErrStoreUnavailable, wantFull: true},
		{name: "ADV-105/live claims were not evicted", proof: func() string { return p1 }, want: dpop.ErrReplay},
		{name: "ADV-105/nor the other", proof: func() string { return p2 }, want: dpop.ErrReplay},
		{
			name:    "after the window and grace, a new proof is accepted",
			advance: dpop.DefaultMaxAge + dpop.DefaultFutureSkew + time.Second + time.Nanosecond,
			proof:   newProof,
			wantStats: replaycache.Stats{
				Claims: 3, Replays: 3, Full: 1, Expired: 2, Entries: 1,
			},
		},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		_, err := v.Verify(context.Background(), st.proof(), dpop.Expect{Method: "GET", URL: url})
		if st.want == nil {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		} else if !errors.Is(err, st.want) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
		if st.wantFull {
			if !errors.Is(err, replaycache.ErrFull) || dpop.Code(err) != oautherr.ServerError {
				t.Fatalf("%s: err = %v (code %s), want ErrFull and %s", st.name, err, dpop.Code(err), oautherr.ServerError)
			}
			if got := cache.Stats().Full; got != 1 {
				t.Fatalf("%s: Stats().Full = %d, want 1", st.name, got)
			}
		}
		if st.wantStats != (replaycache.Stats{}) {
			if got := cache.Stats(); got != st.wantStats {
				t.Fatalf("%s: Stats() = %+v, want %+v", st.name, got, st.wantStats)
			}
		}
	}
}
