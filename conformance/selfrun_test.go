package conformance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/internal/fullstack"
	"github.com/senderbound/senderbound/resource"
)

// testRefreshGrant is the self-run's test hook for the refresh-token cases
// (DPOP-AS-06/07/08, MTLS-CB-06/07): an extension grant standing in for an
// authorization code grant (see fullstack.Options.TestGrant). It
// authenticates no user: never register such a grant on a production
// issuer.
const testRefreshGrant = "urn:senderbound:test:refresh-grant"

// startModule starts the module's real issuer and resource servers on
// loopback TLS, with a plain-HTTP listener for DPOP-RS-25, and describes
// them as a Target. The resources accept tokens under accept.
func startModule(t *testing.T, nonces bool, accept resource.Accept) conformance.Target {
	t.Helper()
	st, err := fullstack.Start(fullstack.Options{
		CAName:              "self-run CA",
		ClientSecret:        "app-secret-0123456789abcdef",
		IntrospectionSecret: "rs-secret-0123456789abcdef",
		Audience:            "https://rs.self-run.test",
		SecondAudience:      "https://rs2.self-run.test",
		Nonces:              nonces,
		Accept:              accept,
		TestGrant:           testRefreshGrant,
		Plain:               true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	target := st.Target()
	target.ResourceScope = fullstack.Scope
	// Generous: the race detector and parallel packages slow the servers
	// down, and a case must not fail on a slow machine.
	target.Timeout = 30 * time.Second
	return target
}

// TestSelfRunModule runs the catalogue against the module's own issuer and
// resource packages and requires every MUST case to pass. Policy failures
// and warnings are logged.
func TestSelfRunModule(t *testing.T) {
	t.Parallel()
	for _, nonces := range []bool{false, true} {
		name := "no-nonce"
		if nonces {
			name = "nonce"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			target := startModule(t, nonces, resource.AcceptBound)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, target, conformance.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				switch {
				case r.Status == conformance.StatusFail && r.Level == conformance.LevelMust:
					t.Errorf("%s (%s): %s [observed %d %s]", r.ID, r.Section, r.Reason, r.Observed.Status, r.Observed.Error)
				case r.Status == conformance.StatusFail || r.Status == conformance.StatusWarn:
					t.Logf("%s %s (%s): %s", r.Status, r.ID, r.Level, r.Reason)
				}
			}
			if t.Failed() || testing.Verbose() {
				var b strings.Builder
				_ = rep.WriteText(&b)
				t.Log("\n" + b.String())
			}
		})
	}
}

// TestSelfRunDPoPOnly runs the Bearer downgrade cases against resources
// that accept DPoP-bound tokens only: a DPoP-bound token under Bearer is
// 401 invalid_token there too, not a challenge without an error.
func TestSelfRunDPoPOnly(t *testing.T) {
	t.Parallel()
	target := startModule(t, false, resource.AcceptDPoP)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"ERR-13", "ADV-64", "ADV-65"}
	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: ids})
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]bool{}
	for _, r := range rep.Results {
		ran[r.ID] = true
		if r.Status != conformance.StatusPass {
			t.Errorf("%s (%s): %s: %s [observed %d %s]", r.ID, r.Section, r.Status, r.Reason, r.Observed.Status, r.Observed.Error)
		}
	}
	for _, id := range ids {
		if !ran[id] {
			t.Errorf("%s did not run", id)
		}
	}
}
