package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/loadgen"
	"github.com/senderbound/senderbound/internal/refused"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// loadReport runs "load" with --json --quiet and decodes its report.
func loadReport(t *testing.T, stdin string, args ...string) (int, *loadgen.Result, string) {
	t.Helper()
	code, out, errs := cliRun(t, stdin, append([]string{"load", "--json", "--quiet"}, args...)...)
	if out == "" {
		return code, nil, errs
	}
	var res loadgen.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return code, &res, errs
}

// loadOutcomes maps each outcome label to its count.
func loadOutcomes(res *loadgen.Result) map[string]int64 {
	m := map[string]int64{}
	for _, o := range res.Outcomes {
		m[o.Outcome] += o.Count
	}
	return m
}

// loadTLS is a CA, a server certificate for 127.0.0.1 and a client
// certificate registered at the issuer as client "mtls-app", all in files.
type loadTLS struct {
	caFile, certFile, keyFile string // server
	clientCert, clientKey     string
}

func newLoadTLS(t *testing.T) *loadTLS {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "load test CA"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.Issue(certs.Options{CommonName: "mtls-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	clDir := filepath.Join(dir, "client")
	if err := cl.WriteDir(clDir); err != nil {
		t.Fatal(err)
	}
	return &loadTLS{
		caFile: filepath.Join(dir, certs.CACertFile), certFile: filepath.Join(dir, certs.LeafCertFile), keyFile: filepath.Join(dir, certs.LeafKeyFile),
		clientCert: filepath.Join(clDir, certs.LeafCertFile), clientKey: filepath.Join(clDir, certs.LeafKeyFile),
	}
}

func TestLoadModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// DPoP, with nonces at both the token endpoint and the resource.
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--require-nonce")
	dpopRS := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop", "--require-nonce")
	bearerRS := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--allow-bearer")
	tokenURL := as.URL + issuer.TokenPath
	keyFile, _ := cliKeyFile(t, dir)
	dpopToken := strings.TrimSpace(cliMustRun(t, serveTestSecret+"\n", "token", "--token-endpoint", tokenURL, "--client-id", "app",
		"--client-secret", "-", "--dpop-key", keyFile, "--access-token"))
	bearerToken := strings.TrimSpace(cliMustRun(t, "", "token", "--token-endpoint", tokenURL, "--client-id", "app",
		"--client-secret", serveTestSecret, "--access-token"))

	// mTLS-bound tokens over HTTPS.
	tl := newLoadTLS(t)
	mas := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--tls-cert", tl.certFile, "--tls-key", tl.keyFile,
		"--client-ca", tl.caFile, "--mtls-client", "mtls-app:CN=mtls-app")
	mrs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", mas.URL, "--ca-file", tl.caFile,
		"--tls-cert", tl.certFile, "--tls-key", tl.keyFile, "--require", "mtls")
	mtlsArgs := []string{"--mode", "mtls", "--url", mrs.URL + "/resource", "--cert", tl.clientCert, "--key", tl.clientKey, "--ca-file", tl.caFile}

	tests := []struct {
		name  string
		stdin string
		args  []string
		mode  string
	}{
		{"dpop from the token endpoint", serveTestSecret + "\n", []string{"--url", dpopRS.URL + "/resource",
			"--token-endpoint", tokenURL, "--client-id", "app", "--client-secret", "-"}, "dpop"},
		{"dpop with a given token and key", dpopToken + "\n", []string{"--url", dpopRS.URL + "/resource",
			"--token", "-", "--dpop-key", keyFile, "-c", "1"}, "dpop"},
		{"dpop at a fixed rate", "", []string{"--url", dpopRS.URL + "/resource", "--token", dpopToken, "--dpop-key", keyFile, "--rate", "400"}, "dpop"},
		{"mtls from the token endpoint", "", append([]string{"--token-endpoint", mas.URL + issuer.TokenPath, "--client-id", "mtls-app"}, mtlsArgs...), "mtls"},
		{"mtls without keep-alive", "", append([]string{"--token-endpoint", mas.URL + issuer.TokenPath, "--client-id", "mtls-app", "--keepalive=false"}, mtlsArgs...), "mtls"},
		{"bearer", "", []string{"--mode", "bearer", "--url", bearerRS.URL + "/resource", "--token", bearerToken}, "bearer"},
		{"none, unprotected metadata", "", []string{"--mode", "none", "--url", bearerRS.URL + "/.well-known/oauth-protected-resource"}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 60
			code, res, errs := loadReport(t, tt.stdin, append([]string{"-n", strconv.Itoa(n), "-c", "3"}, tt.args...)...)
			if code != 0 || res == nil {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if res.Mode != tt.mode || res.Requests != n || res.Succeeded != n || loadOutcomes(res)["200"] != n {
				t.Errorf("mode %s, %d requests, %d succeeded, outcomes %v; want %s and %d × 200", res.Mode, res.Requests, res.Succeeded, loadOutcomes(res), tt.mode, n)
			}
			if want := !strings.Contains(tt.name, "without keep-alive"); res.KeepAlive != want {
				t.Errorf("keepalive %v in the report, want %v", res.KeepAlive, want)
			}
			if errs != "" {
				t.Errorf("stderr %q, want nothing with --quiet", errs)
			}
			if strings.Contains(errs, serveTestSecret) || (dpopToken != "" && strings.Contains(errs, dpopToken)) {
				t.Error("a credential was printed")
			}
		})
	}
}

// TestLoadRefused: a resource that refuses every request (a proof by
// another key than the token's) ends the run early with the outcome by
// error code and one line on standard error.
func TestLoadRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop")
	boundKey, _ := cliKeyFile(t, dir)
	otherKey, _ := cliKeyFile(t, dir)
	tok := strings.TrimSpace(cliMustRun(t, "", "token", "--token-endpoint", as.URL+issuer.TokenPath, "--client-id", "app",
		"--client-secret", serveTestSecret, "--dpop-key", boundKey, "--access-token"))

	tests := []struct {
		name, format, want string
		args               []string
	}{
		{"wrong key, json", "--json", "401 invalid_token", []string{"--token", tok, "--dpop-key", otherKey}},
		{"wrong key, text", "", "401 invalid_token", []string{"--token", tok, "--dpop-key", otherKey}},
		{"DPoP token as bearer", "--json", "401 invalid_token", []string{"--mode", "bearer", "--token", tok}},
		{"no credentials", "--json", "401", []string{"--mode", "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"load", "--quiet", "--url", rs.URL + "/resource", "--duration", "1m"}, tt.args...)
			if tt.format != "" {
				args = append(args, tt.format)
			}
			start := time.Now()
			code, out, errs := cliRun(t, "", args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errs)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("took %s, want an early stop", time.Since(start))
			}
			if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no request succeeded") || !strings.Contains(errs, "answered "+tt.want+" at") {
				t.Errorf("stderr %q, want one line naming %q", errs, tt.want)
			}
			if strings.Contains(out+errs, tok) {
				t.Error("the token was printed")
			}
			if tt.format == "--json" {
				var res loadgen.Result
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("report: %v", err)
				}
				if got := loadOutcomes(&res); got[tt.want] != res.Requests || res.Requests < loadgen.DefaultFailAfter || res.Stopped == "" {
					t.Errorf("outcomes %v of %d, stopped %q: want all %q", got, res.Requests, res.Stopped, tt.want)
				}
			} else if !strings.Contains(out, "outcomes   "+tt.want+" ") {
				t.Errorf("text report lacks the outcome %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestLoadBadInput: unreachable targets and refused credentials end at
// once with one clear line and exit status 1.
func TestLoadBadInput(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL)
	closed := "http://" + refused.Addr(t)
	tl := newLoadTLS(t)
	tlsRS := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--tls-cert", tl.certFile, "--tls-key", tl.keyFile)
	tokenURL := as.URL + issuer.TokenPath

	tests := []struct {
		name string
		args []string
		want string // the whole line after "senderbound load: "
	}{
		{"unreachable resource", []string{"--mode", "none", "--url", closed + "/resource"},
			"connection refused at " + closed + "/resource"},
		{"unreachable token endpoint", []string{"--url", rs.URL + "/resource", "--token-endpoint", closed + "/token", "--client-id", "app", "--client-secret", serveTestSecret},
			"token endpoint: connection refused at " + closed + "/token"},
		{"wrong client secret", []string{"--url", rs.URL + "/resource", "--token-endpoint", tokenURL, "--client-id", "app", "--client-secret", "not-the-secret-0123456789"},
			"token endpoint answered 401: invalid_client"},
		{"unknown client", []string{"--url", rs.URL + "/resource", "--token-endpoint", tokenURL, "--client-id", "nobody", "--client-secret", serveTestSecret},
			"token endpoint answered 401: invalid_client"},
		{"untrusted token endpoint certificate", []string{"--url", rs.URL + "/resource", "--token-endpoint", tlsRS.URL + "/token", "--client-id", "app", "--client-secret", serveTestSecret},
			"token endpoint: the server's TLS certificate is signed by an unknown certificate authority at " + tlsRS.URL + "/token (" + hintUnknownCA + ")"},
		{"untrusted TLS certificate", []string{"--mode", "none", "--url", tlsRS.URL + "/resource"},
			"TLS certificate not trusted at " + tlsRS.URL + "/resource: the server's TLS certificate is signed by an unknown certificate authority (" + hintUnknownCA + ")"},
		{"plain http to a TLS server", []string{"--mode", "none", "--url", "https" + strings.TrimPrefix(rs.URL, "http") + "/resource"},
			"plain HTTP answer to HTTPS at https" + strings.TrimPrefix(rs.URL, "http") + "/resource: the server answered a TLS handshake with plain HTTP (" + hintPlainHTTP + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, out, errs := cliRun(t, "", append([]string{"load", "--quiet", "--duration", "1m"}, tt.args...)...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q; want 1 and no report", code, out)
			}
			if time.Since(start) > 15*time.Second {
				t.Errorf("took %s, want at once", time.Since(start))
			}
			line, ok := strings.CutPrefix(errs, "senderbound load: ")
			if !ok || strings.Count(errs, "\n") != 1 || !strings.Contains(line, tt.want) {
				t.Errorf("stderr %q, want one line with %q", errs, tt.want)
			}
			if strings.Contains(errs, serveTestSecret) || strings.Contains(errs, "not-the-secret") {
				t.Error("the client secret was printed")
			}
		})
	}
}

func TestLoadFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, _ := cliKeyFile(t, dir)
	const u = "http://127.0.0.1:1/resource"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no url", []string{"--mode", "none"}, "--url is required"},
		{"relative url", []string{"--mode", "none", "--url", "/resource"}, "--url must be an absolute"},
		{"userinfo", []string{"--mode", "none", "--url", "http://a:b@127.0.0.1/"}, "--url must be an absolute"},
		{"unknown mode", []string{"--mode", "cert", "--url", u}, "--mode must be"},
		{"zero workers", []string{"--mode", "none", "--url", u, "-c", "0"}, "-c must be"},
		{"negative rate", []string{"--mode", "none", "--url", u, "--rate", "-1"}, "--rate must be"},
		{"NaN rate", []string{"--mode", "none", "--url", u, "--rate", "NaN"}, "--rate must be"},
		{"vanishing rate", []string{"--mode", "none", "--url", u, "--rate", "1e-300"}, "--rate must be"},
		{"negative count", []string{"--mode", "none", "--url", u, "-n", "-1"}, "-n must not be negative"},
		{"zero timeout", []string{"--mode", "none", "--url", u, "--timeout", "0s"}, "--timeout must be positive"},
		{"dpop without token", []string{"--url", u}, "mode dpop needs"},
		{"dpop token without key", []string{"--url", u, "--token", "t"}, "needs --dpop-key"},
		{"token and endpoint", []string{"--url", u, "--token", "t", "--token-endpoint", "http://127.0.0.1:1/token", "--client-id", "a"}, "not both"},
		{"endpoint without client", []string{"--url", u, "--token-endpoint", "http://127.0.0.1:1/token"}, "needs --client-id"},
		{"client id without endpoint", []string{"--url", u, "--token", "t", "--dpop-key", keyFile, "--client-id", "a"}, "go with --token-endpoint"},
		{"none with token", []string{"--mode", "none", "--url", u, "--token", "t"}, "mode none sends no credentials"},
		{"mtls without certificate", []string{"--mode", "mtls", "--url", u, "--token", "t"}, "mode mtls needs --cert"},
		{"cert without key", []string{"--mode", "none", "--url", u, "--cert", "c.pem"}, "--cert and --key go together"},
		{"dpop key in bearer mode", []string{"--mode", "bearer", "--url", u, "--token", "t", "--dpop-key", keyFile}, "--dpop-key goes with mode dpop"},
		{"token over http off loopback", []string{"--mode", "bearer", "--url", "http://192.0.2.1/resource", "--token", "t"}, "--url must be https to send credentials"},
		{"token endpoint over http off loopback", []string{"--mode", "bearer", "--url", u, "--token-endpoint", "http://192.0.2.1/token", "--client-id", "a"}, "--token-endpoint must be https"},
		{"bad method", []string{"--mode", "none", "--url", u, "--method", "G T"}, "is not an HTTP method"},
		{"empty value", []string{"--mode", "none", "--url", u, "--ca-file", ""}, "--ca-file needs a non-empty value"},
		{"too many signers", []string{"--mode", "none", "--url", u, "--signers", "65"}, "--signers must be"},
		{"stray argument", []string{"--mode", "none", "--url", u, "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, "", append([]string{"load"}, tt.args...)...)
			// A stray argument is refused by the flag parsing all
			// commands share, which prints the usage after the line.
			oneLine := strings.Count(errs, "\n") == 1 || tt.name == "stray argument"
			if code != 2 || out != "" || !strings.Contains(errs, tt.want) || !oneLine {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, out, errs, tt.want)
			}
		})
	}
}

// TestLoadReport checks the text report, the progress line and the server
// CPU reading (the servers run in this process, so their pid is ours).
func TestLoadReport(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop")
	code, out, errs := cliRun(t, "", "load", "--url", rs.URL+"/resource", "--token-endpoint", as.URL+issuer.TokenPath,
		"--client-id", "app", "--client-secret", serveTestSecret, "-c", "2", "--duration", "1500ms", "--server-pid", strconv.Itoa(os.Getpid()))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"target     GET " + rs.URL + "/resource (dpop, keep-alive)",
		"load       2 workers, closed loop, ",
		"latency    p50 ",
		"outcomes   200 ",
		"generator  ",
		"proofs: ",
		"server     pid " + strconv.Itoa(os.Getpid()) + ": ",
		"× a raw ES256 verify (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// One progress line per second on standard error.
	if !strings.Contains(errs, "    1s ") || !strings.Contains(errs, "/s  2xx ") {
		t.Errorf("stderr %q, want a progress line", errs)
	}
	if strings.Contains(out+errs, serveTestSecret) {
		t.Error("the client secret was printed")
	}
}

// TestLoadTokenRefresh: a run longer than the token's lifetime requests a
// new token before the first expires, so every request succeeds.
func TestLoadTokenRefresh(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--token-ttl", "3s", "--require-nonce")
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--allow-bearer")
	tests := []struct {
		name string
		args []string
	}{
		{"dpop", nil},
		{"bearer", []string{"--mode", "bearer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, res, errs := loadReport(t, "", append([]string{"--url", rs.URL + "/resource", "--token-endpoint", as.URL + issuer.TokenPath,
				"--client-id", "app", "--client-secret", serveTestSecret, "-c", "2", "--rate", "100", "--duration", "4500ms"}, tt.args...)...)
			if code != 0 || res == nil {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if got := loadOutcomes(res); got["200"] != res.Requests || res.Requests < 150 {
				t.Errorf("outcomes %v of %d, want only 200 across the token's expiry", got, res.Requests)
			}
			if len(res.Warnings) > 0 && strings.Contains(strings.Join(res.Warnings, ";"), "token") {
				t.Errorf("warnings %q", res.Warnings)
			}
		})
	}
}

// TestLoadMTLSWrongCertificate: a certificate-bound token sent over
// another client certificate is refused, and the report counts the
// refusals by error code.
func TestLoadMTLSWrongCertificate(t *testing.T) {
	t.Parallel()
	tl := newLoadTLS(t)
	other, err := certs.SelfSigned(certs.Options{CommonName: "someone-else", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	otherDir := filepath.Join(t.TempDir(), "other")
	if err := other.WriteDir(otherDir); err != nil {
		t.Fatal(err)
	}
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--tls-cert", tl.certFile, "--tls-key", tl.keyFile,
		"--client-ca", tl.caFile, "--mtls-client", "mtls-app:CN=mtls-app")
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--ca-file", tl.caFile,
		"--tls-cert", tl.certFile, "--tls-key", tl.keyFile, "--require", "mtls")
	tok := strings.TrimSpace(cliMustRun(t, "", "token", "--token-endpoint", as.URL+issuer.TokenPath, "--client-id", "mtls-app",
		"--cert", tl.clientCert, "--key", tl.clientKey, "--ca-file", tl.caFile, "--access-token"))

	code, res, errs := loadReport(t, "", "--mode", "mtls", "--url", rs.URL+"/resource", "--token", tok, "--ca-file", tl.caFile,
		"--cert", filepath.Join(otherDir, certs.LeafCertFile), "--key", filepath.Join(otherDir, certs.LeafKeyFile), "--duration", "1m")
	if code != 1 || res == nil {
		t.Fatalf("exit %d, stderr %q; want 1 with a report", code, errs)
	}
	if got := loadOutcomes(res); got["401 invalid_token"] != res.Requests || res.Requests < loadgen.DefaultFailAfter {
		t.Errorf("outcomes %v of %d, want all 401 invalid_token", got, res.Requests)
	}
	if !strings.HasPrefix(errs, "senderbound load: no request succeeded: ") || strings.Count(errs, "\n") != 1 || strings.Contains(errs, tok) {
		t.Errorf("stderr %q, want one line without the token", errs)
	}
}
