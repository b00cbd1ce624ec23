package mtlsbound

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// RevocationChecker reports whether cert, issued by issuer, is revoked.
// Implementations return nil when the certificate is known not to be
// revoked, an error wrapping ErrRevoked when it is, and an error wrapping
// ErrRevocationUnavailable when the status cannot be established (callers
// fail closed). They must be safe for concurrent use.
type RevocationChecker interface {
	CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) error
}

var _ RevocationChecker = (*CRLChecker)(nil)

// Defaults for CRLChecker.
const (
	// DefaultMaxCRLBytes caps a fetched CRL at 10 MiB.
	DefaultMaxCRLBytes = 10 << 20
	// DefaultCRLTimeout bounds one CRL fetch when CRLChecker.FetchTimeout
	// is not set.
	DefaultCRLTimeout = 10 * time.Second
	// DefaultCRLRetryInterval is how long a failed CRL fetch is remembered
	// when CRLChecker.RetryInterval is not set.
	DefaultCRLRetryInterval = 30 * time.Second
)

// CRLChecker checks revocation against the CRLs named in each certificate's
// CRL distribution points (http and https URLs only). A CRL is fetched with
// HTTPClient, must be signed by the certificate's issuer
// (x509.RevocationList.CheckSignatureFrom) and name it as issuer, must have
// a ThisUpdate not in the future, and is cached until its NextUpdate, after
// which it is fetched again; a CRL past its NextUpdate is never trusted.
// Delta CRLs and indirect CRLs are not supported.
//
// A dead or slow distribution point costs at most one fetch per CRL and
// RetryInterval: concurrent checks of the same CRL share one fetch, which
// runs under FetchTimeout rather than under any one caller's context; each
// check returns when the fetch ends or its own context ends, whichever comes
// first, so a cancelled request stops waiting at once. A failed fetch is
// remembered for RetryInterval, during which checks needing that CRL fail
// with ErrRevocationUnavailable without contacting the distribution point.
//
// The distribution point URLs are fetched as written in the certificate, so
// call CheckRevocation only for certificates whose chain has already been
// verified (PKIAuth does so). At most 1024 CRLs are cached.
//
// Revocation lists are only as fresh as their publication schedule; prefer
// short-lived client certificates, and use CRLs as a second line.
//
// Set the fields before first use and do not change them afterwards; a
// CRLChecker must not be copied after first use. It is safe for concurrent use.
type CRLChecker struct {
	// HTTPClient fetches CRLs. If nil, a client with default settings is
	// used. Its Timeout, when shorter than FetchTimeout, also applies.
	HTTPClient *http.Client
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// MaxCRLBytes caps a CRL's size. Zero means DefaultMaxCRLBytes.
	MaxCRLBytes int64
	// FetchTimeout bounds one fetch of a CRL, from connecting to reading
	// the last byte. The fetch is shared by every check waiting for that
	// CRL: it carries the values but not the cancellation of the context of
	// the check that started it. Zero or negative means DefaultCRLTimeout.
	FetchTimeout time.Duration
	// RetryInterval is how long a failed fetch of a CRL is remembered:
	// until it has passed, checks that need that CRL fail with the same
	// ErrRevocationUnavailable error without a new fetch. Zero or negative
	// means DefaultCRLRetryInterval. Keep it short: certificates whose CRL
	// is unavailable are refused until a fetch succeeds.
	RetryInterval time.Duration
	// RequireDistributionPoint makes a certificate without any usable CRL
	// distribution point fail with ErrRevocationUnavailable. By default such
	// a certificate is treated as not revocable and passes.
	RequireDistributionPoint bool

	mu      sync.Mutex // guards entries and the fields of each crlEntry
	entries map[string]*crlEntry
}

// maxCRLEntries bounds the number of cached CRLs.
const maxCRLEntries = 1024

// crlClient fetches CRLs when CRLChecker.HTTPClient is nil.
var crlClient = &http.Client{}

// crlEntry is the state of one CRL (distribution point and issuer). Its
// fields are guarded by CRLChecker.mu, which is never held during a fetch.
type crlEntry struct {
	loaded  bool                // revoked and next hold a verified CRL
	revoked map[string]struct{} // revoked serials, see CheckRevocation
	next    time.Time           // the CRL's NextUpdate

	failErr   error     // the last fetch's error, remembered
	failUntil time.Time // until then

	inflight *crlFetch // the fetch under way, or nil
}

// crlFetch is one fetch of a CRL, shared by every check that waits for it.
// done is closed after revoked and err are set.
type crlFetch struct {
	done    chan struct{}
	revoked map[string]struct{}
	err     error
}

func (c *CRLChecker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CRLChecker) client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return crlClient
}

func (c *CRLChecker) fetchTimeout() time.Duration {
	if c.FetchTimeout > 0 {
		return c.FetchTimeout
	}
	return DefaultCRLTimeout
}

func (c *CRLChecker) retryInterval() time.Duration {
	if c.RetryInterval > 0 {
		return c.RetryInterval
	}
	return DefaultCRLRetryInterval
}

// CheckRevocation implements RevocationChecker. Every usable distribution
// point is tried in order until one yields a valid CRL. When ctx ends while
// a CRL is being fetched, it returns an error wrapping both
// ErrRevocationUnavailable and ctx.Err().
func (c *CRLChecker) CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) error {
	if cert == nil || issuer == nil {
		return fmt.Errorf("%w: missing certificate or issuer", ErrRevocationUnavailable)
	}
	var lastErr error
	tried := false
	for _, dp := range cert.CRLDistributionPoints {
		u, err := url.Parse(dp)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		tried = true
		e, err := c.entry(ctx, dp, issuer)
		if err != nil {
			lastErr = err
			continue
		}
		if _, ok := e[string(cert.SerialNumber.Bytes())+signOf(cert)]; ok {
			return ErrRevoked
		}
		return nil
	}
	if !tried {
		if c.RequireDistributionPoint {
			return fmt.Errorf("%w: certificate names no CRL distribution point", ErrRevocationUnavailable)
		}
		return nil
	}
	return lastErr
}

func signOf(cert *x509.Certificate) string {
	if cert.SerialNumber.Sign() < 0 {
		return "-"
	}
	return "+"
}

// entry returns the revoked-serial set of the CRL at u for issuer. It
// answers from the cache while the CRL is before its NextUpdate, repeats a
// failure while it is remembered, and otherwise waits for the fetch under
// way, starting one if there is none, until the fetch ends or ctx does.
func (c *CRLChecker) entry(ctx context.Context, u string, issuer *x509.Certificate) (map[string]struct{}, error) {
	key := u + "\x00" + Thumbprint(issuer)
	c.mu.Lock()
	if c.entries == nil {
		c.entries = make(map[string]*crlEntry)
	}
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= maxCRLEntries {
			// Bounded memory: start over rather than grow without limit.
			// Fetches under way finish on their orphaned entries and
			// still answer the checks waiting for them.
			c.entries = make(map[string]*crlEntry)
		}
		e = &crlEntry{}
		c.entries[key] = e
	}
	now := c.now()
	if e.loaded && now.Before(e.next) {
		revoked := e.revoked
		c.mu.Unlock()
		return revoked, nil
	}
	if e.failErr != nil && now.Before(e.failUntil) {
		err := e.failErr
		c.mu.Unlock()
		return nil, err
	}
	f := e.inflight
	if f == nil {
		if err := ctx.Err(); err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: CRL not fetched: %w", ErrRevocationUnavailable, err)
		}
		f = &crlFetch{done: make(chan struct{})}
		e.inflight = f
		go c.runFetch(context.WithoutCancel(ctx), e, f, u, issuer)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.revoked, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: stopped waiting for the CRL: %w", ErrRevocationUnavailable, ctx.Err())
	}
}

// runFetch performs the shared fetch f of the CRL at u under FetchTimeout,
// records the result (or the failure, for RetryInterval) in e, and then
// releases the checks waiting on f.
func (c *CRLChecker) runFetch(ctx context.Context, e *crlEntry, f *crlFetch, u string, issuer *x509.Certificate) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout())
	revoked, next, err := c.fetch(ctx, u, issuer, c.now())
	cancel()

	c.mu.Lock()
	if err == nil {
		e.loaded, e.revoked, e.next = true, revoked, next
		e.failErr = nil
	} else {
		e.loaded, e.revoked = false, nil
		e.failErr, e.failUntil = err, c.now().Add(c.retryInterval())
	}
	e.inflight = nil
	f.revoked, f.err = revoked, err
	c.mu.Unlock()
	close(f.done)
}

func (c *CRLChecker) fetch(ctx context.Context, u string, issuer *x509.Certificate, now time.Time) (map[string]struct{}, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: bad CRL URL", ErrRevocationUnavailable)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: CRL fetch failed", ErrRevocationUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("%w: CRL fetch returned status %d", ErrRevocationUnavailable, resp.StatusCode)
	}
	max := c.MaxCRLBytes
	if max <= 0 {
		max = DefaultMaxCRLBytes
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: CRL read failed", ErrRevocationUnavailable)
	}
	if int64(len(der)) > max {
		return nil, time.Time{}, fmt.Errorf("%w: CRL too large", ErrRevocationUnavailable)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: unparsable CRL", ErrRevocationUnavailable)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: CRL not signed by the issuer", ErrRevocationUnavailable)
	}
	if string(crl.RawIssuer) != string(issuer.RawSubject) {
		return nil, time.Time{}, fmt.Errorf("%w: CRL issuer differs from the certificate issuer", ErrRevocationUnavailable)
	}
	if crl.ThisUpdate.After(now) {
		return nil, time.Time{}, fmt.Errorf("%w: CRL not yet valid", ErrRevocationUnavailable)
	}
	if crl.NextUpdate.IsZero() || !now.Before(crl.NextUpdate) {
		return nil, time.Time{}, fmt.Errorf("%w: CRL is stale", ErrRevocationUnavailable)
	}
	revoked := make(map[string]struct{}, len(crl.RevokedCertificateEntries))
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber == nil {
			continue
		}
		sign := "+"
		if r.SerialNumber.Sign() < 0 {
			sign = "-"
		}
		revoked[string(r.SerialNumber.Bytes())+sign] = struct{}{}
	}
	return revoked, crl.NextUpdate, nil
}
