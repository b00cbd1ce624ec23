package conformance_test

import (
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/conformance/internal/refserver"
)

// startRef starts reference servers and returns a Target describing them
// with every capability.
func startRef(tb testing.TB, cfg refserver.Config) (*refserver.Servers, conformance.Target) {
	tb.Helper()
	s, err := refserver.Start(cfg)
	if err != nil {
		tb.Fatalf("refserver.Start: %v", err)
	}
	tb.Cleanup(s.Close)
	ik := s.IssuerKey
	cert, cert2 := s.ClientCert, s.SecondCert
	return s, conformance.Target{
		TokenEndpoint:              s.AS.URL + "/token",
		ClientID:                   refserver.ClientID,
		ClientSecret:               refserver.ClientSecret,
		Scope:                      refserver.Scope,
		ResourceScope:              refserver.Scope,
		Resource:                   s.RS.URL + "/resource",
		Method:                     "GET",
		Issuer:                     s.Issuer(),
		Audience:                   refserver.Audience,
		ClientCert:                 &cert,
		MTLSClientID:               refserver.MTLSClientID,
		SecondClientCert:           &cert2,
		RootCAs:                    s.RootCAs,
		IssuerKey:                  &ik,
		SecondResource:             s.RS2.URL + "/resource",
		NonceRequired:              cfg.RequireNonce,
		TokenEndpointNonceRequired: cfg.RequireNonce,
		TrustedProxyResource:       s.Proxy.URL + "/resource",
		PlainResource:              s.Plain.URL + "/resource",
		MetadataURL:                s.AS.URL + "/.well-known/oauth-authorization-server",
		IntrospectionEndpoint:      s.AS.URL + "/introspect",
		IntrospectionClientID:      refserver.IntrospectID,
		IntrospectionClientSecret:  refserver.IntrospectSecret,
		RefreshGrant: &conformance.RefreshGrant{
			ClientID:  refserver.PublicClientID,
			GrantType: refserver.RefreshGrantType,
			Params:    url.Values{"subject": {refserver.RefreshGrantSubject}},
		},
	}
}

func runRef(tb testing.TB, cfg refserver.Config, cases []string) *conformance.Report {
	tb.Helper()
	_, target := startRef(tb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: cases})
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return rep
}

// TestReferenceServerPasses runs the whole catalogue against the correct
// reference servers (with and without nonces): no case may fail or warn.
func TestReferenceServerPasses(t *testing.T) {
	t.Parallel()
	for _, nonce := range []bool{false, true} {
		name := "no-nonce"
		if nonce {
			name = "nonce"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep := runRef(t, refserver.Config{RequireNonce: nonce}, nil)
			for _, r := range rep.Results {
				if r.Status == conformance.StatusFail || r.Status == conformance.StatusWarn {
					t.Errorf("%s (%s) %s: %s [observed %d %s]", r.ID, r.Level, r.Status, r.Reason, r.Observed.Status, r.Observed.Error)
				}
			}
			if rep.Failed() {
				t.Errorf("Failed() = true for the reference server")
			}
			if t.Failed() || testing.Verbose() {
				var b strings.Builder
				_ = rep.WriteText(&b)
				t.Log("\n" + b.String())
			}
		})
	}
}

// TestRunTest drives the catalogue through RunTest against the reference
// servers: every subtest must pass or skip.
func TestRunTest(t *testing.T) {
	t.Parallel()
	_, target := startRef(t, refserver.Config{})
	conformance.RunTest(t, target, conformance.Options{Cases: []string{"A", "ERR-13", "MTLS-CB"}})
}

func TestTargetFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "issuer.jwk")
	if err := os.WriteFile(keyFile, []byte(`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","kid":"1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	tf := conformance.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--token-endpoint", "https://as.example.test/token", "--client-id", "app", "--client-secret", "s",
		"--resource", "https://rs.example.test/resource", "--method", "post", "--issuer-key", keyFile,
		"--nonce-required", "--introspection", "https://as.example.test/introspect", "--introspection-client", "rs:secret",
		"--format", "junit", "--cases", "A, ERR-13",
	})
	if err != nil {
		t.Fatal(err)
	}
	target, err := tf.Target()
	if err != nil {
		t.Fatal(err)
	}
	caps := target.Capabilities()
	for _, c := range []conformance.Capability{conformance.CapDPoP, conformance.CapIssuerKey, conformance.CapNonce, conformance.CapIntrospection} {
		if caps&c == 0 {
			t.Errorf("capability %s missing", c)
		}
	}
	if caps&conformance.CapMTLS != 0 {
		t.Errorf("mTLS capability without a certificate")
	}
	if target.IntrospectionClientSecret != "secret" || tf.Format() != "junit" {
		t.Errorf("flags not applied: %+v", target)
	}
	if got := tf.Options().Cases; len(got) != 2 || got[1] != "ERR-13" {
		t.Errorf("cases = %v", got)
	}

	bad := conformance.RegisterFlags(flag.NewFlagSet("x", flag.ContinueOnError))
	if _, err := bad.Target(); err == nil {
		t.Error("empty flags produced a valid target")
	}
}

// TestMinimalTarget describes the reference servers with only the required
// fields: cases needing more are skipped with a reason, never passed, and
// nothing fails.
func TestMinimalTarget(t *testing.T) {
	t.Parallel()
	_, full := startRef(t, refserver.Config{})
	target := conformance.Target{
		TokenEndpoint: full.TokenEndpoint,
		ClientID:      full.ClientID,
		ClientSecret:  full.ClientSecret,
		Resource:      full.Resource,
		RootCAs:       full.RootCAs,
	}
	rep, err := conformance.Run(t.Context(), target, conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, r := range rep.Results {
		switch r.Status {
		case conformance.StatusFail, conformance.StatusWarn:
			t.Errorf("%s %s: %s", r.ID, r.Status, r.Reason)
		case conformance.StatusSkip:
			skipped++
			if r.Reason == "" {
				t.Errorf("%s skipped without a reason", r.ID)
			}
		}
		if r.Needs&conformance.CapIssuerKey != 0 && r.Status != conformance.StatusSkip {
			t.Errorf("%s needs the issuer key but was not skipped", r.ID)
		}
	}
	if skipped == 0 {
		t.Error("no case skipped although most capabilities are missing")
	}
}
