package fallback

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
)

// crlServer serves the CA's CRL handler, or what override returns, and
// counts requests and 304 answers.
type crlServer struct {
	*httptest.Server
	mu       sync.Mutex
	override http.HandlerFunc
	requests atomic.Int64
	notMod   atomic.Int64
}

func newCRLServer(t *testing.T, h http.Handler) *crlServer {
	s := &crlServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		o := s.override
		s.mu.Unlock()
		if o != nil {
			o(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusNotModified {
			s.notMod.Add(1)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) set(h http.HandlerFunc) { s.mu.Lock(); s.override = h; s.mu.Unlock() }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func serveBytes(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.Write(b) }
}

func TestCRLFetcher(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	srv := newCRLServer(t, w.ca.CRLHandler())
	var fetches atomic.Int64
	f, err := NewCRLFetcher(CRLFetcherConfig{URL: srv.URL, CA: w.root.Cert, Now: fixedClock(testNow), MaxCRLBytes: 4 << 10,
		OnFetch: func(error) { fetches.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if f.Current() != nil {
		t.Fatal("a CRL before the first fetch")
	}
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	first := f.Current()
	if first == nil || first.Len() != 0 {
		t.Fatal("no CRL after a good fetch")
	}
	// Unchanged: a conditional request answered 304, the same list kept.
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.notMod.Load() != 1 || f.Current() != first {
		t.Fatalf("%d answers 304; list replaced %v", srv.notMod.Load(), f.Current() != first)
	}
	// A revocation shows in the next fetch.
	chain := w.issue(t, keys(t)["P256b"], "c1")
	if err := w.ca.Revoke(ctx, chain[0].SerialNumber); err != nil {
		t.Fatal(err)
	}
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := f.Current()
	if !good.Revoked(chain[0].SerialNumber) || good.Number().Cmp(first.Number()) <= 0 {
		t.Fatal("the revocation is not in the new list")
	}

	other, err := certs.NewCA(certs.Options{Subject: w.root.Cert.Subject})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.RevocationList(certs.RevocationListOptions{Number: 1 << 62, ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	older, err := w.root.RevocationList(certs.RevocationListOptions{Number: 5, ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	future, err := w.root.RevocationList(certs.RevocationListOptions{Number: 1 << 62, ThisUpdate: testNow.Add(time.Hour), NextUpdate: testNow.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sameNumber, err := w.root.RevocationList(certs.RevocationListOptions{Number: good.Number().Int64(), ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		reason  oautherr.Reason
	}{
		{name: "server error", handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 500) }, reason: oautherr.ReasonFallbackCRLFetch},
		{name: "304 without a validator match is still fine", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(304) }},
		{name: "not found", handler: func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, reason: oautherr.ReasonFallbackCRLFetch},
		{name: "garbage", handler: serveBytes([]byte("<html>maintenance</html>")), reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "truncated", handler: serveBytes(good.der[:len(good.der)/2]), reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "signed by another key", handler: serveBytes(forged), reason: oautherr.ReasonFallbackCRLSignature},
		{name: "number went backwards", handler: serveBytes(older), reason: oautherr.ReasonFallbackCRLBackwards},
		{name: "same number, other content", handler: serveBytes(sameNumber), reason: oautherr.ReasonFallbackCRLBackwards},
		{name: "issued in the future", handler: serveBytes(future), reason: oautherr.ReasonFallbackCRLFuture},
		{name: "too large", handler: serveBytes(make([]byte, 5<<10)), reason: oautherr.ReasonFallbackCRLTooLarge},
	}
	for _, tc := range tests {
		srv.set(tc.handler)
		err := f.Refresh(ctx)
		if tc.reason == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		} else if !errors.Is(err, ErrInvalidCRL) || ReasonOf(err) != tc.reason {
			t.Fatalf("%s: got %v, want %s", tc.name, err, tc.reason)
		}
		if f.Current() != good {
			t.Fatalf("%s: the last good list was replaced", tc.name)
		}
	}
	if fetches.Load() != int64(3+len(tests)) {
		t.Fatalf("OnFetch called %d times", fetches.Load())
	}
}

// TestCRLFetcherDeadEndpoint: a CRL endpoint that never answers stalls
// neither verification nor the fetch beyond its timeout, and the
// verifier fails closed once the last good CRL is past nextUpdate+grace.
func TestCRLFetcherDeadEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	chain := w.issue(t, keys(t)["P256b"], "c1")
	release := make(chan struct{})
	var hang atomic.Bool
	srv := newCRLServer(t, w.ca.CRLHandler())
	srv.set(func(rw http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.ca.CRLHandler().ServeHTTP(rw, r)
	})
	defer close(release)
	clk := newClock(testNow)
	f, err := NewCRLFetcher(CRLFetcherConfig{URL: srv.URL, CA: w.root.Cert, Now: clk.now, FetchTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: f, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.VerifyChain(ctx, chain); !errors.Is(err, ErrCRLUnavailable) || ReasonOf(err) != oautherr.ReasonFallbackCRLUnavailable {
		t.Fatalf("before any fetch: %v", err)
	}
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { close(started); done <- f.Refresh(ctx) }()
	<-started
	// While the fetch hangs, verification answers from the last good CRL.
	if _, err := v.VerifyChain(ctx, chain); err != nil {
		t.Fatalf("during a hanging fetch: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrInvalidCRL) || ReasonOf(err) != oautherr.ReasonFallbackCRLFetch {
			t.Fatalf("hanging fetch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch outlived its timeout")
	}
	clk.set(f.Current().NextUpdate().Add(DefaultCRLGrace + time.Second))
	if _, err := v.VerifyChain(ctx, chain); !errors.Is(err, ErrCRLUnavailable) || ReasonOf(err) != oautherr.ReasonFallbackCRLStale {
		t.Fatalf("past nextUpdate + grace: %v", err)
	}
}

func TestCRLFetcherStartClose(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	srv := newCRLServer(t, w.ca.CRLHandler())
	got := make(chan error, 100)
	f, err := NewCRLFetcher(CRLFetcherConfig{URL: srv.URL, CA: w.root.Cert, Now: fixedClock(testNow), Refresh: 5 * time.Millisecond,
		OnFetch: func(err error) {
			select {
			case got <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(context.Background())
	f.Start(context.Background()) // no second loop
	for range 3 {
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no fetch")
		}
	}
	if f.Current() == nil {
		t.Fatal("no CRL")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	n := srv.requests.Load()
	time.Sleep(30 * time.Millisecond)
	if srv.requests.Load() != n {
		t.Fatal("fetches after Close")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// A cancelled context stops the loop too.
	g, err := NewCRLFetcher(CRLFetcherConfig{URL: srv.URL, CA: w.root.Cert, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	cancel()
	g.bg.mu.Lock()
	done := g.bg.done
	g.bg.mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop survived its context")
	}
}

func TestNewCRLFetcherRefuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	for name, cfg := range map[string]CRLFetcherConfig{
		"no URL":         {CA: w.root.Cert},
		"file URL":       {URL: "file:///etc/crl", CA: w.root.Cert},
		"no CA":          {URL: "https://as.example.test/crl"},
		"negative retry": {URL: "https://as.example.test/crl", CA: w.root.Cert, Retry: -1},
	} {
		if _, err := NewCRLFetcher(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
