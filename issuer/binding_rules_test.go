package issuer

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound"
)

// TestOneBindingPerToken: the issuer never mints a token bound both to a
// DPoP key and to a certificate (the resource-side rule for such tokens is
// MTLS-CB-16/ADV-73). A client authenticated with mTLS that also sends a
// DPoP proof gets cnf with jkt only (DPOP-AS-29), and a public client's
// refresh token issued that way is bound to the DPoP key, not to the
// certificate.
func TestOneBindingPerToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	p := h.prover(nil)

	t.Run("MTLS-CB-16/ADV-73 Mint refuses both", func(t *testing.T) {
		b := CertificateBinding(h.c1.Cert)
		b.JKT = p.Thumbprint()
		if _, err := h.is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", Binding: b}); !errors.Is(err, ErrInvalidBinding) {
			t.Fatalf("err = %v, want ErrInvalidBinding", err)
		}
	})

	t.Run("MTLS-CB-16/ADV-73 mTLS client with a DPoP proof", func(t *testing.T) {
		r := h.post(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}},
			map[string]string{"DPoP": h.proof(p, h.aliasTokenURL(), "")})
		h.checkTokenResponse(r)
		cnf := cnfOf(h.verify(r.str("access_token")))
		if r.status != 200 || len(cnf) != 1 || cnf["jkt"] != p.Thumbprint() || r.str("token_type") != "DPoP" {
			t.Fatalf("status %d cnf %v body %s", r.status, cnf, r.raw)
		}
	})

	t.Run("MTLS-CB-16/DPOP-AS-06 public client's refresh token follows the DPoP key", func(t *testing.T) {
		r := h.post(h.client(h.s1), h.aliasTokenURL(), url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"gina"}},
			map[string]string{"DPoP": h.proof(p, h.aliasTokenURL(), "")})
		h.checkTokenResponse(r)
		if r.status != 200 || r.str("refresh_token") == "" || len(cnfOf(h.verify(r.str("access_token")))) != 1 {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {r.str("refresh_token")}}
		if r := h.post(h.client(h.s1), h.aliasTokenURL(), form, nil); r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("same certificate without the DPoP key: %d %s", r.status, r.raw)
		}
		r = h.post(h.client(h.s2), h.aliasTokenURL(), form, map[string]string{"DPoP": h.proof(p, h.aliasTokenURL(), "")})
		h.checkTokenResponse(r)
		if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["jkt"] != p.Thumbprint() {
			t.Fatalf("DPoP key, other certificate: %d %s", r.status, r.raw)
		}
	})

	t.Run("MTLS-CB-15 no implicit grant", func(t *testing.T) {
		for _, gt := range []string{"implicit", "token"} {
			r := h.post(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {gt}, "client_id": {"pki"}}, nil)
			h.checkTokenResponse(r)
			if r.status != 400 || r.str("error") != "unsupported_grant_type" {
				t.Fatalf("grant_type %s: %d %s", gt, r.status, r.raw)
			}
		}
		if md := h.server.Metadata(); len(md.ResponseTypesSupported) != 0 || md.AuthorizationEndpoint != "" {
			t.Fatalf("metadata advertises an authorization endpoint: %+v", md)
		}
	})
}

// TestConventionalEndpointWithoutCertificateRequest records MTLS-CA-18:
// with an mTLS alias, the conventional token endpoint can run on a TLS
// listener that never sends a CertificateRequest. Secret clients work
// there; a tls_client_auth client fails there (MTLS-CA-01) and succeeds at
// the alias, whose listener requests a certificate.
func TestConventionalEndpointWithoutCertificateRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	// A second conventional listener for the same Server that does not ask
	// for client certificates (the harness's own listeners both do).
	plain := httptest.NewUnstartedServer(h.server.Handler())
	plain.StartTLS()
	t.Cleanup(plain.Close)

	var asked atomic.Int32
	client := func(withCert bool) *http.Client {
		tr := h.client(nil).Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.RootCAs.AddCert(plain.Certificate())
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Add(1)
			if !withCert {
				return &tls.Certificate{}, nil
			}
			c := h.c1.TLSCertificate()
			return &c, nil
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	send := func(c *http.Client, base string, form url.Values, hdr map[string]string) result {
		req, err := http.NewRequest(http.MethodPost, base+TokenPath, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r := h.do(c, req)
		h.checkTokenResponse(r)
		return r
	}
	if r := send(client(true), plain.URL, url.Values{"grant_type": {"client_credentials"}}, basic("conf", confSecret)); r.status != 200 {
		t.Fatalf("secret client on the plain listener: %d %s", r.status, r.raw)
	}
	r := send(client(true), plain.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil)
	if r.status != 400 || r.str("error") != "invalid_client" {
		t.Fatalf("MTLS-CA-01 tls_client_auth on the plain listener: %d %s", r.status, r.raw)
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("MTLS-CA-18: the plain listener sent %d CertificateRequests", n)
	}
	r = send(client(true), h.alias.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil)
	if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["x5t#S256"] != mtlsbound.Thumbprint(h.c1.Cert) {
		t.Fatalf("alias: %d %s", r.status, r.raw)
	}
	if asked.Load() == 0 {
		t.Fatal("the alias listener never asked for a certificate")
	}
}
