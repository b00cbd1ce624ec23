// Package interop runs the module against independent implementations
// installed from the npm registry (versions pinned in package.json and
// package-lock.json):
//   - panva's oidc-provider, an OpenID-certified authorization server, as a
//     foreign issuer of DPoP-bound and certificate-bound JWT access tokens
//     (issuer.mjs), in front of the module's resource server;
//   - Auth0's express-oauth2-jwt-bearer as a foreign resource server
//     (resource.mjs) for the module's issuer.
//
// The tests start the glue scripts on 127.0.0.1 with certificates they
// generate, run the conformance suite against each pairing and pin its
// verdicts. When Node, npm or the packages are missing (npm ci is tried
// first) the tests skip, unless SENDERBOUND_REQUIRE_INTEROP=1 (set in CI),
// where they fail.
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
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
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
	// signer is the foreign issuer's access-token key, made by the test
	// so that the suite can forge tokens with it.
	signer *jose.JSONWebKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "interop CA"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, signer: &jose.JSONWebKey{Key: key, KeyID: "interop-es256", Algorithm: "ES256", Use: "sig"}}
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
// With trustAnyCA the issuer authenticates mTLS clients by subject DN
// whatever CA issued their certificate (a misconfiguration).
func startForeignIssuer(t *testing.T, p *pki, trustAnyCA bool) *foreignIssuer {
	t.Helper()
	files := p.files(t)
	u := startNode(t, "issuer.mjs", map[string]any{
		"serverCert":   files.serverCert,
		"serverKey":    files.serverKey,
		"clientCA":     files.ca,
		"signingKey":   p.signer,
		"resource":     audience,
		"dpopClient":   map[string]string{"id": dpopClientID, "secret": dpopClientSecret},
		"mtlsClient":   map[string]string{"id": mtlsClientID, "subjectDN": "CN=" + mtlsClientID},
		"introspector": map[string]string{"id": introspectorID, "secret": introspectorPass},
		"trustAnyCA":   trustAnyCA,
	})
	return &foreignIssuer{URL: u}
}

// pkiFiles are the PEM files of a pki.
type pkiFiles struct{ serverCert, serverKey, ca string }

func (p *pki) files(t *testing.T) pkiFiles {
	t.Helper()
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
	return pkiFiles{
		serverCert: write("server.pem", certs.EncodeCertificates(p.server.Cert)),
		serverKey:  write("server-key.pem", key),
		ca:         write("ca.pem", certs.EncodeCertificates(p.ca.Cert)),
	}
}

// startNode runs a glue script with its configuration written to a file,
// and returns the URL it announces on its "READY <url>" line. The process
// ends with the test: the script exits when its stdin closes.
func startNode(t *testing.T, script string, cfg map[string]any) string {
	t.Helper()
	node, err := nodeWithPackages()
	if err != nil {
		unavailable(t, "foreign implementations unavailable: %v", err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, path)
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
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, stderr.String())
		}
	})
	// ready receives the URL, or "" when stdout ends first (the process
	// exited).
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- u
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- ""
	}()
	// Generous: node starts slowly on a loaded machine.
	select {
	case u := <-ready:
		if u == "" {
			t.Fatalf("%s exited before it was ready (its stderr follows)", script)
		}
		return u
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60 s (its stderr follows)", script)
	}
	return ""
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
	// DPOP-RS-25 sends plain HTTP to this TLS listener on purpose.
	rs.Config.ErrorLog = log.New(io.Discard, "", 0)
	rs.StartTLS()
	t.Cleanup(rs.Close)
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: iss.URL, Keys: ks}},
		Audience:   audience,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256", "PS256", "RS256", "EdDSA"}, ReplayStore: store},
		PublicURL:  rs.URL,
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
	iss := startForeignIssuer(t, p, false)
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

// foreignTarget describes the foreign issuer behind the module's resource
// server for the conformance suite (profile both).
func foreignTarget(p *pki, iss *foreignIssuer, rs *httptest.Server) conformance.Target {
	c1, c2 := p.c1.TLSCertificate(), p.c2.TLSCertificate()
	return conformance.Target{
		TokenEndpoint:             iss.tokenEndpoint(),
		ClientID:                  dpopClientID,
		ClientSecret:              dpopClientSecret,
		Scope:                     scope,
		ResourceScope:             scope,
		Profile:                   conformance.ProfileBoth,
		Resource:                  rs.URL + "/resource",
		Issuer:                    iss.URL,
		Audience:                  audience,
		ClientCert:                &c1,
		MTLSClientID:              mtlsClientID,
		SecondClientCert:          &c2,
		RootCAs:                   p.ca.Pool(),
		IssuerKey:                 p.signer,
		MetadataURL:               iss.URL + "/.well-known/openid-configuration",
		IntrospectionEndpoint:     iss.URL + "/token/introspection",
		IntrospectionClientID:     introspectorID,
		IntrospectionClientSecret: introspectorPass,
		// Generous: a loaded machine must not turn a slow answer into a
		// finding.
		Timeout: 30 * time.Second,
	}
}

// pin is a verdict the interop test holds the suite to: the tier of a
// case, or of one named check within it, and optionally its RFC level.
type pin struct {
	id, check string
	tier      conformance.Tier
	level     conformance.Level // "" for any
}

// verdicts are what a run against a foreign implementation must report.
type verdicts struct {
	attacks     []string // ids of the cases with an accepted attack, sorted
	missing     []string // ids of the cases with a missing feature, sorted
	wrongAtMust []string // ids of the cases with a MUST-level wrong refusal, sorted
	pins        []pin
}

// checkVerdicts compares a report with the verdicts pinned for it.
func checkVerdicts(t *testing.T, rep *conformance.Report, want verdicts) {
	t.Helper()
	var attacks, missing, wrongAtMust []string
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.AttacksAccepted() {
			attacks = append(attacks, r.ID)
		}
		if r.Tier == conformance.TierMissingFeature {
			missing = append(missing, r.ID)
		}
		for _, c := range r.Checks {
			if c.Tier == conformance.TierWrongRefusal && c.Level == conformance.LevelMust {
				wrongAtMust = append(wrongAtMust, r.ID)
				break
			}
		}
	}
	for _, x := range []struct {
		what      string
		got, want []string
	}{
		{"accepted attacks", attacks, want.attacks},
		{"missing features", missing, want.missing},
		{"MUST-level wrong refusals", wrongAtMust, want.wrongAtMust},
	} {
		slices.Sort(x.got)
		if !slices.Equal(x.got, x.want) {
			t.Errorf("%s %v, want %v", x.what, x.got, x.want)
		}
	}
	if failed := len(want.attacks) > 0 || len(want.missing) > 0; rep.Failed() != failed {
		t.Errorf("Failed() = %v, want %v", rep.Failed(), failed)
	}
	for _, pn := range want.pins {
		res, ok := rep.Result(pn.id)
		if !ok {
			t.Errorf("%s did not run", pn.id)
			continue
		}
		tier, level, reason := res.Tier, res.Level, res.Reason
		if pn.check != "" {
			ch, ok := res.Check(pn.check)
			if !ok {
				t.Errorf("%s has no check %q", pn.id, pn.check)
				continue
			}
			tier, level, reason = ch.Tier, ch.Level, ch.Reason
		}
		if tier != pn.tier || (pn.level != "" && level != pn.level) {
			t.Errorf("%s %q: %s at %s, want %s at %s (%s)", pn.id, pn.check, tier, level, pn.tier, pn.level, reason)
		}
	}
}

// TestConformanceForeignIssuer runs the whole catalogue (profile both)
// against the foreign issuer behind the module's resource server, and pins
// the verdicts: which attacks were accepted (by RFC section), which
// features are missing, that no refusal is graded wrong, and the tiers of
// the cases that decide whether foreign tokens are bound and checked.
//
// As configured, the foreign issuer accepts no attack. It does not
// introspect its own JWT access tokens: a valid one is answered
// active=false, where RFC 7662 §2.2 requires active=true and RFC 9449
// §6.2 the cnf.jkt member. Two MUST-level missing features, without a
// security consequence (the answer fails closed). Misconfigured to authenticate mTLS clients by
// subject DN alone, whatever CA issued the certificate, it accepts a
// certificate from another CA (RFC 8705 §2.1, §7.4): the suite reports
// accepted attacks.
func TestConformanceForeignIssuer(t *testing.T) {
	t.Parallel()
	// Verdicts that hold in every configuration below.
	common := []pin{
		{"DPOP-AS-01", "", conformance.TierPass, ""},                  // token_type DPoP, cnf.jkt of the proof key (RFC 9449 §5, §6)
		{"DPOP-AS-05", "", conformance.TierPass, ""},                  // cnf.jkt is the RFC 7638 thumbprint (RFC 9449 §6.1)
		{"DPOP-AS-09", "", conformance.TierPass, ""},                  // token_type DPoP iff cnf.jkt (RFC 9449 §5)
		{"MTLS-CB-01", "", conformance.TierPass, ""},                  // bound to C1 (RFC 8705 §3)
		{"MTLS-CB-02", "", conformance.TierPass, ""},                  // canonical x5t#S256 (RFC 8705 §3.1)
		{"ATV-01", "", conformance.TierPass, ""},                      // signed with a key from the discovered jwks_uri
		{"ATV-03", "", conformance.TierPass, ""},                      // typ at+jwt (RFC 9068 §2.1)
		{"ATV-08", "", conformance.TierPass, ""},                      // cnf with jkt
		{"MTLS-CA-03", "C2 for the client", conformance.TierPass, ""}, // another registered-CA certificate is not the client (RFC 8705 §2)
		{"DPOP-RS-15", "", conformance.TierPass, ""},                  // a replayed proof is refused (RFC 9449 §11.1)
		{"DPOP-RS-19", "K2 proof with AT1", conformance.TierPass, ""}, // a stolen DPoP token with the thief's key (RFC 9449 §4.3, §7.1)
		{"ERR-13", "scheme Bearer", conformance.TierPass, ""},         // Bearer downgrade of a DPoP token (RFC 9449 §7.2)
		{"MTLS-CB-10", "no certificate", conformance.TierPass, ""},    // a stolen certificate-bound token without the certificate (RFC 8705 §3)
		{"ADV-84", "no certificate", conformance.TierPass, ""},        // the same, adversarial catalogue
		{"DPOP-AS-12", "", conformance.TierMissingFeature, ""},        // its own valid JWT access token introspects as active=false
		{"DPOP-AS-13", "", conformance.TierMissingFeature, ""},        // the same, without a proof
		{"ATV-31", "", conformance.TierPass, ""},                      // an expired token introspects as active=false
		{"DPOP-AS-14", "", conformance.TierSkip, ""},                  // no nonces configured at the token endpoint
	}
	missing := []string{"DPOP-AS-12", "DPOP-AS-13"}
	for _, c := range []struct {
		name       string
		trustAnyCA bool
		attacks    []string // accepted attacks, sorted
		pins       []pin
	}{
		{name: "as configured", pins: []pin{
			{"MTLS-CA-04", "", conformance.TierPass, ""}, // self-signed with C1's DN: invalid_client
			{"ADV-91", "", conformance.TierPass, ""},     // C1's DN from another CA: invalid_client
			{"MTLS-CA-17", "", conformance.TierPass, ""}, // only the configured trust anchors
		}},
		{name: "trusting any CA", trustAnyCA: true, attacks: []string{"ADV-91", "MTLS-CA-04", "MTLS-CA-17"}, pins: []pin{
			{"MTLS-CA-04", "", conformance.TierAcceptedAttack, ""}, // self-signed with C1's DN (RFC 8705 §2.1)
			{"ADV-91", "", conformance.TierAcceptedAttack, ""},     // RFC 8705 §2.1, §7.4
			{"MTLS-CA-17", "", conformance.TierAcceptedAttack, ""}, // RFC 8705 §7.4
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			iss := startForeignIssuer(t, p, c.trustAnyCA)
			rs := ourResource(t, p, iss)
			ctx, cancel := context.WithTimeout(t.Context(), 75*time.Second)
			defer cancel()
			rep, err := conformance.Run(ctx, foreignTarget(p, iss, rs), conformance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkVerdicts(t, rep, verdicts{attacks: c.attacks, missing: missing, pins: append(slices.Clone(common), c.pins...)})
			if t.Failed() || testing.Verbose() {
				var b strings.Builder
				_ = rep.WriteText(&b)
				t.Log("\n" + b.String())
			}
		})
	}
}

// TestPreflightForeignIssuer: a run misdescribing the foreign issuer stops
// at the preflight with a one-line cause, before any case.
func TestPreflightForeignIssuer(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	iss := startForeignIssuer(t, p, false)
	rs := ourResource(t, p, iss)
	other := newPKI(t)
	for _, c := range []struct {
		name   string
		mutate func(*conformance.Target)
		cause  string
	}{
		{"wrong client secret", func(tg *conformance.Target) { tg.ClientSecret = "not-the-secret-0123456789" }, "invalid_client at the token endpoint"},
		{"certificate not registered", func(tg *conformance.Target) {
			c2 := p.c2.TLSCertificate()
			tg.ClientCert = &c2
		}, "invalid_client at the token endpoint (mTLS client " + mtlsClientID + ")"},
		{"unknown server CA", func(tg *conformance.Target) { tg.RootCAs = other.ca.Pool() }, "TLS: unknown authority at the token endpoint"},
		{"wrong resource URL", func(tg *conformance.Target) { tg.Resource = iss.URL + "/no-such-resource" }, "the resource refused a valid DPoP request: status 404"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tg := foreignTarget(p, iss, rs)
			c.mutate(&tg)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			rep, err := conformance.Run(ctx, tg, conformance.Options{})
			var pe *conformance.PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("Run = %v, %v; want a preflight error", rep != nil, err)
			}
			if !strings.Contains(pe.Cause, c.cause) {
				t.Errorf("cause %q, want it to contain %q", pe.Cause, c.cause)
			}
			if strings.Contains(pe.Cause, dpopClientSecret) || strings.Contains(pe.Cause, "not-the-secret") {
				t.Errorf("cause %q carries the client secret", pe.Cause)
			}
		})
	}
}

// ourIssuer starts the module's issuer on loopback TLS (client
// credentials for a client_secret_basic client and a tls_client_auth
// client, token introspection), issuing tokens for audience, and
// describes it with a foreign resource as a conformance target.
func ourIssuer(t *testing.T, p *pki) (url string, key *jose.JSONWebKey) {
	t.Helper()
	h := &lateHandler{}
	as := httptest.NewUnstartedServer(h)
	as.TLS = &tls.Config{Certificates: []tls.Certificate{p.server.TLSCertificate()}, ClientAuth: tls.RequestClientCert}
	as.StartTLS()
	t.Cleanup(as.Close)
	signer, ok := p.signer.Key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatal("the test signing key is not ECDSA")
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	is, err := issuer.New(issuer.Config{Issuer: as.URL, Keys: ks, Audience: []string{audience}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(
		issuer.Client{ID: dpopClientID, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(dpopClientSecret), Scopes: []string{scope},
			GrantTypes: []string{issuer.GrantClientCredentials}},
		issuer.Client{ID: mtlsClientID, AuthMethod: issuer.AuthTLSClient, Scopes: []string{scope},
			Certificate: mtlsbound.PKIAuth{Roots: p.ca.Pool(), SubjectDN: "CN=" + mtlsClientID}},
		issuer.Client{ID: introspectorID, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(introspectorPass), Introspect: true, IntrospectAll: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, MTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	h.set(srv.Handler())
	return as.URL, &jose.JSONWebKey{Key: signer, KeyID: ks.ActiveKeyID(), Algorithm: "ES256"}
}

// startForeignResource starts resource.mjs trusting issuerURL and returns
// the URL of its protected resource.
func startForeignResource(t *testing.T, p *pki, issuerURL string) string {
	t.Helper()
	files := p.files(t)
	return startNode(t, "resource.mjs", map[string]any{
		"serverCert": files.serverCert,
		"serverKey":  files.serverKey,
		"ca":         files.ca,
		"issuer":     issuerURL,
		"audience":   audience,
	}) + "/resource"
}

// TestForeignResourceTokens: the foreign resource server accepts the
// module issuer's DPoP-bound and certificate-bound tokens from their
// holder.
func TestForeignResourceTokens(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	issURL, _ := ourIssuer(t, p)
	target := startForeignResource(t, p, issURL)
	iss := &foreignIssuer{URL: issURL}
	plain, withC1 := client(p, nil), client(p, p.c1)
	holder := newProver(t)
	dt := token(t, plain, iss, dpopClientID, dpopClientSecret, holder)
	mt := token(t, withC1, iss, mtlsClientID, "", nil)
	proof, err := holder.Proof(http.MethodGet, target, dpop.ProofOptions{AccessToken: dt.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name  string
		hc    *http.Client
		authz string
		proof string
	}{
		{"dpop holder", plain, "DPoP " + dt.AccessToken, proof},
		{"mtls holder", withC1, "Bearer " + mt.AccessToken, ""},
	} {
		if got := call(t, r.hc, target, r.authz, r.proof); got.status != http.StatusOK {
			t.Errorf("%s: got %d %q, want 200", r.name, got.status, got.challenge)
		}
	}
}

// TestConformanceForeignResource runs the whole catalogue (profile both)
// against the foreign resource server with the module's issuer, and pins
// the verdicts: the attacks it accepts, each with the RFC section of its
// case; its refusals with 400 graded SHOULD-level where no MUST requires
// 401, and MUST-level where RFC 8705 §3 does; and that stolen tokens are
// refused.
func TestConformanceForeignResource(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	issURL, key := ourIssuer(t, p)
	res := startForeignResource(t, p, issURL)
	c1, c2 := p.c1.TLSCertificate(), p.c2.TLSCertificate()
	tg := conformance.Target{
		TokenEndpoint:             issURL + issuer.TokenPath,
		ClientID:                  dpopClientID,
		ClientSecret:              dpopClientSecret,
		Scope:                     scope,
		ResourceScope:             scope,
		Profile:                   conformance.ProfileBoth,
		Resource:                  res,
		Issuer:                    issURL,
		Audience:                  audience,
		ClientCert:                &c1,
		MTLSClientID:              mtlsClientID,
		SecondClientCert:          &c2,
		RootCAs:                   p.ca.Pool(),
		IssuerKey:                 key,
		MetadataURL:               issURL + issuer.MetadataPath,
		IntrospectionEndpoint:     issURL + issuer.IntrospectionPath,
		IntrospectionClientID:     introspectorID,
		IntrospectionClientSecret: introspectorPass,
		Timeout:                   30 * time.Second,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Second)
	defer cancel()
	rep, err := conformance.Run(ctx, tg, conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, rep, verdicts{
		// Each with the RFC section its case cites.
		attacks: []string{
			"ADV-107",    // 8 of 8 concurrent copies of one proof accepted (RFC 9449 §11.1; policy)
			"ADV-21",     // RSA private-key (CRT) members in the proof's jwk (RFC 9449 §4.3 (7))
			"ADV-28",     // jwk alg RS256 on another key type (RFC 7517 §4.2-4.4; policy)
			"ADV-36",     // jti a number (RFC 9449 §4.2)
			"ADV-38",     // htu twice in the proof (RFC 7515 §4; RFC 7519 §4; policy)
			"ADV-39",     // invalid UTF-8 in jti (RFC 8725 §3.7)
			"ADV-45",     // blank jti (RFC 9449 §4.2, §11.1)
			"ADV-48",     // lower-case htm (RFC 9449 §4.3 (8); RFC 9110 §9.1)
			"ADV-58",     // query in htu (RFC 9449 §4.2; policy)
			"ADV-59",     // userinfo in htu (RFC 9449 §4.3 (9))
			"ADV-74",     // two Authorization fields (RFC 6750 §3.1; RFC 9110 §5.3)
			"ADV-76",     // proof in the standard base64 alphabet (RFC 9449 §4.3 (2))
			"DPOP-RS-15", // a replayed proof (RFC 9449 §11.1; policy)
			"ERR-12",     // two Authorization fields (RFC 6750 §2, §3.1; RFC 9449 §7.2)
			"MTLS-CB-16", // a token bound to key and certificate, with the proof only (RFC 7800 §3.1; policy)
		},
		// RFC 8705 §3 mandates 401 invalid_token; it answers 400.
		wrongAtMust: []string{"ADV-84", "ADV-85", "DPOP-RS-21", "ERR-17", "MTLS-CB-10"},
		pins: []pin{
			{"DPOP-RS-15", "", conformance.TierAcceptedAttack, conformance.LevelPolicy},
			{"ADV-107", "", conformance.TierAcceptedAttack, conformance.LevelPolicy},
			{"ADV-48", "lower-case htm", conformance.TierAcceptedAttack, conformance.LevelMust},
			{"ADV-59", "userinfo", conformance.TierAcceptedAttack, conformance.LevelMust},
			{"ERR-12", "two Authorization fields", conformance.TierAcceptedAttack, conformance.LevelMust},
			// 400 invalid_dpop_proof for a refused proof: a SHOULD-level
			// deviation (RFC 9449 §7.1, RFC 6750 §3.1), not a MUST failure.
			{"DPOP-RS-02", "value x", conformance.TierWrongRefusal, conformance.LevelShould},
			{"MTLS-CB-10", "no certificate", conformance.TierWrongRefusal, conformance.LevelMust},
			// Stolen tokens are refused.
			{"DPOP-RS-19", "K2 proof with AT1", conformance.TierPass, ""},
			{"ERR-13", "scheme Bearer", conformance.TierPass, ""},
			{"MTLS-CB-09", "", conformance.TierPass, ""},
			// Strict mode: the RFC 9068 typ and claims are required.
			{"ATV-10", "", conformance.TierPass, ""},
			{"ATV-17", "", conformance.TierPass, ""},
		},
	})
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		_ = rep.WriteText(&b)
		t.Log("\n" + b.String())
	}
}
