package fallback

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// Defaults applied by [NewCRLFetcher] for zero CRLFetcherConfig fields.
const (
	// DefaultCRLRefresh is the interval between CRL fetches.
	DefaultCRLRefresh = time.Hour
	// DefaultCRLRetry is the interval between fetches after a failed one.
	DefaultCRLRetry = time.Minute
	// DefaultCRLFetchTimeout bounds one fetch.
	DefaultCRLFetchTimeout = 30 * time.Second
	// DefaultMaxCRLBytes caps a CRL response body.
	DefaultMaxCRLBytes = 10 << 20
	// crlFutureSkew is how far in the future a CRL's thisUpdate may lie.
	crlFutureSkew = 5 * time.Minute
)

// CRLFetcherConfig configures a [CRLFetcher]. NewCRLFetcher copies it.
type CRLFetcherConfig struct {
	// URL is the CRL's http(s) address (the issuer's CRL endpoint).
	// Required.
	URL string
	// CA is the certificate the CRL must be signed by and issued by.
	// Required.
	CA *x509.Certificate
	// HTTPClient fetches the CRL. nil means a client with default
	// settings. Each fetch is bounded by FetchTimeout in any case.
	HTTPClient *http.Client
	// Refresh is the interval between fetches. 0 means DefaultCRLRefresh.
	Refresh time.Duration
	// Retry is the interval before the next fetch after a failed one.
	// 0 means DefaultCRLRetry (never longer than Refresh).
	Retry time.Duration
	// FetchTimeout bounds one fetch, from connecting to the last byte.
	// 0 means DefaultCRLFetchTimeout.
	FetchTimeout time.Duration
	// MaxCRLBytes caps the response body. 0 means DefaultMaxCRLBytes.
	MaxCRLBytes int64
	// OnFetch, when set, is called after every fetch attempt with its
	// outcome: nil for a new or unchanged CRL, else an error wrapping
	// ErrInvalidCRL (its text holds no response bytes). Use it for logs
	// and metrics; it must not block.
	OnFetch func(err error)
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// CRLFetcher keeps the fallback CA's CRL current, in the background: it
// fetches URL every Refresh (Retry after a failure) with conditional
// requests (If-None-Match, If-Modified-Since), checks each new CRL with
// [ParseRevocationList] against the CA, refuses one whose CRL number is
// below the current one's (or equal with other content) or whose
// thisUpdate lies in the future, and keeps the last good CRL when a fetch
// fails. Requests never wait for a fetch: [CRLFetcher.Current] returns
// what is at hand, and the [Verifier] fails closed once that is past its
// nextUpdate plus the grace.
//
// Start the background loop with [CRLFetcher.Start] and stop it by
// cancelling its context or with [CRLFetcher.Close]. A CRLFetcher is safe
// for concurrent use.
type CRLFetcher struct {
	url      string
	ca       *x509.Certificate
	client   *http.Client
	refresh  time.Duration
	retry    time.Duration
	timeout  time.Duration
	maxBytes int64
	onFetch  func(error)
	now      func() time.Time

	cur atomic.Pointer[RevocationList]

	fetchMu      sync.Mutex // one fetch at a time; guards the validators
	etag         string
	lastModified string

	bg background
}

// NewCRLFetcher validates cfg and returns a fetcher holding a copy of it.
// It does not fetch: call Start (or Refresh).
func NewCRLFetcher(cfg CRLFetcherConfig) (*CRLFetcher, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("fallback: CRLFetcherConfig.URL must be an http(s) URL")
	}
	if cfg.CA == nil {
		return nil, errors.New("fallback: CRLFetcherConfig.CA is required")
	}
	if cfg.Refresh < 0 || cfg.Retry < 0 || cfg.FetchTimeout < 0 || cfg.MaxCRLBytes < 0 {
		return nil, errors.New("fallback: negative duration or size in CRLFetcherConfig")
	}
	f := &CRLFetcher{
		url: cfg.URL, ca: cfg.CA, client: cfg.HTTPClient, refresh: cfg.Refresh, retry: cfg.Retry,
		timeout: cfg.FetchTimeout, maxBytes: cfg.MaxCRLBytes, onFetch: cfg.OnFetch, now: cfg.Now,
	}
	if f.client == nil {
		f.client = &http.Client{}
	}
	if f.refresh == 0 {
		f.refresh = DefaultCRLRefresh
	}
	if f.retry == 0 {
		f.retry = DefaultCRLRetry
	}
	f.retry = min(f.retry, f.refresh)
	if f.timeout == 0 {
		f.timeout = DefaultCRLFetchTimeout
	}
	if f.maxBytes == 0 {
		f.maxBytes = DefaultMaxCRLBytes
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// Current implements CRLSource: the last good CRL, or nil before the
// first successful fetch.
func (f *CRLFetcher) Current() *RevocationList { return f.cur.Load() }

// Start runs the fetch loop in a new goroutine: a fetch at once, then
// every Refresh (Retry after a failure), until ctx ends or Close is
// called. It returns at once; calling it again while running has no
// effect.
func (f *CRLFetcher) Start(ctx context.Context) {
	f.bg.start(ctx, func(ctx context.Context) time.Duration {
		if f.Refresh(ctx) != nil {
			return f.retry
		}
		return f.refresh
	})
}

// Close stops the loop started by Start and waits for it to end. It is
// safe to call more than once, and without Start.
func (f *CRLFetcher) Close() error {
	f.bg.stop()
	return nil
}

// Refresh fetches the CRL once, now, and installs it when it is good and
// newer. It returns nil for a new or unchanged (304, or the same CRL) list
// and an error wrapping ErrInvalidCRL otherwise, in which case the current
// list is kept. The fetch is bounded by FetchTimeout and by ctx.
func (f *CRLFetcher) Refresh(ctx context.Context) error {
	f.fetchMu.Lock()
	err := f.fetch(ctx)
	f.fetchMu.Unlock()
	if f.onFetch != nil {
		f.onFetch(err)
	}
	return err
}

func (f *CRLFetcher) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLFetch), err)
	}
	cur := f.cur.Load()
	if cur != nil {
		if f.etag != "" {
			req.Header.Set("If-None-Match", f.etag)
		}
		if f.lastModified != "" {
			req.Header.Set("If-Modified-Since", f.lastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		// The URL is configuration, not attacker input; the error text
		// of net/http names it, which helps operators.
		return fmt.Errorf("%w: %w", refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLFetch), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cur != nil:
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: HTTP status %d", refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLFetch), resp.StatusCode)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return fmt.Errorf("%w: %w", refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLFetch), err)
	}
	if int64(len(der)) > f.maxBytes {
		return refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLTooLarge)
	}
	l, err := ParseRevocationList(der, f.ca)
	if err != nil {
		return err
	}
	if l.thisUpdate.After(f.now().Add(crlFutureSkew)) {
		return refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLFuture)
	}
	if cur != nil {
		switch c := l.number.Cmp(cur.number); {
		case c < 0:
			return refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLBackwards)
		case c == 0 && !bytes.Equal(l.der, cur.der):
			return refuse(ErrInvalidCRL, oautherr.ReasonFallbackCRLBackwards)
		case c == 0:
			return nil
		}
	}
	f.cur.Store(l)
	f.etag = resp.Header.Get("ETag")
	f.lastModified = resp.Header.Get("Last-Modified")
	return nil
}
