package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// serveTestRSSecret is the resource server's secret at the introspection
// endpoint.
const serveTestRSSecret = "rs-secret-0123456789abcdef"

// TestServeOpaqueTokens runs serve-issuer with --access-token-format
// opaque and serve-resource with --introspection-endpoint over real TLS:
// DPoP-bound and certificate-bound opaque tokens are accepted with their
// proof or certificate and refused without (DPOP-RS-23, MTLS-CB-13).
func TestServeOpaqueTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "serve test CA"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ca.Issue(certs.Options{CommonName: "mtls-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ca.Issue(certs.Options{CommonName: "someone-else", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := filepath.Join(dir, certs.CACertFile), filepath.Join(dir, certs.LeafCertFile), filepath.Join(dir, certs.LeafKeyFile)
	appSecretFile := serveWriteFile(t, dir, "app.secret", []byte(serveTestSecret+"\n"))
	// The resource server's secret comes from the environment at both
	// ends, as an operator would pass it.
	vars := map[string]string{serveSecretEnv("rs"): serveTestRSSecret}

	as := serveStartEnv(t, serveTestEnv(t, vars), "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key",
		"--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", caFile, "--mtls-client", "mtls-app:CN=mtls-app",
		"--client", "app:@"+appSecretFile, "--client", "rs", "--introspect-all", "rs", "--access-token-format", "opaque")
	rs := serveStartEnv(t, serveTestEnv(t, vars), "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--ca-file", caFile,
		"--tls-cert", certFile, "--tls-key", keyFile,
		"--introspection-endpoint", as.URL+issuer.IntrospectionPath, "--introspection-client", "rs")

	client := func(l *certs.Leaf) *http.Client {
		if l == nil {
			return mtlsbound.NewClient(nil, ca.Pool())
		}
		tc := l.TLSCertificate()
		return mtlsbound.NewClient(&tc, ca.Pool())
	}
	plain, cc1, cc2 := client(nil), client(c1), client(c2)
	prover := serveProver(t)
	dpopClient := func(p *dpop.Prover) *http.Client {
		return &http.Client{Transport: &dpop.Transport{Prover: p, Base: plain.Transport}, Timeout: 10 * time.Second}
	}
	dc := dpopClient(prover)
	tokenURL := as.URL + issuer.TokenPath

	status, _, dpopTok := serveRequestToken(t, dc, tokenURL, url.Values{}, true)
	if status != http.StatusOK || dpopTok.TokenType != "DPoP" {
		t.Fatalf("DPoP token request = %d %+v", status, dpopTok)
	}
	status, _, mtlsTok := serveRequestToken(t, cc1, tokenURL, url.Values{"client_id": {"mtls-app"}}, false)
	if status != http.StatusOK || mtlsTok.TokenType != "Bearer" {
		t.Fatalf("mTLS token request = %d %+v", status, mtlsTok)
	}
	for _, tok := range []string{dpopTok.AccessToken, mtlsTok.AccessToken} {
		if len(tok) != 43 || strings.Contains(tok, ".") {
			t.Fatalf("access token %q is not an opaque handle", tok)
		}
	}

	res := rs.URL + "/resource"
	tests := []struct {
		name        string
		client      *http.Client
		scheme      string
		token       string
		wantStatus  int
		wantBinding string
		wantValue   string
	}{
		{"DPOP-RS-23/DPoP-bound opaque token with its proof", dc, "DPoP", dpopTok.AccessToken, http.StatusOK, "dpop", prover.Thumbprint()},
		{"DPOP-RS-23/proof by another key", dpopClient(serveProver(t)), "DPoP", dpopTok.AccessToken, http.StatusUnauthorized, "", ""},
		{"DPOP-RS-23/ERR-13/DPoP-bound opaque token under Bearer", plain, "Bearer", dpopTok.AccessToken, http.StatusUnauthorized, "", ""},
		{"MTLS-CB-13/certificate-bound opaque token with its certificate", cc1, "Bearer", mtlsTok.AccessToken, http.StatusOK, "mtls", mtlsbound.Thumbprint(c1.Cert)},
		{"MTLS-CB-13/another certificate", cc2, "Bearer", mtlsTok.AccessToken, http.StatusUnauthorized, "", ""},
		{"MTLS-CB-13/no certificate", plain, "Bearer", mtlsTok.AccessToken, http.StatusUnauthorized, "", ""},
		{"unknown opaque token", plain, "Bearer", strings.Repeat("A", 43), http.StatusUnauthorized, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, rr := serveCallResource(t, tt.client, http.MethodGet, res, tt.scheme, tt.token)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", status, h.Get("WWW-Authenticate"), tt.wantStatus)
			}
			if status != http.StatusOK {
				if ch := strings.Join(h.Values("WWW-Authenticate"), ", "); !strings.Contains(ch, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q, want invalid_token", ch)
				}
				return
			}
			value := rr.JKT
			if tt.wantBinding == "mtls" {
				value = rr.X5TS256
			}
			if rr.Binding != tt.wantBinding || value != tt.wantValue || rr.Sub == "" {
				t.Errorf("answer = %+v, want %s binding to %s", rr, tt.wantBinding, tt.wantValue)
			}
		})
	}
	for _, p := range []*serveProc{as, rs} {
		for _, secret := range []string{serveTestSecret, serveTestRSSecret, dpopTok.AccessToken, mtlsTok.AccessToken} {
			if strings.Contains(p.stderr.String(), secret) || strings.Contains(p.stdout.String(), secret) {
				t.Errorf("a server printed a secret or a token: %s", p.stderr)
			}
		}
	}
}

// TestServeOpaqueFlagErrors: the opaque-token flags refuse incomplete or
// unsafe settings with one line.
func TestServeOpaqueFlagErrors(t *testing.T) {
	t.Parallel()
	rsArgs := []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.example.test"}
	tests := []struct {
		name    string
		args    []string
		wantMsg string
	}{
		{"unknown format", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--access-token-format", "JWT"}, "--access-token-format must be jwt or opaque"},
		{"endpoint without client", append(rsArgs, "--introspection-endpoint", "https://as.example.test/introspect"), "--introspection-endpoint needs --introspection-client"},
		{"client without endpoint", append(rsArgs, "--introspection-client", "rs"), "--introspection-client needs --introspection-endpoint"},
		{"plain HTTP elsewhere", append(rsArgs, "--introspection-endpoint", "http://192.0.2.1/introspect", "--introspection-client", "rs:"+serveTestRSSecret), "must use https"},
		{"plain HTTP to a name", append(rsArgs, "--introspection-endpoint", "http://localhost:9000/introspect", "--introspection-client", "rs:"+serveTestRSSecret), "must use https"},
		{"relative endpoint", append(rsArgs, "--introspection-endpoint", "/introspect", "--introspection-client", "rs:"+serveTestRSSecret), "absolute http(s) URL"},
		{"secret not in the environment", append(rsArgs, "--introspection-endpoint", "https://as.example.test/introspect", "--introspection-client", "rs"), "--introspection-client \"rs\" names no secret"},
		{"short secret", append(rsArgs, "--introspection-endpoint", "https://as.example.test/introspect", "--introspection-client", "rs:tiny-secret"), "--introspection-client \"rs\": the secret"},
		{"no introspection call allowed", append(rsArgs, "--introspection-endpoint", "https://as.example.test/introspect", "--introspection-client", "rs:"+serveTestRSSecret, "--introspection-max-concurrent", "0"), "--introspection-max-concurrent must be at least 1"},
		{"unlimited introspection calls", append(rsArgs, "--introspection-endpoint", "https://as.example.test/introspect", "--introspection-client", "rs:"+serveTestRSSecret, "--introspection-max-concurrent", "-1"), "--introspection-max-concurrent must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr bytes.Buffer
			e := serveTestEnv(t, nil)
			e.stdout, e.stderr = &stdout, &stderr
			if code := run(ctx, e, tt.args); code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantMsg) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr = %q, want one line containing %q", stderr.String(), tt.wantMsg)
			}
			if strings.Contains(stderr.String(), serveTestRSSecret) || strings.Contains(stderr.String(), "tiny-secret") {
				t.Errorf("stderr echoes a secret: %q", stderr.String())
			}
		})
	}
}

// TestServeOpaqueRedis: with --redis, two issuer instances share opaque
// access tokens: a token minted at one is active at the other's
// introspection endpoint, and unknown at an instance of another issuer
// sharing the same Redis.
func TestServeOpaqueRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t)
	dir := t.TempDir()
	k, err := keyfile.Generate("ES256", nil)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := keyfile.MarshalJWK(k, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := serveWriteFile(t, dir, "signing.jwk", jwk)
	args := func(issuerURL string) []string {
		return []string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", issuerURL, "--signing-key", keyFile,
			"--client", "app:" + serveTestSecret, "--client", "rs:" + serveTestRSSecret, "--introspect-all", "rs",
			"--access-token-format", "opaque", "--redis", rdb.URL()}
	}
	a := serveStart(t, args("http://127.0.0.1:1")...)
	b := serveStart(t, args("http://127.0.0.1:1")...)
	other := serveStart(t, args("http://127.0.0.1:3")...)
	plain := &http.Client{Timeout: 10 * time.Second}
	status, _, tok := serveRequestToken(t, plain, a.URL+issuer.TokenPath, url.Values{}, true)
	if status != http.StatusOK || len(tok.AccessToken) != 43 || strings.Contains(tok.AccessToken, ".") {
		t.Fatalf("token at A = %d %+v, want an opaque token", status, tok)
	}
	introspect := func(base string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+issuer.IntrospectionPath, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", serveTestRSSecret)
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
			t.Fatalf("introspection at %s: %s", base, resp.Status)
		}
		return m
	}
	for _, p := range []*serveProc{a, b} {
		if m := introspect(p.URL); m["active"] != true || m["client_id"] != "app" || m["iss"] != "http://127.0.0.1:1" {
			t.Errorf("A's token at %s: %v", p.URL, m)
		}
	}
	if m := introspect(other.URL); m["active"] != false {
		t.Errorf("A's token at another issuer sharing the Redis: %v", m)
	}
}
