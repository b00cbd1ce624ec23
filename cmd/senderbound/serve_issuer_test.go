package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer"
)

// servePost sends form to u with HTTP Basic id:secret (none when id is
// empty) and, when p is set, a DPoP proof for u; it decodes the JSON
// answer.
func servePost(t testing.TB, u string, form url.Values, id, secret string, p *dpop.Prover) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	if p != nil {
		proof, err := p.Proof(http.MethodPost, u, dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST %s: %d, %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

// serveToken requests a client_credentials token as id and returns it, or
// fails the test.
func serveToken(t testing.TB, base, id, secret string, p *dpop.Prover) string {
	t.Helper()
	status, body := servePost(t, base+issuer.TokenPath, url.Values{"grant_type": {"client_credentials"}}, id, secret, p)
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("token for %s: %d %v", id, status, body["error"])
	}
	return tok
}

// serveRunFails runs a command that must exit before serving and returns
// its exit status and standard error.
func serveRunFails(t testing.TB, e *env, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a command that wrongly starts serving returns at once
	var stdout, stderr bytes.Buffer
	e.stdout, e.stderr = &stdout, &stderr
	code := run(ctx, e, args)
	if strings.Contains(stdout.String(), "listening on") {
		t.Errorf("started listening: %s", stdout.String())
	}
	return code, stderr.String()
}

// TestServeIssuerKeyPersists restarts serve-issuer on the same port and
// state and checks that a token minted before the restart is still
// accepted by a resource server that fetches the JWKS after it.
func TestServeIssuerKeyPersists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    func(e *env, dir string) []string
		keyFile func(e *env, dir string) string
	}{
		{
			name: "default: the user configuration directory",
			args: func(*env, string) []string { return nil },
			keyFile: func(e *env, _ string) string {
				d, _ := e.userConfigDir()
				return filepath.Join(d, "senderbound", serveStateKeyFile)
			},
		},
		{
			name:    "--state-dir",
			args:    func(_ *env, dir string) []string { return []string{"--state-dir", filepath.Join(dir, "state")} },
			keyFile: func(_ *env, dir string) string { return filepath.Join(dir, "state", serveStateKeyFile) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, dir := serveTestEnv(t, nil), t.TempDir()
			args := append([]string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:" + serveTestSecret}, tt.args(e, dir)...)
			first := serveStartEnv(t, e, args...)
			tok := serveToken(t, first.URL, "app", serveTestSecret, nil)
			if !strings.Contains(first.stderr.String(), "created signing key "+tt.keyFile(e, dir)) {
				t.Errorf("first start does not report the created key file: %s", first.stderr)
			}
			st, err := os.Stat(tt.keyFile(e, dir))
			if err != nil || runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
			}
			if code := first.stop(t); code != 0 {
				t.Fatalf("first run exited with %d", code)
			}

			u, _ := url.Parse(first.URL)
			args[2] = u.Host // the same port: the issuer identifier names it
			second := serveStartEnv(t, e, args...)
			if second.URL != first.URL {
				t.Fatalf("restarted at %s, not %s", second.URL, first.URL)
			}
			if s := second.stderr.String(); strings.Contains(s, "created") || !strings.Contains(s, "signing key "+tt.keyFile(e, dir)) {
				t.Errorf("second start does not report the kept key: %s", s)
			}
			rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", second.URL, "--allow-bearer")
			status, _, rr := serveCallResource(t, &http.Client{Timeout: 10 * time.Second}, http.MethodGet, rs.URL+"/resource", "Bearer", tok)
			if status != http.StatusOK || rr.ClientID != "app" {
				t.Fatalf("token from before the restart: %d %+v, want 200", status, rr)
			}
		})
	}
}

func TestServeIssuerKeyFileChecks(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
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
	exposed := serveWriteFile(t, dir, "exposed.jwk", jwk)
	if err := os.Chmod(exposed, 0o644); err != nil {
		t.Fatal(err)
	}
	exposedState := filepath.Join(dir, "state")
	if err := os.MkdirAll(exposedState, 0o700); err != nil {
		t.Fatal(err)
	}
	serveWriteFile(t, exposedState, serveStateKeyFile, jwk)
	if err := os.Chmod(filepath.Join(exposedState, serveStateKeyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "state2"), 0o700); err != nil {
		t.Fatal(err)
	}
	serveWriteFile(t, filepath.Join(dir, "state2"), serveStateKeyFile, nil)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"--signing-key readable by others", []string{"--signing-key", exposed}, 1, "accessible to group or others"},
		{"state key readable by the group", []string{"--state-dir", exposedState}, 1, "accessible to group or others"},
		{"state key that is no key is not replaced", []string{"--state-dir", filepath.Join(dir, "state2")}, 1, "signing key"},
		{"--ephemeral-key with --signing-key", []string{"--ephemeral-key", "--signing-key", exposed}, 2, "--ephemeral-key excludes"},
		{"--ephemeral-key with --state-dir", []string{"--ephemeral-key", "--state-dir", dir}, 2, "--ephemeral-key excludes"},
		{"--state-dir with --signing-key", []string{"--state-dir", dir, "--signing-key", exposed}, 2, "excludes --signing-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stderr := serveRunFails(t, serveTestEnv(t, nil), append([]string{"serve-issuer", "--addr", "127.0.0.1:0"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantMsg) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one line", code, stderr, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if data, err := os.ReadFile(filepath.Join(dir, "state2", serveStateKeyFile)); err != nil || len(data) != 0 {
		t.Errorf("a key file that is no key was replaced: %v", err)
	}

	t.Run("--ephemeral-key saves nothing", func(t *testing.T) {
		t.Parallel()
		e := serveTestEnv(t, nil)
		p := serveStartEnv(t, e, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key")
		if !strings.Contains(p.stderr.String(), "WARNING (--ephemeral-key)") {
			t.Errorf("no warning: %s", p.stderr)
		}
		d, _ := e.userConfigDir()
		if entries, err := os.ReadDir(d); err != nil || len(entries) != 0 {
			t.Errorf("configuration directory holds %v (%v)", entries, err)
		}
	})
}

// TestServeConnectionLimits opens more connections than --max-connections
// allows and checks that the excess waits until one closes, and that idle
// and slow connections are closed after their timeouts.
func TestServeConnectionLimits(t *testing.T) {
	t.Parallel()
	limits := []string{"--max-connections", "2", "--idle-timeout", "1s", "--read-header-timeout", "1s"}
	for _, args := range [][]string{
		{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key"},
		{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.example.test"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			p := serveStart(t, append(args, limits...)...)
			u, _ := url.Parse(p.URL)
			type conn struct {
				net.Conn
				r *bufio.Reader
			}
			dial := func() conn {
				c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if _, err := io.WriteString(c, "GET /none HTTP/1.1\r\nHost: "+u.Host+"\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				return conn{c, bufio.NewReader(c)}
			}
			answer := func(c conn, wait time.Duration) error {
				_ = c.SetReadDeadline(time.Now().Add(wait))
				resp, err := http.ReadResponse(c.r, nil)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return err
			}
			isTimeout := func(err error) bool {
				var ne net.Error
				return errors.As(err, &ne) && ne.Timeout()
			}

			c1, c2 := dial(), dial()
			for _, c := range []conn{c1, c2} {
				if err := answer(c, 5*time.Second); err != nil {
					t.Fatalf("connection within the limit: %v", err)
				}
			}
			// Both stay open (keep-alive): a third connection waits.
			c3 := dial()
			if err := answer(c3, 300*time.Millisecond); !isTimeout(err) {
				t.Fatalf("connection beyond the limit was served (err %v)", err)
			}
			c1.Close()
			if err := answer(c3, 5*time.Second); err != nil {
				t.Fatalf("waiting connection after another closed: %v", err)
			}
			// The idle timeout closes c2: the read ends with EOF, not with
			// the client's own deadline.
			_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c2.r.ReadByte(); err == nil || isTimeout(err) {
				t.Fatalf("idle connection still open after the idle timeout (err %v)", err)
			}
			// A client that never finishes its headers is cut off.
			slow, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			if _, err := io.WriteString(slow, "GET /none HTTP/1.1\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(slow); isTimeout(err) {
				t.Fatal("connection with unfinished headers still open after the read-header timeout")
			}
		})
	}
}

func TestServeConnectionFlagErrors(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{
		{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key"},
		{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.example.test"},
	} {
		for _, tt := range []struct{ flag, value, want string }{
			{"--max-connections", "0", "--max-connections must be at least 1"},
			{"--idle-timeout", "0s", "--idle-timeout must be between"},
			{"--idle-timeout", "2h", "--idle-timeout must be between"},
			{"--read-header-timeout", "10ms", "--read-header-timeout must be between"},
		} {
			t.Run(cmd[0]+" "+tt.flag+" "+tt.value, func(t *testing.T) {
				t.Parallel()
				code, stderr := serveRunFails(t, serveTestEnv(t, nil), append(cmd, tt.flag, tt.value)...)
				if code != 2 || !strings.Contains(stderr, tt.want) {
					t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
				}
			})
		}
	}
}

// TestServeClientSecrets registers confidential clients with secrets from
// files, environment variables and the command line.
func TestServeClientSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		fileSecret = "file-secret-0123456789abcdef"
		crlfSecret = "crlf-secret-0123456789abcdef"
		envSecret  = "env-secret-0123456789abcdef"
		argSecret  = "arg-secret-0123456789abcdef"
	)
	secretFile := serveWriteFile(t, dir, "app.secret", []byte(fileSecret+"\n"))
	crlfFile := serveWriteFile(t, dir, "crlf.secret", []byte(crlfSecret+"\r\n"))
	e := serveTestEnv(t, map[string]string{"SENDERBOUND_CLIENT_SECRET_MY_APP_2": envSecret})
	p := serveStartEnv(t, e, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key",
		"--client", "file-app:@"+secretFile, "--client", "crlf-app:@"+crlfFile,
		"--client", "my.app-2", "--client", "arg-app:"+argSecret)

	tests := []struct {
		id, secret string
		want       int
	}{
		{"file-app", fileSecret, http.StatusOK},
		{"file-app", fileSecret + "\n", http.StatusUnauthorized},
		{"crlf-app", crlfSecret, http.StatusOK},
		{"my.app-2", envSecret, http.StatusOK},
		{"arg-app", argSecret, http.StatusOK},
		{"arg-app", envSecret, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		status, body := servePost(t, p.URL+issuer.TokenPath, url.Values{"grant_type": {"client_credentials"}}, tt.id, tt.secret, nil)
		if status != tt.want {
			t.Errorf("%s with secret %q: %d %v, want %d", tt.id, tt.secret, status, body["error"], tt.want)
		}
	}
	stderr := p.stderr.String()
	for _, s := range []string{fileSecret, crlfSecret, envSecret, argSecret} {
		if strings.Contains(stderr, s) {
			t.Errorf("stderr shows a secret: %s", stderr)
		}
	}
	if !strings.Contains(stderr, `secret of client "arg-app" is on the command line`) || strings.Count(stderr, "on the command line") != 1 {
		t.Errorf("stderr does not warn about exactly the command-line secret: %s", stderr)
	}
}

func TestServeClientSecretErrors(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	const secret = "leaky-secret-0123456789abcdef"
	exposed := serveWriteFile(t, dir, "exposed", []byte(secret))
	if err := os.Chmod(exposed, 0o644); err != nil {
		t.Fatal(err)
	}
	short := serveWriteFile(t, dir, "short", []byte("short\n"))
	twoLines := serveWriteFile(t, dir, "two", []byte(secret+"\n"+secret+"\n"))
	tests := []struct {
		name     string
		vars     map[string]string
		client   []string
		wantCode int
		wantMsg  string
	}{
		{"secret file readable by others", nil, []string{"app:@" + exposed}, 1, "accessible to group or others"},
		{"missing secret file", nil, []string{"app:@" + filepath.Join(dir, "missing")}, 1, "secret file"},
		{"secret file that is a directory", nil, []string{"app:@" + dir}, 1, "not a regular file"},
		{"short secret in a file", nil, []string{"app:@" + short}, 2, "at least 16 characters"},
		{"two lines in a secret file", nil, []string{"app:@" + twoLines}, 2, "one line"},
		{"empty file name", nil, []string{"app:@"}, 2, "--client needs ID:SECRET, ID:@FILE"},
		{"no variable", nil, []string{"app"}, 2, "SENDERBOUND_CLIENT_SECRET_APP is not set"},
		{"empty variable", map[string]string{"SENDERBOUND_CLIENT_SECRET_APP": ""}, []string{"app"}, 2, "SENDERBOUND_CLIENT_SECRET_APP is not set"},
		{"short variable", map[string]string{"SENDERBOUND_CLIENT_SECRET_APP": "short"}, []string{"app"}, 2, "at least 16 characters"},
		{"two clients, one variable", map[string]string{"SENDERBOUND_CLIENT_SECRET_A_B": secret}, []string{"a-b", "a.b"}, 2, "SENDERBOUND_CLIENT_SECRET_A_B"},
		{"no ID", nil, []string{":" + secret}, 2, "--client needs ID:SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key"}
			for _, c := range tt.client {
				args = append(args, "--client", c)
			}
			code, stderr := serveRunFails(t, serveTestEnv(t, tt.vars), args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantMsg) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one line", code, stderr, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(stderr, secret) || strings.Contains(stderr, "short\n") {
				t.Fatalf("stderr shows a secret: %q", stderr)
			}
		})
	}
}

// TestServeDPoPBoundClient registers a client that must use DPoP (RFC 9449
// §5.2 dpop_bound_access_tokens) and checks DPOP-AS-11 over HTTP.
func TestServeDPoPBoundClient(t *testing.T) {
	t.Parallel()
	const other = "other-secret-0123456789abcdef"
	p := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key",
		"--client", "app:"+serveTestSecret, "--client", "other:"+other, "--dpop-bound", "app")
	tokenURL := p.URL + issuer.TokenPath
	form := url.Values{"grant_type": {"client_credentials"}}
	prover := serveProver(t)
	tests := []struct {
		name, id, secret string
		proof            bool
		wantStatus       int
		want             string // error code, or token_type
	}{
		{"DPOP-AS-11 flagged client without proof", "app", serveTestSecret, false, http.StatusBadRequest, "invalid_dpop_proof"},
		{"flagged client with proof", "app", serveTestSecret, true, http.StatusOK, "DPoP"},
		{"DPOP-AS-11 unflagged client without proof", "other", other, false, http.StatusOK, "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var pr *dpop.Prover
			if tt.proof {
				pr = prover
			}
			status, body := servePost(t, tokenURL, form, tt.id, tt.secret, pr)
			got, _ := body["error"].(string)
			if status == http.StatusOK {
				got, _ = body["token_type"].(string)
			}
			if status != tt.wantStatus || got != tt.want {
				t.Fatalf("%d %v, want %d %s", status, body, tt.wantStatus, tt.want)
			}
			if status != http.StatusOK && body["access_token"] != nil {
				t.Fatal("refusal carries a token")
			}
			if status != http.StatusOK && !strings.Contains(p.stderr.String(), `error=`+tt.want+` status=400 reason=proof_missing description="client requires DPoP-bound access tokens"`) {
				t.Fatalf("refusal not logged with its reason: %s", p.stderr)
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		t.Parallel()
		code, stderr := serveRunFails(t, serveTestEnv(t, nil), "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--dpop-bound", "ghost")
		if code != 2 || !strings.Contains(stderr, `--dpop-bound "ghost" names no registered client`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestServeIntrospectionVisibility checks that a confidential client
// introspects only its own tokens unless --introspect-all names it.
func TestServeIntrospectionVisibility(t *testing.T) {
	t.Parallel()
	const (
		peerSecret = "peer-secret-0123456789abcdef"
		rsSecret   = "rs-secret-0123456789abcdefgh"
	)
	p := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--public-client", "pub",
		"--client", "app:"+serveTestSecret, "--client", "peer:"+peerSecret, "--client", "rs:"+rsSecret, "--introspect-all", "rs")
	tok := serveToken(t, p.URL, "app", serveTestSecret, serveProver(t))
	tests := []struct {
		name, id, secret string
		active           bool
	}{
		{"own token", "app", serveTestSecret, true},
		{"another client's token", "peer", peerSecret, false},
		{"--introspect-all", "rs", rsSecret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := servePost(t, p.URL+issuer.IntrospectionPath, url.Values{"token": {tok}}, tt.id, tt.secret, nil)
			if status != http.StatusOK || body["active"] != tt.active {
				t.Fatalf("%d %v, want active %v", status, body, tt.active)
			}
			if !tt.active && len(body) != 1 {
				t.Fatalf("inactive answer says more: %v", body)
			}
			if tt.active && (body["client_id"] != "app" || body["token_type"] != "DPoP") {
				t.Fatalf("active answer %v", body)
			}
		})
	}
	t.Run("--introspect-all of a public client", func(t *testing.T) {
		t.Parallel()
		code, stderr := serveRunFails(t, serveTestEnv(t, nil), "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--public-client", "pub", "--introspect-all", "pub")
		if code != 2 || !strings.Contains(stderr, `--introspect-all "pub" names no --client`) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}
