package certforward

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/trustedproxy"
)

// TestForwardClientCertThroughProxy runs a real TLS-terminating reverse
// proxy on loopback in front of a backend that trusts it: the backend sees
// exactly the certificate the client proved at the proxy, never one the
// client wrote into a header (CCERT-08, CCERT-09).
func TestForwardClientCertThroughProxy(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	src := mustSource(t, mtlsbound.SourceConfig{TrustedProxies: proxies(t, "127.0.0.1", "::1")})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := src.ClientCertificate(r)
		switch {
		case err != nil:
			http.Error(w, "bad header", http.StatusBadRequest)
		case c == nil:
			io.WriteString(w, "none")
		default:
			io.WriteString(w, mtlsbound.Thumbprint(c)+" chain="+r.Header.Get(mtlsbound.DefaultChainHeader))
		}
	}))
	t.Cleanup(backend.Close)
	bu, _ := url.Parse(backend.URL)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(bu)
		ClientCert(pr.Out.Header, pr.In.TLS)
	}})
	proxy.TLS = mtlsbound.ServerTLSConfig(f.server.TLSCertificate())
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
		"Client-Cert":       {mtlsbound.FormatClientCertHeader(f.c1.Cert)},
		"Client-Cert-Chain": {mtlsbound.FormatClientCertHeader(f.ca1.Cert)},
	}
	tests := []struct {
		name string
		leaf *certs.Leaf
		hdr  http.Header
		want string
	}{
		{"CCERT-09 forged header over plain TLS removed", nil, forged, "none"},
		{"CCERT-08 forged header over mTLS overwritten", f.c2, forged, mtlsbound.Thumbprint(f.c2.Cert) + " chain="},
		{"client certificate forwarded", f.c1, nil, mtlsbound.Thumbprint(f.c1.Cert) + " chain="},
		{"chain forwarded separately", viaInter, nil, mtlsbound.Thumbprint(viaInter.Cert) + " chain=" + mtlsbound.FormatClientCertHeader(inter.Cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			if tt.leaf != nil {
				c := tt.leaf.TLSCertificate()
				cert = &c
			}
			client := mtlsbound.NewClient(cert, f.ca1.Pool())
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

// TestForwardClientCertResponse runs a real TLS-terminating proxy whose
// backend leaks the forwarded headers and varies on Client-Cert: the client
// sees neither header (CCERT-07) and Vary: * instead (CCERT-11).
func TestForwardClientCertResponse(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(mtlsbound.DefaultHeader, r.Header.Get(mtlsbound.DefaultHeader))
		w.Header().Set(mtlsbound.DefaultChainHeader, ":AAAA:")
		if vary := r.URL.Query().Get("vary"); vary != "" {
			w.Header().Add("Vary", "Accept-Encoding")
			w.Header().Add("Vary", vary)
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	bu, _ := url.Parse(backend.URL)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(bu)
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			ClientCert(pr.Out.Header, pr.In.TLS)
		},
		ModifyResponse: func(resp *http.Response) error {
			Response(resp.Header)
			return nil
		},
	})
	proxy.TLS = mtlsbound.ServerTLSConfig(f.server.TLSCertificate())
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	c1 := f.c1.TLSCertificate()
	client := mtlsbound.NewClient(&c1, f.ca1.Pool())
	t.Cleanup(client.CloseIdleConnections)
	for _, tt := range []struct {
		vary, want string
	}{
		{"", ""},
		{"Origin", "Accept-Encoding,Origin"},
		{"client-cert", "*"},
		{"Origin, Client-Cert-Chain", "*"},
	} {
		t.Run("vary="+tt.vary, func(t *testing.T) {
			resp, err := client.Get(proxy.URL + "/?vary=" + url.QueryEscape(tt.vary))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get(mtlsbound.DefaultHeader) != "" || resp.Header.Get(mtlsbound.DefaultChainHeader) != "" {
				t.Fatal("CCERT-07: forwarded certificate header in the response")
			}
			if got := strings.Join(resp.Header.Values("Vary"), ","); got != tt.want {
				t.Fatalf("CCERT-11: Vary = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestForwardClientCertAfterResumption checks CCERT-14 for a Go proxy: on a
// resumed TLS session the proxy still knows the client certificate proven
// in the original handshake, so it forwards that certificate, never none
// and never another.
func TestForwardClientCertAfterResumption(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	src := mustSource(t, mtlsbound.SourceConfig{TrustedProxies: proxies(t, "127.0.0.1", "::1")})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := src.ClientCertificate(r)
		if err != nil || c == nil {
			io.WriteString(w, "none")
			return
		}
		io.WriteString(w, mtlsbound.Thumbprint(c))
	}))
	t.Cleanup(backend.Close)
	bu, _ := url.Parse(backend.URL)
	resumed := make(chan bool, 4)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(bu)
		resumed <- pr.In.TLS != nil && pr.In.TLS.DidResume
		ClientCert(pr.Out.Header, pr.In.TLS)
	}})
	proxy.TLS = mtlsbound.ServerTLSConfig(f.server.TLSCertificate())
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	c1 := f.c1.TLSCertificate()
	client := mtlsbound.NewClient(&c1, f.ca1.Pool())
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	tr.DisableKeepAlives = true // a new TLS connection per request
	for i, wantResumed := range []bool{false, true} {
		resp, err := client.Get(proxy.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := <-resumed; got != wantResumed {
			t.Fatalf("request %d: DidResume = %v, want %v", i, got, wantResumed)
		}
		if got := strings.TrimSpace(string(body)); got != mtlsbound.Thumbprint(f.c1.Cert) {
			t.Fatalf("request %d (resumed=%v): backend saw %q", i, wantResumed, got)
		}
	}
}

// TestForwardClientCertThroughMTLSProxy runs a real TLS-terminating proxy
// that authenticates itself to a TLS backend with its own client
// certificate (upstream mTLS, as a service-mesh sidecar does). Behind it
// the client's certificate is the forwarded one, or none; the proxy's own
// certificate is never taken for the client's. A client connecting to the
// backend directly, from an untrusted address, is judged by its own TLS
// certificate, whatever header it sends (CCERT-16).
func TestForwardClientCertThroughMTLSProxy(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	src := mustSource(t, mtlsbound.SourceConfig{TrustedProxies: proxies(t, "127.0.0.1")})
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no certificate on the connection", http.StatusInternalServerError)
			return
		}
		c, fwd, err := src.Extract(r)
		switch {
		case err != nil:
			http.Error(w, "bad header", http.StatusBadRequest)
		case c == nil:
			io.WriteString(w, "none")
		default:
			fmt.Fprintf(w, "%s %v", mtlsbound.Thumbprint(c), fwd)
		}
	}))
	backend.TLS = mtlsbound.ServerTLSConfig(f.server.TLSCertificate())
	backend.StartTLS()
	t.Cleanup(backend.Close)

	// The proxy's own certificate, presented to the backend.
	proxyCert := f.s2.TLSCertificate()
	upstream := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      f.ca1.Pool(),
		Certificates: []tls.Certificate{proxyCert},
		MinVersion:   tls.VersionTLS12,
	}}
	t.Cleanup(upstream.CloseIdleConnections)
	bu, _ := url.Parse(backend.URL)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Transport: upstream,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(bu)
			ClientCert(pr.Out.Header, pr.In.TLS)
		},
	})
	proxy.TLS = mtlsbound.ServerTLSConfig(f.server.TLSCertificate())
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	untrusted := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	forged := http.Header{"Client-Cert": {mtlsbound.FormatClientCertHeader(f.c1.Cert)}}
	tests := []struct {
		name   string
		url    string
		leaf   *certs.Leaf
		hdr    http.Header
		direct bool
		want   string
	}{
		{"CCERT-02 client certificate C1 forwarded over the proxy's mTLS", proxy.URL, f.c1, nil, false, mtlsbound.Thumbprint(f.c1.Cert) + " true"},
		{"CCERT-02 proxy forwards none: no client certificate, not the proxy's", proxy.URL, nil, nil, false, "none"},
		{"CCERT-09 forged header without client certificate removed by the proxy", proxy.URL, nil, forged, false, "none"},
		{"CCERT-16/ADV-87 untrusted direct client: its TLS certificate wins", backend.URL, f.c2, forged, true, mtlsbound.Thumbprint(f.c2.Cert) + " false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			if tt.leaf != nil {
				c := tt.leaf.TLSCertificate()
				cert = &c
			}
			client := mtlsbound.NewClient(cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			if tt.direct {
				client.Transport.(*http.Transport).DialContext = untrusted.DialContext
			}
			status, body := get(t, client, tt.url, tt.hdr)
			if status != http.StatusOK || body != tt.want {
				t.Fatalf("backend answered %d %q, want %q", status, body, tt.want)
			}
		})
	}
}

type fixture struct {
	ca1                *certs.CA
	server, c1, c2, s2 *certs.Leaf
}

func fixtures(t testing.TB) *fixture {
	t.Helper()
	var f fixture
	var err error
	if f.ca1, err = certs.NewCA(certs.Options{CommonName: "CA1"}); err != nil {
		t.Fatal(err)
	}
	must := func(l *certs.Leaf, err error) *certs.Leaf {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	f.server = must(f.ca1.Issue(certs.Options{CommonName: "server", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, Server: true}))
	f.c1 = must(f.ca1.Issue(certs.Options{CommonName: "client1", Client: true}))
	f.c2 = must(f.ca1.Issue(certs.Options{CommonName: "client2", Client: true}))
	f.s2 = must(certs.SelfSigned(certs.Options{CommonName: "s2", Client: true}))
	return &f
}

func proxies(t testing.TB, peers ...string) *trustedproxy.Set {
	t.Helper()
	s, err := trustedproxy.New(trustedproxy.Config{Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSource(t *testing.T, cfg mtlsbound.SourceConfig) *mtlsbound.Source {
	t.Helper()
	s, err := mtlsbound.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
func get(t *testing.T, client *http.Client, u string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
