package resource_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestReplayFloodOneKey is ADV-105 at the resource server: the holder of a
// valid K1-bound token sends a flood of fresh proofs to a real server whose
// replay store holds 64 entries. Without a per-key bound the flood filled
// the store and every other client's requests were answered 503; now K1 is
// refused (401 invalid_dpop_proof, reason proof_key_quota) once it used its
// quota, and K2's proofs are still claimed and served.
func TestReplayFloodOneKey(t *testing.T) {
	t.Parallel()
	const capacity, limit, flood = 64, 16, 4 * 64
	var (
		mu      sync.Mutex
		reasons = map[string]int{}
	)
	store, err := replaycache.NewLRU(replaycache.Config{Capacity: capacity, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, ReplayStore: store, Mod: func(_ *restest.Env, c *resource.Config) {
		c.DPoP.KeyQuota = replaycache.QuotaConfig{Limit: limit}
		c.OnReject = func(reason string) {
			mu.Lock()
			reasons[reason]++
			mu.Unlock()
		}
	}})
	srv := httptest.NewServer(e.NetHTTPHandler())
	t.Cleanup(srv.Close)
	url := srv.URL + "/any"
	tokens := map[*dpop.Prover]string{
		e.K1: e.Token(t, func(c map[string]any) { restest.DPoPBound(e.K1)(e, c) }),
		e.K2: e.Token(t, func(c map[string]any) { restest.DPoPBound(e.K2)(e, c) }),
	}
	proof := func(p *dpop.Prover) string {
		t.Helper()
		s, err := p.Proof(http.MethodGet, url, dpop.ProofOptions{AccessToken: tokens[p]})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	send := func(p *dpop.Prover, proof string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+tokens[p])
		req.Header.Set("DPoP", proof)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}

	for i := 0; i < flood; i++ {
		status, challenge := send(e.K1, proof(e.K1))
		switch {
		case i < limit && status == http.StatusOK:
		case i >= limit && status == http.StatusUnauthorized && strings.Contains(challenge, `error="invalid_dpop_proof"`):
		default:
			t.Fatalf("K1 flood request %d: status %d, challenge %q", i, status, challenge)
		}
	}
	mu.Lock()
	got := reasons["proof_key_quota"]
	mu.Unlock()
	if got != flood-limit {
		t.Fatalf("rejections with reason proof_key_quota = %d, want %d", got, flood-limit)
	}
	if n := store.Len(); n != limit {
		t.Fatalf("replay store holds %d entries after the flood, want %d (K1's quota)", n, limit)
	}
	// K2 is served, and each of its proofs is single use.
	for i := 0; i < 8; i++ {
		pr := proof(e.K2)
		if status, challenge := send(e.K2, pr); status != http.StatusOK {
			t.Fatalf("K2 request %d after the flood: status %d, challenge %q", i, status, challenge)
		}
		if status, _ := send(e.K2, pr); status != http.StatusUnauthorized {
			t.Fatalf("DPOP-RS-15: replay of K2 proof %d: status %d, want 401", i, status)
		}
	}
}
