package mtlsbound

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"
)

// ServerTLSConfig returns a server TLS configuration that presents cert and
// requests, but does not require or verify, a client certificate
// (tls.RequestClientCert), with TLS 1.2 as the minimum version. The
// handshake still proves that the client holds the certificate's private key
// (CertificateVerify); which certificates are acceptable is decided per
// client afterwards (PKIAuth, SelfSignedAuth, CheckBinding), so self-signed
// client certificates (RFC 8705 §2.2) and clients without one get through
// the handshake. The result is a fresh value the caller may modify.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// NewClient returns an HTTP client that presents cert on TLS connections
// (nil presents none) and trusts roots for server certificates (nil means
// the system roots), with TLS 1.2 as the minimum version and a 30-second
// overall timeout. It never sets Client-Cert headers (CCERT-12). Each call
// returns a new client with its own connection pool; the client is safe for
// concurrent use.
func NewClient(cert *tls.Certificate, roots *x509.CertPool) *http.Client {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		c := *cert
		tc.Certificates = []tls.Certificate{c}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
