package fallback

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/senderbound/senderbound/dpop"
)

// Defaults applied by [NewCertificateSource] for zero
// CertificateSourceConfig fields.
const (
	// DefaultRenewRetry is the interval between renewal attempts after a
	// failed one.
	DefaultRenewRetry = time.Minute
	// maxChainBytes caps the certificate endpoint's answer.
	maxChainBytes = 64 << 10
)

// CertificateSourceConfig configures a [CertificateSource].
// NewCertificateSource copies it.
type CertificateSourceConfig struct {
	// Endpoint is the issuer's certificate endpoint (its metadata's
	// fallback_certificate_endpoint, ISSUER/certificate). Required.
	Endpoint string
	// Key is the client's key, certified by the chain. Renewal sends a
	// CSR for this same key. Required.
	Key crypto.Signer
	// Chain is the current chain, leaf first (as written by "cert
	// request"). nil means none yet: call Renew before use.
	Chain []*x509.Certificate
	// ClientID and ClientSecret authenticate the client at the
	// certificate endpoint as at the token endpoint: with a secret,
	// client_secret_basic; without one, client_id is sent in the form and
	// HTTPClient must authenticate the client (a tls_client_auth client
	// certificate, say).
	ClientID, ClientSecret string
	// Scopes, when set, asks for this subset of the registered scopes.
	Scopes []string
	// HTTPClient sends the certificate requests. nil means a client with
	// a 30 s timeout.
	HTTPClient *http.Client
	// RenewBefore is the renewal margin: renewal starts when the leaf
	// expires within RenewBefore. 0 means a third of the leaf's lifetime.
	RenewBefore time.Duration
	// Retry is the interval between renewal attempts after a failed one
	// (the issuer is down, say). 0 means DefaultRenewRetry.
	Retry time.Duration
	// OnRenew, when set, is called after every renewal attempt with its
	// outcome. It must not block.
	OnRenew func(err error)
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// CertificateSource holds the client's fallback certificate and renews it
// before it expires: [CertificateSource.Renew] POSTs a CSR for the same key
// to the issuer's certificate endpoint, with the client's authentication,
// and installs the new chain only when the issuer answered one for that
// key, issued by the same CA; until then, and whenever renewal fails, the
// current chain stays in use. [CertificateSource.Start] renews in the
// background while the issuer is up.
//
// It presents the certificate over mTLS
// ([CertificateSource.GetClientCertificate]) or in signed requests
// ([CertificateSource.SignedTransport]). A CertificateSource is safe for
// concurrent use.
type CertificateSource struct {
	endpoint    string
	key         crypto.Signer
	clientID    string
	secret      string
	scopes      []string
	client      *http.Client
	renewBefore time.Duration
	retry       time.Duration
	onRenew     func(error)
	now         func() time.Time
	renewMu     sync.Mutex // one renewal at a time
	mu          sync.RWMutex
	chain       []*x509.Certificate
	tlsCert     *tls.Certificate
	bg          background
}

// NewCertificateSource validates cfg and returns a source holding a copy
// of it. It makes no request.
func NewCertificateSource(cfg CertificateSourceConfig) (*CertificateSource, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("fallback: CertificateSourceConfig.Endpoint must be an http(s) URL")
	}
	if cfg.Key == nil || cfg.ClientID == "" {
		return nil, errors.New("fallback: CertificateSourceConfig.Key and ClientID are required")
	}
	if cfg.RenewBefore < 0 || cfg.Retry < 0 {
		return nil, errors.New("fallback: negative duration in CertificateSourceConfig")
	}
	s := &CertificateSource{
		endpoint: cfg.Endpoint, key: cfg.Key, clientID: cfg.ClientID, secret: cfg.ClientSecret,
		scopes: slices.Clone(cfg.Scopes), client: cfg.HTTPClient, renewBefore: cfg.RenewBefore,
		retry: cfg.Retry, onRenew: cfg.OnRenew, now: cfg.Now,
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	if s.retry == 0 {
		s.retry = DefaultRenewRetry
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(cfg.Chain) > 0 {
		if err := s.install(slices.Clone(cfg.Chain)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// install checks that chain certifies the source's key and makes it
// current.
func (s *CertificateSource) install(chain []*x509.Certificate) error {
	if len(chain) == 0 || len(chain) > dpop.MaxX5C || slices.Contains(chain, nil) {
		return errors.New("fallback: the chain must hold 1 to dpop.MaxX5C certificates")
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(s.key.Public()) {
		return errors.New("fallback: the leaf certificate is not for the source's key")
	}
	tc := &tls.Certificate{PrivateKey: s.key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	s.mu.Lock()
	s.chain, s.tlsCert = chain, tc
	s.mu.Unlock()
	return nil
}

// Chain returns the current chain, leaf first, or nil before the first
// certificate. The slice is the caller's; the certificates are shared and
// must not be modified.
func (s *CertificateSource) Chain() []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.chain)
}

// GetClientCertificate presents the current certificate in a TLS
// handshake: use it as tls.Config.GetClientCertificate of the fallback
// path's http.Transport. With no certificate yet it presents none.
func (s *CertificateSource) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.tlsCert == nil {
		return &tls.Certificate{}, nil
	}
	return s.tlsCert, nil
}

// renewAt returns when the current leaf is due for renewal; the zero time
// when there is no leaf.
func (s *CertificateSource) renewAt() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.chain) == 0 {
		return time.Time{}
	}
	leaf := s.chain[0]
	margin := s.renewBefore
	if margin == 0 {
		margin = leaf.NotAfter.Sub(leaf.NotBefore) / 3
	}
	return leaf.NotAfter.Add(-margin)
}

// Renew asks the issuer for a new certificate for the source's key, now,
// and installs it. On any failure the current chain stays in use and the
// error says why (it holds no certificate or response bytes beyond the
// issuer's RFC 6749 error code). A new chain must certify the same key and
// come from the same CA as the current one.
func (s *CertificateSource) Renew(ctx context.Context) error {
	s.renewMu.Lock()
	err := s.renew(ctx)
	s.renewMu.Unlock()
	if s.onRenew != nil {
		s.onRenew(err)
	}
	return err
}

func (s *CertificateSource) renew(ctx context.Context) error {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, s.key)
	if err != nil {
		return fmt.Errorf("fallback: CSR: %w", err)
	}
	form := url.Values{"csr": {base64.RawURLEncoding.EncodeToString(csr)}}
	if len(s.scopes) > 0 {
		form.Set("scope", strings.Join(s.scopes, " "))
	}
	if s.secret == "" {
		form.Set("client_id", s.clientID)
	}
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("fallback: certificate request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s.secret != "" {
		req.SetBasicAuth(url.QueryEscape(s.clientID), url.QueryEscape(s.secret))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("fallback: certificate request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxChainBytes+1))
	if err != nil {
		return fmt.Errorf("fallback: certificate response: %w", err)
	}
	if len(data) > maxChainBytes {
		return errors.New("fallback: certificate response too large")
	}
	if resp.StatusCode != http.StatusOK {
		return &oauthError{status: resp.StatusCode, code: errorCode(data)}
	}
	chain, err := parseChainResponse(data)
	if err != nil {
		return err
	}
	if cur := s.Chain(); len(cur) > 1 && chain[0].CheckSignatureFrom(cur[1]) != nil {
		return errors.New("fallback: renewed certificate is not from the current CA")
	}
	return s.install(chain)
}

// parseChainResponse parses the certificate endpoint's answer, an
// application/pem-certificate-chain: CERTIFICATE blocks, leaf first, at
// most dpop.MaxX5C of them. Other blocks and text between blocks are
// ignored. Errors hold no bytes of data.
func parseChainResponse(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if len(chain) == dpop.MaxX5C {
			return nil, errors.New("fallback: certificate response holds too many certificates")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errors.New("fallback: certificate response holds a malformed certificate")
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("fallback: certificate response holds no certificate")
	}
	return chain, nil
}

// oauthError is the certificate endpoint's RFC 6749 §5.2 refusal.
type oauthError struct {
	status int
	code   string
}

func (e *oauthError) Error() string {
	return fmt.Sprintf("fallback: certificate endpoint answered %d %s", e.status, e.code)
}

// errorCode returns the error member of an RFC 6749 §5.2 body when it is
// a short token of letters, digits and underscores (so that it is safe to
// log), else "".
func errorCode(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || len(e.Error) > 64 {
		return ""
	}
	for _, c := range e.Error {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return e.Error
}

// Start renews in the background until ctx ends or Close is called: once
// the leaf is due (RenewBefore before it expires; at once when there is
// none), then every Retry until a renewal brings a leaf that is not due
// yet. It returns at once;
// calling it again while running has no effect.
func (s *CertificateSource) Start(ctx context.Context) {
	s.bg.start(ctx, s.step)
}

// step is one round of the renewal loop: a renewal when the leaf is due,
// and the wait before the next round.
func (s *CertificateSource) step(ctx context.Context) time.Duration {
	wait := s.renewAt().Sub(s.now())
	if wait <= 0 {
		_ = s.Renew(ctx)
		// Still due after the attempt: it failed, or the issuer
		// answered a certificate already inside the margin. Either
		// way, the next attempt waits Retry.
		if !s.renewAt().After(s.now()) {
			wait = s.retry
		}
	}
	return wait
}

// Close stops the loop started by Start and waits for it to end. It is
// safe to call more than once, and without Start.
func (s *CertificateSource) Close() error {
	s.bg.stop()
	return nil
}

// SignedTransport returns the fallback path for signed requests: a
// RoundTripper that signs each request with the current certificate
// ([NewProver] over the current chain, in a dpop.Transport over base,
// which answers use_dpop_nonce once), rebuilt when the chain is renewed.
// base nil means http.DefaultTransport; opts may be nil.
func (s *CertificateSource) SignedTransport(base http.RoundTripper, opts *dpop.ProverOptions) http.RoundTripper {
	var o *dpop.ProverOptions
	if opts != nil {
		c := *opts
		o = &c
	}
	return &signedTransport{src: s, base: base, opts: o}
}

// signedTransport keeps one dpop.Transport per chain.
type signedTransport struct {
	src  *CertificateSource
	base http.RoundTripper
	opts *dpop.ProverOptions

	mu   sync.Mutex
	leaf *x509.Certificate
	dt   *dpop.Transport
}

func (t *signedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	dt, err := t.transport()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return dt.RoundTrip(req)
}

func (t *signedTransport) transport() (*dpop.Transport, error) {
	chain := t.src.Chain()
	if len(chain) == 0 {
		return nil, errors.New("fallback: no fallback certificate yet")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dt != nil && t.leaf == chain[0] {
		return t.dt, nil
	}
	p, err := NewProver(t.src.key, chain, t.opts)
	if err != nil {
		return nil, err
	}
	t.leaf, t.dt = chain[0], &dpop.Transport{Base: t.base, Prover: p}
	return t.dt, nil
}
