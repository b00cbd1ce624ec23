package issuer

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/replaycache"
)

// TestReplayFloodLeavesClientsServed is ADV-105 at the token endpoint: a
// flood of token requests that fail (bad grant, bad client secret, bad
// scope), each with a fresh DPoP proof, against a real issuer over HTTPS
// whose replay store holds only 64 entries. Before the fix every such proof
// was recorded before the grant was checked, the store filled, and every
// later DPoP token request and private_key_jwt authentication was answered
// 503; now refused requests record nothing and legitimate clients are
// served.
func TestReplayFloodLeavesClientsServed(t *testing.T) {
	t.Parallel()
	const capacity, flood = 64, 4 * 64
	tests := []struct {
		name    string
		form    url.Values
		hdr     map[string]string
		wantErr string
	}{
		{name: "ADV-105/public client, unknown grant", form: url.Values{"grant_type": {testGrant}, "client_id": {"public"}}, wantErr: "invalid_grant"},
		{name: "ADV-105/public client, bad refresh token", form: url.Values{"grant_type": {GrantRefreshToken}, "client_id": {"public"}, "refresh_token": {"guess"}}, wantErr: "invalid_grant"},
		{name: "ADV-105/bad client secret", form: url.Values{"grant_type": {GrantClientCredentials}}, hdr: map[string]string{"Authorization": formatBasic("conf", "wrong-secret")}, wantErr: "invalid_client"},
		{name: "ADV-105/confidential client, scope not allowed", form: url.Values{"grant_type": {GrantClientCredentials}, "scope": {"admin"}}, hdr: map[string]string{"Authorization": formatBasic("conf", confSecret)}, wantErr: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var store *replaycache.LRU
			h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
				var err error
				store, err = replaycache.NewLRU(replaycache.Config{Capacity: capacity, Shards: 1, Now: c.Issuer.cfg.Now})
				if err != nil {
					t.Fatal(err)
				}
				c.ReplayStore = store
			}})
			c := h.client(nil)
			provers := make([]*dpop.Prover, 8)
			for i := range provers {
				provers[i] = h.prover(nil)
			}
			for i := 0; i < flood; i++ {
				hdr := map[string]string{"DPoP": h.proof(provers[i%len(provers)], h.tokenURL(), "")}
				for k, v := range tt.hdr {
					hdr[k] = v
				}
				r := h.post(c, h.tokenURL(), tt.form, hdr)
				if r.status == 200 || r.str("error") != tt.wantErr {
					t.Fatalf("flood request %d: %d %s, want %s", i, r.status, r.raw, tt.wantErr)
				}
			}
			if n := store.Len(); n != 0 {
				t.Fatalf("refused requests left %d entries in the replay store, want 0", n)
			}

			// A DPoP token request of a confidential client.
			r := h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantClientCredentials}},
				map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(h.prover(nil), h.tokenURL(), "")})
			if r.status != 200 || r.str("token_type") != "DPoP" {
				t.Fatalf("legitimate DPoP token request after the flood: %d %s", r.status, r.raw)
			}
			// A private_key_jwt authentication.
			now := h.clock.Now()
			a := assertion(t, h.jwtKey, jose.ES256, "c1", map[string]any{"iss": "jwtc", "sub": "jwtc", "aud": h.tokenURL(),
				"jti": "after-flood", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
			r = h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantClientCredentials}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}, nil)
			if r.status != 200 {
				t.Fatalf("private_key_jwt authentication after the flood: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestReplayCapacity checks that NewMemoryReplayStore's capacity sizes the
// in-memory replay store: with 8 entries, eight DPoP token requests are
// served and the ninth, with the store full of live entries, fails closed
// with 503.
func TestReplayCapacity(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
		s, err := NewMemoryReplayStore(c.Issuer, 8)
		if err != nil {
			t.Fatal(err)
		}
		c.ReplayStore = s
	}})
	c := h.client(nil)
	p := h.prover(nil)
	for i := 0; i < 9; i++ {
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantClientCredentials}},
			map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p, h.tokenURL(), "")})
		want := 200
		if i == 8 {
			want = 503
		}
		if r.status != want {
			t.Fatalf("request %d: %d %s, want %d", i, r.status, r.raw, want)
		}
	}
	if _, err := NewMemoryReplayStore(h.is, -1); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewMemoryReplayStore(-1) = %v, want ErrInvalidConfig", err)
	}
	if _, err := NewServer(ServerConfig{Issuer: h.is, Clients: h.server.cfg.Clients}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewServer without a ReplayStore = %v, want ErrInvalidConfig (no implicit in-memory store)", err)
	}
}

// TestReplayQuota checks the per-key and per-client bounds on replay
// entries at the token endpoint: a confidential client, or one proof key,
// that used up its quota is refused with invalid_dpop_proof without
// touching the store, while other clients and keys are served.
func TestReplayQuota(t *testing.T) {
	t.Parallel()
	const limit = 4
	var store *replaycache.LRU
	h := newHarness(t, harnessOpts{edit: func(c *ServerConfig) {
		var err error
		store, err = replaycache.NewLRU(replaycache.Config{Capacity: 1024, Now: c.Issuer.cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.ReplayStore = store
		c.ReplayQuota = replaycache.QuotaConfig{Limit: limit, Window: time.Minute}
	}})
	c := h.client(nil)
	cc := url.Values{"grant_type": {GrantClientCredentials}}
	confReq := func(p *dpop.Prover) result {
		return h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p, h.tokenURL(), "")})
	}
	// The client "conf" with a new key per request: the client quota binds.
	for i := 0; i < limit; i++ {
		if r := confReq(h.prover(nil)); r.status != 200 {
			t.Fatalf("conf request %d: %d %s", i, r.status, r.raw)
		}
	}
	before := store.Len()
	r := confReq(h.prover(nil))
	if r.status != 400 || r.str("error") != "invalid_dpop_proof" || !strings.Contains(r.str("error_description"), "too many") {
		t.Fatalf("conf over its quota: %d %s, want 400 invalid_dpop_proof", r.status, r.raw)
	}
	if store.Len() != before {
		t.Fatal("a request over quota was recorded in the replay store")
	}
	// Another confidential client is served.
	r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("rs", rsSecret), "DPoP": h.proof(h.prover(nil), h.tokenURL(), "")})
	if r.status != 200 {
		t.Fatalf("another client: %d %s", r.status, r.raw)
	}
	// One key over its quota across clients: "rs" uses key k until the key
	// quota binds (one request above already counted for "rs", none for k).
	k := h.prover(nil)
	for i := 0; i < limit-1; i++ {
		r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("rs", rsSecret), "DPoP": h.proof(k, h.tokenURL(), "")})
		if r.status != 200 {
			t.Fatalf("rs request %d with key k: %d %s", i, r.status, r.raw)
		}
	}
	r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("rs2", rsSecret), "DPoP": h.proof(k, h.tokenURL(), "")})
	if r.status != 200 {
		t.Fatalf("rs2 with key k (k at %d of %d): %d %s", limit-1, limit, r.status, r.raw)
	}
	r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("rs2", rsSecret), "DPoP": h.proof(k, h.tokenURL(), "")})
	if r.status != 400 || r.str("error") != "invalid_dpop_proof" {
		t.Fatalf("key k over its quota: %d %s, want 400 invalid_dpop_proof", r.status, r.raw)
	}
	// The window passes: the client is served again.
	h.clock.mu.Lock()
	h.clock.t = h.clock.t.Add(time.Minute)
	h.clock.mu.Unlock()
	if r := confReq(h.prover(nil)); r.status != 200 {
		t.Fatalf("conf after the window: %d %s", r.status, r.raw)
	}
}

// TestConcurrentSameProofOneToken checks how the later claim closes the
// race: requests carrying the same proof all pass the proof check and the
// grant, but the jti claim just before minting is one atomic
// check-and-insert, so exactly one gets a token.
func TestConcurrentSameProofOneToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	proof := h.proof(h.prover(nil), h.tokenURL(), "")
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		codes    = map[string]int{}
	)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantClientCredentials}},
				map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": proof})
			mu.Lock()
			statuses[r.status]++
			codes[r.str("error")]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if statuses[200] != 1 || statuses[400] != n-1 || codes["invalid_dpop_proof"] != n-1 {
		t.Fatalf("DPOP-RS-15: statuses %v, errors %v; want one 200 and %d invalid_dpop_proof", statuses, codes, n-1)
	}
}
