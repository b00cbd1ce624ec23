package conformance_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/conformance/internal/refserver"
	"github.com/senderbound/senderbound/internal/refused"
)

// closedURL is a loopback URL where connections are refused.
func closedURL(t *testing.T) string {
	t.Helper()
	return "https://" + refused.Addr(t) + "/token"
}

// TestPreflightNamesTheCause describes reference servers wrongly and
// expects Run to stop before any case, with one line naming the cause.
func TestPreflightNamesTheCause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		nonce  bool
		edit   func(t *testing.T, tg *conformance.Target)
		want   string
		noStop bool
	}{
		{name: "wrong client secret", edit: func(_ *testing.T, tg *conformance.Target) { tg.ClientSecret = "wrong-secret-0123456789" },
			want: "invalid_client at the token endpoint"},
		{name: "unknown client", edit: func(_ *testing.T, tg *conformance.Target) { tg.ClientID = "nobody" },
			want: "invalid_client at the token endpoint"},
		{name: "connection refused", edit: func(t *testing.T, tg *conformance.Target) { tg.TokenEndpoint = closedURL(t) },
			want: "connection refused at the token endpoint"},
		{name: "unknown CA", edit: func(_ *testing.T, tg *conformance.Target) { tg.RootCAs = nil },
			want: "TLS: unknown authority at the token endpoint — pass --ca-file"},
		{name: "undeclared token-endpoint nonces", nonce: true, edit: func(_ *testing.T, tg *conformance.Target) {
			tg.TokenEndpointNonceRequired, tg.NonceRequired = false, false
		}, want: "the token endpoint requires DPoP nonces — pass --token-nonce-required"},
		{name: "undeclared resource nonces", nonce: true, edit: func(_ *testing.T, tg *conformance.Target) { tg.NonceRequired = false },
			want: "the resource requires DPoP nonces — pass --nonce-required"},
		{name: "resource refuses the positive control", edit: func(_ *testing.T, tg *conformance.Target) { tg.Resource += "-missing" },
			want: "the resource refused a valid DPoP request: status 404"},
		{name: "mTLS client refused", edit: func(_ *testing.T, tg *conformance.Target) {
			tg.Profile, tg.MTLSClientID = conformance.ProfileBoth, "nobody"
		}, want: "invalid_client at the token endpoint (mTLS client nobody)"},
		{name: "https URL of a plain-HTTP server", edit: func(_ *testing.T, tg *conformance.Target) {
			tg.Resource = strings.Replace(tg.Resource, "https://", "http://", 1)
			tg.TokenEndpoint = strings.Replace(tg.TokenEndpoint, "https://", "http://", 1)
		}, want: "the token endpoint answered status 400"},
		{name: "correct description", edit: func(*testing.T, *conformance.Target) {}, noStop: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, target := startRef(t, refserver.Config{RequireNonce: tt.nonce})
			tt.edit(t, &target)
			rep, err := conformance.Run(t.Context(), target, conformance.Options{Cases: []string{"DPOP-RS-05"}})
			if tt.noStop {
				if err != nil || rep == nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			var pe *conformance.PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("Run error %v (report %v), want a PreflightError", err, rep != nil)
			}
			if !strings.HasPrefix(pe.Cause, tt.want) {
				t.Errorf("cause %q, want it to start with %q", pe.Cause, tt.want)
			}
			if strings.Contains(pe.Cause, target.ClientSecret) || strings.ContainsAny(pe.Cause, "\n\r") {
				t.Errorf("cause %q is not one clean line", pe.Cause)
			}
		})
	}
}

// TestProfileSkipsCasesOutsideIt: a certificate given with profile dpop
// does not bring in the mTLS cases, and profile mtls skips the DPoP ones,
// each with the reason.
func TestProfileSkipsCasesOutsideIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		profile           conformance.Profile
		skipped, executed string
		reason            string
	}{
		{conformance.ProfileDPoP, "MTLS-CB-09", "DPOP-RS-05", "outside the profile dpop"},
		{conformance.ProfileMTLS, "DPOP-RS-05", "MTLS-CB-09", "outside the profile mtls"},
	}
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			t.Parallel()
			_, target := startRef(t, refserver.Config{})
			target.Profile = tt.profile
			rep, err := conformance.Run(t.Context(), target, conformance.Options{Cases: []string{tt.skipped, tt.executed}})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := rep.Result(tt.skipped)
			if s.Tier != conformance.TierSkip || !strings.HasPrefix(s.Reason, tt.reason) {
				t.Errorf("%s: %s (%s), want skip: %s", tt.skipped, s.Tier, s.Reason, tt.reason)
			}
			e, _ := rep.Result(tt.executed)
			if e.Tier != conformance.TierPass {
				t.Errorf("%s: %s (%s), want pass", tt.executed, e.Tier, e.Reason)
			}
		})
	}
}

// TestTargetValidateProfileAndLoopback pins the description errors of the
// new fields.
func TestTargetValidateProfileAndLoopback(t *testing.T) {
	t.Parallel()
	base := conformance.Target{TokenEndpoint: "http://127.0.0.1:9/token", ClientID: "app", Resource: "http://127.0.0.1:9/resource"}
	tests := []struct {
		name string
		edit func(*conformance.Target)
		want string
	}{
		{"mtls without a certificate", func(t *conformance.Target) { t.Profile = conformance.ProfileMTLS }, "profile mtls needs a client certificate"},
		{"unknown profile", func(t *conformance.Target) { t.Profile = "bearer" }, "unknown profile"},
		{"dpop profile with DPoP disabled", func(t *conformance.Target) { t.Profile, t.DisableDPoP = conformance.ProfileDPoP, true }, "contradicts"},
		{"loopback HTTP off loopback", func(t *conformance.Target) {
			t.AllowLoopbackHTTP, t.Resource = true, "http://rs.example.test/resource"
		}, "plain HTTP is allowed on loopback only"},
		{"loopback HTTP on loopback", func(t *conformance.Target) { t.AllowLoopbackHTTP = true }, ""},
		{"loopback HTTP on IPv6 loopback", func(t *conformance.Target) {
			t.AllowLoopbackHTTP, t.Resource = true, "http://[::1]:9/resource"
		}, ""},
		{"loopback HTTP on the name localhost", func(t *conformance.Target) {
			t.AllowLoopbackHTTP, t.Resource = true, "http://localhost:9/resource"
		}, "plain HTTP is allowed on loopback only"},
	}
	for _, tt := range tests {
		tg := base
		tt.edit(&tg)
		err := tg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestCertificateDoesNotForceMTLSOnDPoPOnlyResource: without a profile, a
// client certificate no longer brings the resource-side mTLS cases to a
// resource that offers DPoP only; the token-endpoint mTLS cases still run.
func TestCertificateDoesNotForceMTLSOnDPoPOnlyResource(t *testing.T) {
	t.Parallel()
	_, target := startRef(t, refserver.Config{Mutations: []refserver.Mutation{refserver.DPoPOnlyResource}})
	rep, err := conformance.Run(t.Context(), target, conformance.Options{Cases: []string{"MTLS-CB-09", "MTLS-CB-01"}})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := rep.Result("MTLS-CB-09")
	if rs.Tier != conformance.TierSkip || !strings.HasPrefix(rs.Reason, "the resource offers DPoP only") {
		t.Errorf("MTLS-CB-09: %s (%s), want skipped: DPoP-only resource", rs.Tier, rs.Reason)
	}
	as, _ := rep.Result("MTLS-CB-01")
	if as.Tier != conformance.TierPass {
		t.Errorf("MTLS-CB-01: %s (%s), want pass", as.Tier, as.Reason)
	}
	target.Profile = conformance.ProfileBoth
	var pe *conformance.PreflightError
	if _, err := conformance.Run(t.Context(), target, conformance.Options{Cases: []string{"MTLS-CB-09"}}); !errors.As(err, &pe) ||
		!strings.HasPrefix(pe.Cause, "the resource refused a valid certificate-bound request") {
		t.Errorf("profile both: %v, want the preflight to stop on the refused certificate-bound request", err)
	}
}
