package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/internal/fullstack"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// conformMode selects the resource conformStart serves.
type conformMode int

const (
	conformGood conformMode = iota
	conformBroken
	conformProof400
)

// proof400Writer answers 400 where the resource answers 401 for an invalid
// DPoP proof: a deviation RFC 6750 §3.1 grades SHOULD.
type proof400Writer struct{ http.ResponseWriter }

func (w proof400Writer) WriteHeader(status int) {
	if status == http.StatusUnauthorized && strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		status = http.StatusBadRequest
	}
	w.ResponseWriter.WriteHeader(status)
}

// conformTarget is a running target and the conform flags describing it.
type conformTarget struct {
	// flags describe every capability: certificates, CA bundle and issuer
	// key are files in a temporary directory.
	flags []string
	// tokenEndpoint and the client credentials, for partial descriptions.
	tokenEndpoint, resource, caFile string
}

const (
	conformClientSecret = "app-secret-0123456789abcdef"
	conformRSSecret     = "rs-secret-0123456789abcdef"
)

// conformStart starts the module's real issuer and resource servers on
// loopback TLS, as conformance's self-run test and the demo do, and writes
// the CA, the client certificates and the issuer key to files. mode picks
// the resource: conformGood, conformBroken (a deliberately non-conformant
// handler that accepts any request carrying an Authorization header) or
// conformProof400 (the real resource, answering an invalid proof with 400
// instead of 401).
func conformStart(t *testing.T, mode conformMode) conformTarget {
	t.Helper()
	opts := fullstack.Options{
		CAName:              "conform test CA",
		ClientSecret:        conformClientSecret,
		IntrospectionSecret: conformRSSecret,
		Audience:            "https://rs.conform.test",
		SecondAudience:      "https://rs2.conform.test",
		// The demo's test grant gives the public client refresh tokens
		// (--refresh-client-id, --refresh-grant-type, --refresh-param).
		TestGrant: demoTestGrant,
	}
	switch mode {
	case conformBroken:
		// Non-conformant on purpose: any credential is accepted, so a
		// DPoP-bound token passes as a Bearer token.
		opts.WrapResource = func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="broken"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_, _ = w.Write([]byte(`{"ok":true}`))
			})
		}
	case conformProof400:
		opts.WrapResource = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(proof400Writer{w}, r)
			})
		}
	}
	st, err := fullstack.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certs.EncodeCertificates(st.CA.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, leaf := range map[string]*certs.Leaf{"c1": st.ClientLeaf, "c2": st.SecondClientLeaf} {
		if err := leaf.WriteDir(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	jwk, err := json.Marshal(st.IssuerKey)
	if err != nil {
		t.Fatal(err)
	}
	issuerKeyFile := filepath.Join(dir, "issuer.jwk")
	if err := os.WriteFile(issuerKeyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}

	ct := conformTarget{tokenEndpoint: st.IssuerURL + issuer.TokenPath, resource: st.ResourceURL + fullstack.ResourcePath, caFile: caFile}
	ct.flags = []string{
		"--token-endpoint", ct.tokenEndpoint,
		"--client-id", st.ClientID, "--client-secret", conformClientSecret, "--scope", fullstack.Scope,
		"--resource", ct.resource, "--method", "GET",
		"--issuer", st.IssuerURL, "--audience", st.Audience,
		"--cert", filepath.Join(dir, "c1", certs.LeafCertFile), "--key", filepath.Join(dir, "c1", certs.LeafKeyFile),
		"--mtls-client-id", fullstack.MTLSClientID,
		"--second-cert", filepath.Join(dir, "c2", certs.LeafCertFile), "--second-key", filepath.Join(dir, "c2", certs.LeafKeyFile),
		"--ca-file", caFile,
		"--issuer-key", issuerKeyFile,
		"--second-resource", st.SecondResourceURL + fullstack.ResourcePath,
		"--trusted-proxy-resource", st.ProxyURL + fullstack.ResourcePath,
		"--metadata", st.IssuerURL + issuer.MetadataPath,
		"--introspection", st.IssuerURL + issuer.IntrospectionPath,
		"--introspection-client", fullstack.IntrospectionClientID + ":" + conformRSSecret,
		"--refresh-client-id", fullstack.PublicClientID, "--refresh-grant-type", demoTestGrant, "--refresh-param", "subject=" + fullstack.TestSubject,
	}
	return ct
}

// conformRunCLI runs "senderbound conform args..." in-process.
func conformRunCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}, append([]string{"conform"}, args...))
	return code, out.String(), errOut.String()
}

// TestConformModule runs the whole suite against the module's own servers
// once per report format and checks exit status 0 and each report.
func TestConformModule(t *testing.T) {
	t.Parallel()
	target := conformStart(t, conformGood)
	dir := t.TempDir()

	t.Run("text", func(t *testing.T) {
		code, out, errOut := conformRunCLI(t, target.flags...)
		if code != 0 {
			t.Fatalf("exit %d; stderr: %s\n%s", code, errOut, out)
		}
		for _, want := range []string{"senderbound conformance report", "SUMMARY\n0 attacks accepted", "0 features missing (0 at MUST level)", "RESULT: PASS"} {
			if !strings.Contains(out, want) {
				t.Errorf("text report lacks %q:\n%s", want, out)
			}
		}
		if errOut != "" {
			t.Errorf("stderr: %s", errOut)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := conformRunCLI(t, append(target.flags, "--format", "json")...)
		if code != 0 {
			t.Fatalf("exit %d; stderr: %s", code, errOut)
		}
		var rep conformance.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("invalid JSON report: %v\n%s", err, out)
		}
		if len(rep.Results) != len(conformance.Cases()) {
			t.Errorf("%d results, want one per case (%d)", len(rep.Results), len(conformance.Cases()))
		}
		totals := rep.Totals()
		if totals[conformance.StatusPass] == 0 || rep.Failed() {
			t.Errorf("totals %v, failed %v", totals, rep.Failed())
		}
		// Every capability flag was given, so the mTLS, forged-token,
		// introspection, proxy and refresh-token cases ran.
		for _, id := range []string{"ERR-13", "MTLS-CB-12", "DPOP-AS-06", "DPOP-AS-07", "MTLS-CB-06", "MTLS-CB-07"} {
			if r, ok := rep.Result(id); !ok || r.Status != conformance.StatusPass {
				t.Errorf("%s: %+v", id, r)
			}
		}
	})

	t.Run("junit to a file", func(t *testing.T) {
		file := filepath.Join(dir, "report.xml")
		code, out, errOut := conformRunCLI(t, append(target.flags, "--format", "junit", "--out", file)...)
		if code != 0 {
			t.Fatalf("exit %d; stderr: %s", code, errOut)
		}
		if !strings.HasPrefix(out, "wrote junit report to "+file) || !strings.Contains(out, "RESULT: PASS") || strings.Count(out, "\n") != 1 {
			t.Errorf("stdout = %q, want a one-line summary", out)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var suites struct {
			XMLName  xml.Name `xml:"testsuites"`
			Tests    int      `xml:"tests,attr"`
			Failures int      `xml:"failures,attr"`
			Suites   []struct {
				Name  string `xml:"name,attr"`
				Cases []struct {
					Name string `xml:"name,attr"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(data, &suites); err != nil {
			t.Fatalf("invalid JUnit XML: %v", err)
		}
		n := 0
		for _, s := range suites.Suites {
			n += len(s.Cases)
		}
		if suites.Tests != len(conformance.Cases()) || n != suites.Tests {
			t.Errorf("tests=%d, testcases=%d, want %d", suites.Tests, n, len(conformance.Cases()))
		}
	})
}

// TestConformBrokenResource points conform at a resource that accepts a
// DPoP-bound token as a Bearer token: the MUST case fails and so does the
// command, after writing the report.
func TestConformBrokenResource(t *testing.T) {
	t.Parallel()
	target := conformStart(t, conformBroken)
	// A minimal description, with --insecure instead of the CA bundle.
	code, out, errOut := conformRunCLI(t,
		"--token-endpoint", target.tokenEndpoint, "--client-id", "app", "--client-secret", conformClientSecret,
		"--scope", "read", "--resource", target.resource, "--insecure", "--cases", "ERR-13,ADV-64")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "2 attacks accepted\n  ERR-13") || !strings.Contains(out, "ATTACK  ERR-13") || !strings.Contains(out, "RESULT: FAIL") {
		t.Errorf("report does not show the accepted attack first:\n%s", out)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "accepted 2 attack(s): ERR-13, ADV-64") {
		t.Errorf("stderr = %q, want one line naming ERR-13 and ADV-64", errOut)
	}
}

// TestConformStrict points conform at a resource that answers an invalid
// proof with 400 instead of 401: a SHOULD-level wrong refusal, reported
// and grouped, that fails the command only with --strict.
func TestConformStrict(t *testing.T) {
	t.Parallel()
	target := conformStart(t, conformProof400)
	args := []string{"--token-endpoint", target.tokenEndpoint, "--client-id", "app", "--client-secret", conformClientSecret,
		"--scope", "read", "--resource", target.resource, "--ca-file", target.caFile, "--profile", "dpop", "--cases", "DPOP-RS-05,DPOP-RS-07,ERR-05"}
	code, out, errOut := conformRunCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, want 0 without --strict; stderr: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "3 cases: refused with 400 where 401 is expected (SHOULD) — DPOP-RS-05, DPOP-RS-07, ERR-05") ||
		!strings.Contains(out, "which fail only a strict run") {
		t.Errorf("report does not group the wrong refusals:\n%s", out)
	}
	code, _, errOut = conformRunCLI(t, append(args, "--strict")...)
	if code != 1 || !strings.Contains(errOut, "refused wrongly in 3 case(s) (--strict): DPOP-RS-05, DPOP-RS-07, ERR-05") {
		t.Errorf("--strict: exit %d, stderr %q; want 1 naming the cases", code, errOut)
	}
}

// TestConformWalkthrough runs conform against the README's walk-through
// servers, started as the README starts them (on free ports): an issuer
// and a DPoP-only resource on loopback plain HTTP. With --profile dpop and
// --allow-loopback-http the run passes and records plain HTTP as the local
// setting; without the flag, DPoP over plain HTTP is an accepted attack.
func TestConformWalkthrough(t *testing.T) {
	t.Parallel()
	const secret = "walkthrough-secret-0123456789"
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--client", "app:"+secret)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--require", "dpop")
	args := []string{"--token-endpoint", as.URL + "/token", "--client-id", "app", "--client-secret", secret, "--resource", rs.URL + "/resource"}

	code, out, errOut := conformRunCLI(t, append(args, "--profile", "dpop", "--allow-loopback-http")...)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"0 attacks accepted", "0 features missing", "0 cases with a wrong refusal", "RECORD  DPOP-RS-25", "deliberate local-test setting"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "deliberate local-test setting") {
		t.Errorf("stderr = %q, want the note on the local-test setting", errOut)
	}
	code, out, _ = conformRunCLI(t, append(args, "--profile", "dpop", "--cases", "DPOP-RS-25")...)
	if code != 1 || !strings.Contains(out, "ATTACK  DPOP-RS-25") {
		t.Errorf("without --allow-loopback-http: exit %d, want 1 with DPOP-RS-25 an accepted attack:\n%s", code, out)
	}
}

// TestConformFlagErrors checks that a bad description fails before any
// request, with exit status 2 and one line on standard error.
func TestConformFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens here; a valid description would fail every case
	// instead of failing fast.
	base := []string{"--token-endpoint", "https://127.0.0.1:1/token", "--client-id", "app", "--resource", "https://127.0.0.1:1/resource"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name    string
		args    []string
		wantMsg string // "" for errors reported by the flag package
	}{
		{"no flags", nil, "missing --token-endpoint, --client-id, --resource"},
		{"missing token endpoint", []string{"--client-id", "app", "--resource", "https://rs.example.test/"}, "missing --token-endpoint"},
		{"bad format", with("--format", "yaml"), "--format"},
		{"relative URL", []string{"--token-endpoint", "/token", "--client-id", "app", "--resource", "https://rs.example.test/"}, "token endpoint URL is not an absolute http(s) URL"},
		{"certificate without key", with("--cert", notPEM), "needs both a certificate and a key"},
		{"CA file without certificates", with("--ca-file", notPEM), "CA file holds no PEM certificate"},
		{"missing CA file", with("--ca-file", filepath.Join(dir, "absent.pem")), "reading CA file"},
		{"introspection client without secret", with("--introspection-client", "rs"), "id:secret"},
		{"no case selected", with("--cases", "NO-SUCH-CASE"), "selects no case"},
		{"key host without its client", with("--client-key-host", "127.0.0.1:9555", "--client-key-host-cert", notPEM, "--client-key-host-key", notPEM), "go together"},
		{"jwks_uri client without a key host", with("--jwks-uri-client", "rotating-app"), "go together"},
		{"key host without a certificate", with("--client-key-host", "127.0.0.1:9555", "--jwks-uri-client", "rotating-app"), "go together"},
		{"key host on a name", with("--client-key-host", "localhost:9555", "--jwks-uri-client", "rotating-app", "--client-key-host-cert", notPEM, "--client-key-host-key", notPEM), "loopback address"},
		{"key host elsewhere", with("--client-key-host", "192.0.2.1:9555", "--jwks-uri-client", "rotating-app", "--client-key-host-cert", notPEM, "--client-key-host-key", notPEM), "loopback address"},
		{"key host on port 0", with("--client-key-host", "127.0.0.1:0", "--jwks-uri-client", "rotating-app", "--client-key-host-cert", notPEM, "--client-key-host-key", notPEM), "fixed port"},
		{"key host certificate not PEM", with("--client-key-host", "127.0.0.1:9555", "--jwks-uri-client", "rotating-app", "--client-key-host-cert", notPEM, "--client-key-host-key", notPEM), "--client-key-host-cert"},
		{"key refresh wait not positive", with("--key-refresh-wait", "0s"), "--key-refresh-wait must be positive"},
		{"unknown flag", with("--frobnicate"), ""},
		{"stray argument", with("extra"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := conformRunCLI(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout: %s stderr: %s", code, out, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if tt.wantMsg == "" {
				return
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "senderbound conform: ") || !strings.Contains(errOut, tt.wantMsg) {
				t.Errorf("stderr = %q, want one line containing %q", errOut, tt.wantMsg)
			}
		})
	}
}

// TestConformListAndHelp checks --list (no target needed) and -h.
func TestConformListAndHelp(t *testing.T) {
	t.Parallel()
	code, out, errOut := conformRunCLI(t, "--list", "--cases", "ERR-13,group:E")
	if code != 0 {
		t.Fatalf("--list: exit %d; stderr: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "ID") || !strings.Contains(out, "ERR-13") || !strings.Contains(out, "MTLS-CB-12") || strings.Contains(out, "DPOP-RS-") {
		t.Errorf("--list output:\n%s", out)
	}
	code, _, errOut = conformRunCLI(t, "-h")
	if code != 0 || !strings.Contains(errOut, "Usage: senderbound conform") || !strings.Contains(errOut, "-token-endpoint") || !strings.Contains(errOut, "Exit status") ||
		!strings.Contains(errOut, "3  the preflight stopped the run") || !strings.Contains(errOut, "-strict") || !strings.Contains(errOut, "-profile") {
		t.Errorf("-h: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestConformPreflight checks that a target that does not match its
// description stops before the cases, with exit status 3 and one line
// naming the cause.
func TestConformPreflight(t *testing.T) {
	t.Parallel()
	gone := httptest.NewTLSServer(http.NotFoundHandler())
	gone.Close()
	target := conformStart(t, conformGood)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing listens", []string{"--token-endpoint", gone.URL + "/token", "--client-id", "app", "--resource", gone.URL + "/resource", "--insecure", "--timeout", "2s"},
			"senderbound conform: preflight: connection refused at the token endpoint\n"},
		{"wrong secret", []string{"--token-endpoint", target.tokenEndpoint, "--client-id", "app", "--client-secret", "wrong-secret-0123456789",
			"--resource", target.resource, "--ca-file", target.caFile}, "senderbound conform: preflight: invalid_client at the token endpoint"},
		{"no CA bundle", []string{"--token-endpoint", target.tokenEndpoint, "--client-id", "app", "--client-secret", conformClientSecret,
			"--resource", target.resource}, "senderbound conform: preflight: TLS at the token endpoint: the server's TLS certificate is signed by an unknown certificate authority (" + hintUnknownCA + ")\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := conformRunCLI(t, tt.args...)
			if code != 3 {
				t.Fatalf("exit %d, want 3; stderr: %s", code, errOut)
			}
			if out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, tt.want) {
				t.Errorf("stdout %q, stderr %q; want no report and one line starting %q", out, errOut, tt.want)
			}
			if strings.Contains(errOut, "wrong-secret") {
				t.Errorf("stderr echoes the secret: %q", errOut)
			}
		})
	}
}

// TestConformAllSkipped checks that a run in which every selected case is
// skipped (here: the metadata case without --metadata) exits 0 but says
// that nothing was tested.
func TestConformAllSkipped(t *testing.T) {
	t.Parallel()
	target := conformStart(t, conformGood)
	code, out, errOut := conformRunCLI(t, "--token-endpoint", target.tokenEndpoint, "--client-id", "app", "--client-secret", conformClientSecret,
		"--resource", target.resource, "--ca-file", target.caFile, "--cases", "ATV-34")
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut)
	}
	if !strings.Contains(out, "SKIP  ATV-34") || !strings.Contains(errOut, "nothing was tested") {
		t.Errorf("stdout:\n%s\nstderr: %s", out, errOut)
	}
}
