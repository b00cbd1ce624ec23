package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

func TestCARevoke(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	leafDir := filepath.Join(t.TempDir(), "leaf")
	cliMustRun(t, "", "cert", "issue", "--ca", dir, "--cn", "app", "--client", "--out", leafDir)
	leaf, err := certs.LoadLeaf(leafDir)
	if err != nil {
		t.Fatal(err)
	}
	other := cliCreateCA(t)
	otherLeaf := filepath.Join(t.TempDir(), "other")
	cliMustRun(t, "", "cert", "issue", "--ca", other, "--cn", "app", "--client", "--out", otherLeaf)

	out := cliMustRun(t, "", "ca", "revoke", "--ca", dir, "--cert", filepath.Join(leafDir, certs.LeafCertFile))
	if !strings.Contains(out, leaf.Cert.SerialNumber.Text(16)) {
		t.Fatalf("output %q does not name the serial", out)
	}
	cliMustRun(t, "", "ca", "revoke", "--ca", dir, "--serial", "0A:0b")
	list, err := (&fallback.FileRevocations{Path: filepath.Join(dir, fallbackRevocationsFile)}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Serial.Int64() != 0x0a0b || list[1].Serial.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Fatalf("revocations %v", list)
	}
	cliCheckMode(t, filepath.Join(dir, fallbackRevocationsFile), 0o600)

	for name, args := range map[string][]string{
		"neither":         {"--ca", dir},
		"both":            {"--ca", dir, "--serial", "1", "--cert", filepath.Join(leafDir, certs.LeafCertFile)},
		"no CA":           {"--serial", "1"},
		"bad serial":      {"--ca", dir, "--serial", "xyz"},
		"zero serial":     {"--ca", dir, "--serial", "0"},
		"other CA's cert": {"--ca", dir, "--cert", filepath.Join(otherLeaf, certs.LeafCertFile)},
	} {
		if code, _, _ := cliRun(t, "", append([]string{"ca", "revoke"}, args...)...); code == 0 {
			t.Errorf("%s: exit status 0", name)
		}
	}
}

// TestServeIssuerFallback runs serve-issuer with --fallback-ca: a client
// obtains a certificate at /certificate, and a revocation made with "ca
// revoke" shows in the running server's next CRL.
func TestServeIssuerFallback(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret,
		"--scope", "read", "--scope", "write", "--fallback-ca", dir, "--fallback-cert-ttl", "720h")
	plain := &http.Client{Timeout: 10 * time.Second}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, as.URL+issuer.CertificatePath,
		strings.NewReader(url.Values{"csr": {base64.RawURLEncoding.EncodeToString(csr)}, "scope": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", serveTestSecret)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("certificate request: %d %s", resp.StatusCode, body)
	}
	chain, err := certs.ParseCertificates(body)
	if err != nil || len(chain) != 2 {
		t.Fatalf("chain: %v", err)
	}
	if d := chain[0].NotAfter.Sub(chain[0].NotBefore); d < 719*time.Hour || d > 721*time.Hour {
		t.Fatalf("lifetime %v, want 720h", d)
	}
	crl := func() *fallback.RevocationList {
		t.Helper()
		resp, err := plain.Get(as.URL + issuer.CRLPath)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l, err := fallback.ParseRevocationList(der, chain[1])
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if crl().Revoked(chain[0].SerialNumber) {
		t.Fatal("revoked before ca revoke")
	}
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, certs.EncodeCertificates(chain...), 0o644); err != nil {
		t.Fatal(err)
	}
	cliMustRun(t, "", "ca", "revoke", "--ca", dir, "--cert", certFile)
	if !crl().Revoked(chain[0].SerialNumber) {
		t.Fatal("the running issuer's CRL does not list the revoked certificate")
	}
}

// TestServeResourceFallback runs the fallback story with the two servers:
// a certificate from serve-issuer authorizes signed requests at
// serve-resource without a token, scopes included, until "ca revoke" and
// the next CRL refresh; a request with nothing is refused.
func TestServeResourceFallback(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret,
		"--scope", "read", "--scope", "write", "--fallback-ca", dir)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--scope", "read",
		"--fallback-ca", filepath.Join(dir, certs.CACertFile), "--fallback-crl", as.URL+issuer.CRLPath, "--crl-refresh", "50ms")
	plain := &http.Client{Timeout: 10 * time.Second}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, as.URL+issuer.CertificatePath,
		strings.NewReader(url.Values{"csr": {base64.RawURLEncoding.EncodeToString(csr)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", serveTestSecret)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	chain, err := certs.ParseCertificates(body)
	if err != nil {
		t.Fatalf("certificate request: %d %v", resp.StatusCode, err)
	}
	prover, err := fallback.NewProver(key, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := &http.Client{Timeout: 10 * time.Second, Transport: &dpop.Transport{Prover: prover}}
	call := func(c *http.Client) (int, serveResourceResponse) {
		t.Helper()
		resp, err := c.Get(rs.URL + "/resource")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rr serveResourceResponse
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, rr
	}
	// The first CRL fetch may still be under way: 503 until it lands.
	deadline := time.Now().Add(10 * time.Second)
	status, rr := call(signed)
	for status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		status, rr = call(signed)
	}
	if status != http.StatusOK || rr.Binding != "fallback_certificate" || rr.ClientID != "app" || rr.Scope != "read write" {
		t.Fatalf("signed request: %d %+v", status, rr)
	}
	if status, _ := call(plain); status != http.StatusUnauthorized {
		t.Fatalf("no credentials: status %d", status)
	}
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, certs.EncodeCertificates(chain...), 0o644); err != nil {
		t.Fatal(err)
	}
	cliMustRun(t, "", "ca", "revoke", "--ca", dir, "--cert", certFile)
	deadline = time.Now().Add(10 * time.Second)
	for status == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		status, _ = call(signed)
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("revoked certificate after the CRL refresh: status %d", status)
	}
}

// TestCertRequest obtains a fallback certificate with "cert request" from
// a running serve-issuer, with a secret and a scope subset, and checks the
// refusals that never reach the issuer.
func TestCertRequest(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+serveTestSecret,
		"--scope", "read", "--scope", "write", "--fallback-ca", dir)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := serveWriteFile(t, t.TempDir(), "client-key.pem", keyPEM)
	out := filepath.Join(t.TempDir(), "fallback")
	cliMustRun(t, serveTestSecret+"\n", "cert", "request", "--issuer", as.URL, "--client-id", "app", "--client-secret", "-",
		"--key", keyFile, "--scope", "read", "--out", out)
	leaf, err := certs.LoadLeaf(out)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := certs.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Cert.CheckSignatureFrom(caCert.Cert); err != nil {
		t.Fatal(err)
	}
	scopes, err := fallback.ScopesFromCertificate(leaf.Cert, nil)
	if err != nil || len(scopes) != 1 || scopes[0] != "read" {
		t.Fatalf("scopes %q, %v", scopes, err)
	}
	if len(leaf.Cert.URIs) != 1 || leaf.Cert.URIs[0].String() != "urn:senderbound:client:app" {
		t.Fatalf("URI SAN %v", leaf.Cert.URIs)
	}
	cliCheckMode(t, filepath.Join(out, certs.LeafKeyFile), 0o600)

	for name, args := range map[string][]string{
		"existing output":   {"--issuer", as.URL, "--client-id", "app", "--client-secret", serveTestSecret, "--key", keyFile, "--out", out},
		"wrong secret":      {"--issuer", as.URL, "--client-id", "app", "--client-secret", "wrong-secret-0123456789", "--key", keyFile, "--out", filepath.Join(t.TempDir(), "x")},
		"scope not granted": {"--issuer", as.URL, "--client-id", "app", "--client-secret", serveTestSecret, "--key", keyFile, "--scope", "admin", "--out", filepath.Join(t.TempDir(), "x")},
		"no authentication": {"--issuer", as.URL, "--client-id", "app", "--key", keyFile, "--out", filepath.Join(t.TempDir(), "x")},
		"http off loopback": {"--issuer", "http://as.example.test", "--client-id", "app", "--client-secret", serveTestSecret, "--key", keyFile, "--out", filepath.Join(t.TempDir(), "x")},
		"secret and cert":   {"--issuer", as.URL, "--client-id", "app", "--client-secret", serveTestSecret, "--cert", keyFile, "--key", keyFile, "--out", filepath.Join(t.TempDir(), "x")},
		"missing key":       {"--issuer", as.URL, "--client-id", "app", "--client-secret", serveTestSecret, "--out", filepath.Join(t.TempDir(), "x")},
	} {
		if code, _, _ := cliRun(t, "", append([]string{"cert", "request"}, args...)...); code == 0 {
			t.Errorf("%s: exit status 0", name)
		}
	}
}
