package issuer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// fallbackHarness is the harness with a fallback CA on the issuer.
func fallbackHarness(t *testing.T) (*harness, *certs.CA) {
	t.Helper()
	root, err := certs.NewCA(certs.Options{CommonName: "Fallback CA"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
		ca, err := fallback.NewCA(fallback.CAConfig{Certificate: root.Cert, Signer: root.Key, Now: cfg.Issuer.now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Fallback = ca
	}})
	return h, root
}

func csrForm(t testing.TB, scope string) (url.Values, *x509.CertificateRequest) {
	t.Helper()
	key := newES256(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	f := url.Values{"csr": {base64.RawURLEncoding.EncodeToString(der)}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f, csr
}

func TestCertificateEndpoint(t *testing.T) {
	t.Parallel()
	h, root := fallbackHarness(t)
	certURL := strings.TrimSuffix(h.is.ID(), "/") + CertificatePath
	aliasURL := "https://" + h.alias.Listener.Addr().String() + CertificatePath
	good, csr := csrForm(t, "")
	badSig, _ := csrForm(t, "")
	raw, _ := base64.RawURLEncoding.DecodeString(badSig.Get("csr"))
	raw[len(raw)-1] ^= 1
	badSig.Set("csr", base64.RawURLEncoding.EncodeToString(raw))
	post := func(secret string, extra url.Values) url.Values {
		f := url.Values{}
		for k, v := range extra {
			f[k] = v
		}
		if secret != "" {
			f.Set("client_id", "post")
			f.Set("client_secret", secret)
		}
		return f
	}
	withScope := func(scope string) url.Values {
		f := url.Values{"csr": good["csr"]}
		f.Set("scope", scope)
		return f
	}
	tests := []struct {
		name       string
		url        string
		leaf       *certs.Leaf
		form       url.Values
		hdr        map[string]string
		wantStatus int
		wantCode   string
		wantID     string
		wantScopes []string
	}{
		{name: "client_secret_basic", url: certURL, form: good, hdr: basic("conf", confSecret), wantStatus: 200, wantID: "conf", wantScopes: []string{"read", "write"}},
		{name: "scope subset", url: certURL, form: withScope("write"), hdr: basic("conf", confSecret), wantStatus: 200, wantID: "conf", wantScopes: []string{"write"}},
		{name: "client_secret_post", url: certURL, form: post(postSecret, good), wantStatus: 200, wantID: "post", wantScopes: []string{"read"}},
		{name: "tls_client_auth on the alias", url: aliasURL, leaf: h.c1, form: url.Values{"client_id": {"pki"}, "csr": good["csr"]}, wantStatus: 200, wantID: "pki", wantScopes: []string{"read"}},
		{name: "wrong secret", url: certURL, form: good, hdr: basic("conf", "wrong-secret-000000000000000000"), wantStatus: 401, wantCode: "invalid_client"},
		{name: "unknown client", url: certURL, form: good, hdr: basic("nobody", confSecret), wantStatus: 401, wantCode: "invalid_client"},
		{name: "public client", url: certURL, form: url.Values{"client_id": {"public"}, "csr": good["csr"]}, wantStatus: 400, wantCode: "unauthorized_client"},
		{name: "tls_client_auth without certificate", url: aliasURL, form: url.Values{"client_id": {"pki"}, "csr": good["csr"]}, wantStatus: 400, wantCode: "invalid_client"},
		{name: "scope not registered", url: certURL, form: withScope("read admin"), hdr: basic("conf", confSecret), wantStatus: 400, wantCode: "invalid_scope"},
		{name: "bad CSR signature", url: certURL, form: badSig, hdr: basic("conf", confSecret), wantStatus: 400, wantCode: "invalid_request"},
		{name: "CSR not base64url", url: certURL, form: url.Values{"csr": {"not+base64/url=="}}, hdr: basic("conf", confSecret), wantStatus: 400, wantCode: "invalid_request"},
		{name: "CSR missing", url: certURL, form: url.Values{}, hdr: basic("conf", confSecret), wantStatus: 400, wantCode: "invalid_request"},
		{name: "CSR garbage", url: certURL, form: url.Values{"csr": {base64.RawURLEncoding.EncodeToString([]byte(attackMarker))}}, hdr: basic("conf", confSecret), wantStatus: 400, wantCode: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.post(h.client(tc.leaf), tc.url, tc.form, tc.hdr)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Fatal("response is cacheable")
			}
			if strings.Contains(string(r.raw), attackMarker) {
				t.Fatal("response echoes request input")
			}
			if tc.wantCode != "" {
				if r.str("error") != tc.wantCode {
					t.Fatalf("error %q, want %q", r.str("error"), tc.wantCode)
				}
				return
			}
			if r.header.Get("Content-Type") != "application/pem-certificate-chain" {
				t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
			}
			chain, err := certs.ParseCertificates(r.raw)
			if err != nil || len(chain) != 2 || !chain[1].Equal(root.Cert) {
				t.Fatalf("chain: %v", err)
			}
			if tc.name == "client_secret_basic" && !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Fatal("certificate is not for the CSR's key")
			}
			crl, err := h.server.cfg.Fallback.CRL(context.Background(), h.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			list, err := fallback.ParseRevocationList(crl, root.Cert)
			if err != nil {
				t.Fatal(err)
			}
			v, err := fallback.NewVerifier(fallback.Config{CAs: []*x509.Certificate{root.Cert}, CRL: list, Now: h.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.VerifyChain(context.Background(), chain)
			if err != nil {
				t.Fatal(err)
			}
			if id.ClientID != tc.wantID || !slices.Equal(id.Scopes, tc.wantScopes) {
				t.Fatalf("identity %s %q", id.ClientID, id.Scopes)
			}
		})
	}

	r := h.do(h.client(nil), mustGet(t, certURL))
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET: status %d, Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestCRLEndpointAndMetadata(t *testing.T) {
	t.Parallel()
	h, root := fallbackHarness(t)
	base := strings.TrimSuffix(h.is.ID(), "/")
	r := h.do(h.client(nil), mustGet(t, base+CRLPath))
	if r.status != 200 || r.header.Get("Content-Type") != "application/pkix-crl" || r.header.Get("ETag") == "" {
		t.Fatalf("CRL: status %d, %q", r.status, r.header.Get("Content-Type"))
	}
	if _, err := fallback.ParseRevocationList(r.raw, root.Cert); err != nil {
		t.Fatal(err)
	}
	r = h.do(h.client(nil), mustGet(t, base+MetadataPath))
	var md Metadata
	if err := json.Unmarshal(r.raw, &md); err != nil {
		t.Fatal(err)
	}
	aliasBase := "https://" + h.alias.Listener.Addr().String()
	if md.FallbackCertificateEndpoint != base+CertificatePath || md.FallbackCRLURI != base+CRLPath ||
		md.MTLSEndpointAliases["fallback_certificate_endpoint"] != aliasBase+CertificatePath {
		t.Fatalf("metadata %+v", md)
	}

	// Without a fallback CA nothing changes: no endpoints, no metadata.
	plain := newHarness(t, harnessOpts{})
	pbase := strings.TrimSuffix(plain.is.ID(), "/")
	for _, p := range []string{CertificatePath, CRLPath} {
		if r := plain.do(plain.client(nil), mustGet(t, pbase+p)); r.status != http.StatusNotFound {
			t.Fatalf("%s without a fallback CA: status %d", p, r.status)
		}
	}
	r = plain.do(plain.client(nil), mustGet(t, pbase+MetadataPath))
	if strings.Contains(string(r.raw), "fallback") {
		t.Fatal("metadata advertises the fallback without a CA")
	}
}
