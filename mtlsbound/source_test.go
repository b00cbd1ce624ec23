package mtlsbound

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/trustedproxy"
)

// sourceServer serves the outcome of src.Extract: "x5t forwarded" on
// success, "none" without a certificate, 400 for ErrInvalidHeader (431 when
// it is also ErrHeaderTooLarge).
func sourceServer(t *testing.T, src *Source, useTLS bool) (*httptest.Server, *fixture) {
	t.Helper()
	f := fixtures(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, fwd, err := src.Extract(r)
		switch {
		case errors.Is(err, ErrHeaderTooLarge):
			http.Error(w, "too large", http.StatusRequestHeaderFieldsTooLarge)
			return
		case errors.Is(err, ErrInvalidHeader):
			http.Error(w, "bad header", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "error", http.StatusInternalServerError)
			return
		case c == nil:
			io.WriteString(w, "none")
			return
		}
		if fwd != src.Forwarded(r) {
			http.Error(w, "Forwarded disagrees with Extract", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %v", Thumbprint(c), fwd)
	}))
	if useTLS {
		srv.TLS = ServerTLSConfig(f.server.TLSCertificate())
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, f
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

// proxies returns the trusted set of peers, with the default header family.
func proxies(t testing.TB, peers ...string) *trustedproxy.Set {
	t.Helper()
	s, err := trustedproxy.New(trustedproxy.Config{Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSource(t *testing.T, cfg SourceConfig) *Source {
	t.Helper()
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSourceForwardedHeaderOverLoopback(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	c1 := FormatClientCertHeader(f.c1.Cert)
	want := Thumbprint(f.c1.Cert) + " true"
	loopback := proxies(t, "127.0.0.1/32", "::1")
	sum := sha256.Sum256(f.c1.Cert.Raw)
	tests := []struct {
		name       string
		cfg        SourceConfig
		hdr        http.Header
		wantStatus int
		wantBody   string
	}{
		{"CCERT-01/default config ignores header", SourceConfig{}, http.Header{"Client-Cert": {c1}}, 200, "none"},
		{"CCERT-02/ADV-85 untrusted peer ignored", SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8")}, http.Header{"Client-Cert": {c1}}, 200, "none"},
		{"CCERT-02/trusted peer used", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {c1}}, 200, want},
		{"CCERT-03/KAT-12 from trusted peer", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {kat12Header}}, 200, kat12X5t + " true"},
		{"CCERT-02/untrusted peer malformed header ignored", SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8")}, http.Header{"Client-Cert": {"junk"}}, 200, "none"},
		{"no header from trusted peer", SourceConfig{TrustedProxies: loopback}, nil, 200, "none"},
		{"CCERT-05/two fields", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {c1, c1}}, 400, ""},
		{"CCERT-05/list value", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {c1 + ", " + c1}}, 400, ""},
		{"CCERT-04/malformed", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {"-----BEGIN CERTIFICATE-----"}}, 400, ""},
		{"CCERT-06/ADV-89 chain alone", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert-Chain": {FormatClientCertHeader(f.c1.Cert)}}, 400, ""},
		{"CCERT-06/chain never used as client cert", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {c1}, "Client-Cert-Chain": {FormatClientCertChainHeader(f.c1.Chain)}}, 200, want},
		{"ADV-89/CA cert", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {FormatClientCertHeader(f.ca1.Cert)}}, 400, ""},
		{"CCERT-13/6 KiB fits", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {FormatClientCertHeader(f.big.Cert)}}, 200, Thumbprint(f.big.Cert) + " true"},
		{"CCERT-13/128 KiB refused", SourceConfig{TrustedProxies: loopback}, http.Header{"Client-Cert": {":" + strings.Repeat("A", 128<<10) + ":"}}, 431, ""},
		{"MaxHeaderBytes applies", SourceConfig{TrustedProxies: loopback, MaxHeaderBytes: 4096}, http.Header{"Client-Cert": {FormatClientCertHeader(f.big.Cert)}}, 431, ""},
		{"custom header name", SourceConfig{TrustedProxies: loopback, Header: "x-client-cert"}, http.Header{"X-Client-Cert": {c1}, "Client-Cert": {FormatClientCertHeader(f.c2.Cert)}}, 200, want},
		{"xfcc", SourceConfig{TrustedProxies: loopback, Format: FormatEnvoyXFCC}, http.Header{"X-Forwarded-Client-Cert": {"Hash=" + hex.EncodeToString(sum[:]) + `;Cert="` + escapedPEM(f.c1.Cert.Raw) + `"`}}, 200, want},
		{"xfcc untrusted peer ignored", SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8"), Format: FormatEnvoyXFCC}, http.Header{"X-Forwarded-Client-Cert": {`Cert="` + escapedPEM(f.c1.Cert.Raw) + `"`}}, 200, "none"},
		{"xfcc two elements", SourceConfig{TrustedProxies: loopback, Format: FormatEnvoyXFCC}, http.Header{"X-Forwarded-Client-Cert": {`Cert="` + escapedPEM(f.c2.Cert.Raw) + `",Cert="` + escapedPEM(f.c1.Cert.Raw) + `"`}}, 400, ""},
		{"xfcc ignores Client-Cert", SourceConfig{TrustedProxies: loopback, Format: FormatEnvoyXFCC}, http.Header{"Client-Cert": {c1}}, 200, "none"},
		{"nginx", SourceConfig{TrustedProxies: loopback, Format: FormatNginxEscapedPEM}, http.Header{"X-Ssl-Client-Cert": {escapedPEM(f.c1.Cert.Raw)}}, 200, want},
		{"nginx empty means none", SourceConfig{TrustedProxies: loopback, Format: FormatNginxEscapedPEM}, http.Header{"X-Ssl-Client-Cert": {""}}, 200, "none"},
		{"nginx untrusted ignored", SourceConfig{TrustedProxies: proxies(t, "192.0.2.1"), Format: FormatNginxEscapedPEM}, http.Header{"X-Ssl-Client-Cert": {escapedPEM(f.c1.Cert.Raw)}}, 200, "none"},
		{"nginx malformed", SourceConfig{TrustedProxies: loopback, Format: FormatNginxEscapedPEM}, http.Header{"X-Ssl-Client-Cert": {"%zz"}}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := sourceServer(t, mustSource(t, tt.cfg), false)
			status, body := get(t, srv.Client(), srv.URL, tt.hdr)
			if status != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// TestSourceConnectionCertificate: the connection's certificate is the
// client's only from an untrusted peer (CCERT-16); from a trusted proxy it
// is the proxy's own, and the client's is the forwarded one, or none.
func TestSourceConnectionCertificate(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	loopback := proxies(t, "127.0.0.1", "::1")
	elsewhere := proxies(t, "10.0.0.0/8")
	c2 := f.c2.TLSCertificate()
	s1 := f.s1.TLSCertificate()
	tests := []struct {
		name     string
		cfg      SourceConfig
		cert     *tls.Certificate
		hdr      http.Header
		wantBody string
	}{
		{"CCERT-16/ADV-87 untrusted peer's TLS cert beats its header", SourceConfig{TrustedProxies: elsewhere}, &c2, http.Header{"Client-Cert": {FormatClientCertHeader(f.c1.Cert)}}, Thumbprint(f.c2.Cert) + " false"},
		{"CCERT-16 untrusted peer's TLS cert beats a malformed header", SourceConfig{TrustedProxies: elsewhere}, &c2, http.Header{"Client-Cert": {"junk"}}, Thumbprint(f.c2.Cert) + " false"},
		{"self-signed cert accepted at handshake (MTLS-CB-11)", SourceConfig{}, &s1, nil, Thumbprint(f.s1.Cert) + " false"},
		{"MTLS-CB-10 no client cert, default config", SourceConfig{}, nil, http.Header{"Client-Cert": {FormatClientCertHeader(f.c1.Cert)}}, "none"},
		{"TLS without client cert from trusted proxy uses header", SourceConfig{TrustedProxies: loopback}, nil, http.Header{"Client-Cert": {FormatClientCertHeader(f.c1.Cert)}}, Thumbprint(f.c1.Cert) + " true"},
		{"CCERT-02/trusted proxy with its own cert: the forwarded one is the client's", SourceConfig{TrustedProxies: loopback}, &c2, http.Header{"Client-Cert": {FormatClientCertHeader(f.c1.Cert)}}, Thumbprint(f.c1.Cert) + " true"},
		{"CCERT-02/trusted proxy with its own cert forwarding none: no client cert", SourceConfig{TrustedProxies: loopback}, &c2, nil, "none"},
		{"CCERT-04/trusted proxy with its own cert, malformed header", SourceConfig{TrustedProxies: loopback}, &c2, http.Header{"Client-Cert": {"junk"}}, "bad header"},
		{"trusted proxy with its own cert, other header format", SourceConfig{TrustedProxies: loopback, Format: FormatNginxEscapedPEM}, &c2, http.Header{"X-Ssl-Client-Cert": {escapedPEM(f.c1.Cert.Raw)}}, Thumbprint(f.c1.Cert) + " true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, f := sourceServer(t, mustSource(t, tt.cfg), true)
			client := NewClient(tt.cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			_, body := get(t, client, srv.URL, tt.hdr)
			if body != tt.wantBody {
				t.Fatalf("got %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestSourceOddRequests(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	s := mustSource(t, SourceConfig{TrustedProxies: proxies(t, "127.0.0.1")})
	if c, err := s.ClientCertificate(nil); c != nil || err != nil || s.Forwarded(nil) {
		t.Fatal("nil request")
	}
	r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{}}
	if c, err := s.ClientCertificate(r); c != nil || err != nil {
		t.Fatal("empty peer certificate list")
	}
	r.Header.Set("Client-Cert", FormatClientCertHeader(f.c1.Cert))
	if c, err := s.ClientCertificate(r); err != nil || !c.Equal(f.c1.Cert) || !s.Forwarded(r) {
		t.Fatal("header from trusted peer on TLS connection without peer cert")
	}
	r.RemoteAddr = ""
	if c, err := s.ClientCertificate(r); c != nil || err != nil || s.Forwarded(r) {
		t.Fatal("empty RemoteAddr must not be trusted")
	}
	r.RemoteAddr = "garbage"
	if c, _ := s.ClientCertificate(r); c != nil {
		t.Fatal("unparsable RemoteAddr must not be trusted")
	}
}

func TestNewSourceRefusesNonsense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  SourceConfig
		ok   bool
	}{
		{"zero value", SourceConfig{}, true},
		{"full", SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8", "::1"), Header: "X-Client-Cert", MaxHeaderBytes: 32 << 10}, true},
		{"header with space", SourceConfig{Header: "Client Cert"}, false},
		{"header with colon", SourceConfig{Header: "Client-Cert:"}, false},
		{"chain header", SourceConfig{Header: "client-cert-chain"}, false},
		{"tiny cap", SourceConfig{MaxHeaderBytes: 100}, false},
		{"negative cap", SourceConfig{MaxHeaderBytes: -1}, false},
		{"huge cap", SourceConfig{MaxHeaderBytes: 8 << 20}, false},
		{"unknown format", SourceConfig{Format: HeaderFormat(42)}, false},
		{"unknown format with proxies", SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8"), Format: HeaderFormat(42)}, false},
		{"CCERT-15/xfcc without trusted proxies", SourceConfig{Format: FormatEnvoyXFCC}, false},
		{"CCERT-15/nginx without trusted proxies", SourceConfig{Format: FormatNginxEscapedPEM}, false},
		{"CCERT-15/header name without trusted proxies", SourceConfig{Header: "X-Client-Cert"}, false},
		{"CCERT-15/size cap without trusted proxies", SourceConfig{MaxHeaderBytes: 32 << 10}, false},
		{"CCERT-15/xfcc with the zero Set", SourceConfig{TrustedProxies: &trustedproxy.Set{}, Format: FormatEnvoyXFCC}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSource(tt.cfg)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok && (!errors.Is(err, ErrInvalidConfig) || s != nil) {
				t.Fatalf("err = %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
	s := mustSource(t, SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8"), Format: FormatEnvoyXFCC})
	if s.Header() != "X-Forwarded-Client-Cert" {
		t.Fatalf("header = %s", s.Header())
	}
}
