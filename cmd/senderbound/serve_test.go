package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// serveTestSecret is the client secret the tests register.
const serveTestSecret = "app-secret-0123456789abcdef"

// serveOutput is a stream written by a command under test. It is safe for
// concurrent use and delivers the URL of the "listening on" line once.
type serveOutput struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	url    chan string
	sentAt int // bytes scanned for the listening line; -1 once found
}

func newServeOutput() *serveOutput { return &serveOutput{url: make(chan string, 1)} }

func (o *serveOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for o.sentAt >= 0 {
		rest := o.buf.Bytes()[o.sentAt:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := string(rest[:i])
		o.sentAt += i + 1
		if u, ok := strings.CutPrefix(line, "listening on "); ok {
			o.url <- u
			o.sentAt = -1
		}
	}
	return len(p), nil
}

func (o *serveOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// serveProc is a server command running in-process.
type serveProc struct {
	URL    string
	stdout *serveOutput
	stderr *serveOutput
	cancel context.CancelFunc
	done   chan int
}

// stop cancels the command's context and returns its exit status.
func (p *serveProc) stop(t testing.TB) int {
	t.Helper()
	// A connection the shared transport dialed for a request that then
	// took another one sits unused in its pool; the server counts it as
	// new, not idle, for 5 s and its graceful shutdown (5 s) waits for it.
	// Closing the pool's idle connections ends it.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code // later calls see it too
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not shut down")
		return -1
	}
}

// serveTestEnv returns an env whose environment holds only vars and whose
// user configuration directory is a fresh temporary directory, so that no
// test reads the real environment or writes to the real directory.
func serveTestEnv(t testing.TB, vars map[string]string) *env {
	dir := t.TempDir()
	return &env{
		stdin:     strings.NewReader(""),
		lookupEnv: func(name string) (string, bool) { v, ok := vars[name]; return v, ok },
		configDir: func() (string, error) { return dir, nil },
	}
}

// serveStart runs one server command until the test ends and returns once
// it printed its listening line.
func serveStart(t testing.TB, args ...string) *serveProc {
	t.Helper()
	return serveStartEnv(t, serveTestEnv(t, nil), args...)
}

// serveStartEnv is serveStart with the environment and configuration
// directory of e; it sets e's streams.
func serveStartEnv(t testing.TB, e *env, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProc{stdout: newServeOutput(), stderr: newServeOutput(), cancel: cancel, done: make(chan int, 1)}
	e.stdout, e.stderr = p.stdout, p.stderr
	go func() {
		p.done <- run(ctx, e, args)
	}()
	select {
	case p.URL = <-p.stdout.url:
	case code := <-p.done:
		cancel()
		t.Fatalf("%s exited with %d before listening: %s", args[0], code, p.stderr)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("%s did not start listening", args[0])
	}
	t.Cleanup(func() {
		if code := p.stop(t); code != 0 {
			t.Errorf("%s exited with %d: %s", args[0], code, p.stderr)
		}
	})
	return p
}

// serveProver returns a DPoP prover with a fresh P-256 key.
func serveProver(t testing.TB) *dpop.Prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTokenResponse is the token endpoint's answer.
type serveTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

// serveRequestToken makes a client_credentials request with c (which adds
// the DPoP proof or presents the certificate) and decodes the answer.
func serveRequestToken(t testing.TB, c *http.Client, tokenURL string, form url.Values, basic bool) (int, http.Header, serveTokenResponse) {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(form.Encode())), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth("app", serveTestSecret)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr serveTokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, resp.Header, tr
}

// serveResourceResponse is the protected resource's answer.
type serveResourceResponse struct {
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Binding  string `json:"binding"`
	JKT      string `json:"jkt"`
	X5TS256  string `json:"x5t#S256"`
}

// serveCallResource sends method to url with "Authorization: scheme token"
// through c and decodes a 200 answer.
func serveCallResource(t testing.TB, c *http.Client, method, u, scheme, token string) (int, http.Header, serveResourceResponse) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", scheme+" "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rr serveResourceResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
			t.Fatalf("resource response: %v", err)
		}
	}
	return resp.StatusCode, resp.Header, rr
}

// serveGetJSON fetches u with c and decodes the JSON body into v.
func serveGetJSON(t testing.TB, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// serveWriteFile writes data to name in dir and returns its path.
func serveWriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeDPoP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := keyfile.Generate("ES384", nil)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := keyfile.MarshalJWK(k, "ES384")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := serveWriteFile(t, dir, "signing.jwk", jwk)

	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--signing-key", keyFile,
		"--client", "app:"+serveTestSecret, "--scope", "read", "--scope", "write", "--token-ttl", "2m")
	if strings.Contains(as.stderr.String(), "generated") {
		t.Error("a key was generated although --signing-key was given")
	}
	if strings.Contains(as.stderr.String(), serveTestSecret) {
		t.Error("the client secret was printed")
	}
	plain := &http.Client{Timeout: 10 * time.Second}

	var md issuer.Metadata
	serveGetJSON(t, plain, as.URL+issuer.MetadataPath, &md)
	if md.Issuer != as.URL || md.TokenEndpoint != as.URL+issuer.TokenPath || md.JWKSURI != as.URL+issuer.JWKSPath {
		t.Fatalf("metadata = %+v, want endpoints under %s", md, as.URL)
	}
	var jwks jose.JSONWebKeySet
	serveGetJSON(t, plain, md.JWKSURI, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Algorithm != "ES384" || !jwks.Keys[0].IsPublic() {
		t.Fatalf("JWKS = %+v, want the one public ES384 key", jwks.Keys)
	}

	prover := serveProver(t)
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	status, _, tok := serveRequestToken(t, dc, md.TokenEndpoint, url.Values{"scope": {"read"}}, true)
	if status != http.StatusOK || tok.TokenType != "DPoP" || tok.AccessToken == "" {
		t.Fatalf("token request = %d %+v, want 200 DPoP", status, tok)
	}
	_, _, writeTok := serveRequestToken(t, dc, md.TokenEndpoint, url.Values{"scope": {"write"}}, true)
	status, _, bearerTok := serveRequestToken(t, plain, md.TokenEndpoint, url.Values{}, true)
	if status != http.StatusOK || bearerTok.TokenType != "Bearer" || bearerTok.Scope != "read write" {
		t.Fatalf("token request without proof = %d %+v, want 200 Bearer with every scope", status, bearerTok)
	}

	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--scope", "read")
	res := rs.URL + "/resource"
	tests := []struct {
		name       string
		client     *http.Client
		method     string
		scheme     string
		token      string
		wantStatus int
	}{
		{"DPoP GET", dc, http.MethodGet, "DPoP", tok.AccessToken, http.StatusOK},
		{"DPoP POST", dc, http.MethodPost, "DPoP", tok.AccessToken, http.StatusOK},
		{"DPoP token under Bearer", plain, http.MethodGet, "Bearer", tok.AccessToken, http.StatusUnauthorized},
		{"DPoP token without proof", plain, http.MethodGet, "DPoP", tok.AccessToken, http.StatusUnauthorized},
		{"proof by another key", &http.Client{Transport: &dpop.Transport{Prover: serveProver(t)}}, http.MethodGet, "DPoP", tok.AccessToken, http.StatusUnauthorized},
		{"unbound token refused by default", plain, http.MethodGet, "Bearer", bearerTok.AccessToken, http.StatusUnauthorized},
		{"missing scope", dc, http.MethodGet, "DPoP", writeTok.AccessToken, http.StatusForbidden},
	}
	// The public URL defaults to the bound address: a proof made for
	// another name of the same server (here localhost) does not match it,
	// whatever Host header the request carries.
	t.Run("proof for another name of the server", func(t *testing.T) {
		alias := strings.Replace(res, "127.0.0.1", "localhost", 1)
		status, h, _ := serveCallResource(t, dc, http.MethodGet, alias, "DPoP", tok.AccessToken)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_dpop_proof") {
			t.Fatalf("status = %d (%s), want 401 invalid_dpop_proof", status, h.Get("WWW-Authenticate"))
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, rr := serveCallResource(t, tt.client, tt.method, res, tt.scheme, tt.token)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", status, h.Get("WWW-Authenticate"), tt.wantStatus)
			}
			if status != http.StatusOK {
				if h.Get("WWW-Authenticate") == "" {
					t.Error("refusal without WWW-Authenticate")
				}
				return
			}
			want := serveResourceResponse{Sub: "app", ClientID: "app", Scope: "read", Binding: "dpop", JKT: prover.Thumbprint()}
			if rr != want {
				t.Errorf("answer = %+v, want %+v", rr, want)
			}
		})
	}

	var pr struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	serveGetJSON(t, plain, rs.URL+"/.well-known/oauth-protected-resource", &pr)
	if pr.Resource != serveDefaultAudience || len(pr.AuthorizationServers) != 1 || pr.AuthorizationServers[0] != as.URL {
		t.Errorf("resource metadata = %+v", pr)
	}

	// A --client client may introspect.
	req, _ := http.NewRequest(http.MethodPost, md.IntrospectionEndpoint, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", serveTestSecret)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var intro struct {
		Active    bool   `json:"active"`
		TokenType string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&intro); err != nil || !intro.Active || intro.TokenType != "DPoP" {
		t.Errorf("introspection = %d %+v %v, want active DPoP", resp.StatusCode, intro, err)
	}
	if s := rs.stderr.String() + as.stderr.String(); strings.Contains(s, tok.AccessToken) {
		t.Error("a token was logged")
	}
}

// TestServeResourceBehindProxy runs serve-resource behind a trusted proxy
// without --public-url: the DPoP htu comes from the one header family named
// by --forwarded-headers, and a request from the proxy that also carries
// the other family (a client's copy, passed through) is refused with 400.
func TestServeResourceBehindProxy(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--scope", "read")
	prover := serveProver(t)
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	status, _, tok := serveRequestToken(t, dc, as.URL+issuer.TokenPath, url.Values{"scope": {"read"}}, true)
	if status != http.StatusOK || tok.TokenType != "DPoP" {
		t.Fatalf("token request = %d %+v, want 200 DPoP", status, tok)
	}
	// The test client connects from 127.0.0.1, the trusted proxy.
	// Refusals are logged at debug level, so both servers log at debug; one
	// of them as JSON.
	xf := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--trusted-proxy", "127.0.0.1", "--log-level", "debug")
	fw := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--trusted-proxy", "127.0.0.1", "--forwarded-headers", "forwarded", "--log-level", "DEBUG", "--log-format", "json")
	const public, other = "https://rs.example.test/resource", "https://other-rs.example.test/resource"
	tests := []struct {
		name       string
		rs         *serveProc
		htu        string
		headers    map[string]string
		wantStatus int
	}{
		{"x-forwarded", xf, public, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rs.example.test"}, http.StatusOK},
		{"ADV-51/x-forwarded: a client's Forwarded passed through", xf, other, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "rs.example.test", "Forwarded": "proto=https;host=other-rs.example.test"}, http.StatusBadRequest},
		{"ADV-51/x-forwarded: Forwarded alone", xf, other, map[string]string{"Forwarded": "proto=https;host=other-rs.example.test"}, http.StatusBadRequest},
		{"forwarded", fw, public, map[string]string{"Forwarded": "for=192.0.2.7;proto=https;host=rs.example.test"}, http.StatusOK},
		{"ADV-51/forwarded: a client's X-Forwarded-Host passed through", fw, other, map[string]string{"Forwarded": "proto=https;host=rs.example.test", "X-Forwarded-Host": "other-rs.example.test"}, http.StatusBadRequest},
		{"forwarded: proof for another host", fw, other, map[string]string{"Forwarded": "proto=https;host=rs.example.test"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			proof, err := prover.Proof(http.MethodGet, tt.htu, dpop.ProofOptions{AccessToken: tok.AccessToken})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, tt.rs.URL+"/resource", nil)
			req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
			req.Header.Set("DPoP", proof)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tt.wantStatus)
			}
			if tt.wantStatus == http.StatusBadRequest && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Fatalf("WWW-Authenticate = %q, want invalid_request", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Cleanup(func() {
		for _, rs := range []*serveProc{xf, fw} {
			if !strings.Contains(rs.stderr.String(), "forwarded_headers_unexpected") {
				t.Error("no log record with the stable reason forwarded_headers_unexpected")
			}
			if rs == fw && !strings.Contains(rs.stderr.String(), `"level":"DEBUG"`) {
				t.Errorf("--log-format json: no JSON debug record in %q", rs.stderr.String())
			}
			if strings.Contains(rs.stderr.String(), tok.AccessToken) {
				t.Error("a token was logged")
			}
		}
	})
}

func TestServeGeneratedKeyAndBearer(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--client", "app:"+serveTestSecret, "--audience", "https://api.test")
	line, _, _ := strings.Cut(as.stderr.String(), "\n")
	_, printed, ok := strings.Cut(line, ": ")
	var pub jose.JSONWebKey
	if !ok || json.Unmarshal([]byte(printed), &pub) != nil || !pub.IsPublic() || pub.Algorithm != "ES256" {
		t.Fatalf("stderr does not start with the generated public JWK: %q", line)
	}
	if strings.Count(as.stdout.String(), "\n") != 1 {
		t.Errorf("stdout = %q, want only the listening line", as.stdout.String())
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	var jwks jose.JSONWebKeySet
	serveGetJSON(t, plain, as.URL+issuer.JWKSPath, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].KeyID != pub.KeyID {
		t.Fatalf("JWKS %+v does not hold the printed key %s", jwks.Keys, pub.KeyID)
	}
	_, _, tok := serveRequestToken(t, plain, as.URL+issuer.TokenPath, url.Values{}, true)

	// --jwks skips discovery; --allow-bearer admits the unbound token.
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--jwks", as.URL+issuer.JWKSPath,
		"--audience", "https://api.test", "--allow-bearer")
	status, _, rr := serveCallResource(t, plain, http.MethodGet, rs.URL+"/resource", "Bearer", tok.AccessToken)
	if status != http.StatusOK || rr.Binding != "bearer" || rr.Scope != "read write" {
		t.Fatalf("bearer call = %d %+v, want 200 bearer", status, rr)
	}
	// Another audience refuses the token.
	other := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--allow-bearer")
	if status, _, _ := serveCallResource(t, plain, http.MethodGet, other.URL+"/resource", "Bearer", tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("token for another audience: status %d, want 401", status)
	}
}

func TestServeMTLS(t *testing.T) {
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
	ss, err := certs.SelfSigned(certs.Options{CommonName: "self-app"})
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
	ssFile := serveWriteFile(t, dir, "self.pem", certs.EncodeCertificates(ss.Cert))

	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
		"--client-ca", caFile, "--mtls-client", "mtls-app:CN=mtls-app", "--self-signed-client", "self-app:"+ssFile)
	if !strings.HasPrefix(as.URL, "https://127.0.0.1:") {
		t.Fatalf("issuer URL %s, want https on loopback", as.URL)
	}
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--ca-file", caFile,
		"--tls-cert", certFile, "--tls-key", keyFile, "--require", "mtls")

	client := func(l *certs.Leaf) *http.Client {
		if l == nil {
			return mtlsbound.NewClient(nil, ca.Pool())
		}
		tc := l.TLSCertificate()
		return mtlsbound.NewClient(&tc, ca.Pool())
	}
	cc1, cc2, css := client(c1), client(c2), client(ss)
	tokenURL := as.URL + issuer.TokenPath
	status, _, tok := serveRequestToken(t, cc1, tokenURL, url.Values{"client_id": {"mtls-app"}}, false)
	if status != http.StatusOK || tok.TokenType != "Bearer" {
		t.Fatalf("mTLS token request = %d %+v, want 200 Bearer", status, tok)
	}
	if status, _, tr := serveRequestToken(t, cc2, tokenURL, url.Values{"client_id": {"mtls-app"}}, false); status == http.StatusOK || tr.Error != "invalid_client" {
		t.Errorf("token request with another certificate = %d %+v, want invalid_client", status, tr)
	}
	status, _, ssTok := serveRequestToken(t, css, tokenURL, url.Values{"client_id": {"self-app"}}, false)
	if status != http.StatusOK {
		t.Fatalf("self-signed token request = %d %+v, want 200", status, ssTok)
	}

	res := rs.URL + "/resource"
	tests := []struct {
		name       string
		client     *http.Client
		token      string
		wantStatus int
		wantX5T    string
	}{
		{"right certificate", cc1, tok.AccessToken, http.StatusOK, mtlsbound.Thumbprint(c1.Cert)},
		{"another certificate", cc2, tok.AccessToken, http.StatusUnauthorized, ""},
		{"no certificate", client(nil), tok.AccessToken, http.StatusUnauthorized, ""},
		{"self-signed client", css, ssTok.AccessToken, http.StatusOK, mtlsbound.Thumbprint(ss.Cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, rr := serveCallResource(t, tt.client, http.MethodGet, res, "Bearer", tt.token)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", status, h.Get("WWW-Authenticate"), tt.wantStatus)
			}
			if status == http.StatusOK && (rr.Binding != "mtls" || rr.X5TS256 != tt.wantX5T || rr.Sub == "" || rr.ClientID != rr.Sub) {
				t.Errorf("answer = %+v, want mtls binding to %s", rr, tt.wantX5T)
			}
		})
	}
}

func TestServeNonce(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret, "--require-nonce")
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop", "--require-nonce")
	prover := serveProver(t)
	plain := &http.Client{Timeout: 10 * time.Second}
	tokenURL := as.URL + issuer.TokenPath

	// Without a nonce the token endpoint answers use_dpop_nonce.
	proof, err := prover.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	req.SetBasicAuth("app", serveTestSecret)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr serveTokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || tr.Error != "use_dpop_nonce" || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("token request without nonce = %d %+v, want 400 use_dpop_nonce with DPoP-Nonce", resp.StatusCode, tr)
	}

	// The DPoP transport retries with the nonce.
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	status, _, tok := serveRequestToken(t, dc, tokenURL, url.Values{}, true)
	if status != http.StatusOK || tok.TokenType != "DPoP" {
		t.Fatalf("token request = %d %+v, want 200 DPoP", status, tok)
	}

	// --require dpop refuses the token under Bearer with invalid_token,
	// like every other policy (ERR-13), not with a bare challenge.
	for _, scheme := range []string{"Bearer", "bearer"} {
		status, h, _ := serveCallResource(t, plain, http.MethodGet, rs.URL+"/resource", scheme, tok.AccessToken)
		if status != http.StatusUnauthorized || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), "\n"), `Bearer realm=`) || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), "\n"), `error="invalid_token"`) {
			t.Fatalf("DPoP-bound token under %s = %d %q, want 401 Bearer error=invalid_token", scheme, status, h.Values("WWW-Authenticate"))
		}
	}

	// The resource server challenges with its own nonce.
	proof, err = prover.Proof(http.MethodGet, rs.URL+"/resource", dpop.ProofOptions{AccessToken: tok.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodGet, rs.URL+"/resource", nil)
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set("DPoP", proof)
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("resource request without nonce = %d %q, want 401 use_dpop_nonce", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	status, _, rr := serveCallResource(t, dc, http.MethodGet, rs.URL+"/resource", "DPoP", tok.AccessToken)
	if status != http.StatusOK || rr.Binding != "dpop" || rr.JKT != prover.Thumbprint() {
		t.Fatalf("resource request = %d %+v, want 200 dpop", status, rr)
	}
}

func TestServeRedisReplay(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret)
	prover := serveProver(t)
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}, Timeout: 10 * time.Second}
	_, _, tok := serveRequestToken(t, dc, as.URL+issuer.TokenPath, url.Values{}, true)

	// Two instances of one resource share the replay cache: a proof
	// accepted by one is a replay at the other.
	const public = "http://127.0.0.1:1"
	args := []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--public-url", public, "--redis", rdb.URL()}
	rs1, rs2 := serveStart(t, args...), serveStart(t, args...)
	proof, err := prover.Proof(http.MethodGet, public+"/resource", dpop.ProofOptions{AccessToken: tok.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		url  string
		want int
	}{{rs1.URL, http.StatusOK}, {rs2.URL, http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, tt.url+"/resource", nil)
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("use %d of the proof: status %d, want %d", i+1, resp.StatusCode, tt.want)
		}
	}
}

func TestServeShutdown(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{
		{"serve-issuer", "--addr", "127.0.0.1:0"},
		{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.example.test"},
	} {
		t.Run(cmd[0], func(t *testing.T) {
			t.Parallel()
			p := serveStart(t, cmd...)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit status %d after cancellation, want 0: %s", code, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), "shut down") {
				t.Errorf("stderr = %q, want a shut down note", p.stderr)
			}
			u, _ := url.Parse(p.URL)
			if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
				c.Close()
				t.Error("still accepting connections after shutdown")
			}
		})
	}
}

// TestServeReplayFlags checks that serve-issuer's --replay-capacity sizes
// its replay store (two DPoP token requests fill a store of 2, the third is
// refused with 503) and --replay-quota bounds one key (one request allowed,
// the next refused with invalid_dpop_proof).
func TestServeReplayFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		flags      []string
		wantStatus []int
		wantError  string
	}{
		{name: "capacity", flags: []string{"--replay-capacity", "2"}, wantStatus: []int{200, 200, 503}, wantError: "temporarily_unavailable"},
		{name: "quota", flags: []string{"--replay-quota", "1"}, wantStatus: []int{200, 400}, wantError: "invalid_dpop_proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			as := serveStart(t, append([]string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:" + serveTestSecret}, tt.flags...)...)
			dc := &http.Client{Transport: &dpop.Transport{Prover: serveProver(t)}, Timeout: 10 * time.Second}
			for i, want := range tt.wantStatus {
				status, _, tok := serveRequestToken(t, dc, as.URL+issuer.TokenPath, url.Values{}, true)
				if status != want {
					t.Fatalf("token request %d = %d %+v, want %d", i, status, tok, want)
				}
				if want != 200 && tok.Error != tt.wantError {
					t.Fatalf("token request %d: error %q, want %q", i, tok.Error, tt.wantError)
				}
			}
		})
	}
}

func TestServeFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := keyfile.Generate("ES256", nil)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := json.Marshal(jose.JSONWebKey{Key: k.Public(), Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	pubKeyFile := serveWriteFile(t, dir, "public.jwk", pubJWK)
	notPEM := serveWriteFile(t, dir, "not.pem", []byte("not a certificate"))
	missing := filepath.Join(dir, "missing")
	const secret = "very-secret-but-short"
	leaf, err := certs.SelfSigned(certs.Options{CommonName: "rs.test", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteDir(filepath.Join(dir, "tls")); err != nil {
		t.Fatal(err)
	}
	tlsCert, tlsKey := filepath.Join(dir, "tls", certs.LeafCertFile), filepath.Join(dir, "tls", certs.LeafKeyFile)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string // in stderr
		oneLine  bool   // stderr is exactly one line
	}{
		{"issuer help", []string{"serve-issuer", "-h"}, 0, "Usage: senderbound serve-issuer", false},
		{"resource help", []string{"serve-resource", "--help"}, 0, "Usage: senderbound serve-resource", false},
		{"resource help names the forwarded-header family", []string{"serve-resource", "--help"}, 0, "-forwarded-headers string", false},
		{"issuer without addr", []string{"serve-issuer"}, 2, "--addr is required", true},
		{"issuer bad addr", []string{"serve-issuer", "--addr", "127.0.0.1"}, 2, "HOST:PORT", true},
		{"issuer unknown flag", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--nope"}, 2, "flag provided but not defined", false},
		{"issuer stray argument", []string{"serve-issuer", "--addr", "127.0.0.1:0", "extra"}, 2, "unexpected argument", false},
		{"tls-key without tls-cert", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--tls-key", "k.pem"}, 2, "--tls-key requires --tls-cert", true},
		{"tls-cert without tls-key", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--tls-cert", "c.pem"}, 2, "--tls-cert requires --tls-key", true},
		{"client-ca without TLS", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--client-ca", "ca.pem"}, 2, "--client-ca requires --tls-cert", true},
		{"client without colon or variable", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app"}, 2, "SENDERBOUND_CLIENT_SECRET_APP is not set", true},
		{"client with empty secret", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"}, 2, "--client needs ID:SECRET", true},
		{"client with short secret", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:tiny-secret"}, 2, "at least 16 characters", true},
		{"client twice", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:" + serveTestSecret, "--public-client", "app"}, 2, `client "app" is registered twice`, true},
		{"mtls-client without client-ca", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--mtls-client", "app:CN=app"}, 2, "--mtls-client requires --client-ca", true},
		{"self-signed-client without TLS", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--self-signed-client", "app:c.pem"}, 2, "--self-signed-client requires --tls-cert", true},
		{"http issuer off loopback", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", "http://as.example.com"}, 2, "only on loopback", true},
		{"http issuer on a public listener", []string{"serve-issuer", "--addr", "0.0.0.0:0", "--issuer", "http://127.0.0.1:8080"}, 2, "only on loopback", true},
		{"issuer with query", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", "https://as.example.com/?a=b"}, 2, "without query", true},
		{"issuer not http", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", "ftp://as.example.com"}, 2, "https URL", true},
		{"no host and no issuer", []string{"serve-issuer", "--addr", ":0"}, 2, "--issuer is required", true},
		{"token-ttl zero", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--token-ttl", "0s"}, 2, "--token-ttl", true},
		{"token-ttl unparsable", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--token-ttl", "soon"}, 2, "invalid value", false},
		{"signing key missing", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--signing-key", missing}, 1, "--signing-key", true},
		{"signing key public", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--signing-key", pubKeyFile}, 1, "--signing-key", true},
		{"tls-cert not PEM", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--tls-cert", notPEM, "--tls-key", notPEM}, 1, "--tls-cert", true},
		{"resource without addr", []string{"serve-resource", "--issuer", "https://as.test"}, 2, "--addr is required", true},
		{"resource without issuer", []string{"serve-resource", "--addr", "127.0.0.1:0"}, 2, "--issuer is required", true},
		{"resource on all interfaces without public URL", []string{"serve-resource", "--addr", "0.0.0.0:0", "--issuer", "https://as.test", "--tls-cert", tlsCert, "--tls-key", tlsKey}, 2, "--public-url is needed", true},
		{"jwks without issuer", []string{"serve-resource", "--addr", "127.0.0.1:0", "--jwks", "https://as.test/jwks"}, 2, "--jwks needs --issuer", true},
		{"relative jwks", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--jwks", "/jwks"}, 2, "--jwks must be an absolute", true},
		{"unknown require", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--require", "bearer"}, 2, "--require must be dpop, mtls or any", true},
		{"allow-bearer with dpop", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--require", "dpop", "--allow-bearer"}, 2, "--allow-bearer needs --require any", true},
		{"nonce with mtls", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--require", "mtls", "--require-nonce"}, 2, "--require-nonce", true},
		{"mtls without TLS", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--require", "mtls"}, 2, "--require mtls needs --tls-cert", true},
		{"plain HTTP off loopback", []string{"serve-resource", "--addr", "0.0.0.0:0", "--issuer", "https://as.test"}, 2, "only on loopback", true},
		{"non-canonical proxy", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--trusted-proxy", "10.0.0.1/8"}, 2, "--trusted-proxy", true},
		{"CCERT-15/proxy halves trusting every peer", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--trusted-proxy", "0.0.0.0/1", "--trusted-proxy", "128.0.0.0/1"}, 2, "--trusted-proxy", true},
		{"unknown forwarded-headers", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--trusted-proxy", "127.0.0.1", "--forwarded-headers", "both"}, 2, "--forwarded-headers must be", true},
		{"forwarded-headers without trusted proxy", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--forwarded-headers", "forwarded"}, 2, "--forwarded-headers needs --trusted-proxy", true},
		{"forwarded-headers none without public URL", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--trusted-proxy", "127.0.0.1", "--forwarded-headers", "none"}, 2, "--forwarded-headers none needs --public-url", true},
		{"public-url with fragment", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--public-url", "https://rs.test/#x"}, 2, "--public-url", true},
		{"resource tls files missing", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--tls-cert", missing, "--tls-key", missing}, 1, "--tls-cert", true},
		{"resource ca-file not PEM", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--ca-file", notPEM}, 1, "--ca-file", true},
		{"issuer replay capacity zero", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--replay-capacity", "0"}, 2, "--replay-capacity", true},
		{"issuer replay quota negative", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--replay-quota", "-1"}, 2, "--replay-quota", true},
		{"resource replay capacity zero", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--replay-capacity", "0"}, 2, "--replay-capacity", true},
		{"redis bad scheme", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--redis", "postgres://u:" + secret + "@db/0"}, 1, "--redis", true},
		{"unknown log level", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--log-level", "verbose"}, 2, "--log-level must be", true},
		{"unknown log format", []string{"serve-issuer", "--addr", "127.0.0.1:0", "--log-format", "xml"}, 2, "--log-format must be", true},
		{"redis unparsable", []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", "https://as.test", "--redis", "redis://u:" + secret + "@host:port:x/0"}, 1, "--redis: invalid URL", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A canceled context: a command that wrongly starts serving
			// prints its listening line and returns at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr bytes.Buffer
			e := serveTestEnv(t, nil)
			e.stdout, e.stderr = &stdout, &stderr
			code := run(ctx, e, tt.args)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if strings.Contains(stdout.String(), "listening on") {
				t.Errorf("started listening: %s", stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantMsg) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantMsg)
			}
			if tt.oneLine && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
			if strings.Contains(stderr.String(), secret) || strings.Contains(stderr.String(), "tiny-secret") {
				t.Errorf("stderr echoes a secret: %q", stderr.String())
			}
		})
	}
}
