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
	// DefaultCRLTimeout bounds one CRL fetch when CRLChecker.HTTPClient is nil.
	DefaultCRLTimeout = 10 * time.Second
)

// CRLChecker checks revocation against the CRLs named in each certificate's
// CRL distribution points (http and https URLs only). A CRL is fetched with
// HTTPClient, must be signed by the certificate's issuer
// (x509.RevocationList.CheckSignatureFrom) and name it as issuer, must have
// a ThisUpdate not in the future, and is cached until its NextUpdate, after
// which it is fetched again; a CRL past its NextUpdate is never trusted.
// Concurrent checks of the same CRL share one fetch. Delta CRLs and indirect
// CRLs are not supported.
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
	// HTTPClient fetches CRLs. If nil, a client with a DefaultCRLTimeout
	// timeout is used.
	HTTPClient *http.Client
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// MaxCRLBytes caps a CRL's size. Zero means DefaultMaxCRLBytes.
	MaxCRLBytes int64
	// RequireDistributionPoint makes a certificate without any usable CRL
	// distribution point fail with ErrRevocationUnavailable. By default such
	// a certificate is treated as not revocable and passes.
	RequireDistributionPoint bool

	once    sync.Once
	mu      sync.Mutex
	entries map[string]*crlEntry
	dflt    *http.Client
}

// maxCRLEntries bounds the number of cached CRLs.
const maxCRLEntries = 1024

type crlEntry struct {
	mu      sync.Mutex // held while fetching
	revoked map[string]struct{}
	next    time.Time
	loaded  bool
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
	c.once.Do(func() { c.dflt = &http.Client{Timeout: DefaultCRLTimeout} })
	return c.dflt
}

// CheckRevocation implements RevocationChecker. Every usable distribution
// point is tried in order until one yields a valid CRL.
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

// entry returns the revoked-serial set of the CRL at u for issuer, fetching
// it when absent or past NextUpdate.
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
			c.entries = make(map[string]*crlEntry)
		}
		e = &crlEntry{}
		c.entries[key] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	if e.loaded && now.Before(e.next) {
		return e.revoked, nil
	}
	revoked, next, err := c.fetch(ctx, u, issuer, now)
	if err != nil {
		e.loaded = false
		return nil, err
	}
	e.revoked, e.next, e.loaded = revoked, next, true
	return revoked, nil
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
