package resource_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// metricsRecorder is a resource.Metrics that records each call as one
// line, in order.
type metricsRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (m *metricsRecorder) Request(b resource.Binding, e *resource.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case e == nil:
		m.calls = append(m.calls, "accepted "+string(b))
	case b != "":
		m.calls = append(m.calls, "refused with a binding "+string(b))
	default:
		m.calls = append(m.calls, fmt.Sprintf("refused %s %d %s", e.Reason, e.Status, e.Code))
	}
}

func (m *metricsRecorder) Observe(op resource.Operation, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d < 0 {
		m.calls = append(m.calls, "negative duration "+string(op))
		return
	}
	m.calls = append(m.calls, fmt.Sprintf("%s failed=%t", op, err != nil))
}

func (m *metricsRecorder) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

// TestMetrics checks what a Verifier reports to Config.Metrics for
// requests sent over real HTTP: one Request call per decision with the
// binding or the stable reason, and the timed operations it ran. The
// refusals are a replayed proof (DPOP-RS-15), a DPoP-bound token under
// Bearer (ERR-13), no credentials (ERR-01), a token signed by an
// untrusted key, and a missing resource-server nonce (ERR-14).
func TestMetrics(t *testing.T) {
	t.Parallel()
	type step struct {
		path string
		// prepare sets the request's credentials; nil sends the previous
		// step's headers again (the same token and proof).
		prepare func(t testing.TB, e *restest.Env, r *http.Request)
		want    []string
	}
	tests := []struct {
		name   string
		nonces bool
		steps  []step
	}{
		{
			name: "accepted, replayed, downgraded",
			steps: []step{
				{"/dpop", restest.DPoPRequest("DPoP", restest.K1Token, nil), []string{
					"token failed=false", "replay_store failed=false", "proof failed=false", "accepted dpop",
				}},
				{"/dpop", nil, []string{
					// The token comes from the cache: no token timing.
					"replay_store failed=false", "proof failed=true", "refused proof_replayed 401 invalid_dpop_proof",
				}},
				{"/any", func(t testing.TB, e *restest.Env, r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+restest.K1Token(t, e))
				}, []string{"token failed=false", "refused bearer_downgrade 401 invalid_token"}},
				{"/any", func(t testing.TB, e *restest.Env, r *http.Request) {}, []string{"refused no_credentials 401 "}},
				{"/any", func(t testing.TB, e *restest.Env, r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+e.AS.Mint(t, restest.Header(), e.Claims()))
				}, []string{"token failed=false", "accepted bearer"}},
				{"/any", func(t testing.TB, e *restest.Env, r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+e.Rogue.Mint(t, restest.Header(), e.Claims()))
				}, []string{"token failed=true", "refused token_signature 401 invalid_token"}},
			},
		},
		{
			name:   "nonce challenge",
			nonces: true,
			steps: []step{
				{"/dpop", restest.DPoPRequest("DPoP", restest.K1Token, nil), []string{
					"token failed=false", "proof failed=true", "refused nonce_required 401 use_dpop_nonce",
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &metricsRecorder{}
			e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, Nonces: tt.nonces,
				Mod: func(_ *restest.Env, c *resource.Config) { c.Metrics = rec }})
			srv := httptest.NewServer(e.NetHTTPHandler())
			t.Cleanup(srv.Close)
			var last http.Header
			for i, s := range tt.steps {
				req, err := http.NewRequest(http.MethodGet, srv.URL+s.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if s.prepare != nil {
					s.prepare(t, e, req)
				} else {
					req.Header = last.Clone()
				}
				last = req.Header.Clone()
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := rec.take(); !slices.Equal(got, s.want) {
					t.Errorf("step %d (%s): calls\n%q\nwant\n%q", i, s.path, got, s.want)
				}
			}
		})
	}
}

// TestMetricsKeyFetch checks that a RemoteKeySet reports each fetch,
// failed and successful, as OpKeyFetch.
func TestMetricsKeyFetch(t *testing.T) {
	t.Parallel()
	as := restest.NewIssuer(t, "https://as.example.test", "ES256", "k1")
	srv := newJWKSServer(t, as.JWKS())
	srv.update(func(s *jwksServer) { s.status = http.StatusInternalServerError })
	rec := &metricsRecorder{}
	clk := newClock(time.Unix(1_900_000_000, 0))
	ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
		JWKSURL:            srv.URL + "/jwks",
		HTTPClient:         srv.Client(),
		MinRefreshInterval: time.Second,
		Now:                clk.Now,
		Metrics:            rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Keys(t.Context()); err == nil {
		t.Fatal("keys from a failing server")
	}
	srv.update(func(s *jwksServer) { s.status = http.StatusOK })
	clk.Add(2 * time.Second)
	if _, err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"key_fetch failed=true", "key_fetch failed=false"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

// TestMetricsReplayStoreError checks that a failing replay store is
// reported as a failed OpReplayStore, next to the 503 refusal.
func TestMetricsReplayStoreError(t *testing.T) {
	t.Parallel()
	rec := &metricsRecorder{}
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, ReplayStore: failingStore{},
		Mod: func(_ *restest.Env, c *resource.Config) { c.Metrics = rec }})
	srv := httptest.NewServer(e.NetHTTPHandler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dpop", nil)
	restest.DPoPRequest("DPoP", restest.K1Token, nil)(t, e, req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []string{"token failed=false", "replay_store failed=true", "proof failed=true", "refused replay_store_unavailable 503 "}
	if got := rec.take(); !slices.Equal(got, want) || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, calls %q, want 503 and %q", resp.StatusCode, got, want)
	}
}

// failingStore is a replay store whose every call fails.
type failingStore struct{}

func (failingStore) CheckAndStore(_ context.Context, _ [32]byte, _ time.Time) (bool, error) {
	return false, errors.New("store down")
}

// nopMetrics is a Metrics that does nothing, to measure the cost of the
// calls themselves.
type nopMetrics struct{}

func (nopMetrics) Request(resource.Binding, *resource.Error)        {}
func (nopMetrics) Observe(resource.Operation, time.Duration, error) {}

// BenchmarkCheckMetrics compares Check without Metrics (nil: no clock
// read, no call) and with a Metrics that does nothing, for an unbound
// token from the token cache (the cheapest request, where the calls weigh
// most) and a DPoP request with a cached token (a proof check and a
// replay-store call timed). Neither may allocate more with Metrics set.
func BenchmarkCheckMetrics(b *testing.B) {
	policy := resource.Policy{Accept: resource.AcceptAny}
	for _, m := range []struct {
		name string
		m    resource.Metrics
	}{{"nil", nil}, {"nop", nopMetrics{}}} {
		env := func(b *testing.B) *restest.Env {
			return restest.NewEnv(b, restest.Options{DPoP: true, Mod: func(_ *restest.Env, c *resource.Config) {
				c.Metrics = m.m
				store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 22, Now: c.Now})
				if err != nil {
					b.Fatal(err)
				}
				c.DPoP.ReplayStore = store
				c.DPoP.KeyQuota = replaycache.QuotaConfig{Limit: 1 << 30}
			}})
		}
		b.Run("bearer-token-cache/"+m.name, func(b *testing.B) {
			e := env(b)
			r := bearerRequest(e.Token(b, nil))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Verifier.Check(r, policy); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("dpop-token-cache/"+m.name, func(b *testing.B) {
			e := env(b)
			r, proofs := dpopRequests(b, e, b.N)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Header["Dpop"] = proofs[i]
				if _, err := e.Verifier.Check(r, policy); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
