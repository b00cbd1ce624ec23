package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/issuer"
)

var codeCases = []string{"DPOP-AS-22", "DPOP-AS-23", "DPOP-AS-24", "DPOP-AS-25", "DPOP-AS-26"}

// runConformance runs the authorization-code cases against ts.
func runConformance(t *testing.T, ts *testServer, withFlow bool) *conformance.Report {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ts.as.Certificate())
	roots.AddCert(ts.rs.Certificate())
	base := ts.client.Server
	target := conformance.Target{
		TokenEndpoint: base + issuer.TokenPath, ClientID: clientID, ClientSecret: testSecret, Scope: "read",
		Resource: ts.rs.URL, Issuer: base, Audience: audience, MetadataURL: base + issuer.MetadataPath,
		Profile: conformance.ProfileDPoP, RootCAs: roots,
	}
	if withFlow {
		target.Authorization = &conformance.AuthorizationFlow{Endpoint: base + authorizePth, RedirectURI: testRedirect}
	}
	rep, err := conformance.Run(context.Background(), target, conformance.Options{Cases: codeCases})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(codeCases) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(codeCases))
	}
	return rep
}

// TestConformanceAuthorizationCode runs the conformance suite's
// authorization-code and PAR cases (DPOP-AS-22..26) against the example:
// all pass.
func TestConformanceAuthorizationCode(t *testing.T) {
	t.Parallel()
	rep := runConformance(t, newTestServer(t, nil), true)
	for _, res := range rep.Results {
		if res.Tier != conformance.TierPass || res.Status != conformance.StatusPass {
			t.Errorf("%s: %s %s: %s", res.ID, res.Tier, res.Status, res.Reason)
		}
		if len(res.Checks) < 1 {
			t.Errorf("%s ran no check", res.ID)
		}
	}
}

// TestConformanceConvictsBrokenPAR: a PAR endpoint that ignores the DPoP
// proof (here: the header is dropped before it) is convicted of accepted
// attacks by DPOP-AS-25 and DPOP-AS-26, while the dpop_jkt cases still
// pass; without the flow, or without PAR in the metadata, the cases are
// skipped with the reason.
func TestConformanceConvictsBrokenPAR(t *testing.T) {
	t.Parallel()
	ignoreProof := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == issuer.PARPath {
				r.Header.Del("DPoP")
			}
			h.ServeHTTP(w, r)
		})
	}
	rep := runConformance(t, newTestServer(t, ignoreProof), true)
	want := map[string]conformance.Tier{
		"DPOP-AS-22": conformance.TierPass, "DPOP-AS-23": conformance.TierPass, "DPOP-AS-24": conformance.TierPass,
		"DPOP-AS-25": conformance.TierAcceptedAttack, "DPOP-AS-26": conformance.TierAcceptedAttack,
	}
	for _, res := range rep.Results {
		if res.Tier != want[res.ID] {
			t.Errorf("%s: %s (%s), want %s", res.ID, res.Tier, res.Reason, want[res.ID])
		}
	}
	if !rep.Failed() {
		t.Error("the report does not fail")
	}
	for _, check := range []string{"K1 proof, redeem with K2", "bad signature", "htu of the token endpoint"} {
		res, _ := rep.Result("DPOP-AS-25")
		if c, ok := res.Check(check); !ok || c.Tier != conformance.TierAcceptedAttack {
			t.Errorf("DPOP-AS-25 %q: %+v", check, c)
		}
	}

	t.Run("no flow", func(t *testing.T) {
		t.Parallel()
		for _, res := range runConformance(t, newTestServer(t, nil), false).Results {
			if res.Status != conformance.StatusSkip || !strings.Contains(res.Reason, "authorization") {
				t.Errorf("%s: %s %s", res.ID, res.Status, res.Reason)
			}
		}
	})
	t.Run("no PAR in the metadata", func(t *testing.T) {
		t.Parallel()
		hidePAR := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != issuer.MetadataPath {
					h.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				md := map[string]any{}
				if err := json.Unmarshal(rec.Body.Bytes(), &md); err != nil {
					t.Error(err)
				}
				delete(md, "pushed_authorization_request_endpoint")
				body, _ := json.Marshal(md)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			})
		}
		for _, res := range runConformance(t, newTestServer(t, hidePAR), true).Results {
			switch res.ID {
			case "DPOP-AS-22", "DPOP-AS-23":
				if res.Tier != conformance.TierPass {
					t.Errorf("%s: %s %s", res.ID, res.Tier, res.Reason)
				}
			default:
				if res.Status != conformance.StatusSkip || !strings.Contains(res.Reason, "not applicable") {
					t.Errorf("%s: %s %s", res.ID, res.Status, res.Reason)
				}
			}
		}
	})
}
