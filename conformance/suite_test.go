package conformance_test

import (
	"context"
	"net/url"
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
