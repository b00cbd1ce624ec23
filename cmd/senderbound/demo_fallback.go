package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// The fallback story's client and routes.
const (
	demoFallbackClient = "billing"
	demoFallbackWrite  = "write"
	// Short timings keep the story fast: the circuit opens after two
	// token-endpoint failures, the issuer is probed every 100 ms while it
	// is down, and the resource fetches the CRL every 100 ms.
	demoFallbackThreshold = 2
	demoFallbackProbe     = 100 * time.Millisecond
	demoFallbackCRL       = 100 * time.Millisecond
)

// fallbackDemo is the fallback story's deployment: an issuer that is also
// the fallback CA, on a fixed port so that it can be stopped and started
// again; the CRL distribution point (a CDN in production), which stays up
// while the issuer is down; and a resource whose routes accept the
// fallback certificate for requests without a token.
type fallbackDemo struct {
	asURL, asAddr, crlURL, rsURL string
	secret                       string
	roots                        *x509.CertPool
	serverCert                   tls.Certificate
	ca                           *fallback.CA
	handler                      http.Handler
	fetcher                      *fallback.CRLFetcher

	mu      sync.Mutex
	as      *http.Server
	servers []*http.Server
	client  *fallbackClient
}

// startFallbackDemo starts the fallback story's servers on 127.0.0.1 with
// the demo's server certificate.
func startFallbackDemo(serverCert tls.Certificate, roots *x509.CertPool) (f *fallbackDemo, err error) {
	f = &fallbackDemo{roots: roots, serverCert: serverCert}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.secret, err = randomSecret(); err != nil {
		return nil, err
	}
	root, err := certs.NewCA(certs.Options{CommonName: "senderbound demo fallback CA", TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	if f.ca, err = fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Lifetime: time.Hour}); err != nil {
		return nil, err
	}
	asLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.asAddr = asLn.Addr().String()
	f.asURL = "https://" + f.asAddr
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		asLn.Close()
		return nil, err
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		asLn.Close()
		return nil, err
	}
	// Tokens live 2 s, so that every call asks the token endpoint (x/oauth2
	// renews a token 10 s before it expires): the outage shows at once.
	is, err := issuer.New(issuer.Config{Issuer: f.asURL, Keys: ks, Audience: []string{demoAudience}, DefaultTTL: 2 * time.Second})
	if err != nil {
		asLn.Close()
		return nil, err
	}
	reg, err := issuer.NewMemoryRegistry(issuer.Client{ID: demoFallbackClient, AuthMethod: issuer.AuthSecretBasic,
		SecretHash: issuer.HashSecret(f.secret), Scopes: []string{demoScope, demoFallbackWrite}})
	if err != nil {
		asLn.Close()
		return nil, err
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		asLn.Close()
		return nil, err
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, Fallback: f.ca, ScopesSupported: []string{demoScope, demoFallbackWrite}})
	if err != nil {
		asLn.Close()
		return nil, err
	}
	f.handler = srv.Handler()
	f.serveIssuer(asLn)

	crlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.crlURL = "https://" + crlLn.Addr().String() + issuer.CRLPath
	f.serve(crlLn, f.ca.CRLHandler())

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	if f.fetcher, err = fallback.NewCRLFetcher(fallback.CRLFetcherConfig{URL: f.crlURL, CA: root.Cert, HTTPClient: client, Refresh: demoFallbackCRL}); err != nil {
		return nil, err
	}
	if err := f.fetcher.Refresh(context.Background()); err != nil {
		return nil, err
	}
	f.fetcher.Start(context.Background())
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		return nil, err
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store})
	if err != nil {
		return nil, err
	}
	fv, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{root.Cert}, CRL: f.fetcher, Proofs: proofs})
	if err != nil {
		return nil, err
	}
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		return nil, err
	}
	rsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.rsURL = "https://" + rsLn.Addr().String()
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: f.asURL, Keys: keys}},
		Audience:   demoAudience,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
		Fallback:   fv,
		PublicURL:  f.rsURL,
	})
	if err != nil {
		rsLn.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	for _, scope := range []string{demoScope, demoFallbackWrite} {
		mux.Handle("/"+scope, v.Middleware(resource.Policy{Scopes: []string{scope}, Fallback: true})(http.HandlerFunc(serveResourceAnswer)))
	}
	f.serve(rsLn, mux)
	return f, nil
}

// serve serves h on ln over TLS until close.
func (f *fallbackDemo) serve(ln net.Listener, h http.Handler) *http.Server {
	hs := newHTTPServer(h)
	hs.ErrorLog = log.New(io.Discard, "", 0)
	f.mu.Lock()
	f.servers = append(f.servers, hs)
	f.mu.Unlock()
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{f.serverCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})
	go func() { _ = hs.Serve(tl) }()
	return hs
}

func (f *fallbackDemo) serveIssuer(ln net.Listener) {
	hs := f.serve(ln, f.handler)
	f.mu.Lock()
	f.as = hs
	f.mu.Unlock()
}

// stopIssuer stops the issuer: its port refuses connections.
func (f *fallbackDemo) stopIssuer() {
	f.mu.Lock()
	hs := f.as
	f.as = nil
	f.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
}

// startIssuer starts the issuer again on its port, with the same keys,
// clients and CA.
func (f *fallbackDemo) startIssuer(ctx context.Context) error {
	var lc net.ListenConfig
	for {
		ln, err := lc.Listen(ctx, "tcp", f.asAddr)
		if err == nil {
			f.serveIssuer(ln)
			return nil
		}
		// The closed listener's port may take a moment to be free.
		select {
		case <-ctx.Done():
			return fmt.Errorf("listening on %s again: %w", f.asAddr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *fallbackDemo) close() {
	if f.fetcher != nil {
		_ = f.fetcher.Close()
	}
	f.mu.Lock()
	servers, client := f.servers, f.client
	f.mu.Unlock()
	client.close()
	for _, s := range servers {
		_ = s.Close()
	}
}

// fallbackClient is the story's client: a certificate source and a
// fallback.Transport over DPoP-bound tokens and signed requests.
type fallbackClient struct {
	certs     *fallback.CertificateSource
	transport *fallback.Transport
	http      *http.Client
	mu        sync.Mutex
	changes   []string
}

func (c *fallbackClient) stateChanges() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.changes, ", ")
}

func (c *fallbackClient) close() {
	if c == nil {
		return
	}
	_ = c.transport.Close()
	_ = c.certs.Close()
}

// newFallbackClient builds the client: one P-256 key for its DPoP proofs
// and its certificate.
func (f *fallbackDemo) newFallbackClient() (*fallbackClient, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	plain := func() *http.Transport {
		return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots, MinVersion: tls.VersionTLS12}}
	}
	c := &fallbackClient{}
	if c.certs, err = fallback.NewCertificateSource(fallback.CertificateSourceConfig{
		Endpoint: f.asURL + issuer.CertificatePath, Key: key, ClientID: demoFallbackClient, ClientSecret: f.secret,
		Scopes: []string{demoScope}, HTTPClient: &http.Client{Transport: plain(), Timeout: 5 * time.Second},
	}); err != nil {
		return nil, err
	}
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		return nil, err
	}
	signer := &dpop.Transport{Base: plain(), Prover: prover}
	cc := clientcredentials.Config{ClientID: demoFallbackClient, ClientSecret: f.secret, TokenURL: f.asURL + issuer.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: signer, Timeout: 2 * time.Second})
	if c.transport, err = fallback.NewTransport(fallback.TransportConfig{
		Tokens:           &oauth2.Transport{Source: cc.TokenSource(tokenCtx), Base: signer},
		Fallback:         c.certs.SignedTransport(plain(), nil),
		Probe:            fallback.ProbeURL(&http.Client{Transport: plain(), Timeout: time.Second}, f.asURL+issuer.MetadataPath),
		FailureThreshold: demoFallbackThreshold,
		OpenTimeout:      demoFallbackProbe,
		ProbeTimeout:     time.Second,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnStateChange: func(from, to gobreaker.State) {
			c.mu.Lock()
			c.changes = append(c.changes, from.String()+" -> "+to.String())
			c.mu.Unlock()
		},
	}); err != nil {
		return nil, err
	}
	c.http = &http.Client{Transport: c.transport, Timeout: 10 * time.Second}
	return c, nil
}

// fallbackAnswer is the part of the resource's answer the story shows.
type fallbackAnswer struct {
	status   int
	Binding  string `json:"binding"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Error    string `json:"error"`
}

func (a fallbackAnswer) String() string {
	if a.status != http.StatusOK {
		return fmt.Sprintf("%d error=%s", a.status, a.Error)
	}
	return fmt.Sprintf("200 binding=%s client_id=%s scope=%q", a.Binding, a.ClientID, a.Scope)
}

// get calls the resource's route through the client's transport.
func (f *fallbackDemo) get(ctx context.Context, c *fallbackClient, route string) (fallbackAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.rsURL+"/"+route, nil)
	if err != nil {
		return fallbackAnswer{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fallbackAnswer{}, err
	}
	defer resp.Body.Close()
	a := fallbackAnswer{status: resp.StatusCode}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil {
		return a, fmt.Errorf("status %d with an answer that is not JSON", resp.StatusCode)
	}
	return a, nil
}

// waitUntil polls cond every 20 ms until it holds, for at most 10 s.
func waitUntil(ctx context.Context, what string, cond func() (bool, error)) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	for {
		ok, err := cond()
		if err != nil {
			return 0, err
		}
		if ok {
			return time.Since(start).Round(time.Millisecond), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("gave up waiting until %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fallbackSteps returns the fallback story: they share the client and run
// in order.
func (f *fallbackDemo) fallbackSteps() []demoStepFunc {
	var c *fallbackClient
	return []demoStepFunc{
		{"fallback: a client gets a certificate for its key with scope read only from the issuer's certificate endpoint", func(ctx context.Context) (string, error) {
			var err error
			if c, err = f.newFallbackClient(); err != nil {
				return "", err
			}
			f.mu.Lock()
			f.client = c
			f.mu.Unlock()
			if err := c.certs.Renew(ctx); err != nil {
				return "", err
			}
			leaf := c.certs.Chain()[0]
			scopes, err := fallback.ScopesFromCertificate(leaf, nil)
			if err != nil {
				return "", err
			}
			if len(scopes) != 1 || scopes[0] != demoScope {
				return "", fmt.Errorf("certificate scopes %q, want %q", scopes, demoScope)
			}
			return fmt.Sprintf("serial %s, %s, scopes %q, valid until %s", leaf.SerialNumber.Text(16), leaf.URIs[0], strings.Join(scopes, " "), leaf.NotAfter.UTC().Format(time.RFC3339)), nil
		}},
		{"fallback: with the issuer up, its calls carry DPoP-bound tokens", func(ctx context.Context) (string, error) {
			if c == nil {
				return "", errors.New("no client from the previous step")
			}
			a, err := f.get(ctx, c, demoScope)
			if err != nil {
				return "", err
			}
			if a.status != http.StatusOK || a.Binding != string(resource.BindingDPoP) {
				return "", fmt.Errorf("%v, want 200 with binding dpop", a)
			}
			if st := c.transport.State(); st != gobreaker.StateClosed {
				return "", fmt.Errorf("circuit %v, want closed", st)
			}
			return a.String() + ", circuit closed", nil
		}},
		{"fallback: the issuer is stopped; the circuit opens and calls keep succeeding with the certificate", func(ctx context.Context) (string, error) {
			if c == nil {
				return "", errors.New("no client from the previous step")
			}
			f.stopIssuer()
			var a fallbackAnswer
			for range demoFallbackThreshold + 1 {
				var err error
				if a, err = f.get(ctx, c, demoScope); err != nil {
					return "", err
				}
				if a.status != http.StatusOK || a.Binding != string(resource.BindingFallback) {
					return "", fmt.Errorf("%v, want 200 with binding %s", a, resource.BindingFallback)
				}
			}
			if st := c.transport.State(); st == gobreaker.StateClosed {
				return "", errors.New("the circuit is still closed")
			}
			return fmt.Sprintf("token endpoint unreachable, %d failures: circuit %s; %d calls, each %v (signed requests)",
				demoFallbackThreshold, c.stateChanges(), demoFallbackThreshold+1, a), nil
		}},
		{"fallback: a call needing a scope the certificate lacks is refused", func(ctx context.Context) (string, error) {
			if c == nil {
				return "", errors.New("no client from the previous step")
			}
			a, err := f.get(ctx, c, demoFallbackWrite)
			if err != nil {
				return "", err
			}
			if a.status != http.StatusForbidden || a.Error != "insufficient_scope" {
				return "", fmt.Errorf("%v, want 403 insufficient_scope", a)
			}
			return "/" + demoFallbackWrite + " needs scope " + demoFallbackWrite + ": " + a.String(), nil
		}},
		{"fallback: a revoked certificate is refused after the CRL refresh", func(ctx context.Context) (string, error) {
			if c == nil {
				return "", errors.New("no client from the previous step")
			}
			serial := c.certs.Chain()[0].SerialNumber
			if err := f.ca.Revoke(ctx, serial); err != nil {
				return "", err
			}
			var a fallbackAnswer
			took, err := waitUntil(ctx, "the revoked certificate is refused", func() (bool, error) {
				var err error
				a, err = f.get(ctx, c, demoScope)
				return a.status != http.StatusOK, err
			})
			if err != nil {
				return "", err
			}
			if a.status != http.StatusUnauthorized || a.Error != oautherr.InvalidToken {
				return "", fmt.Errorf("%v, want 401 invalid_token", a)
			}
			return fmt.Sprintf("revoked serial %s; the resource's next CRL (from the distribution point, %v later): %v", serial.Text(16), took, a), nil
		}},
		{"fallback: the issuer comes back; a probe closes the circuit and calls carry tokens again", func(ctx context.Context) (string, error) {
			if c == nil {
				return "", errors.New("no client from the previous step")
			}
			if err := f.startIssuer(ctx); err != nil {
				return "", err
			}
			took, err := waitUntil(ctx, "the circuit closes", func() (bool, error) {
				return c.transport.State() == gobreaker.StateClosed, nil
			})
			if err != nil {
				return "", err
			}
			a, err := f.get(ctx, c, demoScope)
			if err != nil {
				return "", err
			}
			if a.status != http.StatusOK || a.Binding != string(resource.BindingDPoP) {
				return "", fmt.Errorf("%v, want 200 with binding dpop", a)
			}
			return fmt.Sprintf("closed %v after the restart (circuit %s); %v", took, c.stateChanges(), a), nil
		}},
	}
}
