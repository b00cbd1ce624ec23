package mtlsbound

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/senderbound/senderbound/trustedproxy"
)

// HeaderFormat selects how a trusted proxy encodes the forwarded client
// certificate.
type HeaderFormat int

const (
	// FormatRFC9440 is the RFC 9440 Client-Cert header: an RFC 8941 Byte
	// Sequence of the DER certificate (the default).
	FormatRFC9440 HeaderFormat = iota
	// FormatEnvoyXFCC is Envoy's X-Forwarded-Client-Cert header. Envoy must
	// be configured with forward_client_cert_details SANITIZE_SET and
	// set_current_client_cert_details cert: true; a value with more than one
	// element is refused, because with APPEND_FORWARD earlier elements come
	// from the client.
	FormatEnvoyXFCC
	// FormatNginxEscapedPEM is a URL-encoded PEM certificate, as produced by
	// nginx's $ssl_client_escaped_cert (for example
	// proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert). An empty
	// value means no certificate. nginx must also clear any client-sent
	// header of that name, which proxy_set_header does.
	FormatNginxEscapedPEM
)

// Default header names per format.
const (
	// DefaultHeader is the RFC 9440 Client-Cert header, read for FormatRFC9440.
	DefaultHeader = "Client-Cert"
	// DefaultChainHeader is the RFC 9440 Client-Cert-Chain header. It is
	// never used as the client certificate; its presence without
	// DefaultHeader is a malformed request (CCERT-06).
	DefaultChainHeader = "Client-Cert-Chain"
	// DefaultXFCCHeader is Envoy's header, read for FormatEnvoyXFCC.
	DefaultXFCCHeader = "X-Forwarded-Client-Cert"
	// DefaultNginxHeader is the conventional header for nginx's
	// $ssl_client_escaped_cert, read for FormatNginxEscapedPEM.
	DefaultNginxHeader = "X-SSL-Client-Cert"
)

// SourceConfig configures where a Source finds the client certificate. The
// zero value uses only the TLS connection's certificate and never a header.
type SourceConfig struct {
	// TrustedProxies are the TLS-terminating proxies whose forwarded
	// certificate header is believed (see package trustedproxy; its header
	// family does not matter here). nil (the default) means forwarded
	// headers are never used (CCERT-01); Format, Header and MaxHeaderBytes
	// must then be left at their zero values (CCERT-15). The check uses the
	// connection's RemoteAddr only, never X-Forwarded-For. A certificate on
	// a connection from a trusted proxy is the proxy's own, never the
	// client's.
	TrustedProxies *trustedproxy.Set

	// Format is the header encoding; the default is FormatRFC9440.
	Format HeaderFormat

	// Header names the header field. The default depends on Format:
	// "Client-Cert", "X-Forwarded-Client-Cert" or "X-SSL-Client-Cert".
	Header string

	// MaxHeaderBytes caps the header value length, checked before any
	// decoding. Zero means DefaultMaxHeaderBytes (16 KiB); values below 4096
	// or above 1 MiB are refused.
	MaxHeaderBytes int
}

// Source finds the client certificate of an HTTP request: from a trusted
// proxy, the certificate it forwarded in a header; from any other peer, the
// TLS-layer certificate. A Source is immutable and safe for concurrent use.
type Source struct {
	trusted *trustedproxy.Set
	format  HeaderFormat
	header  string
	max     int
}

// NewSource validates cfg and returns a Source. It refuses forwarded-header
// settings (Format, Header, MaxHeaderBytes) without trusted proxies, an
// unknown Format, an invalid header name, the Client-Cert-Chain header as the
// certificate header, and an out-of-range MaxHeaderBytes. (The proxy ranges
// were validated by trustedproxy.New.) cfg is copied; later changes to it
// have no effect.
func NewSource(cfg SourceConfig) (*Source, error) {
	set := cfg.TrustedProxies
	if set.Empty() && (cfg.Format != FormatRFC9440 || cfg.Header != "" || cfg.MaxHeaderBytes != 0) {
		// Forwarded-header mode with nobody to believe: the settings would
		// silently have no effect (CCERT-15).
		return nil, fmt.Errorf("%w: forwarded-header settings need TrustedProxies", ErrInvalidConfig)
	}
	s := &Source{trusted: set, format: cfg.Format, max: cfg.MaxHeaderBytes}
	switch cfg.Format {
	case FormatRFC9440:
		s.header = DefaultHeader
	case FormatEnvoyXFCC:
		s.header = DefaultXFCCHeader
	case FormatNginxEscapedPEM:
		s.header = DefaultNginxHeader
	default:
		return nil, fmt.Errorf("%w: unknown header format %d", ErrInvalidConfig, cfg.Format)
	}
	if cfg.Header != "" {
		if !validFieldName(cfg.Header) {
			return nil, fmt.Errorf("%w: invalid header name", ErrInvalidConfig)
		}
		s.header = cfg.Header
	}
	s.header = textproto.CanonicalMIMEHeaderKey(s.header)
	if s.header == textproto.CanonicalMIMEHeaderKey(DefaultChainHeader) {
		return nil, fmt.Errorf("%w: %s never carries the client certificate", ErrInvalidConfig, DefaultChainHeader)
	}
	switch {
	case s.max == 0:
		s.max = DefaultMaxHeaderBytes
	case s.max < 4096 || s.max > 1<<20:
		return nil, fmt.Errorf("%w: MaxHeaderBytes must be between 4096 and 1 MiB", ErrInvalidConfig)
	}
	return s, nil
}

func validFieldName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return n != ""
}

// Header returns the canonical name of the header the Source reads (for
// example to add it to Vary, CCERT-10).
func (s *Source) Header() string { return s.header }

// TrustedProxies returns the proxies whose forwarded header the Source
// reads (nil for none), so that a server can check it was built with the
// same Set as the rest of its configuration.
func (s *Source) TrustedProxies() *trustedproxy.Set { return s.trusted }

// ClientCertificate returns the client certificate of r. When the immediate
// peer is a trusted proxy, it is the certificate the proxy forwarded in the
// header, or none when the proxy forwarded none: a certificate on that
// connection is the proxy's own (upstream mTLS, a service-mesh sidecar),
// never the client's. From any other peer it is r.TLS.PeerCertificates[0],
// or none; a header from such a peer is ignored, and never overrides the
// connection's certificate (CCERT-16). A malformed header from a trusted
// peer is an error wrapping ErrInvalidHeader (answer 400).
// ClientCertificate does not validate the certificate's chain or validity
// period.
func (s *Source) ClientCertificate(r *http.Request) (*x509.Certificate, error) {
	c, _, err := s.Extract(r)
	return c, err
}

// Forwarded reports whether the client certificate of r comes from a
// forwarded header rather than the TLS layer, so that a response chosen with
// it can be marked Cache-Control: no-store or Vary on the header (CCERT-10).
// It reports true only when ClientCertificate would read the header.
func (s *Source) Forwarded(r *http.Request) bool {
	if r == nil || !s.trusted.TrustedPeer(r) {
		return false
	}
	if len(r.Header.Values(s.header)) > 0 {
		return true
	}
	return s.format == FormatRFC9440 && len(r.Header.Values(DefaultChainHeader)) > 0
}

// Extract is ClientCertificate that also reports whether the certificate
// came from a forwarded header.
func (s *Source) Extract(r *http.Request) (cert *x509.Certificate, forwarded bool, err error) {
	if r == nil {
		return nil, false, nil
	}
	if !s.trusted.TrustedPeer(r) {
		return tlsPeer(r), false, nil
	}
	vals := r.Header.Values(s.header)
	if s.format == FormatRFC9440 && len(vals) == 0 && len(r.Header.Values(DefaultChainHeader)) > 0 {
		return nil, false, fmt.Errorf("%w: %s without %s", ErrInvalidHeader, DefaultChainHeader, s.header)
	}
	switch len(vals) {
	case 0:
		return nil, false, nil
	case 1:
	default:
		return nil, false, fmt.Errorf("%w: repeated header field", ErrInvalidHeader)
	}
	v := vals[0]
	if len(v) > s.max {
		return nil, false, fmtTooLarge()
	}
	switch s.format {
	case FormatEnvoyXFCC:
		cert, err = parseXFCC(v)
	case FormatNginxEscapedPEM:
		if trimOWS(v) == "" {
			return nil, false, nil
		}
		cert, err = parsePEMCert(v)
	default:
		cert, err = parseClientCert(v, s.max)
	}
	if err != nil {
		return nil, false, err
	}
	return cert, true, nil
}

func fmtTooLarge() error {
	return fmt.Errorf("%w: %w", ErrInvalidHeader, ErrHeaderTooLarge)
}

func tlsPeer(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}
