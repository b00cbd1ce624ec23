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
