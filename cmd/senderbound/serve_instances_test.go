package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
)

// serveSend sends a request with an optional DPoP proof, HTTP Basic
// credentials (id non-empty) and Authorization header, and returns the
// status, headers and "error" member of a JSON body.
func serveSend(t testing.TB, method, target, proof, authz, id, secret string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	if v.AccessToken != "" {
		resp.Header.Set("X-Test-Access-Token", v.AccessToken)
	}
	return resp.StatusCode, resp.Header, v.Error
}

// TestServeTwoInstances runs two instances of each server behind one
// (imagined) load balancer URL, sharing a real redis-server that requires
// a password and a nonce secret, instance A reading both from files and
// instance B from the environment: a nonce from A is accepted at B, and a
// proof accepted at A is a replay at B (DPOP-RS-15 across instances). A
// third issuer instance with its own nonce secret refuses A's nonce, so the
// sharing is what makes B accept it; the resource servers, given the same
// secret as the issuers, refuse the issuer's nonce (DPOP-AS-21). Refresh
// tokens shared by two issuer instances are tested in issuer/redisrefresh
// (serve-issuer has no grant that issues them).
func TestServeTwoInstances(t *testing.T) {
	t.Parallel()
	const (
		redisPassword = "redis-password-0123456789abcdef"
		nonceSecret   = "nonce-secret-0123456789abcdef0123456789abcdef"
		lbIssuer      = "http://127.0.0.1:1" // the issuer's public URL
		lbResource    = "http://127.0.0.1:2" // the resource's public URL
	)
	rdb := redistest.Start(t)
	if err := rdb.Client().ConfigSet(context.Background(), "requirepass", redisPassword).Err(); err != nil {
		t.Fatal(err)
	}
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
	nonceFile := serveWriteFile(t, dir, "nonce.secret", []byte(nonceSecret+"\n"))
	passwordFile := serveWriteFile(t, dir, "redis.password", []byte(redisPassword+"\n"))
	fromEnv := func() *env {
		return serveTestEnv(t, map[string]string{serveNonceSecretEnv: nonceSecret, serveRedisPasswordEnv: redisPassword})
	}

	issuerArgs := []string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", lbIssuer, "--signing-key", keyFile,
		"--client", "app:" + serveTestSecret, "--require-nonce", "--redis", rdb.URL()}
	asA := serveStart(t, append(slices.Clone(issuerArgs), "--nonce-secret-file", nonceFile, "--redis-password-file", passwordFile)...)
	asB := serveStartEnv(t, fromEnv(), issuerArgs...)
	asC := serveStartEnv(t, serveTestEnv(t, map[string]string{serveRedisPasswordEnv: redisPassword}), issuerArgs...)
	for _, p := range []*serveProc{asA, asB} {
		if s := p.stderr.String(); strings.Contains(s, nonceSecret) || strings.Contains(s, redisPassword) || strings.Contains(s, "Redis password is in the --redis URL") {
			t.Fatalf("issuer stderr: %s", s)
		}
	}

	prover := serveProver(t)
	tokenHTU := lbIssuer + issuer.TokenPath
	cc := url.Values{"grant_type": {"client_credentials"}}
	proof := func(method, htu, nonce, token string) string {
		t.Helper()
		p, err := prover.Proof(method, htu, dpop.ProofOptions{Nonce: nonce, AccessToken: token})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenNonce := func(p *serveProc) string {
		t.Helper()
		status, h, code := serveSend(t, http.MethodPost, p.URL+issuer.TokenPath, proof(http.MethodPost, tokenHTU, "", ""), "", "app", serveTestSecret, cc)
		if status != http.StatusBadRequest || code != "use_dpop_nonce" || h.Get("DPoP-Nonce") == "" {
			t.Fatalf("token request without nonce: %d %s", status, code)
		}
		return h.Get("DPoP-Nonce")
	}

	// Issuer: A's nonce at B.
	nA := tokenNonce(asA)
	status, h, code := serveSend(t, http.MethodPost, asB.URL+issuer.TokenPath, proof(http.MethodPost, tokenHTU, nA, ""), "", "app", serveTestSecret, cc)
	if status != http.StatusOK {
		t.Fatalf("issuer: A's nonce at B: %d %s", status, code)
	}
	token := h.Get("X-Test-Access-Token")
	// ... but not at C, which has its own secret.
	if status, _, code := serveSend(t, http.MethodPost, asC.URL+issuer.TokenPath, proof(http.MethodPost, tokenHTU, nA, ""), "", "app", serveTestSecret, cc); status != http.StatusBadRequest || code != "use_dpop_nonce" {
		t.Fatalf("issuer: A's nonce at C (another secret): %d %s, want 400 use_dpop_nonce", status, code)
	}
	// A proof accepted at A is a replay at B (and at C, sharing Redis).
	seenAtA := proof(http.MethodPost, tokenHTU, tokenNonce(asB), "")
	if status, _, code := serveSend(t, http.MethodPost, asA.URL+issuer.TokenPath, seenAtA, "", "app", serveTestSecret, cc); status != http.StatusOK {
		t.Fatalf("issuer: proof with B's nonce at A: %d %s", status, code)
	}
	if status, _, code := serveSend(t, http.MethodPost, asB.URL+issuer.TokenPath, seenAtA, "", "app", serveTestSecret, cc); status != http.StatusBadRequest || code != "invalid_dpop_proof" {
		t.Fatalf("issuer: replay at B of a proof seen at A: %d %s, want 400 invalid_dpop_proof", status, code)
	}

	// Resource servers: the same, with the token from B.
	rsArgs := []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", lbIssuer, "--jwks", asA.URL + issuer.JWKSPath,
		"--public-url", lbResource, "--require", "dpop", "--require-nonce", "--redis", rdb.URL()}
	rsA := serveStart(t, append(slices.Clone(rsArgs), "--nonce-secret-file", nonceFile, "--redis-password-file", passwordFile)...)
	rsB := serveStartEnv(t, fromEnv(), rsArgs...)
	resHTU := lbResource + "/resource"
	resNonce := func(p *serveProc) string {
		t.Helper()
		status, h, _ := serveSend(t, http.MethodGet, p.URL+"/resource", proof(http.MethodGet, resHTU, "", token), "DPoP "+token, "", "", nil)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "use_dpop_nonce") || h.Get("DPoP-Nonce") == "" {
			t.Fatalf("resource request without nonce: %d %q", status, h.Get("WWW-Authenticate"))
		}
		return h.Get("DPoP-Nonce")
	}
	// DPOP-AS-21: the issuer's nonce is refused by the resource servers,
	// although they were given the same secret: nonces carry their label.
	if status, h, _ := serveSend(t, http.MethodGet, rsA.URL+"/resource", proof(http.MethodGet, resHTU, nA, token), "DPoP "+token, "", "", nil); status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "use_dpop_nonce") {
		t.Fatalf("resource: the issuer's nonce: %d %q, want 401 use_dpop_nonce", status, h.Get("WWW-Authenticate"))
	}
	if status, h, _ := serveSend(t, http.MethodGet, rsB.URL+"/resource", proof(http.MethodGet, resHTU, resNonce(rsA), token), "DPoP "+token, "", "", nil); status != http.StatusOK {
		t.Fatalf("resource: A's nonce at B: %d %q", status, h.Get("WWW-Authenticate"))
	}
	seenAtA = proof(http.MethodGet, resHTU, resNonce(rsB), token)
	if status, h, _ := serveSend(t, http.MethodGet, rsA.URL+"/resource", seenAtA, "DPoP "+token, "", "", nil); status != http.StatusOK {
		t.Fatalf("resource: proof with B's nonce at A: %d %q", status, h.Get("WWW-Authenticate"))
	}
	if status, h, _ := serveSend(t, http.MethodGet, rsB.URL+"/resource", seenAtA, "DPoP "+token, "", "", nil); status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_dpop_proof") {
		t.Fatalf("resource: replay at B of a proof seen at A: %d %q, want 401 invalid_dpop_proof", status, h.Get("WWW-Authenticate"))
	}

	// A password in the URL works, with a note that it is in the
	// process table.
	inURL := slices.Clone(rsArgs)
	inURL[len(inURL)-1] = "redis://:" + redisPassword + "@" + rdb.Addr + "/0"
	rsC := serveStart(t, inURL...)
	if s := rsC.stderr.String(); !strings.Contains(s, "Redis password is in the --redis URL") || strings.Contains(s, redisPassword) {
		t.Fatalf("resource with the password in the URL: stderr %q", s)
	}

	// Without the password the Redis refuses the instance, which then
	// does not start.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	e := serveTestEnv(t, nil)
	e.stdout, e.stderr = &stdout, &stderr
	if code := run(ctx, e, rsArgs); code == 0 || strings.Contains(stdout.String(), "listening on") || !strings.Contains(stderr.String(), "--redis") {
		t.Fatalf("resource without the Redis password: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestServeSharedSecretErrors: the shared nonce secret and the Redis
// password are refused, on one line and without showing them, when they
// are weak, exposed, given twice or without what they need.
func TestServeSharedSecretErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const secret = "leaky-secret-0123456789abcdef0123456789abcdef"
	good := serveWriteFile(t, dir, "good", []byte(secret+"\n"))
	exposed := serveWriteFile(t, dir, "exposed", []byte(secret))
	if err := os.Chmod(exposed, 0o644); err != nil {
		t.Fatal(err)
	}
	short := serveWriteFile(t, dir, "short", []byte("short-secret-0123456789\n"))
	secondShort := serveWriteFile(t, dir, "second-short", []byte(secret+"\nshort\n"))
	ctl := serveWriteFile(t, dir, "ctl", []byte(secret+"\x01\n"))
	const redisURL = "redis://127.0.0.1:1/0"
	issuerArgs := []string{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key"}
	resource := []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1:1", "--public-url", "http://127.0.0.1:2"}
	tests := []struct {
		name     string
		vars     map[string]string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"nonce file without --require-nonce", nil, append(slices.Clone(resource), "--nonce-secret-file", good), 2, "--nonce-secret-file needs --require-nonce"},
		{"nonce file readable by others", nil, append(slices.Clone(resource), "--require-nonce", "--nonce-secret-file", exposed), 1, "accessible to group or others"},
		{"short nonce secret", nil, append(slices.Clone(resource), "--require-nonce", "--nonce-secret-file", short), 2, "nonce secret 1 must have at least 32 characters"},
		{"short second nonce secret", nil, append(slices.Clone(resource), "--require-nonce", "--nonce-secret-file", secondShort), 2, "nonce secret 2 must have at least 32 characters"},
		{"control character in a nonce secret", nil, append(slices.Clone(resource), "--require-nonce", "--nonce-secret-file", ctl), 2, "one line of printable characters"},
		{"short nonce secret in the environment", map[string]string{serveNonceSecretEnv: "short"}, append(slices.Clone(resource), "--require-nonce"), 2, serveNonceSecretEnv + ": nonce secret 1 must have"},
		{"shared nonce secret, issuer identifier from the port", nil, append(slices.Clone(issuerArgs), "--require-nonce", "--nonce-secret-file", good), 2, "needs --issuer"},
		{"shared nonce secret, public URL from the port", map[string]string{serveNonceSecretEnv: secret}, []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1:1", "--require-nonce"}, 2, "needs --public-url"},
		{"password file without --redis", nil, append(slices.Clone(issuerArgs), "--redis-password-file", good), 2, "--redis-password-file needs --redis"},
		{"password in the URL and in a file", nil, append(slices.Clone(resource), "--redis", "redis://:"+secret+"@127.0.0.1:1/0", "--redis-password-file", good), 2, "give it once"},
		{"password in the URL and in the environment", map[string]string{serveRedisPasswordEnv: secret}, append(slices.Clone(issuerArgs), "--redis", "redis://:"+secret+"@127.0.0.1:1/0"), 2, "give it once"},
		{"password file readable by others", nil, append(slices.Clone(issuerArgs), "--redis", redisURL, "--redis-password-file", exposed), 1, "accessible to group or others"},
		{"short password", map[string]string{serveRedisPasswordEnv: "short"}, append(slices.Clone(resource), "--redis", redisURL), 2, "the Redis password must have at least 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stderr := serveRunFails(t, serveTestEnv(t, tt.vars), tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantMsg) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one line", code, stderr, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(stderr, secret) || strings.Contains(stderr, "short-secret") {
				t.Fatalf("stderr shows a secret: %q", stderr)
			}
		})
	}
}
