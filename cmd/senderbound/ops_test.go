package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// opsURL returns the base URL of p's separate ops listener, from the line
// it printed before its listening line.
func opsURL(t testing.TB, p *serveProc) string {
	t.Helper()
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "ops endpoints on "); ok {
			u, _, _ := strings.Cut(rest, " ")
			return u
		}
	}
	t.Fatalf("no ops listener line in %q", p.stdout.String())
	return ""
}

// opsGet fetches u and returns the status and body.
func opsGet(t testing.TB, u string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape fetches base+/metrics and returns its sample lines whose metric
// name starts with one of prefixes, sorted.
func scrape(t testing.TB, base string, prefixes ...string) []string {
	t.Helper()
	status, body := opsGet(t, base+opsMetricsPath)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", opsMetricsPath, status)
	}
	var lines []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				lines = append(lines, line)
				break
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestServeMetrics scrapes both servers' /metrics on their --ops-addr
// listeners after known requests and checks the counters' label sets and
// values exactly.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--ops-addr", "127.0.0.1:0")
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop", "--require-nonce", "--ops-addr", "127.0.0.1:0")
	asOps, rsOps := opsURL(t, as), opsURL(t, rs)
	if want := "keys of the issuer loaded from the metadata of " + as.URL + "\n"; !strings.Contains(rs.stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", rs.stderr, want)
	}

	// At the issuer: one DPoP-bound token, one wrong secret.
	prover := serveProver(t)
	plain := &http.Client{Timeout: 10 * time.Second}
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	tokenURL := as.URL + issuer.TokenPath
	status, _, tok := serveRequestToken(t, dc, tokenURL, url.Values{}, true)
	if status != http.StatusOK || tok.TokenType != "DPoP" {
		t.Fatalf("token request = %d %+v", status, tok)
	}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "not-the-secret-0123456789")
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// At the resource: one nonce challenge (ERR-14), three accepted
	// requests, the first accepted proof replayed twice (DPOP-RS-15).
	target := rs.URL + "/resource"
	send := func(proof string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set("DPoP", proof)
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	proofWith := func(nonce string) string {
		t.Helper()
		p, err := prover.Proof(http.MethodGet, target, dpop.ProofOptions{AccessToken: tok.AccessToken, Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	resp = send(proofWith(""))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != http.StatusUnauthorized || nonce == "" {
		t.Fatalf("request without nonce = %d", resp.StatusCode)
	}
	var first string
	for i := 0; i < 3; i++ {
		p := proofWith(nonce)
		if first == "" {
			first = p
		}
		if resp := send(p); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d = %d, want 200", i+1, resp.StatusCode)
		}
	}
	for i := 0; i < 2; i++ {
		if resp := send(first); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("replay %d = %d, want 401", i+1, resp.StatusCode)
		}
	}

	tests := []struct {
		name     string
		base     string
		prefixes []string
		want     []string
	}{
		{"resource requests", rsOps, []string{"senderbound_resource_requests_total", "senderbound_resource_nonce_challenges_total"}, []string{
			`senderbound_resource_nonce_challenges_total 1`,
			`senderbound_resource_requests_total{binding="",outcome="refused",reason="nonce_required"} 1`,
			`senderbound_resource_requests_total{binding="",outcome="refused",reason="proof_replayed"} 2`,
			`senderbound_resource_requests_total{binding="dpop",outcome="accepted",reason=""} 3`,
		}},
		{"resource operations", rsOps, []string{"senderbound_resource_operation_duration_seconds_count"}, []string{
			`senderbound_resource_operation_duration_seconds_count{operation="key_fetch",result="ok"} 1`,
			`senderbound_resource_operation_duration_seconds_count{operation="proof",result="error"} 3`,
			`senderbound_resource_operation_duration_seconds_count{operation="proof",result="ok"} 3`,
			`senderbound_resource_operation_duration_seconds_count{operation="replay_store",result="ok"} 5`,
			`senderbound_resource_operation_duration_seconds_count{operation="token",result="ok"} 1`,
		}},
		{"issuer", asOps, []string{"senderbound_issuer_requests_", "senderbound_issuer_tokens_", "senderbound_issuer_nonce_", "senderbound_resource_"}, []string{
			`senderbound_issuer_nonce_challenges_total 0`,
			`senderbound_issuer_requests_refused_total{endpoint="token",error="invalid_client"} 1`,
			`senderbound_issuer_tokens_issued_total{binding="dpop",grant="client_credentials"} 1`,
		}},
		{"issuer operations", asOps, []string{"senderbound_issuer_operation_duration_seconds_count"}, []string{
			`senderbound_issuer_operation_duration_seconds_count{operation="replay_store",result="ok"} 1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrape(t, tt.base, tt.prefixes...); !slices.Equal(got, tt.want) {
				t.Errorf("samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	// Each server has its own registry with the Go and process collectors,
	// and nothing of the other server.
	for _, base := range []string{asOps, rsOps} {
		for _, name := range []string{"go_goroutines ", "process_start_time_seconds "} {
			if len(scrape(t, base, name)) != 1 {
				t.Errorf("%s%s: no %s sample", base, opsMetricsPath, name)
			}
		}
	}
	if got := scrape(t, rsOps, "senderbound_issuer_"); len(got) != 0 {
		t.Errorf("resource registry holds issuer samples %q", got)
	}
	// With --ops-addr the main listeners serve none of the endpoints.
	for _, base := range []string{as.URL, rs.URL} {
		for _, path := range []string{opsHealthPath, opsReadyPath, opsMetricsPath} {
			if status, _ := opsGet(t, base+path); status != http.StatusNotFound {
				t.Errorf("GET %s%s on the main listener = %d, want 404", base, path, status)
			}
		}
	}
}

// TestServeOpsPlacement checks where the endpoints are served without
// --ops-addr: on a loopback main listener, and not at all on another.
func TestServeOpsPlacement(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0")
	for _, path := range []string{opsHealthPath, opsReadyPath, opsMetricsPath} {
		if status, _ := opsGet(t, as.URL+path); status != http.StatusOK {
			t.Errorf("GET %s on a loopback listener = %d, want 200", path, status)
		}
	}
	if status, body := opsGet(t, as.URL+opsReadyPath); body != "ready\nkeys: ok\n" {
		t.Errorf("issuer /readyz = %d %q", status, body)
	}
	// The issuer's own endpoints are still served.
	if status, _ := opsGet(t, as.URL+issuer.JWKSPath); status != http.StatusOK {
		t.Errorf("GET %s = %d, want 200", issuer.JWKSPath, status)
	}

	public := serveStart(t, "serve-issuer", "--addr", "0.0.0.0:0", "--issuer", "https://issuer.example.test")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(public.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{opsHealthPath, opsReadyPath, opsMetricsPath} {
		if status, _ := opsGet(t, "http://127.0.0.1:"+port+path); status != http.StatusNotFound {
			t.Errorf("GET %s on a non-loopback listener = %d, want 404", path, status)
		}
	}
	if want := "note: /healthz, /readyz and /metrics are not served (the listener is not loopback); set --ops-addr"; !strings.Contains(public.stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", public.stderr, want)
	}

	// --ops-addr must be HOST:PORT.
	code, stderr := serveRunFails(t, serveTestEnv(t, nil), "serve-issuer", "--addr", "127.0.0.1:0", "--ops-addr", "9090")
	if code != 2 || !strings.Contains(stderr, "--ops-addr must be HOST:PORT") {
		t.Errorf("--ops-addr 9090: exit %d %q", code, stderr)
	}
}

// TestServeReadyRedis stops and restarts the Redis replay store under a
// running serve-resource: /readyz turns 503 and back to 200, and the
// change, the refused requests and go-redis's own complaint are logged as
// structured records of the server's logger.
func TestServeReadyRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--redis", rdb.URL(), "--ops-addr", "127.0.0.1:0")
	ops := opsURL(t, rs)
	prover := serveProver(t)
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	_, _, tok := serveRequestToken(t, dc, as.URL+issuer.TokenPath, url.Values{}, true)

	steps := []struct {
		name       string
		act        func()
		wantStatus int
		wantBody   string
		wantCall   int
		wantLog    string
	}{
		{"running", func() {}, http.StatusOK, "ready\nreplay_store: ok\nkeys: ok\n", http.StatusOK, ""},
		{"stopped", rdb.Stop, http.StatusServiceUnavailable, "not ready\nreplay_store: unavailable\nkeys: ok\n", http.StatusServiceUnavailable,
			`level=WARN msg="not ready" check=replay_store error=`},
		{"restarted", rdb.Restart, http.StatusOK, "ready\nreplay_store: ok\nkeys: ok\n", http.StatusOK,
			`level=INFO msg="ready again" check=replay_store`},
	}
	for _, s := range steps {
		s.act()
		var status int
		var body string
		waitFor(t, 15*time.Second, s.name+" readiness", func() bool {
			status, body = opsGet(t, ops+opsReadyPath)
			return status == s.wantStatus
		})
		if body != s.wantBody {
			t.Errorf("%s: /readyz = %d %q, want %q", s.name, status, body, s.wantBody)
		}
		if status, _ := opsGet(t, ops+opsHealthPath); status != http.StatusOK {
			t.Errorf("%s: /healthz = %d, want 200", s.name, status)
		}
		code, _, _ := serveCallResource(t, dc, http.MethodGet, rs.URL+"/resource", "DPoP", tok.AccessToken)
		if s.name == "restarted" && code == http.StatusUnauthorized {
			// The first claim after the restart finds Redis empty and
			// refuses proofs issued before that moment (replay_state_lost,
			// whole seconds); a proof made a second later is accepted.
			time.Sleep(1100 * time.Millisecond)
			code, _, _ = serveCallResource(t, dc, http.MethodGet, rs.URL+"/resource", "DPoP", tok.AccessToken)
		}
		if code != s.wantCall {
			t.Errorf("%s: resource request = %d, want %d", s.name, code, s.wantCall)
		}
		if s.wantLog != "" && !strings.Contains(rs.stderr.String(), s.wantLog) {
			t.Errorf("%s: stderr %q lacks %q", s.name, rs.stderr, s.wantLog)
		}
	}
	logs := rs.stderr.String()
	for _, want := range []string{
		`level=WARN msg="request refused: service unavailable" reason=replay_store_unavailable status=503`,
		`level=WARN msg="redis client" detail=`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}
	if got := scrape(t, ops, `senderbound_resource_operation_duration_seconds_count{operation="replay_store",result="error"}`); len(got) != 1 || strings.HasSuffix(got[0], " 0") {
		t.Errorf("replay-store errors not counted: %q", got)
	}
}

// TestServeStartupKeys starts serve-resource while its issuer is down: it
// says so on stderr, serves anyway (503 keys_unavailable, logged; not
// ready), and once the issuer is up loads the keys, says so and becomes
// ready.
func TestServeStartupKeys(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuerAddr := ln.Addr().String()
	ln.Close()
	issuerURL := "http://" + issuerAddr
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", issuerURL, "--ops-addr", "127.0.0.1:0")
	ops := opsURL(t, rs)
	want := "WARNING cannot load the keys of the issuer from the metadata of " + issuerURL + ": "
	if !strings.Contains(rs.stderr.String(), want) || !strings.Contains(rs.stderr.String(), "serving anyway: requests get 503 until the keys load; retrying every 5s\n") {
		t.Fatalf("stderr %q lacks the startup warning %q", rs.stderr, want)
	}
	if strings.Contains(rs.stderr.String(), "resource: ") {
		t.Errorf("stderr names an internal package: %q", rs.stderr)
	}
	if status, body := opsGet(t, ops+opsReadyPath); status != http.StatusServiceUnavailable || body != "not ready\nkeys: unavailable\n" {
		t.Errorf("/readyz = %d %q, want 503 keys unavailable", status, body)
	}

	// A token naming the issuer cannot be checked yet.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: issuerURL, Audience: jwt.Audience{serveDefaultAudience}, Subject: "app", ID: "1",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Claims(map[string]any{"client_id": "app"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := serveCallResource(t, http.DefaultClient, http.MethodGet, rs.URL+"/resource", "Bearer", raw); code != http.StatusServiceUnavailable {
		t.Errorf("request before the keys loaded = %d, want 503", code)
	}
	if want := `level=WARN msg="request refused: service unavailable" reason=keys_unavailable status=503`; !strings.Contains(rs.stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", rs.stderr, want)
	}

	serveStart(t, "serve-issuer", "--addr", issuerAddr)
	waitFor(t, 20*time.Second, "the keys to load", func() bool {
		return strings.Contains(rs.stderr.String(), "keys of the issuer loaded from the metadata of "+issuerURL+" after ")
	})
	waitFor(t, 10*time.Second, "readiness", func() bool {
		status, _ := opsGet(t, ops+opsReadyPath)
		return status == http.StatusOK
	})
}

// TestServeReadyCRL checks the readiness of serve-resource with fallback
// certificates: ready once the CRL is fetched, not ready while none could
// be.
func TestServeReadyCRL(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--fallback-ca", dir)
	tests := []struct {
		name       string
		crlURL     string
		wantStatus int
		wantBody   string
		wantLog    string
	}{
		{"CRL fetched", as.URL + issuer.CRLPath, http.StatusOK, "ready\ncrl: ok\nkeys: ok\n", ""},
		{"no CRL", as.URL + "/no-such-crl", http.StatusServiceUnavailable, "not ready\ncrl: unavailable\nkeys: ok\n",
			`level=WARN msg="not ready" check=crl error="no CRL fetched yet"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--ops-addr", "127.0.0.1:0",
				"--fallback-ca", filepath.Join(dir, certs.CACertFile), "--fallback-crl", tt.crlURL, "--crl-refresh", "50ms")
			ops := opsURL(t, rs)
			var status int
			var body string
			waitFor(t, 10*time.Second, "readiness", func() bool {
				status, body = opsGet(t, ops+opsReadyPath)
				return status == tt.wantStatus
			})
			if body != tt.wantBody {
				t.Errorf("/readyz = %d %q, want %q", status, body, tt.wantBody)
			}
			if tt.wantLog != "" && !strings.Contains(rs.stderr.String(), tt.wantLog) {
				t.Errorf("stderr %q lacks %q", rs.stderr, tt.wantLog)
			}
		})
	}
}

// TestOpsLimitedLog checks the rate limit of Warn records that a failing
// dependency would otherwise repeat on every request: one per key and
// interval, the next one saying how many were left out.
func TestOpsLimitedLog(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	l := &opsLimitedLog{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})), every: 200 * time.Millisecond}
	for i := 0; i < 3; i++ {
		l.log("keys_unavailable", "refused", slog.String("reason", "keys_unavailable"))
	}
	l.log("replay_store_unavailable", "refused", slog.String("reason", "replay_store_unavailable"))
	time.Sleep(250 * time.Millisecond)
	l.log("keys_unavailable", "refused", slog.String("reason", "keys_unavailable"))
	want := "level=WARN msg=refused reason=keys_unavailable\n" +
		"level=WARN msg=refused reason=replay_store_unavailable\n" +
		"level=WARN msg=refused reason=keys_unavailable similar_left_out=2\n"
	if buf.String() != want {
		t.Errorf("log\n%s\nwant\n%s", buf.String(), want)
	}
}
