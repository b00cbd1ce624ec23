package restest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/certforward"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// untrustedAddr is the loopback source address of direct test clients;
// only 127.0.0.1 (the proxy) is a trusted peer.
var untrustedAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

// StartServers serves h on loopback and returns the targets the case table
// uses:
//
//	http       plain HTTP, direct (untrusted peer)
//	tls        TLS without client certificate
//	mtls-c1    TLS with client certificate C1 (likewise mtls-c2,
//	           mtls-c1b for C1 re-issued over the same key, mtls-s1 for
//	           the self-signed S1)
//	proxy-c1   through a TLS-terminating proxy (the trusted peer) that
//	           forwards C1 in Client-Cert to the plain-HTTP backend
//	proxy-none through the same proxy without a client certificate
//	mproxy-c1  through a TLS-terminating proxy (the trusted peer) that
//	           connects to the TLS backend with its own client certificate
//	           P and forwards C1 in Client-Cert
//	mproxy-none through that proxy without a client certificate: it
//	           forwards none, and presents P to the backend
func StartServers(t testing.TB, e *Env, h http.Handler) map[string]Target {
	t.Helper()
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)

	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.TLS = mtlsbound.ServerTLSConfig(e.Server.TLSCertificate())
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	backend, _ := url.Parse(plain.URL)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			// Like nginx and many others, the proxy sets the
			// X-Forwarded-* family and passes a client's RFC 7239
			// Forwarded field through untouched.
			pr.Out.Header["Forwarded"] = pr.In.Header["Forwarded"]
			pr.Out.Header.Del("Client-Cert")
			pr.Out.Header.Del("Client-Cert-Chain")
			if pr.In.TLS != nil && len(pr.In.TLS.PeerCertificates) > 0 {
				pr.Out.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(pr.In.TLS.PeerCertificates[0]))
			}
		},
	})
	proxy.TLS = mtlsbound.ServerTLSConfig(e.Server.TLSCertificate())
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	tlsBackend, _ := url.Parse(tlsSrv.URL)
	upstream := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      e.CA.Pool(),
		Certificates: []tls.Certificate{e.P.TLSCertificate()},
		MinVersion:   tls.VersionTLS12,
	}}
	t.Cleanup(upstream.CloseIdleConnections)
	mproxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Transport: upstream,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(tlsBackend)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			certforward.ClientCert(pr.Out.Header, pr.In.TLS)
		},
	})
	mproxy.TLS = mtlsbound.ServerTLSConfig(e.Server.TLSCertificate())
	mproxy.StartTLS()
	t.Cleanup(mproxy.Close)

	client := func(leaf *certs.Leaf) *http.Client {
		var c *tls.Certificate
		if leaf != nil {
			tc := leaf.TLSCertificate()
			c = &tc
		}
		cl := mtlsbound.NewClient(c, e.CA.Pool())
		tr := cl.Transport.(*http.Transport)
		d := &net.Dialer{LocalAddr: untrustedAddr, Timeout: 5 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
		t.Cleanup(tr.CloseIdleConnections)
		return cl
	}
	return map[string]Target{
		"http":        {URL: plain.URL, Client: client(nil)},
		"tls":         {URL: tlsSrv.URL, Client: client(nil)},
		"mtls-c1":     {URL: tlsSrv.URL, Client: client(e.C1)},
		"mtls-c2":     {URL: tlsSrv.URL, Client: client(e.C2)},
		"mtls-c1b":    {URL: tlsSrv.URL, Client: client(e.C1b)},
		"mtls-s1":     {URL: tlsSrv.URL, Client: client(e.S1)},
		"proxy-c1":    {URL: proxy.URL, Client: client(e.C1)},
		"proxy-none":  {URL: proxy.URL, Client: client(nil)},
		"mproxy-c1":   {URL: mproxy.URL, Client: client(e.C1)},
		"mproxy-none": {URL: mproxy.URL, Client: client(nil)},
	}
}
