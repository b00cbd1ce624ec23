package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/refused"
)

func TestRunDPoP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		withNonce bool
		workers   int
		requests  int64
	}{
		{"no nonce", false, 4, 300},
		{"resource nonce", true, 4, 300},
		{"one worker", true, 1, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := startDPoPResource(t, tt.withNonce)
			d := newDPoP(t, rs, rs.Prover)
			res, err := Run(context.Background(), Config{
				URL: rs.URL, Client: testClient(tt.workers), Auth: d, Workers: tt.workers, Requests: tt.requests,
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Requests != tt.requests || res.Succeeded != tt.requests {
				t.Fatalf("requests %d, succeeded %d, want %d of each; outcomes %v", res.Requests, res.Succeeded, tt.requests, outcomeCounts(res))
			}
			if got := outcomeCounts(res); len(got) != 1 || got["200"] != tt.requests {
				t.Errorf("outcomes %v, want only 200", got)
			}
			if res.Mode != "dpop" || res.Generator.Proofs == nil || res.Generator.Proofs.Signed < tt.requests {
				t.Errorf("mode %q, proofs %+v: want dpop with at least %d proofs signed", res.Mode, res.Generator.Proofs, tt.requests)
			}
			// The warm-up learned the nonce: no request of the run needed a retry.
			if res.NonceRetries != 0 || res.Exchanges != res.Requests {
				t.Errorf("nonce retries %d, exchanges %d, want 0 and %d", res.NonceRetries, res.Exchanges, res.Requests)
			}
			if l := res.Latency; l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
				t.Errorf("latency %+v is not ordered", l)
			}
		})
	}
}

// TestDPoPNonceRetry checks that a use_dpop_nonce challenge is answered
// with one retry carrying the new nonce, as dpop.Transport does, and that
// proofs signed for the old nonce are not sent again.
func TestDPoPNonceRetry(t *testing.T) {
	t.Parallel()
	rs := startDPoPResource(t, true)
	d := newDPoP(t, rs, rs.Prover)
	s := d.NewSession()
	c := testClient(1)
	send := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, rs.URL, nil)
		if err := s.Authorize(req); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := send()
	if resp.StatusCode != http.StatusUnauthorized || !s.Retry(resp) {
		t.Fatalf("first request: %d %q, want a 401 use_dpop_nonce to retry", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp = send(); resp.StatusCode != http.StatusOK || s.Retry(resp) {
		t.Fatalf("retry: %d %q, want 200 without another retry", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A pooled proof of the first generation is stale: never handed out.
	old := &proofState{}
	d.ready <- pooledProof{proof: "stale", state: old, made: time.Now()}
	st := d.state.Load()
	p, err := d.take(st)
	if err != nil || p == "stale" {
		t.Fatalf("take = %q, %v; want a fresh proof", p, err)
	}
	if _, _, stale := d.PoolStats(); stale != 1 {
		t.Errorf("stale = %d, want 1", stale)
	}
}

func TestRunRefused(t *testing.T) {
	t.Parallel()
	rs := startDPoPResource(t, false)
	tests := []struct {
		name       string
		auth       func(t *testing.T) Authorizer
		wantOutcom string
	}{
		{"proof by another key", func(t *testing.T) Authorizer { return newDPoP(t, rs, testProver(t)) }, "401 invalid_token"},
		{"DPoP token as bearer", func(*testing.T) Authorizer { return &Bearer{Token: rs.Token} }, "401 invalid_token"},
		{"no credentials", func(*testing.T) Authorizer { return NoAuth{} }, "401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(context.Background(), Config{URL: rs.URL, Client: testClient(2), Auth: tt.auth(t), Workers: 2, Duration: time.Minute})
			if !errors.Is(err, errNoSuccess) {
				t.Fatalf("Run error = %v, want %v", err, errNoSuccess)
			}
			if res == nil {
				t.Fatal("no result with the error")
			}
			// Stopped after about FailAfter requests, long before the minute.
			if res.Requests < DefaultFailAfter || res.Requests > DefaultFailAfter+2 || res.ElapsedSeconds > 30 {
				t.Errorf("%d requests in %.1f s, want about %d", res.Requests, res.ElapsedSeconds, DefaultFailAfter)
			}
			if got := outcomeCounts(res); got[tt.wantOutcom] != res.Requests {
				t.Errorf("outcomes %v, want all %q", got, tt.wantOutcom)
			}
			if !strings.Contains(err.Error(), tt.wantOutcom) || strings.Contains(err.Error(), rs.Token) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line naming %q, without the token", err, tt.wantOutcom)
			}
			if res.Stopped != err.Error() {
				t.Errorf("Stopped = %q, want the error", res.Stopped)
			}
		})
	}
}

// TestRunRejectionPath checks that a negative FailAfter lets a run measure
// a server that refuses everything.
func TestRunRejectionPath(t *testing.T) {
	t.Parallel()
	rs := startDPoPResource(t, false)
	res, err := Run(context.Background(), Config{URL: rs.URL, Client: testClient(2), Auth: NoAuth{}, Workers: 2, Requests: 60, FailAfter: -1})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := outcomeCounts(res); got["401"] != 60 {
		t.Errorf("outcomes %v, want 60 × 401", got)
	}
}

func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	target := "http://" + refused.Addr(t) + "/resource"
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: target, Client: testClient(1), Workers: 4, Duration: time.Minute})
	if want := "connection refused at " + target; err == nil || err.Error() != want {
		t.Fatalf("Run error = %v, want %q", err, want)
	}
	if res != nil || time.Since(start) > 10*time.Second {
		t.Errorf("result %v after %s, want none at once", res, time.Since(start))
	}
}

// TestRunServerDies checks that a target that stops answering mid-run ends
// the run with the cause instead of a wall of failures.
func TestRunServerDies(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	ts := httptest.NewServer(nil)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 30 {
			go ts.CloseClientConnections()
			go ts.Listener.Close()
		}
	})
	t.Cleanup(ts.Close)
	res, err := Run(context.Background(), Config{URL: ts.URL, Client: testClient(2), Workers: 2, Duration: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), "in a row") {
		t.Fatalf("Run error = %v, want the target stopped answering", err)
	}
	if res == nil || res.Succeeded < 20 || res.ElapsedSeconds > 30 {
		t.Fatalf("result %+v, want the successes before the failure and an early stop", res)
	}
}

func TestRunRate(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ts.Close)
	const rate = 200.0
	res, err := Run(context.Background(), Config{URL: ts.URL, Client: testClient(4), Workers: 4, Rate: rate, Duration: 2 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Loose bounds: the machine may be loaded, but a rate off by more than
	// a factor of two means the pacing is wrong.
	if res.PerSecond < rate/2 || res.PerSecond > rate*1.5 {
		t.Errorf("%.1f requests/s, want about %.0f", res.PerSecond, rate)
	}
	if res.Requests > int64(rate*2)+1 {
		t.Errorf("%d requests in 2 s at %.0f/s: more than scheduled", res.Requests, rate)
	}
	if res.Rate != rate {
		t.Errorf("Rate = %v, want %v", res.Rate, rate)
	}
}

func TestRunCountAndRate(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	t.Cleanup(ts.Close)
	tests := []struct {
		name string
		rate float64
	}{
		{"closed loop", 0},
		{"fixed rate", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Config{URL: ts.URL, Client: testClient(3), Workers: 3, Rate: tt.rate, Requests: 97, Duration: time.Minute})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Requests != 97 || outcomeCounts(res)["200"] != 97 {
				t.Errorf("requests %d, outcomes %v, want 97 × 200", res.Requests, outcomeCounts(res))
			}
		})
	}
	if n := got.Load(); n != 2*(97+1) {
		t.Errorf("server saw %d requests, want %d (each run: warm-up + 97)", n, 2*98)
	}
}

func TestRunProgressAndCancel(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Millisecond) }))
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	res, err := Run(ctx, Config{URL: ts.URL, Client: testClient(2), Workers: 2, Duration: time.Minute, Progress: func(p Progress) {
		if calls.Add(1) == 2 {
			cancel()
		}
		if p.Requests < 0 || p.Succeeded > p.Requests {
			t.Errorf("progress %+v is inconsistent", p)
		}
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls.Load() < 2 || res.Requests == 0 || res.ElapsedSeconds > 30 {
		t.Errorf("%d progress calls, %d requests in %.1f s; want a cancelled run with progress", calls.Load(), res.Requests, res.ElapsedSeconds)
	}
}

func TestRunConfigErrors(t *testing.T) {
	t.Parallel()
	c := testClient(1)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{Client: c, Workers: 1, Requests: 1}},
		{"relative URL", Config{URL: "/resource", Client: c, Workers: 1, Requests: 1}},
		{"ftp URL", Config{URL: "ftp://127.0.0.1/", Client: c, Workers: 1, Requests: 1}},
		{"no client", Config{URL: "http://127.0.0.1:1/", Workers: 1, Requests: 1}},
		{"no workers", Config{URL: "http://127.0.0.1:1/", Client: c, Requests: 1}},
		{"unbounded", Config{URL: "http://127.0.0.1:1/", Client: c, Workers: 1}},
		{"negative rate", Config{URL: "http://127.0.0.1:1/", Client: c, Workers: 1, Requests: 1, Rate: -1}},
		{"NaN rate", Config{URL: "http://127.0.0.1:1/", Client: c, Workers: 1, Requests: 1, Rate: math.NaN()}},
		{"vanishing rate", Config{URL: "http://127.0.0.1:1/", Client: c, Workers: 1, Requests: 1, Rate: 1e-300}},
		{"bad method", Config{URL: "http://127.0.0.1:1/", Method: "G T", Client: c, Workers: 1, Requests: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Configuration errors come before any request (the URLs
			// name a closed port, which would fail otherwise).
			if res, err := Run(context.Background(), tt.cfg); err == nil || res != nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
				t.Errorf("Run = %v, %v; want a configuration error", res, err)
			}
		})
	}
}

func TestRunServerCPU(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ts.Close)
	// The server runs in this process, so its pid is ours.
	res, err := Run(context.Background(), Config{URL: ts.URL, Client: testClient(2), Workers: 2, Requests: 200, ServerPID: osGetpid()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := res.Server
	if s == nil || s.PID != osGetpid() || s.RawVerify <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("server cost %+v, want our pid and a raw verify time", s)
	}
	if s.RawVerify > 50_000 {
		t.Errorf("raw verify %.1f µs: implausible", s.RawVerify)
	}
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), fmt.Sprintf("server     pid %d:", s.PID)) {
		t.Errorf("text report lacks the server line:\n%s", b.String())
	}
}

// TestRunNonceRotation: a server that changes its nonce every few requests
// and challenges proofs carrying an older one. Each challenge costs one
// retry, every request still ends in 200, and the pool's proofs for an old
// nonce are discarded rather than sent.
func TestRunNonceRotation(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	var mu sync.Mutex
	nonce := "n-0"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := proofNonce(t, r.Header.Get("DPoP"))
		mu.Lock()
		if served.Add(1)%25 == 0 {
			nonce = fmt.Sprintf("n-%d", served.Load())
		}
		want := nonce
		mu.Unlock()
		w.Header().Set("DPoP-Nonce", want)
		if got != want {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", algs="ES256"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(ts.Close)
	p := testProver(t)
	d, err := NewDPoP(DPoPConfig{Prover: p, Token: "opaque-token", Method: http.MethodGet, URL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{URL: ts.URL, Client: testClient(2), Auth: d, Workers: 2, Requests: 300})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// A worker's retry can straddle a rotation caused by the other
	// worker's requests; the server then refuses the retried proof too.
	// That is the server's race, not the generator's, and can happen at
	// most once per rotation. Anything else is a failure.
	rotations := res.Exchanges/25 + 1
	got := outcomeCounts(res)
	if got["200"]+got["401 use_dpop_nonce"] != 300 || got["401 use_dpop_nonce"] > rotations {
		t.Fatalf("outcomes %v, want 300 × 200 (or a refused retry straddling one of %d rotations)", got, rotations)
	}
	// About one rotation per 25 exchanges; each costs each worker at most
	// one retry.
	if res.NonceRetries < 1 || res.NonceRetries > 2*(res.Exchanges/25+1) {
		t.Errorf("%d nonce retries in %d exchanges, want about %d", res.NonceRetries, res.Exchanges, res.Exchanges/25)
	}
	if res.Exchanges != res.Requests+res.NonceRetries {
		t.Errorf("exchanges %d != requests %d + retries %d", res.Exchanges, res.Requests, res.NonceRetries)
	}
}

// proofNonce returns the nonce claim of a DPoP proof (unverified: the
// test server only routes on it).
func proofNonce(t *testing.T, proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Errorf("proof has %d segments", len(parts))
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Errorf("proof payload: %v", err)
		return ""
	}
	var c struct {
		Nonce string `json:"nonce"`
		ATH   string `json:"ath"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.ATH != dpop.AccessTokenHash("opaque-token") {
		t.Errorf("proof claims %s: %v, want ath of the token", payload, err)
	}
	return c.Nonce
}

// TestRunFailAfterExact: with one worker the refused run stops after
// exactly FailAfter counted requests; the warm-up is not one of them.
func TestRunFailAfterExact(t *testing.T) {
	t.Parallel()
	rs := startDPoPResource(t, false)
	res, err := Run(context.Background(), Config{URL: rs.URL, Client: testClient(1), Auth: NoAuth{}, Workers: 1, Duration: time.Minute})
	if !errors.Is(err, errNoSuccess) {
		t.Fatalf("Run error = %v, want %v", err, errNoSuccess)
	}
	if res == nil || res.Requests != DefaultFailAfter {
		t.Fatalf("result %+v, want exactly %d requests", res, DefaultFailAfter)
	}
}

// TestRunNotHTTP: a target that answers something other than HTTP fails
// the warm-up with a cause, not a generic transport error.
func TestRunNotHTTP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Answer the request, once it is read: a greeting sent before
			// it would reach an idle connection, which the HTTP client
			// drops as unsolicited instead of parsing it.
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				var req []byte
				for !bytes.Contains(req, []byte("\r\n\r\n")) {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					req = append(req, buf[:n]...)
				}
				c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\x1b[2J\r\n"))
			}()
		}
	}()
	target := "http://" + ln.Addr().String() + "/"
	_, err = Run(context.Background(), Config{URL: target, Client: testClient(1), Workers: 1, Requests: 5})
	if want := "malformed HTTP response (not an HTTP server?) at " + target; err == nil || err.Error() != want {
		t.Errorf("Run error = %v, want %q", err, want)
	}
}

// tokenServer issues tokens valid for lifetime and accepts a request
// whose token (under scheme) is still valid, with a DPoP proof whose ath
// matches it in the DPoP scheme.
type tokenServer struct {
	lifetime time.Duration
	mu       sync.Mutex
	expiry   map[string]time.Time
	issued   int
}

func (s *tokenServer) source(fail bool) TokenSource {
	return func(context.Context) (string, time.Duration, error) {
		if fail {
			return "", 0, errors.New("token endpoint answered 503 without an OAuth error")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.issued++
		tok := fmt.Sprintf("token-%d", s.issued)
		s.expiry[tok] = time.Now().Add(s.lifetime)
		return tok, s.lifetime, nil
	}
}

func (s *tokenServer) handler(t *testing.T, scheme string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), scheme+" ")
		s.mu.Lock()
		exp, known := s.expiry[tok]
		s.mu.Unlock()
		if !ok || !known || time.Now().After(exp.Add(300*time.Millisecond)) {
			w.Header().Set("WWW-Authenticate", scheme+` error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if scheme == "DPoP" && proofATH(t, r.Header.Get("DPoP")) != dpop.AccessTokenHash(tok) {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
}

// TestRunTokenRefresh: a run longer than the token's lifetime gets a new
// token at three quarters of it, and DPoP proofs follow the new token's
// ath; a failing refresh is reported and the expired token's refusals
// show in the outcomes.
func TestRunTokenRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scheme string
		fail   bool
	}{
		{"bearer", "Bearer", false},
		{"dpop", "DPoP", false},
		{"bearer, refresh fails", "Bearer", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := &tokenServer{lifetime: 2 * time.Second, expiry: map[string]time.Time{}}
			srv := httptest.NewServer(ts.handler(t, tt.scheme))
			t.Cleanup(srv.Close)
			first, life, err := ts.source(false)(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var auth Authorizer = &Bearer{Token: first, Lifetime: life, Refresh: ts.source(tt.fail)}
			if tt.scheme == "DPoP" {
				if auth, err = NewDPoP(DPoPConfig{Prover: testProver(t), Token: first, Method: http.MethodGet, URL: srv.URL,
					Lifetime: life, Refresh: ts.source(tt.fail)}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Run(context.Background(), Config{URL: srv.URL, Client: testClient(2), Auth: auth, Workers: 2, Rate: 200, Duration: 3500 * time.Millisecond})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := outcomeCounts(res)
			if !tt.fail {
				if got["200"] != res.Requests || ts.issued < 2 || strings.Contains(strings.Join(res.Warnings, ";"), "token refreshes failed") {
					t.Errorf("outcomes %v, %d tokens issued, warnings %q; want only 200 after a refresh", got, ts.issued, res.Warnings)
				}
				return
			}
			if got["200"] == 0 || got["401 invalid_token"] == 0 || ts.issued != 1 {
				t.Errorf("outcomes %v, %d tokens issued; want 200s, then 401 invalid_token once the token expired", got, ts.issued)
			}
			w := strings.Join(res.Warnings, "\n")
			if !strings.Contains(w, "token refreshes failed (0 succeeded), the last with: token endpoint answered 503") || strings.Contains(w, first) {
				t.Errorf("warnings %q, want the failed refreshes without the token", res.Warnings)
			}
		})
	}
}

// proofATH returns the ath claim of a DPoP proof (unverified).
func proofATH(t *testing.T, proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Errorf("proof has %d segments", len(parts))
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Errorf("proof payload: %v", err)
		return ""
	}
	var c struct {
		ATH string `json:"ath"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Errorf("proof claims: %v", err)
	}
	return c.ATH
}
