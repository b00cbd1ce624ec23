// Package certforward is the proxy side of RFC 9440: what a
// TLS-terminating reverse proxy in front of a resource server or token
// endpoint does with the client certificate it received. The test servers
// and the reference deployments of this module use it; the library's own
// packages only read the headers (mtlsbound.Source).
package certforward

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/senderbound/senderbound/mtlsbound"
)

// ClientCert prepares the headers of a request that a TLS-terminating
// proxy forwards to its backend (RFC 9440 §2.4): it removes every incoming
// Client-Cert and Client-Cert-Chain field, whatever the client sent
// (CCERT-08, CCERT-09), then, when the client presented a certificate on
// cs, sets Client-Cert to the end-entity certificate and, if the client sent
// more, Client-Cert-Chain to the rest. The client certificate is not
// validated here: the backend decides what to accept. Use it from an
// httputil.ReverseProxy Rewrite function:
//
//	Rewrite: func(pr *httputil.ProxyRequest) {
//		pr.SetURL(backend)
//		certforward.ClientCert(pr.Out.Header, pr.In.TLS)
//	}
//
// Responses must not carry the headers (CCERT-07); ClientCert only
// touches the request, [Response] the response.
func ClientCert(h http.Header, cs *tls.ConnectionState) {
	h.Del(mtlsbound.DefaultHeader)
	h.Del(mtlsbound.DefaultChainHeader)
	if cs == nil || len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0] == nil {
		return
	}
	h.Set(mtlsbound.DefaultHeader, mtlsbound.FormatClientCertHeader(cs.PeerCertificates[0]))
	if rest := cs.PeerCertificates[1:]; len(rest) > 0 {
		h.Set(mtlsbound.DefaultChainHeader, mtlsbound.FormatClientCertChainHeader(rest))
	}
}

// Response prepares the headers of a backend response that
// a TLS-terminating proxy returns to its client (RFC 9440 §2.4): it removes
// any Client-Cert and Client-Cert-Chain fields (CCERT-07), and when Vary
// names either of them it replaces Vary with "*" (CCERT-11), because the
// client never sends those fields and a downstream cache could not honour
// the variation. Use it from an httputil.ReverseProxy ModifyResponse
// function:
//
//	ModifyResponse: func(resp *http.Response) error {
//		certforward.Response(resp.Header)
//		return nil
//	}
func Response(h http.Header) {
	h.Del(mtlsbound.DefaultHeader)
	h.Del(mtlsbound.DefaultChainHeader)
	for _, v := range h.Values("Vary") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if strings.EqualFold(name, mtlsbound.DefaultHeader) || strings.EqualFold(name, mtlsbound.DefaultChainHeader) {
				h.Set("Vary", "*")
				return
			}
		}
	}
}
