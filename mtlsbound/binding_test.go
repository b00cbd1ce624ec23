package mtlsbound

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// resourceServer is a minimal certificate-bound resource over real TLS: the
// token's cnf.x5t#S256 is given by the test (as if read from a verified
// token); the certificate comes from src. 2xx on a match, 401 otherwise,
// 400 for a malformed forwarded header.
func resourceServer(t *testing.T, src *Source, x5t string) *httptest.Server {
	t.Helper()
	f := fixtures(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cert, err := src.ClientCertificate(r)
		if errors.Is(err, ErrInvalidHeader) {
			http.Error(w, "invalid_request", http.StatusBadRequest)
			return
		}
		if err := CheckBinding(cert, x5t); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid_token", http.StatusUnauthorized)
			return
		}
		if src.Forwarded(r) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Add("Vary", src.Header())
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = ServerTLSConfig(f.server.TLSCertificate())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestCertificateBoundTokenOverTLS(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	c1b, err := f.ca1.Issue(certs.Options{CommonName: "client1", Client: true, Key: f.c1.Key})
	if err != nil {
		t.Fatal(err)
	}
	sameDN, err := f.ca1.Issue(certs.Options{Subject: f.c1.Cert.Subject, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	atc := Thumbprint(f.c1.Cert)
	direct := mustSource(t, SourceConfig{TrustedProxies: proxies(t, "10.0.0.0/8")})
	behindProxy := mustSource(t, SourceConfig{TrustedProxies: proxies(t, "127.0.0.1", "::1")})
	c1Header := http.Header{"Client-Cert": {FormatClientCertHeader(f.c1.Cert)}}
	tests := []struct {
		name       string
		src        *Source
		x5t        string
		leaf       *certs.Leaf
		hdr        http.Header
		wantStatus int
	}{
		{"MTLS-CB-09/MTLS-CB-12 C1", direct, atc, f.c1, nil, 200},
		{"MTLS-CB-09 C2", direct, atc, f.c2, nil, 401},
		{"ADV-83 same DN, other key", direct, atc, sameDN, nil, 401},
		{"MTLS-CB-10/ADV-84 no certificate", direct, atc, nil, nil, 401},
		{"MTLS-CB-14 same key, new certificate", direct, atc, c1b, nil, 401},
		{"MTLS-CB-11 self-signed S1, no trusted issuer", direct, Thumbprint(f.s1.Cert), f.s1, nil, 200},
		{"THUMB-13 padded binding", direct, atc + "=", f.c1, nil, 401},
		{"ADV-90 SPKI digest as binding", direct, kat12SPKI, f.c1, nil, 401},
		{"CCERT-02/ADV-85 header from untrusted peer", direct, atc, nil, c1Header, 401},
		{"CCERT-02 header from trusted peer", behindProxy, atc, nil, c1Header, 200},
		{"CCERT-16/ADV-87 untrusted peer's TLS C2 beats header C1", direct, atc, f.c2, c1Header, 401},
		{"CCERT-02 trusted proxy's own certificate C2, forwarded C1", behindProxy, atc, f.c2, c1Header, 200},
		{"CCERT-02 trusted proxy's own certificate is not the client's", behindProxy, atc, f.c1, nil, 401},
		{"CCERT-05 two headers from trusted peer", behindProxy, atc, nil, http.Header{"Client-Cert": {c1Header.Get("Client-Cert"), c1Header.Get("Client-Cert")}}, 400},
		{"CCERT-06 chain without Client-Cert", behindProxy, atc, nil, http.Header{"Client-Cert-Chain": {FormatClientCertHeader(f.c1.Cert)}}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := resourceServer(t, tt.src, tt.x5t)
			var cert *tls.Certificate
			if tt.leaf != nil {
				c := tt.leaf.TLSCertificate()
				cert = &c
			}
			client := NewClient(cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/resource", nil)
			for k, vs := range tt.hdr {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.Header.Get("Client-Cert") != "" || resp.Header.Get("Client-Cert-Chain") != "" {
				t.Fatal("CCERT-07: certificate header in response")
			}
			if tt.wantStatus == 200 && tt.src == behindProxy && resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("CCERT-10: response chosen by a forwarded certificate is cacheable")
			}
		})
	}
}

// TestNewClientNeverSendsClientCert checks CCERT-12: the client transport
// adds no Client-Cert header of its own.
func TestNewClientNeverSendsClientCert(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	seen := make(chan http.Header, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	srv.TLS = ServerTLSConfig(f.server.TLSCertificate())
	srv.StartTLS()
	defer srv.Close()
	c := f.c1.TLSCertificate()
	client := NewClient(&c, f.ca1.Pool())
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if h.Get("Client-Cert") != "" || h.Get("Client-Cert-Chain") != "" {
		t.Fatal("client added a Client-Cert header")
	}
	if cfg := ServerTLSConfig(f.server.TLSCertificate()); cfg.ClientAuth != tls.RequestClientCert || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatal("ServerTLSConfig must request, not require, client certificates, TLS 1.2+")
	}
	old := NewClient(nil, f.ca1.Pool())
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	if resp, err := old.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 handshake accepted")
	}
}
