package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// cliCreateCA runs "ca create" into a fresh directory and returns it.
func cliCreateCA(t testing.TB, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	cliMustRun(t, "", append([]string{"ca", "create", "--out", dir}, extra...)...)
	return dir
}

// cliCheckMode fails t unless path has permission bits want.
func cliCheckMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), st.Mode().Perm(), want)
	}
}

func TestCACreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	out := cliMustRun(t, "", "ca", "create", "--out", dir, "--cn", "Test Root", "--ttl", "48h")
	ca, err := certs.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "Test Root" || len(ca.Chain) != 0 {
		t.Fatalf("CA: IsCA %v, subject %q, chain %d", ca.Cert.IsCA, ca.Cert.Subject, len(ca.Chain))
	}
	if d := time.Until(ca.Cert.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("CA valid for %s more, want about 48h", d)
	}
	cliCheckMode(t, filepath.Join(dir, certs.CAKeyFile), 0o600)
	for _, want := range []string{
		filepath.Join(dir, certs.CACertFile),
		filepath.Join(dir, certs.CAKeyFile) + " (mode 0600)",
		"CN=Test Root",
		"x5t#S256     " + mtlsbound.Thumbprint(ca.Cert),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	defaultDir := cliCreateCA(t)
	def, err := certs.LoadCA(defaultDir)
	if err != nil {
		t.Fatal(err)
	}
	if def.Cert.Subject.CommonName != "senderbound test CA" {
		t.Errorf("default CN %q", def.Cert.Subject.CommonName)
	}
	if d := time.Until(def.Cert.NotAfter); d < certs.DefaultCATTL-time.Hour {
		t.Errorf("default CA validity %s", d)
	}
}

func TestCACreateRefusesOverwrite(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	before, err := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := cliRun(t, "", "ca", "create", "--out", dir)
	if code != 1 || out != "" || !strings.Contains(errs, certs.CAKeyFile+" already exists; pass --force") {
		t.Fatalf("second ca create: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, certs.CAKeyFile)); !bytes.Equal(before, after) {
		t.Fatal("CA key replaced without --force")
	}
	// A lone certificate (key deleted) is protected too.
	if err := os.Remove(filepath.Join(dir, certs.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cliRun(t, "", "ca", "create", "--out", dir); code != 1 || !strings.Contains(errs, certs.CACertFile+" already exists") {
		t.Fatalf("ca create over a lone ca.pem: exit %d, stderr %q", code, errs)
	}
	cliMustRun(t, "", "ca", "create", "--out", dir, "--force")
	if _, err := certs.LoadCA(dir); err != nil {
		t.Fatalf("forced CA does not load: %v", err)
	}
	cliCheckMode(t, filepath.Join(dir, certs.CAKeyFile), 0o600)
}

func TestCertIssue(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t, "--cn", "Issuing Root")
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantEKU  []x509.ExtKeyUsage
		wantDNS  []string
		wantURI  []string
		wantIP   []string
		wantTTL  time.Duration
		wantText string
	}{
		{
			name:     "client with SANs",
			args:     []string{"--cn", "client1", "--client", "--dns", "client1.example.test", "--uri", "spiffe://example.test/client1", "--uri", "https://client1.example.test/", "--ip", "192.0.2.7", "--ttl", "2h"},
			wantEKU:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			wantDNS:  []string{"client1.example.test"},
			wantURI:  []string{"spiffe://example.test/client1", "https://client1.example.test/"},
			wantIP:   []string{"192.0.2.7"},
			wantTTL:  2 * time.Hour,
			wantText: "usage        clientAuth\n",
		},
		{
			name:     "server",
			args:     []string{"--cn", "localhost", "--server", "--dns", "localhost", "--ip", "127.0.0.1", "--ip", "::1"},
			wantEKU:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			wantDNS:  []string{"localhost"},
			wantIP:   []string{"127.0.0.1", "::1"},
			wantTTL:  certs.DefaultTTL,
			wantText: "SANs         DNS:localhost, IP:127.0.0.1, IP:::1\n",
		},
		{
			name:     "both usages by default",
			args:     []string{"--cn", "both"},
			wantEKU:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			wantTTL:  certs.DefaultTTL,
			wantText: "usage        clientAuth, serverAuth\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "leaf")
			out := cliMustRun(t, "", append([]string{"cert", "issue", "--ca", caDir, "--out", dir}, tt.args...)...)
			leaf, err := certs.LoadLeaf(dir)
			if err != nil {
				t.Fatal(err)
			}
			cliCheckMode(t, filepath.Join(dir, certs.LeafKeyFile), 0o600)
			c := leaf.Cert
			if c.IsCA || len(leaf.Chain) != 1 || !leaf.Chain[0].Equal(ca.Cert) {
				t.Fatalf("leaf: IsCA %v, chain %d", c.IsCA, len(leaf.Chain))
			}
			if !slices.Equal(c.ExtKeyUsage, tt.wantEKU) {
				t.Errorf("EKU %v, want %v", c.ExtKeyUsage, tt.wantEKU)
			}
			for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
				_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{eku}})
				if want := slices.Contains(tt.wantEKU, eku); (err == nil) != want {
					t.Errorf("verify for EKU %v: %v, want success %v", eku, err, want)
				}
			}
			if !slices.Equal(c.DNSNames, tt.wantDNS) {
				t.Errorf("DNS SANs %v, want %v", c.DNSNames, tt.wantDNS)
			}
			var uris, ips []string
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(uris, tt.wantURI) || !slices.Equal(ips, tt.wantIP) {
				t.Errorf("URI SANs %v, IP SANs %v; want %v, %v", uris, ips, tt.wantURI, tt.wantIP)
			}
			for _, name := range tt.wantDNS {
				if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					t.Errorf("verify for DNS name %s: %v", name, err)
				}
			}
			if d := c.NotAfter.Sub(c.NotBefore) - time.Minute; d < tt.wantTTL-time.Minute || d > tt.wantTTL+time.Minute {
				t.Errorf("validity %s, want about %s", d, tt.wantTTL)
			}
			for _, want := range []string{
				filepath.Join(dir, certs.LeafCertFile),
				filepath.Join(dir, certs.LeafKeyFile) + " (mode 0600)",
				"subject      CN=" + c.Subject.CommonName + "\n",
				"issuer       CN=Issuing Root\n",
				"x5t#S256     " + mtlsbound.Thumbprint(c) + "\n",
				tt.wantText,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestCertIssueRefusesOverwrite(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t)
	dir := filepath.Join(t.TempDir(), "leaf")
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "one", "--out", dir)
	first, err := certs.LoadLeaf(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := cliRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "two", "--out", dir)
	if code != 1 || !strings.Contains(errs, "already exists; pass --force") {
		t.Fatalf("second cert issue: exit %d, stderr %q", code, errs)
	}
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "two", "--out", dir, "--force")
	second, err := certs.LoadLeaf(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second.Cert.Equal(first.Cert) || second.Cert.Subject.CommonName != "two" {
		t.Fatal("--force did not replace the certificate")
	}
	// The leaf may share the CA's directory: the file names differ.
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "beside", "--out", caDir)
	if _, err := certs.LoadCA(caDir); err != nil {
		t.Fatalf("CA damaged by a leaf in its directory: %v", err)
	}
}

func TestCertIssueFlags(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t, "--ttl", "10h")
	out := filepath.Join(t.TempDir(), "leaf")
	leafDir := filepath.Join(t.TempDir(), "leaf")
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "a", "--ttl", "1h", "--out", leafDir)
	// A directory whose ca.pem and ca-key.pem hold a leaf and its key.
	fakeCADir := t.TempDir()
	for src, dst := range map[string]string{certs.LeafCertFile: certs.CACertFile, certs.LeafKeyFile: certs.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(leafDir, src))
		if err != nil {
			t.Fatal(err)
		}
		cliWriteFile(t, fakeCADir, dst, b)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"ca without subcommand", []string{"ca"}, 2, "Usage: senderbound ca create"},
		{"ca help", []string{"ca", "-h"}, 0, "Usage: senderbound ca create"},
		{"ca create help", []string{"ca", "create", "-h"}, 0, "--ttl"},
		{"ca unknown subcommand", []string{"ca", "destroy"}, 2, `unknown subcommand "destroy"`},
		{"ca create without out", []string{"ca", "create"}, 2, "ca create needs --out"},
		{"ca create empty cn", []string{"ca", "create", "--out", out, "--cn", ""}, 2, "--cn needs a non-empty value"},
		{"ca create zero ttl", []string{"ca", "create", "--out", out, "--ttl", "0s"}, 2, "--ttl must be positive"},
		{"ca create bad ttl", []string{"ca", "create", "--out", out, "--ttl", "soon"}, 2, "invalid value"},
		{"ca create stray argument", []string{"ca", "create", "--out", out, "x"}, 2, `unexpected argument "x"`},
		{"cert without subcommand", []string{"cert"}, 2, "Usage: senderbound cert issue"},
		{"cert issue help", []string{"cert", "issue", "-h"}, 0, "--client"},
		{"cert unknown subcommand", []string{"cert", "revoke"}, 2, `unknown subcommand "revoke"`},
		{"no flags", []string{"cert", "issue"}, 2, "cert issue needs --ca, --cn, --out"},
		{"without ca", []string{"cert", "issue", "--cn", "a", "--out", out}, 2, "cert issue needs --ca (run"},
		{"without cn", []string{"cert", "issue", "--ca", caDir, "--out", out}, 2, "cert issue needs --cn (run"},
		{"without out", []string{"cert", "issue", "--ca", caDir, "--cn", "a"}, 2, "cert issue needs --out (run"},
		{"empty ca", []string{"cert", "issue", "--ca", "", "--cn", "a", "--out", out}, 2, "--ca needs a non-empty value"},
		{"client and server", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--client", "--server"}, 2, "--client and --server exclude each other"},
		{"bad ip", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--ip", "300.1.1.1"}, 2, `--ip "300.1.1.1" is not an IP address`},
		{"relative uri", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--uri", "no-scheme"}, 2, `--uri "no-scheme" is not an absolute URI`},
		{"bad dns", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--dns", "two words"}, 2, `--dns "two words" is not a DNS name`},
		{"negative ttl", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--ttl", "-1h"}, 2, "--ttl must be positive"},
		{"ttl beyond the CA", []string{"cert", "issue", "--ca", caDir, "--cn", "a", "--out", out, "--ttl", "11h"}, 1, "outlives the CA certificate"},
		{"missing CA", []string{"cert", "issue", "--ca", filepath.Join(out, "nope"), "--cn", "a", "--out", out}, 1, "no such file"},
		{"CA directory holds a leaf", []string{"cert", "issue", "--ca", leafDir, "--cn", "a", "--out", out}, 1, "senderbound cert: open"},
		{"leaf certificate as CA", []string{"cert", "issue", "--ca", fakeCADir, "--cn", "a", "--out", out}, 1, "not a CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, errs := cliRun(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.wantCode, tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused command wrote %s", out)
	}
}

func TestCertIssueServerWithoutNamesWarns(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t)
	code, _, errs := cliRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "srv", "--server", "--out", filepath.Join(t.TempDir(), "srv"))
	if code != 0 || !strings.Contains(errs, "senderbound cert issue: warning: a server certificate without --dns, --ip or a --cn that names a host") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// TestCertIssueTLS checks that certificates from the two commands work over a
// real TLS connection: the server certificate verifies for 127.0.0.1 and
// the client certificate is accepted by a server requiring one from the CA.
func TestCertIssueTLS(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t)
	srvDir := filepath.Join(t.TempDir(), "srv")
	cliDir := filepath.Join(t.TempDir(), "cli")
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "srv", "--server", "--ip", "127.0.0.1", "--out", srvDir)
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "client1", "--client", "--out", cliDir)
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := certs.LoadLeaf(srvDir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := certs.LoadLeaf(cliDir)
	if err != nil {
		t.Fatal(err)
	}
	ts := cliStartTLS(t, func(string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "client1" {
				http.Error(w, "no client certificate", http.StatusForbidden)
			}
		})
	}, srv, tls.RequireAndVerifyClientCert, ca.Pool())
	cc := cl.TLSCertificate()
	resp, err := mtlsbound.NewClient(&cc, ca.Pool()).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.TLS == nil || resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if host, _, _ := net.SplitHostPort(ts.Listener.Addr().String()); host != "127.0.0.1" {
		t.Fatalf("listener on %s", host)
	}
}
