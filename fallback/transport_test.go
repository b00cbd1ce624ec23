package fallback_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

const (
	fbClientID = "svc"
	fbSecret   = "svc-secret-0123456789abcdef"
	fbAudience = "https://rs.fallback.test"
)

// issuer failure modes applied by fbWorld.setMode.
const (
	modeUp      int32 = iota
	modeFail503       // the token endpoint answers 503
	modeHang          // the token endpoint never answers in time
)

// fbWorld is a fallback deployment on loopback TLS: an issuer (token,
// certificate and CRL endpoints) on a fixed port that can be stopped and
// started again, a CRL distribution point that stays up, and a resource
// server with /read (scope read) and /write (scope write), both opting
// into the fallback.
type fbWorld struct {
	tlsCA    *certs.CA
	serverTC tls.Certificate
	root     *certs.CA
	ca       *fallback.CA
	asAddr   string
	asURL    string
	rsURL    string
	handler  http.Handler
	mode     atomic.Int32

	mu sync.Mutex
	as *http.Server
}

func newFBWorld(t *testing.T) *fbWorld {
	t.Helper()
	w := &fbWorld{}
	var err error
	if w.tlsCA, err = certs.NewCA(certs.Options{CommonName: "TLS CA"}); err != nil {
		t.Fatal(err)
	}
	leaf, err := w.tlsCA.Issue(certs.Options{CommonName: "localhost", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	w.serverTC = leaf.TLSCertificate()
	if w.root, err = certs.NewCA(certs.Options{CommonName: "Fallback CA"}); err != nil {
		t.Fatal(err)
	}
	if w.ca, err = fallback.NewCA(fallback.CAConfig{Certificate: w.root.Cert, Signer: w.root.Key}); err != nil {
		t.Fatal(err)
	}

	// The issuer's port is fixed for the whole test: stop and start
	// listen on it again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.asAddr = ln.Addr().String()
	w.asURL = "https://" + w.asAddr
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	// Tokens live 2 s: golang.org/x/oauth2 renews a token 10 s before it
	// expires, so every request goes to the token endpoint.
	is, err := issuer.New(issuer.Config{Issuer: w.asURL, Keys: ks, Audience: []string{fbAudience}, DefaultTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(issuer.Client{ID: fbClientID, AuthMethod: issuer.AuthSecretBasic,
		SecretHash: issuer.HashSecret(fbSecret), Scopes: []string{"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, Fallback: w.ca, ScopesSupported: []string{"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	inner := srv.Handler()
	w.handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == issuer.TokenPath {
			switch w.mode.Load() {
			case modeFail503:
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(rw, `{"error":"temporarily_unavailable"}`)
				return
			case modeHang:
				<-r.Context().Done()
				return
			}
		}
		inner.ServeHTTP(rw, r)
	})
	w.serve(t, ln)
	t.Cleanup(w.stop)

	// The CRL distribution point (a CDN in production) stays up while
	// the issuer is down.
	crlLn := w.listen(t, "127.0.0.1:0")
	crlSrv := &http.Server{Handler: w.ca.CRLHandler(), ErrorLog: quietLog()}
	go crlSrv.Serve(crlLn)
	t.Cleanup(func() { crlSrv.Close() })

	fetcher, err := fallback.NewCRLFetcher(fallback.CRLFetcherConfig{
		URL: "https://" + crlLn.Addr().String(), CA: w.root.Cert, Refresh: 50 * time.Millisecond,
		HTTPClient: &http.Client{Transport: w.plain()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fetcher.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	fetcher.Start(context.Background())
	t.Cleanup(func() { fetcher.Close() })
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store})
	if err != nil {
		t.Fatal(err)
	}
	fv, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: fetcher, Proofs: proofs})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	rsLn := w.listen(t, "127.0.0.1:0")
	w.rsURL = "https://" + rsLn.Addr().String()
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: w.asURL, Keys: keys}},
		Audience:   fbAudience,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
		Fallback:   fv,
		PublicURL:  w.rsURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, scope := range []string{"read", "write"} {
		mux.Handle("/"+scope, v.Middleware(resource.Policy{Scopes: []string{scope}, Fallback: true})(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			pr := resource.PrincipalFromContext(r.Context())
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(rw, "%s %s%s", pr.Binding, pr.ClientID, body)
		})))
	}
	rs := &http.Server{Handler: mux, ErrorLog: quietLog()}
	go rs.Serve(rsLn)
	t.Cleanup(func() { rs.Close() })
	return w
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// listen returns a TLS listener on addr that asks for (and does not
// require) client certificates.
func (w *fbWorld) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return w.tlsListener(ln)
}

func (w *fbWorld) tlsListener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{w.serverTC}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
}

func (w *fbWorld) serve(t *testing.T, ln net.Listener) {
	t.Helper()
	hs := &http.Server{Handler: w.handler, ErrorLog: quietLog()}
	w.mu.Lock()
	w.as = hs
	w.mu.Unlock()
	go hs.Serve(w.tlsListener(ln))
}

// stop stops the issuer: its port refuses connections.
func (w *fbWorld) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.as != nil {
		w.as.Close()
		w.as = nil
	}
}

// start starts the issuer again on its port.
func (w *fbWorld) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port is ours, but its closing may lag a little
		if ln, err = net.Listen("tcp", w.asAddr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.serve(t, ln)
}

// plain is a TLS transport trusting the test CA, presenting nothing.
func (w *fbWorld) plain() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.tlsCA.Pool(), MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
}

// fbClient is a client's side: its key, certificate source, token and
// fallback paths and the Transport switching between them.
type fbClient struct {
	src       *fallback.CertificateSource
	transport *fallback.Transport
	fallbacks atomic.Int32 // requests sent through the fallback path
	mu        sync.Mutex
	changes   []string
}

type countingRT struct {
	n  *atomic.Int32
	rt http.RoundTripper
}

func (c countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// newClient builds the client with a certificate for the scope read only
// (obtained while the issuer is up), and mTLS or signed requests as the
// fallback path.
func (w *fbWorld) newClient(t *testing.T, secret string, mtls bool) *fbClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &fbClient{}
	if c.src, err = fallback.NewCertificateSource(fallback.CertificateSourceConfig{
		Endpoint: w.asURL + issuer.CertificatePath, Key: key, ClientID: fbClientID, ClientSecret: fbSecret,
		Scopes: []string{"read"}, HTTPClient: &http.Client{Transport: w.plain(), Timeout: 5 * time.Second},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.src.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	dt := &dpop.Transport{Base: w.plain(), Prover: prover}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: dt, Timeout: 500 * time.Millisecond})
	cc := clientcredentials.Config{ClientID: fbClientID, ClientSecret: secret, TokenURL: w.asURL + issuer.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	tokens := &oauth2.Transport{Source: cc.TokenSource(ctx), Base: dt}

	var fb http.RoundTripper
	if mtls {
		tr := w.plain()
		tr.TLSClientConfig.GetClientCertificate = c.src.GetClientCertificate
		fb = tr
	} else {
		fb = c.src.SignedTransport(w.plain(), nil)
	}
	if c.transport, err = fallback.NewTransport(fallback.TransportConfig{
		Tokens:           tokens,
		Fallback:         countingRT{&c.fallbacks, fb},
		Probe:            fallback.ProbeURL(&http.Client{Transport: w.plain(), Timeout: time.Second}, w.asURL+issuer.MetadataPath),
		FailureThreshold: 2,
		OpenTimeout:      100 * time.Millisecond,
		ProbeTimeout:     time.Second,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnStateChange: func(from, to gobreaker.State) {
			c.mu.Lock()
			c.changes = append(c.changes, from.String()+">"+to.String())
			c.mu.Unlock()
		},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.transport.Close() })
	return c
}

func (c *fbClient) stateChanges() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.changes, " ")
}

// do sends method path (with body, replayable when getBody) and returns
// the status and body (a refusal's body is its JSON error code).
func (c *fbClient) do(t *testing.T, w *fbWorld, method, path, body string, getBody bool) (int, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.rsURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if !getBody {
		req.GetBody = nil
	}
	resp, err := (&http.Client{Transport: c.transport, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(data)), nil
}

func (c *fbClient) mustGet(t *testing.T, w *fbWorld, path string) (int, string) {
	t.Helper()
	status, body, err := c.do(t, w, http.MethodGet, path, "", true)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return status, body
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTransportIssuerOutage runs the whole story against a real issuer
// that is stopped and started again on its port, with each fallback
// presentation: calls with tokens; the issuer stops; the circuit opens
// and calls keep succeeding with the certificate, scopes enforced; a
// revoked certificate is refused after the CRL refresh; the issuer comes
// back, a probe closes the circuit and tokens are used again.
func TestTransportIssuerOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mtls bool
	}{{"signed request", false}, {"mTLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newFBWorld(t)
			c := w.newClient(t, fbSecret, tc.mtls)

			if status, body := c.mustGet(t, w, "/read"); status != http.StatusOK || body != "dpop svc" {
				t.Fatalf("issuer up: %d %q", status, body)
			}
			if c.fallbacks.Load() != 0 || c.transport.State() != gobreaker.StateClosed {
				t.Fatalf("issuer up: %d fallback requests, state %v", c.fallbacks.Load(), c.transport.State())
			}

			w.stop()
			// Each failed token request is counted, and the request is
			// sent again with the certificate: no call fails.
			for i := range 3 {
				if status, body := c.mustGet(t, w, "/read"); status != http.StatusOK || body != "fallback_certificate svc" {
					t.Fatalf("issuer down, call %d: %d %q", i, status, body)
				}
			}
			if st := c.transport.State(); st == gobreaker.StateClosed {
				t.Fatal("circuit still closed after the token endpoint failed twice")
			}
			if got := c.stateChanges(); !strings.HasPrefix(got, "closed>open") {
				t.Fatalf("state changes %q", got)
			}
			// A body with GetBody goes through as well.
			if status, body, err := c.do(t, w, http.MethodPost, "/read", "+payload", true); err != nil || status != http.StatusOK || body != "fallback_certificate svc+payload" {
				t.Fatalf("POST while open: %d %q %v", status, body, err)
			}
			// Scopes are the certificate's: read only.
			if status, body := c.mustGet(t, w, "/write"); status != http.StatusForbidden || body != `{"error":"insufficient_scope"}` {
				t.Fatalf("scope the certificate lacks: %d %q", status, body)
			}

			if err := w.ca.Revoke(t.Context(), c.src.Chain()[0].SerialNumber); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the revoked certificate is refused", func() bool {
				status, body := c.mustGet(t, w, "/read")
				return status == http.StatusUnauthorized && body == `{"error":"invalid_token"}`
			})

			w.start(t)
			waitFor(t, "a probe closes the circuit", func() bool { return c.transport.State() == gobreaker.StateClosed })
			before := c.fallbacks.Load()
			if status, body := c.mustGet(t, w, "/read"); status != http.StatusOK || body != "dpop svc" {
				t.Fatalf("issuer back: %d %q", status, body)
			}
			if c.fallbacks.Load() != before {
				t.Fatal("the fallback path was used after the circuit closed")
			}
			if got := c.stateChanges(); !strings.HasSuffix(got, "half-open>closed") || !strings.Contains(got, "open>half-open") {
				t.Fatalf("state changes %q", got)
			}
		})
	}
}

// TestTransportTokenEndpointFailures checks which token-endpoint failures
// open the circuit: connection refused, 5xx and timeouts do; a 4xx
// (wrong client secret) does not, and its error reaches the caller.
func TestTransportTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		secret   string
		apply    func(w *fbWorld)
		wantOpen bool
	}{
		{"connection refused", fbSecret, func(w *fbWorld) { w.stop() }, true},
		{"503", fbSecret, func(w *fbWorld) { w.mode.Store(modeFail503) }, true},
		{"timeout", fbSecret, func(w *fbWorld) { w.mode.Store(modeHang) }, true},
		{"401 invalid_client", "wrong-secret-0123456789", func(*fbWorld) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newFBWorld(t)
			c := w.newClient(t, tc.secret, false)
			tc.apply(w)
			for i := range 4 {
				status, body, err := c.do(t, w, http.MethodGet, "/read", "", true)
				if tc.wantOpen {
					if err != nil || status != http.StatusOK || body != "fallback_certificate svc" {
						t.Fatalf("call %d: %d %q %v", i, status, body, err)
					}
					continue
				}
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized {
					t.Fatalf("call %d: want the token endpoint's 401, got %d %q %v", i, status, body, err)
				}
			}
			open := c.transport.State() != gobreaker.StateClosed
			if open != tc.wantOpen {
				t.Fatalf("circuit open %v, want %v (changes %q)", open, tc.wantOpen, c.stateChanges())
			}
			if !tc.wantOpen && c.fallbacks.Load() != 0 {
				t.Fatalf("%d requests took the fallback path", c.fallbacks.Load())
			}
		})
	}
}

// TestTransportBodyReplay checks that a request whose body cannot be sent
// again is not replayed through the fallback path when its token request
// fails: the caller gets the token path's error.
func TestTransportBodyReplay(t *testing.T) {
	t.Parallel()
	w := newFBWorld(t)
	c := w.newClient(t, fbSecret, false)
	w.stop()
	_, _, err := c.do(t, w, http.MethodPost, "/read", "once", false)
	if err == nil || !fallback.IsTokenEndpointFailure(errors.Unwrap(err)) {
		t.Fatalf("body without GetBody: err %v, want the token endpoint failure", err)
	}
	if c.fallbacks.Load() != 0 {
		t.Fatal("a body without GetBody was sent through the fallback path")
	}
	status, body, err := c.do(t, w, http.MethodPost, "/read", "twice", true)
	if err != nil || status != http.StatusOK || body != "fallback_certificate svctwice" {
		t.Fatalf("body with GetBody: %d %q %v", status, body, err)
	}
}

// TestTransportResourceErrorsDoNotCount checks that neither a resource's
// refusal nor a resource that is down opens the circuit.
func TestTransportResourceErrorsDoNotCount(t *testing.T) {
	t.Parallel()
	w := newFBWorld(t)
	c := w.newClient(t, fbSecret, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "https://" + ln.Addr().String() + "/read"
	ln.Close()
	for range 4 {
		if status, _ := c.mustGet(t, w, "/missing-route"); status != http.StatusNotFound {
			t.Fatalf("status %d, want 404", status)
		}
		req, _ := http.NewRequest(http.MethodGet, deadURL, nil)
		if _, err := c.transport.RoundTrip(req); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("resource down: %v", err)
		}
	}
	if st := c.transport.State(); st != gobreaker.StateClosed || c.fallbacks.Load() != 0 {
		t.Fatalf("state %v, %d fallback requests", st, c.fallbacks.Load())
	}
}

// TestIsTokenEndpointFailure is the classification table.
func TestIsTokenEndpointFailure(t *testing.T) {
	t.Parallel()
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"500", &oauth2.RetrieveError{Response: resp(500)}, true},
		{"503 wrapped", fmt.Errorf("token: %w", &oauth2.RetrieveError{Response: resp(503)}), true},
		{"400 invalid_grant", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, false},
		{"401 invalid_client", &oauth2.RetrieveError{Response: resp(401), ErrorCode: "invalid_client"}, false},
		{"429", &oauth2.RetrieveError{Response: resp(429)}, false},
		{"no response", &oauth2.RetrieveError{}, false},
		{"token client: refused", &url.Error{Op: "Post", URL: "https://as.test/token", Err: refused}, true},
		{"token client: timeout", &url.Error{Op: "Post", URL: "https://as.test/token", Err: context.DeadlineExceeded}, true},
		{"token client: canceled", &url.Error{Op: "Post", URL: "https://as.test/token", Err: context.Canceled}, false},
		{"resource transport: refused", refused, false},
		{"resource transport: other", errors.New("net/http: TLS handshake timeout"), false},
		{"canceled", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := fallback.IsTokenEndpointFailure(tc.err); got != tc.want {
				t.Fatalf("IsTokenEndpointFailure = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCertificateSourceRenew renews a certificate for the same key while
// the issuer is up, keeps the current one while it is down, and renews in
// the background once the margin is reached.
func TestCertificateSourceRenew(t *testing.T) {
	t.Parallel()
	w := newFBWorld(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	renewed := make(chan error, 16)
	cfg := fallback.CertificateSourceConfig{
		Endpoint: w.asURL + issuer.CertificatePath, Key: key, ClientID: fbClientID, ClientSecret: fbSecret,
		HTTPClient: &http.Client{Transport: w.plain(), Timeout: 5 * time.Second},
		Retry:      50 * time.Millisecond,
		OnRenew: func(err error) {
			select {
			case renewed <- err:
			default: // the test reads only the outcomes it waits for
			}
		},
	}
	src, err := fallback.NewCertificateSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if src.Chain() != nil {
		t.Fatal("chain before the first renewal")
	}
	// Start with no certificate: renews at once.
	src.Start(t.Context())
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	src.Close()
	first := src.Chain()
	if len(first) != 2 || !first[0].PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatalf("chain %v", first)
	}

	w.stop()
	if err := src.Renew(t.Context()); err == nil {
		t.Fatal("renewal succeeded with the issuer down")
	}
	<-renewed
	if got := src.Chain(); got[0] != first[0] {
		t.Fatal("failed renewal replaced the chain")
	}

	// A margin longer than the lifetime: due at once; retried every 50 ms
	// until the issuer is back.
	cfg.Chain, cfg.RenewBefore = first, 100*365*24*time.Hour
	src2, err := fallback.NewCertificateSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src2.Start(t.Context())
	defer src2.Close()
	if err := <-renewed; err == nil {
		t.Fatal("renewal succeeded with the issuer down")
	}
	w.start(t)
	for err := range renewed {
		if err == nil {
			break
		}
	}
	if got := src2.Chain(); got[0].SerialNumber.Cmp(first[0].SerialNumber) == 0 || !got[0].PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("background renewal did not install a new certificate for the same key")
	}

	// A chain for another key is refused.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := fallback.NewCertificateSource(fallback.CertificateSourceConfig{Endpoint: cfg.Endpoint, Key: other, ClientID: fbClientID, Chain: first}); err == nil {
		t.Fatal("a chain for another key was accepted")
	}
}

// TestCertificateSourceRefusals checks that an issuer refusal keeps the
// chain and that the error carries the RFC 6749 code only.
func TestCertificateSourceRefusals(t *testing.T) {
	t.Parallel()
	w := newFBWorld(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name, secret string
		scopes       []string
		want         string
	}{
		{"wrong secret", "wrong-secret-0123456789", nil, "401 invalid_client"},
		{"scope not registered", fbSecret, []string{"admin"}, "400 invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := fallback.NewCertificateSource(fallback.CertificateSourceConfig{
				Endpoint: w.asURL + issuer.CertificatePath, Key: key, ClientID: fbClientID, ClientSecret: tc.secret, Scopes: tc.scopes,
				HTTPClient: &http.Client{Transport: w.plain(), Timeout: 5 * time.Second},
			})
			if err != nil {
				t.Fatal(err)
			}
			err = src.Renew(t.Context())
			if err == nil || !strings.HasSuffix(err.Error(), tc.want) || strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("err %v, want one ending in %q", err, tc.want)
			}
			if src.Chain() != nil {
				t.Fatal("a refusal installed a chain")
			}
		})
	}
}

func TestNewTransportConfig(t *testing.T) {
	t.Parallel()
	rt := http.DefaultTransport
	probe := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  fallback.TransportConfig
	}{
		{"no tokens", fallback.TransportConfig{Fallback: rt, Probe: probe}},
		{"no fallback", fallback.TransportConfig{Tokens: rt, Probe: probe}},
		{"no probe", fallback.TransportConfig{Tokens: rt, Fallback: rt}},
		{"negative timeout", fallback.TransportConfig{Tokens: rt, Fallback: rt, Probe: probe, OpenTimeout: -1}},
	} {
		if _, err := fallback.NewTransport(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestCertificateSourceRetryPacing checks that a certificate that is due
// at once after its renewal (a margin longer than its lifetime) does not
// make the background loop ask the issuer again and again: attempts are
// Retry apart.
func TestCertificateSourceRetryPacing(t *testing.T) {
	t.Parallel()
	w := newFBWorld(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var attempts atomic.Int32
	src, err := fallback.NewCertificateSource(fallback.CertificateSourceConfig{
		Endpoint: w.asURL + issuer.CertificatePath, Key: key, ClientID: fbClientID, ClientSecret: fbSecret,
		HTTPClient:  &http.Client{Transport: w.plain(), Timeout: 5 * time.Second},
		RenewBefore: 100 * 365 * 24 * time.Hour,
		Retry:       200 * time.Millisecond,
		OnRenew:     func(error) { attempts.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	src.Start(t.Context())
	time.Sleep(500 * time.Millisecond)
	src.Close()
	if n := attempts.Load(); n < 1 || n > 4 {
		t.Fatalf("%d renewal attempts in 500 ms with Retry 200 ms", n)
	}
}

// rtFunc is an http.RoundTripper from a function.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkTransportOverhead measures what the circuit adds to a request
// on the token path (closed) and on the fallback path (open), beside the
// same RoundTripper called directly, with paths that answer at once.
func BenchmarkTransportOverhead(b *testing.B) {
	ok := rtFunc(func(*http.Request) (*http.Response, error) { return &http.Response{StatusCode: 200}, nil })
	down := rtFunc(func(*http.Request) (*http.Response, error) {
		return nil, &url.Error{Op: "Post", URL: "https://as.test/token", Err: syscall.ECONNREFUSED}
	})
	req, _ := http.NewRequest(http.MethodGet, "https://rs.test/read", nil)
	for _, bc := range []struct {
		name   string
		tokens http.RoundTripper
	}{{"closed", ok}, {"open", down}} {
		tr, err := fallback.NewTransport(fallback.TransportConfig{Tokens: bc.tokens, Fallback: ok, Probe: func(context.Context) error { return errors.New("down") },
			OpenTimeout: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		for range fallback.DefaultFailureThreshold {
			tr.RoundTrip(req)
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		tr.Close()
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			ok.RoundTrip(req)
		}
	})
}
