package mtlsbound

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// crlServer serves whatever body is current at /crl, counting fetches.
type crlServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
}

func newCRLServer(t *testing.T) *crlServer {
	t.Helper()
	c := &crlServer{status: http.StatusOK}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		c.mu.Lock()
		defer c.mu.Unlock()
		w.WriteHeader(c.status)
		w.Write(c.body)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crlServer) set(status int, body []byte) {
	c.mu.Lock()
	c.status, c.body = status, body
	c.mu.Unlock()
}

func (c *crlServer) url() string { return c.srv.URL + "/crl" }

func TestCRLChecker(t *testing.T) {
	t.Parallel()
	ca, err := certs.NewCA(certs.Options{CommonName: "CRL CA"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := certs.NewCA(certs.Options{CommonName: "CRL CA"})                  // same name, other key
	renamed, _ := certs.NewCA(certs.Options{CommonName: "Other CA", Key: ca.Key}) // same key, other name
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := newCRLServer(t)
	issue := func(o certs.Options) *certs.Leaf {
		o.CRLDistributionPoints = []string{cs.url()}
		o.Client = true
		o.NotBefore = t0.Add(-time.Hour)
		l, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	good := issue(certs.Options{CommonName: "good"})
	bad := issue(certs.Options{CommonName: "bad"})
	crl := func(signer *certs.CA, this, next time.Time, revoked ...*x509.Certificate) []byte {
		der, err := signer.RevocationList(certs.RevocationListOptions{Revoked: revoked, ThisUpdate: this, NextUpdate: next})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	ctx := context.Background()
	now := t0
	var nowMu sync.Mutex
	clock := func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	advance := func(d time.Duration) { nowMu.Lock(); now = now.Add(d); nowMu.Unlock() }

	cs.set(200, crl(ca, t0, t0.Add(time.Hour), bad.Cert))
	chk := &CRLChecker{Now: clock, HTTPClient: cs.srv.Client()}
	if err := chk.CheckRevocation(ctx, good.Cert, ca.Cert); err != nil {
		t.Fatalf("good: %v", err)
	}
	if err := chk.CheckRevocation(ctx, bad.Cert, ca.Cert); !errors.Is(err, ErrRevoked) {
		t.Fatalf("MTLS-CA-09 revoked: %v", err)
	}
	if h := cs.hits.Load(); h != 1 {
		t.Fatalf("CRL fetched %d times, want 1 (cached until NextUpdate)", h)
	}
	// Revoke good too; the cached CRL is still used until NextUpdate.
	cs.set(200, crl(ca, t0.Add(30*time.Minute), t0.Add(3*time.Hour), bad.Cert, good.Cert))
	if err := chk.CheckRevocation(ctx, good.Cert, ca.Cert); err != nil {
		t.Fatalf("cached CRL: %v", err)
	}
	advance(time.Hour)
	if err := chk.CheckRevocation(ctx, good.Cert, ca.Cert); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after NextUpdate the new CRL must be fetched: %v", err)
	}
	if h := cs.hits.Load(); h != 2 {
		t.Fatalf("CRL fetched %d times, want 2", h)
	}

	failures := []struct {
		name   string
		status int
		body   []byte
	}{
		{"signed by another CA with the same name", 200, crl(other, t0, t0.Add(5*time.Hour))},
		{"issuer name differs (same key)", 200, crl(renamed, t0, t0.Add(5*time.Hour))},
		{"stale (NextUpdate passed)", 200, crl(ca, t0.Add(-5*time.Hour), t0.Add(-time.Hour))},
		{"not yet valid", 200, crl(ca, t0.Add(5*time.Hour), t0.Add(6*time.Hour))},
		{"server error", 500, nil},
		{"garbage", 200, []byte("not a CRL")},
	}
	for _, ft := range failures {
		t.Run(ft.name, func(t *testing.T) {
			// Sequential: the subtests share the CRL server.
			srv := newCRLServer(t)
			srv.set(ft.status, ft.body)
			l, err := ca.Issue(certs.Options{CommonName: "x", Client: true, CRLDistributionPoints: []string{srv.url()}})
			if err != nil {
				t.Fatal(err)
			}
			c := &CRLChecker{Now: func() time.Time { return t0.Add(time.Hour) }}
			if err := c.CheckRevocation(ctx, l.Cert, ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("err = %v, want ErrRevocationUnavailable", err)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		srv := newCRLServer(t)
		srv.set(200, crl(ca, t0, t0.Add(5*time.Hour), bad.Cert))
		l, _ := ca.Issue(certs.Options{Client: true, CRLDistributionPoints: []string{srv.url()}})
		c := &CRLChecker{Now: func() time.Time { return t0 }, MaxCRLBytes: 16}
		if err := c.CheckRevocation(ctx, l.Cert, ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no distribution point", func(t *testing.T) {
		l, _ := ca.Issue(certs.Options{Client: true, CRLDistributionPoints: []string{"ldap://example.test/crl"}})
		if err := (&CRLChecker{}).CheckRevocation(ctx, l.Cert, ca.Cert); err != nil {
			t.Fatalf("default: %v", err)
		}
		if err := (&CRLChecker{RequireDistributionPoint: true}).CheckRevocation(ctx, l.Cert, ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
			t.Fatalf("required: %v", err)
		}
		if err := (&CRLChecker{}).CheckRevocation(ctx, nil, ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
			t.Fatalf("nil cert: %v", err)
		}
	})
	t.Run("concurrent checks", func(t *testing.T) {
		srv := newCRLServer(t)
		srv.set(200, crl(ca, t0, t0.Add(5*time.Hour), bad.Cert))
		l, _ := ca.Issue(certs.Options{Client: true, CRLDistributionPoints: []string{srv.url()}})
		c := &CRLChecker{Now: func() time.Time { return t0 }}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- c.CheckRevocation(ctx, l.Cert, ca.Cert)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if h := srv.hits.Load(); h != 1 {
			t.Fatalf("fetched %d times, want 1", h)
		}
	})
}

func TestPKIAuthRevocationOverTLS(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	cs := newCRLServer(t)
	ca, err := certs.NewCA(certs.Options{CommonName: "Revoking CA"})
	if err != nil {
		t.Fatal(err)
	}
	subj := pkix.Name{CommonName: "client1", Organization: []string{"Example Corp"}}
	c1, _ := ca.Issue(certs.Options{Subject: subj, Client: true, CRLDistributionPoints: []string{cs.url()}})
	c1b, _ := ca.Issue(certs.Options{Subject: subj, Client: true, CRLDistributionPoints: []string{cs.url()}})
	der, err := ca.RevocationList(certs.RevocationListOptions{Revoked: []*x509.Certificate{c1.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	cs.set(200, der)
	srv := tokenEndpoint(t, map[string]authenticator{
		"c1": pki(PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=client1,O=Example Corp", Revocation: &CRLChecker{}}),
	})
	for _, tt := range []struct {
		name      string
		leaf      *certs.Leaf
		wantClass string
	}{
		{"MTLS-CA-09/revoked C1", c1, "revoked"},
		{"MTLS-CA-09/unrevoked certificate", c1b, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert := tt.leaf.TLSCertificate()
			client := NewClient(&cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			resp, err := client.Get(srv.URL + "/token?client_id=c1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Error-Class"); got != tt.wantClass {
				t.Fatalf("status %d class %q, want %q", resp.StatusCode, got, tt.wantClass)
			}
		})
	}
}

func TestCRLCheckerCacheBounded(t *testing.T) {
	t.Parallel()
	ca, err := certs.NewCA(certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := newCRLServer(t)
	cs.set(http.StatusNotFound, nil)
	c := &CRLChecker{HTTPClient: cs.srv.Client()}
	ctx := context.Background()
	for i := range maxCRLEntries + 10 {
		l, err := ca.Issue(certs.Options{Client: true, CRLDistributionPoints: []string{cs.url() + "/" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckRevocation(ctx, l.Cert, ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
			t.Fatalf("404 CRL: %v", err)
		}
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n > maxCRLEntries {
		t.Fatalf("%d cached entries, cap %d", n, maxCRLEntries)
	}
}

// crlFixture is a CA, a client certificate naming one CRL distribution
// point served by handler (which counts requests), and a valid CRL for that
// CA at time t0 that revokes nothing.
type crlFixture struct {
	ca   *certs.CA
	leaf *certs.Leaf
	crl  []byte
	hits atomic.Int64
	srv  *httptest.Server
}

var crlT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newCRLFixture(t *testing.T, handler func(f *crlFixture, w http.ResponseWriter, r *http.Request)) *crlFixture {
	t.Helper()
	f := &crlFixture{}
	var err error
	if f.ca, err = certs.NewCA(certs.Options{CommonName: "CRL CA"}); err != nil {
		t.Fatal(err)
	}
	if f.crl, err = f.ca.RevocationList(certs.RevocationListOptions{ThisUpdate: crlT0.Add(-time.Hour), NextUpdate: crlT0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		handler(f, w, r)
	}))
	t.Cleanup(f.srv.Close)
	if f.leaf, err = f.ca.Issue(certs.Options{CommonName: "c", Client: true, NotBefore: crlT0.Add(-time.Hour), CRLDistributionPoints: []string{f.srv.URL + "/crl"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// testClock is a settable clock for CRLChecker.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestCRLCheckerDeadEndpoint: concurrent checks of a CRL whose distribution
// point hangs or fails share one fetch and all finish in about one fetch
// timeout (not one timeout each, one after another), and the failure is
// remembered: a check within the retry interval fails at once without
// contacting the server again; after it, the CRL is fetched again
// (MTLS-CA-09: revocation checking must not let one dead endpoint stall the
// token endpoint).
func TestCRLCheckerDeadEndpoint(t *testing.T) {
	t.Parallel()
	const (
		n       = 12
		timeout = 300 * time.Millisecond
	)
	tests := []struct {
		name    string
		handler func(f *crlFixture, w http.ResponseWriter, r *http.Request)
	}{
		{"hanging", func(f *crlFixture, w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}},
		{"failing", func(f *crlFixture, w http.ResponseWriter, r *http.Request) {
			time.Sleep(timeout / 2) // slow enough for the checks to overlap
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{"garbage", func(f *crlFixture, w http.ResponseWriter, r *http.Request) {
			time.Sleep(timeout / 2)
			w.Write([]byte("not a CRL"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newCRLFixture(t, tt.handler)
			clock := &testClock{now: crlT0}
			c := &CRLChecker{Now: clock.Now, HTTPClient: &http.Client{Timeout: timeout}}
			ctx := context.Background()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- c.CheckRevocation(ctx, f.leaf.Cert, f.ca.Cert)
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errs)
			for err := range errs {
				if !errors.Is(err, ErrRevocationUnavailable) {
					t.Fatalf("err = %v, want ErrRevocationUnavailable", err)
				}
			}
			if h := f.hits.Load(); h != 1 {
				t.Errorf("%d concurrent checks made %d requests, want 1", n, h)
			}
			if limit := 4 * timeout; elapsed > limit {
				t.Errorf("%d concurrent checks took %v, want under %v (one fetch timeout is %v)", n, elapsed, limit, timeout)
			}

			// Within the retry interval: refused at once, no request.
			clock.Advance(DefaultCRLRetryInterval - time.Second)
			start = time.Now()
			if err := c.CheckRevocation(ctx, f.leaf.Cert, f.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("within the retry interval: err = %v", err)
			}
			if d := time.Since(start); d > timeout/2 {
				t.Errorf("check within the retry interval took %v", d)
			}
			if h := f.hits.Load(); h != 1 {
				t.Fatalf("check within the retry interval made a request (%d in all)", h)
			}

			// After it: fetched again.
			clock.Advance(time.Second)
			if err := c.CheckRevocation(ctx, f.leaf.Cert, f.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("after the retry interval: err = %v", err)
			}
			if h := f.hits.Load(); h != 2 {
				t.Fatalf("after the retry interval: %d requests in all, want 2", h)
			}
		})
	}
}

// TestCRLCheckerHonoursContext: a check waiting for a CRL returns when its
// own context ends, with an error wrapping both ErrRevocationUnavailable and
// the context's error, while the shared fetch goes on for the others; the
// first caller's cancellation does not abort the fetch that others wait on
// (MTLS-CA-09).
func TestCRLCheckerHonoursContext(t *testing.T) {
	t.Parallel()
	// gate releases the server's answer; seen reports each request.
	type gated struct {
		gate    chan struct{}
		seen    chan struct{}
		release func()
	}
	newGated := func(t *testing.T) (*crlFixture, *gated) {
		g := &gated{gate: make(chan struct{}), seen: make(chan struct{}, 16)}
		g.release = sync.OnceFunc(func() { close(g.gate) })
		f := newCRLFixture(t, func(f *crlFixture, w http.ResponseWriter, r *http.Request) {
			g.seen <- struct{}{}
			select {
			case <-g.gate:
				w.Write(f.crl)
			case <-r.Context().Done():
			}
		})
		t.Cleanup(g.release) // before the server closes
		return f, g
	}
	// check runs CheckRevocation in the background.
	check := func(ctx context.Context, c *CRLChecker, f *crlFixture) <-chan error {
		done := make(chan error, 1)
		go func() { done <- c.CheckRevocation(ctx, f.leaf.Cert, f.ca.Cert) }()
		return done
	}
	wait := func(t *testing.T, done <-chan error, within time.Duration, what string) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(within):
			t.Fatalf("%s did not return within %v", what, within)
			return nil
		}
	}
	awaitRequest := func(t *testing.T, g *gated) {
		t.Helper()
		select {
		case <-g.seen:
		case <-time.After(5 * time.Second):
			t.Fatal("the CRL was never requested")
		}
	}
	tests := []struct {
		name string
		// cancelFirst cancels the caller that started the fetch instead
		// of one that joined it.
		cancelFirst bool
	}{
		{"waiting caller cancelled", false},
		{"fetching caller cancelled", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, g := newGated(t)
			c := &CRLChecker{Now: func() time.Time { return crlT0 }, HTTPClient: &http.Client{Timeout: 20 * time.Second}}
			cancelCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			firstCtx, secondCtx := context.Background(), context.Context(cancelCtx)
			if tt.cancelFirst {
				firstCtx, secondCtx = secondCtx, firstCtx
			}
			first := check(firstCtx, c, f)
			awaitRequest(t, g)
			second := check(secondCtx, c, f)
			time.Sleep(50 * time.Millisecond) // let the second check join the fetch
			cancel()
			cancelled, other := second, first
			if tt.cancelFirst {
				cancelled, other = first, second
			}
			err := wait(t, cancelled, 2*time.Second, "the cancelled check")
			if !errors.Is(err, ErrRevocationUnavailable) || !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled check: err = %v, want ErrRevocationUnavailable and context.Canceled", err)
			}
			g.release()
			if err := wait(t, other, 5*time.Second, "the other check"); err != nil {
				t.Fatalf("other check: %v", err)
			}
			if h := f.hits.Load(); h != 1 {
				t.Fatalf("%d requests, want 1 shared fetch", h)
			}
		})
	}
	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		f, _ := newGated(t)
		c := &CRLChecker{Now: func() time.Time { return crlT0 }}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := wait(t, check(ctx, c, f), 2*time.Second, "the check")
		if !errors.Is(err, ErrRevocationUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrRevocationUnavailable and context.Canceled", err)
		}
		if h := f.hits.Load(); h != 0 {
			t.Fatalf("%d requests for an already cancelled check", h)
		}
	})
}

// TestCRLCheckerFetchSettings pins FetchTimeout and RetryInterval, and that
// a remembered failure neither outlives a successful fetch nor lets a CRL
// past its NextUpdate be used.
func TestCRLCheckerFetchSettings(t *testing.T) {
	t.Parallel()
	// mode selects the server's answer: 0 the CRL, 1 status 500, 2 hang.
	type server struct {
		*crlFixture
		mode atomic.Int32
	}
	newServer := func(t *testing.T) *server {
		s := &server{}
		s.crlFixture = newCRLFixture(t, func(f *crlFixture, w http.ResponseWriter, r *http.Request) {
			switch s.mode.Load() {
			case 0:
				w.Write(f.crl)
			case 1:
				w.WriteHeader(http.StatusInternalServerError)
			default:
				<-r.Context().Done()
			}
		})
		return s
	}
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s *server, clock *testClock)
	}{
		{"FetchTimeout bounds a hanging fetch", func(t *testing.T, s *server, clock *testClock) {
			s.mode.Store(2)
			c := &CRLChecker{Now: clock.Now, HTTPClient: s.srv.Client(), FetchTimeout: 200 * time.Millisecond}
			start := time.Now()
			if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("err = %v", err)
			}
			if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
				t.Fatalf("hanging fetch returned after %v, want about 200ms", d)
			}
		}},
		{"RetryInterval", func(t *testing.T, s *server, clock *testClock) {
			s.mode.Store(1)
			c := &CRLChecker{Now: clock.Now, HTTPClient: s.srv.Client(), RetryInterval: 5 * time.Second}
			for i, step := range []struct {
				advance  time.Duration
				wantHits int64
			}{{0, 1}, {4 * time.Second, 1}, {time.Second, 2}, {time.Second, 2}} {
				clock.Advance(step.advance)
				if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
					t.Fatalf("step %d: err = %v", i, err)
				}
				if h := s.hits.Load(); h != step.wantHits {
					t.Fatalf("step %d: %d requests, want %d", i, h, step.wantHits)
				}
			}
		}},
		{"success after the interval replaces the failure", func(t *testing.T, s *server, clock *testClock) {
			s.mode.Store(1)
			c := &CRLChecker{Now: clock.Now, HTTPClient: s.srv.Client()}
			if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("failing server: err = %v", err)
			}
			s.mode.Store(0)
			if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
				t.Fatalf("within the retry interval: err = %v", err)
			}
			clock.Advance(DefaultCRLRetryInterval)
			for range 2 {
				if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); err != nil {
					t.Fatalf("after the retry interval: %v", err)
				}
			}
			if h := s.hits.Load(); h != 2 {
				t.Fatalf("%d requests, want 2 (the CRL is then cached)", h)
			}
		}},
		{"a CRL past NextUpdate is not used when the refetch fails", func(t *testing.T, s *server, clock *testClock) {
			c := &CRLChecker{Now: clock.Now, HTTPClient: s.srv.Client()}
			if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); err != nil {
				t.Fatalf("fresh CRL: %v", err)
			}
			s.mode.Store(1)
			clock.Advance(time.Hour) // the CRL's NextUpdate
			for range 2 {
				if err := c.CheckRevocation(ctx, s.leaf.Cert, s.ca.Cert); !errors.Is(err, ErrRevocationUnavailable) {
					t.Fatalf("stale CRL and failing server: err = %v", err)
				}
			}
			if h := s.hits.Load(); h != 2 {
				t.Fatalf("%d requests, want 2", h)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newServer(t), &testClock{now: crlT0})
		})
	}
}
