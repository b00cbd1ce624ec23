package conformance_test

import (
	"context"
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
		MetadataURL:                s.AS.URL + "/.well-known/oauth-authorization-server",
		IntrospectionEndpoint:      s.AS.URL + "/introspect",
		IntrospectionClientID:      refserver.IntrospectID,
		IntrospectionClientSecret:  refserver.IntrospectSecret,
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
