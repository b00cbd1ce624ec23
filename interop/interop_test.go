// Package interop runs the module against independent implementations:
// panva's oidc-provider (an OpenID-certified authorization server, pinned
// in package.json) as a foreign issuer of DPoP-bound and certificate-bound
// JWT access tokens.
//
// The foreign software is installed with npm from package-lock.json. When
// Node, npm or the packages are missing the tests skip, unless
// SENDERBOUND_REQUIRE_INTEROP=1 (set in CI), where they fail.
package interop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// requireEnv makes missing foreign software a failure instead of a skip.
const requireEnv = "SENDERBOUND_REQUIRE_INTEROP"

// Names the foreign issuer registers; the secrets are test values.
const (
	dpopClientID     = "app"
	dpopClientSecret = "app-secret-0123456789abcdef"
	mtlsClientID     = "mtls-app"
	introspectorID   = "rs"
	introspectorPass = "rs-secret-0123456789abcdef"
	audience         = "https://rs.interop.test"
	scope            = "read"
)

// unavailable skips t, or fails it when requireEnv is set.
func unavailable(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1: the interop tests must run)", msg, requireEnv)
	}
	t.Skipf("%s; set %s=1 to make this a failure", msg, requireEnv)
}

var installOnce struct {
	sync.Once
	node string
	err  error
}

// nodeWithPackages returns the node binary once interop/node_modules holds
// the pinned packages, running npm ci when it does not.
func nodeWithPackages() (string, error) {
	installOnce.Do(func() {
		node, err := exec.LookPath("node")
		if err != nil {
			installOnce.err = errors.New("node is not installed")
			return
		}
		installOnce.node = node
		if _, err := os.Stat(filepath.Join("node_modules", "oidc-provider", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			installOnce.err = errors.New("the npm packages are not installed and npm is missing")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			installOnce.err = fmt.Errorf("npm ci: %v\n%s", err, out)
		}
	})
	return installOnce.node, installOnce.err
}

// pki is the test's certificate authority and the certificates it issued.
type pki struct {
	ca             *certs.CA
	server, c1, c2 *certs.Leaf
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "interop CA"})
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca}
	for _, x := range []struct {
		dst  **certs.Leaf
		opts certs.Options
	}{
		{&p.server, certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}},
		{&p.c1, certs.Options{CommonName: mtlsClientID, Client: true}},
		{&p.c2, certs.Options{CommonName: "someone-else", Client: true}},
	} {
		if *x.dst, err = ca.Issue(x.opts); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// foreignIssuer is a running oidc-provider.
type foreignIssuer struct {
	URL string
}

func (f *foreignIssuer) tokenEndpoint() string { return f.URL + "/token" }

// startForeignIssuer starts issuer.mjs on 127.0.0.1 with the test's PKI and
// returns once it accepts connections. The process ends with the test.
func startForeignIssuer(t *testing.T, p *pki) *foreignIssuer {
	t.Helper()
	node, err := nodeWithPackages()
	if err != nil {
		unavailable(t, "foreign issuer unavailable: %v", err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := certs.EncodeKey(p.server.Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"serverCert":   write("server.pem", certs.EncodeCertificates(p.server.Cert)),
		"serverKey":    write("server-key.pem", key),
		"clientCA":     write("ca.pem", certs.EncodeCertificates(p.ca.Cert)),
		"resource":     audience,
		"dpopClient":   map[string]string{"id": dpopClientID, "secret": dpopClientSecret},
		"mtlsClient":   map[string]string{"id": mtlsClientID, "subjectDN": "CN=" + mtlsClientID},
		"introspector": map[string]string{"id": introspectorID, "secret": introspectorPass},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "issuer.mjs", write("config.json", data))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		unavailable(t, "starting node: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // issuer.mjs exits when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("foreign issuer stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-ready:
		return &foreignIssuer{URL: u}
	case <-time.After(60 * time.Second):
		t.Fatalf("foreign issuer not ready after 60 s; stderr:\n%s", stderr.String())
	}
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ourResource starts the module's resource server on loopback TLS: a
// resource.Verifier trusting the foreign issuer through a RemoteKeySet
// that discovers its keys, on /resource (scope read, bound tokens only).
func ourResource(t *testing.T, p *pki, iss *foreignIssuer) *httptest.Server {
	t.Helper()
	ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
		Issuer:     iss.URL,
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &lateHandler{}
	rs := httptest.NewUnstartedServer(h)
	rs.TLS = &tls.Config{Certificates: []tls.Certificate{p.server.TLSCertificate()}, ClientAuth: tls.RequestClientCert}
	rs.StartTLS()
	t.Cleanup(rs.Close)
	v, err := resource.New(resource.Config{
		Issuers:   []resource.Issuer{{Identifier: iss.URL, Keys: ks}},
		Audience:  audience,
		DPoP:      &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256", "RS256", "EdDSA"}, ReplayStore: store},
		PublicURL: rs.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/resource", v.Middleware(resource.Policy{Scopes: []string{scope}})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	})))
	h.set(mux)
	return rs
}

// lateHandler lets a server start (and learn its URL) before its handler
// exists.
type lateHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.h
	l.mu.RUnlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

func (l *lateHandler) set(h http.Handler) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

// client returns an HTTP client trusting the test CA, presenting cert when
// it is not nil.
func client(p *pki, cert *certs.Leaf) *http.Client {
	cfg := &tls.Config{RootCAs: p.ca.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLSCertificate()}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// token asks the foreign issuer for a client-credentials token. With a
// prover the request carries a DPoP proof; with clientID mtls-app it
// authenticates with the client certificate of hc.
func token(t *testing.T, hc *http.Client, iss *foreignIssuer, clientID, secret string, prover *dpop.Prover) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if secret == "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, iss.tokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	if prover != nil {
		proof, err := prover.Proof(http.MethodPost, iss.tokenEndpoint(), dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		t.Fatalf("token response (status %d): %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token request refused: status %d, error %q (%s)", resp.StatusCode, tr.Error, tr.Description)
	}
	return tr
}

func newProver(t *testing.T) *dpop.Prover {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome is what the resource answered.
type outcome struct {
	status    int
	challenge string
}

func call(t *testing.T, hc *http.Client, target, authz, proof string) outcome {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return outcome{status: resp.StatusCode, challenge: strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")}
}

// TestForeignIssuerTokens: the module's resource server accepts the foreign
// issuer's DPoP-bound and certificate-bound tokens when presented by their
// holder, and refuses them stolen: a proof from another key (RFC 9449 §4.3
// step 12, §7.1), no proof, a Bearer downgrade (RFC 9449 §7.2), a replayed
// proof (RFC 9449 §11.1), no or another client certificate (RFC 8705 §3).
func TestForeignIssuerTokens(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	iss := startForeignIssuer(t, p)
	rs := ourResource(t, p, iss)
	target := rs.URL + "/resource"
	plain, withC1, withC2 := client(p, nil), client(p, p.c1), client(p, p.c2)

	holder, thief := newProver(t), newProver(t)
	dt := token(t, plain, iss, dpopClientID, dpopClientSecret, holder)
	if dt.TokenType != "DPoP" {
		t.Fatalf("DPoP token_type = %q, want DPoP (RFC 9449 §5)", dt.TokenType)
	}
	mt := token(t, withC1, iss, mtlsClientID, "", nil)
	if mt.TokenType != "Bearer" {
		t.Fatalf("certificate-bound token_type = %q, want Bearer (RFC 8705 §3)", mt.TokenType)
	}
	proof := func(p *dpop.Prover, tok string) string {
		t.Helper()
		s, err := p.Proof(http.MethodGet, target, dpop.ProofOptions{AccessToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	replayed := proof(holder, dt.AccessToken)
	bearerInvalidToken := `Bearer realm="` + audience + `", error="invalid_token"`

	// The rows run in order: "replayed proof" sends the proof
	// "replay original" used.
	rows := []struct {
		name      string
		hc        *http.Client
		authz     string
		proof     string
		status    int
		challenge string // a substring of WWW-Authenticate; "" for 200
	}{
		{"dpop holder", plain, "DPoP " + dt.AccessToken, proof(holder, dt.AccessToken), 200, ""},
		{"replay original", plain, "DPoP " + dt.AccessToken, replayed, 200, ""},
		{"replayed proof", plain, "DPoP " + dt.AccessToken, replayed, 401, `DPoP error="invalid_dpop_proof"`},
		{"dpop proof from another key", plain, "DPoP " + dt.AccessToken, proof(thief, dt.AccessToken), 401, `DPoP error="invalid_token"`},
		{"dpop without proof", plain, "DPoP " + dt.AccessToken, "", 401, `DPoP error="invalid_dpop_proof"`},
		{"dpop token under Bearer", plain, "Bearer " + dt.AccessToken, "", 401, bearerInvalidToken},
		{"dpop token under Bearer with proof", plain, "Bearer " + dt.AccessToken, proof(holder, dt.AccessToken), 401, `error="invalid_token"`},
		{"mtls holder", withC1, "Bearer " + mt.AccessToken, "", 200, ""},
		{"mtls without certificate", plain, "Bearer " + mt.AccessToken, "", 401, bearerInvalidToken},
		{"mtls with another certificate", withC2, "Bearer " + mt.AccessToken, "", 401, bearerInvalidToken},
		{"mtls token under DPoP from a thief", plain, "DPoP " + mt.AccessToken, proof(thief, mt.AccessToken), 401, `error="invalid_token"`},
	}
	for _, r := range rows {
		got := call(t, r.hc, target, r.authz, r.proof)
		if got.status != r.status || !strings.Contains(got.challenge, r.challenge) {
			t.Errorf("%s: got %d %q, want %d with %q", r.name, got.status, got.challenge, r.status, r.challenge)
		}
	}
}
