package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// lossClock is a settable clock shared by the verifier, the store and the
// prover.
type lossClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lossClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lossClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRedisLossRefusesEarlierProofs kills the resource server's shared
// Redis (no persistence) and restarts it empty: a proof accepted before is
// refused afterwards with 401 and the stable reason replay_state_lost, as
// use_dpop_nonce with a fresh DPoP-Nonce when nonces are required (the
// client recovers at once) and as invalid_dpop_proof otherwise; a proof
// issued after the restart is accepted. Before the fix the replay was
// accepted (DPOP-RS-15, ADV-108).
func TestRedisLossRefusesEarlierProofs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		nonces    bool
		wantError string
	}{
		{name: "DPOP-RS-15/nonces", nonces: true, wantError: `error="use_dpop_nonce"`},
		{name: "DPOP-RS-15/no nonces", nonces: false, wantError: `error="invalid_dpop_proof"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			clock := &lossClock{t: time.Unix(1_900_000_000, 0)}
			store, err := redisstore.New(srv.Client(), redisstore.Config{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu      sync.Mutex
				reasons []string
			)
			e := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: tt.nonces, InsecureHTTP: true, ReplayStore: store, Mod: func(_ *restest.Env, c *resource.Config) {
				c.Now = clock.Now
				c.OnReject = func(r string) {
					mu.Lock()
					reasons = append(reasons, r)
					mu.Unlock()
				}
			}})
			rs := httptest.NewServer(e.NetHTTPHandler())
			t.Cleanup(rs.Close)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			prover, err := dpop.NewProver(key, &dpop.ProverOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tok := e.Token(t, func(c map[string]any) {
				c["cnf"] = map[string]any{"jkt": prover.Thumbprint()}
				c["exp"] = clock.Now().Add(time.Hour).Unix()
			})
			url := rs.URL + "/any"
			proof := func() string {
				t.Helper()
				opts := dpop.ProofOptions{AccessToken: tok}
				if e.Nonces != nil {
					n, err := e.Nonces.NewNonce()
					if err != nil {
						t.Fatal(err)
					}
					opts.Nonce = n
				}
				p, err := prover.Proof(http.MethodGet, url, opts)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			send := func(p string) (int, http.Header) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "DPoP "+tok)
				req.Header.Set("DPoP", p)
				resp, err := rs.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode, resp.Header
			}

			before := proof()
			if code, h := send(before); code != http.StatusOK {
				t.Fatalf("proof before the restart: %d %v", code, h)
			}
			srv.Stop()
			srv.Restart()
			clock.Add(5 * time.Second)
			code, h := send(before)
			if code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), tt.wantError) {
				t.Fatalf("replay after the empty restart: %d, WWW-Authenticate %q; want 401 %s", code, h.Get("WWW-Authenticate"), tt.wantError)
			}
			if tt.nonces && h.Get("DPoP-Nonce") == "" {
				t.Fatal("use_dpop_nonce without a DPoP-Nonce")
			}
			mu.Lock()
			last := reasons[len(reasons)-1]
			mu.Unlock()
			if last != "replay_state_lost" {
				t.Fatalf("rejection reason %q, want replay_state_lost", last)
			}
			clock.Add(time.Second)
			if code, h := send(proof()); code != http.StatusOK {
				t.Fatalf("proof issued after the restart: %d %v", code, h)
			}
		})
	}
}
