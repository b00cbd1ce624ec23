package mtlsbound

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestForwardClientCertThroughProxy runs a real TLS-terminating reverse
// proxy on loopback in front of a backend that trusts it: the backend sees
// exactly the certificate the client proved at the proxy, never one the
// client wrote into a header (CCERT-08, CCERT-09).
func TestForwardClientCertThroughProxy(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	src := mustSource(t, SourceConfig{TrustedProxies: []string{"127.0.0.1", "::1"}})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := src.ClientCertificate(r)
		switch {
		case err != nil:
			http.Error(w, "bad header", http.StatusBadRequest)
		case c == nil:
			io.WriteString(w, "none")
		default:
			io.WriteString(w, Thumbprint(c)+" chain="+r.Header.Get(DefaultChainHeader))
		}
	}))
	t.Cleanup(backend.Close)
	bu, _ := url.Parse(backend.URL)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(bu)
		ForwardClientCert(pr.Out.Header, pr.In.TLS)
	}})
	proxy.TLS = ServerTLSConfig(f.server.TLSCertificate())
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	inter, err := f.ca1.NewIntermediate(certs.Options{CommonName: "CA1 issuing"})
	if err != nil {
		t.Fatal(err)
	}
	viaInter, err := inter.Issue(certs.Options{CommonName: "chained", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	forged := http.Header{
		"Client-Cert":       {FormatClientCertHeader(f.c1.Cert)},
		"Client-Cert-Chain": {FormatClientCertHeader(f.ca1.Cert)},
	}
	tests := []struct {
		name string
		leaf *certs.Leaf
		hdr  http.Header
		want string
	}{
		{"CCERT-09 forged header over plain TLS removed", nil, forged, "none"},
		{"CCERT-08 forged header over mTLS overwritten", f.c2, forged, Thumbprint(f.c2.Cert) + " chain="},
		{"client certificate forwarded", f.c1, nil, Thumbprint(f.c1.Cert) + " chain="},
		{"chain forwarded separately", viaInter, nil, Thumbprint(viaInter.Cert) + " chain=" + FormatClientCertHeader(inter.Cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			if tt.leaf != nil {
				c := tt.leaf.TLSCertificate()
				cert = &c
			}
			client := NewClient(cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, proxy.URL, nil)
			for k, vs := range tt.hdr {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(body)); resp.StatusCode != 200 || got != tt.want {
				t.Fatalf("backend saw %d %q, want %q", resp.StatusCode, got, tt.want)
			}
		})
	}
}
