package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// styleTLSFixture is a CA in a directory (as "ca create" writes it), a
// second CA nobody trusts, and their certificates.
type styleTLSFixture struct {
	caFile   string
	ca       *certs.CA
	clientOK string // directory of a client certificate from ca
}

func newStyleTLSFixture(t *testing.T) *styleTLSFixture {
	t.Helper()
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	cliMustRun(t, "", "ca", "create", "--out", caDir)
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	clientDir := filepath.Join(dir, "client")
	cliMustRun(t, "", "cert", "issue", "--ca", caDir, "--cn", "app", "--client", "--out", clientDir)
	return &styleTLSFixture{caFile: filepath.Join(caDir, certs.CACertFile), ca: ca, clientOK: clientDir}
}

// startTLS serves 200 over TLS on 127.0.0.1 with a certificate from ca
// for opts, requiring a client certificate from ca when requireClient.
func (f *styleTLSFixture) startTLS(t *testing.T, ca *certs.CA, opts certs.Options, requireClient bool) string {
	t.Helper()
	opts.Server = true
	leaf, err := ca.Issue(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	if requireClient {
		ts.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		ts.TLS.ClientCAs = f.ca.Pool()
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// TestTLSHints checks that token and load name the real cause of a TLS
// failure against real servers, one hint each, on one line.
func TestTLSHints(t *testing.T) {
	t.Parallel()
	f := newStyleTLSFixture(t)
	other, err := certs.NewCA(certs.Options{CommonName: "untrusted CA"})
	if err != nil {
		t.Fatal(err)
	}
	loopback := certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	localhostOnly := f.startTLS(t, f.ca, certs.Options{DNSNames: []string{"localhost"}}, false)
	unknownCA := f.startTLS(t, other, loopback, false)
	expired := f.startTLS(t, f.ca, certs.Options{IPAddresses: loopback.IPAddresses, TTL: 1}, false)
	needsCert := f.startTLS(t, f.ca, loopback, true)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	plainAddr := plain.Listener.Addr().String()

	keyFile := filepath.Join(t.TempDir(), "k.jwk")
	cliMustRun(t, "", "keygen", "--out", keyFile)
	token := func(url string, extra ...string) []string {
		return append([]string{"token", "--token-endpoint", url, "--client-id", "app", "--ca-file", f.caFile}, extra...)
	}
	tests := []struct {
		name      string
		args      []string
		wantCause string
		wantHint  string
	}{
		{"wrong name", token("https://" + localhostOnly + "/token"), "not valid for 127.0.0.1 (it names DNS:localhost)", hintWrongName},
		{"unknown CA", token("https://" + unknownCA + "/token"), "signed by an unknown certificate authority", hintUnknownCA},
		{"expired", token("https://" + expired + "/token"), "has expired", hintInvalidCert},
		{"HTTPS to a plain HTTP port", token("https://" + plainAddr + "/token"), "answered a TLS handshake with plain HTTP", hintPlainHTTP},
		{"plain HTTP to an HTTPS port", token("http://" + unknownCA + "/token"), "answered 400 Bad Request to plain HTTP", hintHTTPS},
		{"no client certificate", token("https://" + needsCert + "/token"), "refused the TLS handshake", hintRefusedTLS},
		{"load: wrong name", []string{"load", "--mode", "none", "--url", "https://" + localhostOnly + "/resource", "--ca-file", f.caFile, "-n", "5", "--quiet"},
			"not valid for 127.0.0.1", hintWrongName},
		{"load: unknown CA", []string{"load", "--mode", "none", "--url", "https://" + unknownCA + "/resource", "--ca-file", f.caFile, "-n", "5", "--quiet"},
			"unknown certificate authority", hintUnknownCA},
		{"cert request: wrong name", []string{"cert", "request", "--issuer", "https://" + localhostOnly, "--client-id", "app", "--client-secret", "secret-0123456789abcdef",
			"--key", keyFile, "--out", filepath.Join(t.TempDir(), "fallback"), "--ca-file", f.caFile}, "not valid for 127.0.0.1", hintWrongName},
		{"cert request: unknown CA", []string{"cert", "request", "--issuer", "https://" + unknownCA, "--client-id", "app", "--client-secret", "secret-0123456789abcdef",
			"--key", keyFile, "--out", filepath.Join(t.TempDir(), "fallback"), "--ca-file", f.caFile}, "unknown certificate authority", hintUnknownCA},
		{"load: plain HTTP to an HTTPS port", []string{"load", "--mode", "none", "--url", "http://" + unknownCA + "/resource", "-n", "5", "--quiet"},
			"answered 400", hintHTTPS},
		{"load: token endpoint with the wrong name", []string{"load", "--mode", "bearer", "--url", "https://" + unknownCA + "/resource",
			"--token-endpoint", "https://" + localhostOnly + "/token", "--client-id", "app", "--ca-file", f.caFile, "-n", "1"},
			"not valid for 127.0.0.1", hintWrongName},
	}
	conform := func(base string) []string {
		return []string{"conform", "--token-endpoint", base + "/token", "--client-id", "app", "--client-secret", "secret-0123456789abcdef",
			"--resource", base + "/resource", "--ca-file", f.caFile, "--allow-loopback-http"}
	}
	conformTests := []struct {
		name      string
		args      []string
		wantCause string
		wantHint  string
	}{
		{"conform: wrong name", conform("https://" + localhostOnly), "not valid for 127.0.0.1 (it names DNS:localhost)", hintWrongName},
		{"conform: unknown CA", conform("https://" + unknownCA), "unknown certificate authority", hintUnknownCA},
		{"conform: HTTPS to a plain HTTP port", conform("https://" + plainAddr), "answered a TLS handshake with plain HTTP", hintPlainHTTP},
		{"conform: plain HTTP to an HTTPS port", conform("http://" + unknownCA), "answered 400 Bad Request to plain HTTP", hintHTTPS},
	}
	for _, tt := range conformTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errs := cliRun(t, "", tt.args...)
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			last := lines[len(lines)-1]
			if code != 3 || !strings.HasPrefix(last, "senderbound conform: preflight: ") ||
				!strings.Contains(last, tt.wantCause) || !strings.Contains(last, "("+tt.wantHint+")") {
				t.Errorf("exit %d, stderr %q\nwant 3 and a preflight line with the cause %q and the hint %q", code, errs, tt.wantCause, tt.wantHint)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, "", tt.args...)
			if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "senderbound "+tt.args[0]+": ") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and one prefixed line", code, out, errs)
			}
			if !strings.Contains(errs, tt.wantCause) || !strings.Contains(errs, "("+tt.wantHint+")") {
				t.Errorf("stderr %q\nwant the cause %q and the hint %q", errs, tt.wantCause, tt.wantHint)
			}
			for _, other := range []string{hintWrongName, hintUnknownCA, hintInvalidCert, hintPlainHTTP, hintHTTPS, hintRefusedTLS} {
				if other != tt.wantHint && strings.Contains(errs, other) {
					t.Errorf("stderr %q also gives the hint %q", errs, other)
				}
			}
		})
	}
}

// TestErrorStyle checks one error style across the commands: a usage
// error is one line "senderbound CMD: … (run 'senderbound CMD -h')" with
// exit status 2, and a failure is one prefixed line that names no
// internal package.
func TestErrorStyle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := cliWriteFile(t, dir, "junk.jwk", []byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}`))
	notPEM := cliWriteFile(t, dir, "not.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	usage := []struct {
		cmd  string
		args []string
	}{
		{"keygen", []string{"--bits", "2048"}},
		{"keygen", []string{"--alg", "HS256"}},
		{"keygen", []string{"extra"}},
		{"thumbprint", []string{"a", "b"}},
		{"thumbprint", []string{"--x"}},
		{"proof", []string{"--key", "k"}},
		{"proof", []string{"--unknown"}},
		{"proof", []string{"--key", "k", "--method", "GET", "--url", "https://x/", "--alg", "none"}},
		{"token", []string{"--token-endpoint", "http://192.0.2.1/token", "--client-id", "a"}},
		{"token", []string{"--nope"}},
		{"ca", []string{"create", "--out", ""}},
		{"ca", []string{"create", "--nope"}},
		{"cert", []string{"issue", "--ca", "x"}},
		{"cert", []string{"issue", "--nope"}},
		{"cert", []string{"revoke"}},
		{"ca", []string{"destroy"}},
		{"conform", []string{"--nope"}},
		{"load", []string{"--nope"}},
		{"bench", []string{"--nope"}},
		{"demo", []string{"--nope"}},
		{"version", []string{"extra"}},
		{"serve-issuer", []string{"--nope"}},
		{"serve-resource", []string{"--nope"}},
	}
	for _, tt := range usage {
		t.Run("usage "+tt.cmd+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, "", append([]string{tt.cmd}, tt.args...)...)
			name := tt.cmd
			if (tt.cmd == "ca" || tt.cmd == "cert") && (tt.args[0] == "create" || tt.args[0] == "issue") {
				name += " " + tt.args[0]
			}
			if code != 2 || out != "" || strings.Count(errs, "\n") != 1 ||
				!strings.HasPrefix(errs, "senderbound "+name+": ") || !strings.HasSuffix(errs, "(run 'senderbound "+name+" -h')\n") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line \"senderbound %s: … (run 'senderbound %s -h')\"", code, out, errs, name, name)
			}
		})
	}
	failures := [][]string{
		{"proof", "--key", junk, "--method", "GET", "--url", "https://rs.example.test/"},
		{"proof", "--key", notPEM, "--method", "GET", "--url", "https://rs.example.test/"},
		{"thumbprint", junk},
		{"proof", "--key", filepath.Join(dir, "missing.jwk"), "--method", "GET", "--url", "https://rs.example.test/"},
		{"cert", "issue", "--ca", filepath.Join(dir, "noca"), "--cn", "x", "--out", filepath.Join(dir, "o")},
	}
	for _, args := range failures {
		t.Run("failure "+strings.Join(args[:2], " "), func(t *testing.T) {
			t.Parallel()
			code, _, errs := cliRun(t, "", args...)
			if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "senderbound "+args[0]+": ") {
				t.Fatalf("exit %d, stderr %q; want 1 and one prefixed line", code, errs)
			}
			for _, pkg := range []string{"dpop:", "jwsverify:", "keyfile:", "certs:", "mtlsbound:", "jwkutil:", "issuer:", "resource:"} {
				if strings.Contains(errs, pkg) {
					t.Errorf("stderr %q names the internal package %q", errs, pkg)
				}
			}
		})
	}
}

// TestAlgorithmNamesAnyCase checks that keygen and proof take a JWS
// algorithm name in any case and write its registered spelling.
func TestAlgorithmNamesAnyCase(t *testing.T) {
	t.Parallel()
	tests := []struct{ keygen, proof, want string }{
		{"es256", "", "ES256"},
		{"Es384", "es384", "ES384"},
		{"eddsa", "EDDSA", "EdDSA"},
		{"ps256", "rs256", "RS256"},
		{"RS256", "Ps256", "PS256"},
	}
	for _, tt := range tests {
		t.Run(tt.keygen+"/"+tt.proof, func(t *testing.T) {
			t.Parallel()
			keyPath := filepath.Join(t.TempDir(), "k.jwk")
			cliMustRun(t, "", "keygen", "--alg", tt.keygen, "--out", keyPath)
			k, err := keyfile.Load(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := cliAlgorithm(tt.keygen, keyfile.Algorithms); k.Algorithm != want {
				t.Fatalf("keygen --alg %s wrote alg %q, want %q", tt.keygen, k.Algorithm, want)
			}
			args := []string{"proof", "--key", keyPath, "--method", "GET", "--url", "https://rs.example.test/"}
			if tt.proof != "" {
				args = append(args, "--alg", tt.proof)
			}
			proof := strings.TrimSpace(cliMustRun(t, "", args...))
			head, err := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[0])
			if err != nil {
				t.Fatal(err)
			}
			var h struct {
				Alg string `json:"alg"`
			}
			if err := json.Unmarshal(head, &h); err != nil || h.Alg != tt.want {
				t.Fatalf("proof header %s, want alg %q", head, tt.want)
			}
		})
	}
	t.Run("proof alg that does not fit the key", func(t *testing.T) {
		t.Parallel()
		keyPath := filepath.Join(t.TempDir(), "k.jwk")
		cliMustRun(t, "", "keygen", "--out", keyPath)
		code, _, errs := cliRun(t, "", "proof", "--key", keyPath, "--method", "GET", "--url", "https://rs.example.test/", "--alg", "eddsa")
		if code != 1 || strings.Count(errs, "\n") != 1 || strings.Contains(errs, "dpop:") {
			t.Fatalf("exit %d, stderr %q; want 1 and one line", code, errs)
		}
	})
}

// TestThumbprintSaysItReadsStdin checks that thumbprint without FILE says
// it reads standard input when that is a terminal (where it would
// otherwise wait silently), and not when input is piped, and that -h says
// so too.
func TestThumbprintSaysItReadsStdin(t *testing.T) {
	t.Parallel()
	for _, terminal := range []bool{true, false} {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(cliRFC7517RSAKey), stdout: &out, stderr: &errb, stdinTerminal: func() bool { return terminal }}
		if code := run(context.Background(), e, []string{"thumbprint"}); code != 0 {
			t.Fatalf("terminal %v: exit %d, stderr %q", terminal, code, errb.String())
		}
		if strings.TrimSpace(out.String()) != cliRFC7638Thumbprint {
			t.Errorf("terminal %v: stdout %q", terminal, out.String())
		}
		said := strings.Contains(errb.String(), "reading a JWK, PEM key or PEM certificate from standard input")
		if said != terminal {
			t.Errorf("terminal %v: stderr %q", terminal, errb.String())
		}
	}
	code, _, errs := cliRun(t, "", "thumbprint", "-h")
	if code != 0 || !strings.Contains(errs, "Without FILE, or with -, it reads the key or certificate from standard input") {
		t.Errorf("-h: exit %d, stderr %q", code, errs)
	}
	// A pipe is not a terminal.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	if (&env{stdin: r}).stdinIsTerminal() {
		t.Error("a pipe counts as a terminal")
	}
}

// TestCertIssueHostCommonName checks that a server certificate whose --cn
// names a host carries it as a SAN, so that it verifies for that host.
func TestCertIssueHostCommonName(t *testing.T) {
	t.Parallel()
	caDir := cliCreateCA(t)
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantDNS  []string
		wantIP   string
		verifies string // a host the certificate must verify for
	}{
		{"localhost", []string{"--cn", "localhost", "--server"}, []string{"localhost"}, "", "localhost"},
		{"localhost, both usages", []string{"--cn", "localhost"}, []string{"localhost"}, "", "localhost"},
		{"localhost beside --ip", []string{"--cn", "localhost", "--ip", "127.0.0.1", "--server"}, []string{"localhost"}, "127.0.0.1", "localhost"},
		{"no duplicate", []string{"--cn", "localhost", "--dns", "LOCALHOST", "--server"}, []string{"LOCALHOST"}, "", "localhost"},
		{"dotted name", []string{"--cn", "api.example.test", "--server"}, []string{"api.example.test"}, "", "api.example.test"},
		{"IP address", []string{"--cn", "127.0.0.1", "--server"}, nil, "127.0.0.1", "127.0.0.1"},
		{"client name", []string{"--cn", "orders-app"}, nil, "", ""},
		{"client certificate", []string{"--cn", "localhost", "--client"}, nil, "", ""},
		{"not a host name", []string{"--cn", "Example Server", "--server"}, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "leaf")
			code, _, errs := cliRun(t, "", append([]string{"cert", "issue", "--ca", caDir, "--out", out}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			leaf, err := certs.LoadLeaf(out)
			if err != nil {
				t.Fatal(err)
			}
			c := leaf.Cert
			if strings.Join(c.DNSNames, ",") != strings.Join(tt.wantDNS, ",") {
				t.Errorf("DNS SANs %q, want %q", c.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if strings.Join(ips, ",") != tt.wantIP {
				t.Errorf("IP SANs %q, want %q", ips, tt.wantIP)
			}
			if tt.verifies != "" {
				if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: tt.verifies}); err != nil {
					t.Errorf("does not verify for %s: %v", tt.verifies, err)
				}
			}
		})
	}
}
