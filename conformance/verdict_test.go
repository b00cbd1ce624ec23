package conformance_test

import (
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/conformance/internal/refserver"
)

// TestVariantsAreNotFailures runs cases against reference servers with a
// behaviour the RFCs allow (a refserver variant, or a target description
// the RFCs allow) and asserts the corrected verdict: never an accepted
// attack or a missing MUST feature.
func TestVariantsAreNotFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		variants []refserver.Mutation
		nonce    bool
		target   func(*conformance.Target)
		id       string
		wantTier conformance.Tier
		// check, if set, inspects the result further.
		check func(t *testing.T, r conformance.Result)
	}{
		// 1. 400 for invalid_dpop_proof at a resource is a SHOULD-level
		// deviation (RFC 6750 §3.1), not a MUST failure.
		{name: "400 for an invalid proof", variants: []refserver.Mutation{refserver.ProofErrorsAs400}, id: "DPOP-RS-05",
			wantTier: conformance.TierWrongRefusal, check: allFailingAt(conformance.LevelShould, "refused with 400 where 401 is expected")},
		{name: "400 for an invalid proof (ADV)", variants: []refserver.Mutation{refserver.ProofErrorsAs400}, id: "ADV-31",
			wantTier: conformance.TierWrongRefusal, check: allFailingAt(conformance.LevelShould, "refused with 400 where 401 is expected")},
		// ... and 400 invalid_request for a missing proof is what RFC 6750
		// ties invalid_request to.
		{name: "400 invalid_request without a proof", variants: []refserver.Mutation{refserver.ProofErrorsAs400}, id: "DPOP-RS-21", wantTier: conformance.TierPass},
		{name: "400 invalid_request without a proof (ADV)", variants: []refserver.Mutation{refserver.ProofErrorsAs400}, id: "ADV-68", wantTier: conformance.TierPass},
		// 2. Freshness by nonce instead of iat (RFC 9449 §4.3 (11)).
		{name: "freshness by nonce", variants: []refserver.Mutation{refserver.NonceFreshnessOnly}, nonce: true, id: "DPOP-AS-02", wantTier: conformance.TierPass},
		// 3. One nonce accepted several times (RFC 9449 §11.1).
		{name: "one nonce per slot at the AS", variants: []refserver.Mutation{refserver.SlotNonce}, nonce: true, id: "DPOP-AS-15", wantTier: conformance.TierPass},
		{name: "one nonce per slot at the RS", variants: []refserver.Mutation{refserver.SlotNonce}, nonce: true, id: "ADV-81", wantTier: conformance.TierPass},
		// 4. Binding checked before the proof (§4.3: any order).
		{name: "binding first: alg and key type", variants: []refserver.Mutation{refserver.BindingCheckedFirst}, id: "ADV-06", wantTier: conformance.TierPass},
		{name: "binding first: unconfigured alg", variants: []refserver.Mutation{refserver.BindingCheckedFirst}, id: "ADV-07", wantTier: conformance.TierPass},
		{name: "binding first: CRT members", variants: []refserver.Mutation{refserver.BindingCheckedFirst}, id: "ADV-21", wantTier: conformance.TierPass},
		{name: "binding first: off-curve point", variants: []refserver.Mutation{refserver.BindingCheckedFirst}, id: "ADV-23", wantTier: conformance.TierPass},
		{name: "binding first: small RSA key", variants: []refserver.Mutation{refserver.BindingCheckedFirst}, id: "ADV-25", wantTier: conformance.TierPass},
		// 5. The server is judged, not the URL the operator passed.
		{name: "OpenID metadata URL given", target: openIDMetadata, id: "ATV-34", wantTier: conformance.TierPass},
		{name: "OpenID metadata URL given (issuer)", target: openIDMetadata, id: "ATV-35", wantTier: conformance.TierPass},
		// 7. exp leeway (RFC 7519 §4.1.4).
		{name: "exp leeway", variants: []refserver.Mutation{refserver.ExpLeeway}, id: "ADV-97", wantTier: conformance.TierPass},
		// 8. A BOM may be ignored (RFC 8259 §8.1): recorded.
		{name: "BOM tolerated", variants: []refserver.Mutation{refserver.BOMTolerated}, id: "ADV-39", wantTier: conformance.TierPass, check: checkTier("BOM", conformance.TierRecord)},
		// 9. DPoP-bound tokens for a certificate client are a MAY.
		{name: "certificate client refuses DPoP", variants: []refserver.Mutation{refserver.CertClientNoDPoP}, id: "DPOP-AS-29", wantTier: conformance.TierPass,
			check: checkTier("mTLS + proof", conformance.TierRecord)},
		// A DPoP-only resource answers Bearer as an unsupported scheme.
		{name: "DPoP-only resource: downgrade", variants: []refserver.Mutation{refserver.DPoPOnlyResource}, id: "ERR-13", wantTier: conformance.TierPass},
		{name: "DPoP-only resource: scheme case", variants: []refserver.Mutation{refserver.DPoPOnlyResource}, id: "ADV-65", wantTier: conformance.TierPass},
		{name: "DPoP-only resource: challenges", variants: []refserver.Mutation{refserver.DPoPOnlyResource}, id: "ERR-11", wantTier: conformance.TierPass},
		// 11. ADV-07 picks an algorithm the resource does not advertise.
		{name: "ES512 advertised", variants: []refserver.Mutation{refserver.AdvertiseES512}, id: "ADV-07", wantTier: conformance.TierPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, target := startRef(t, refserver.Config{Mutations: tt.variants, RequireNonce: tt.nonce})
			if tt.target != nil {
				tt.target(&target)
			}
			rep, err := conformance.Run(t.Context(), target, conformance.Options{Cases: []string{tt.id}})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := rep.Result(tt.id)
			if !ok {
				t.Fatalf("%s not in the report", tt.id)
			}
			if r.Tier != tt.wantTier {
				t.Errorf("%s: tier %s (%s), want %s; checks %+v", tt.id, r.Tier, r.Reason, tt.wantTier, r.Checks)
			}
			if rep.Failed() {
				t.Errorf("%s: Failed() = true under a variant the RFCs allow: %s", tt.id, r.Reason)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func openIDMetadata(t *conformance.Target) {
	t.MetadataURL = strings.Replace(t.MetadataURL, "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", 1)
}

// allFailingAt asserts every failing check is at level with pattern.
func allFailingAt(level conformance.Level, pattern string) func(*testing.T, conformance.Result) {
	return func(t *testing.T, r conformance.Result) {
		t.Helper()
		n := 0
		for _, c := range r.Checks {
			if !c.Tier.Failing() {
				continue
			}
			n++
			if c.Level != level || c.Pattern != pattern {
				t.Errorf("%s %q: %s %s %q, want level %s, pattern %q", r.ID, c.Name, c.Tier, c.Level, c.Pattern, level, pattern)
			}
		}
		if n == 0 {
			t.Errorf("%s: no failing check", r.ID)
		}
		if r.Status != conformance.StatusWarn {
			t.Errorf("%s: status %s, want warn", r.ID, r.Status)
		}
	}
}

// checkTier asserts the check named name has tier.
func checkTier(name string, tier conformance.Tier) func(*testing.T, conformance.Result) {
	return func(t *testing.T, r conformance.Result) {
		t.Helper()
		c, ok := r.Check(name)
		switch {
		case !ok:
			t.Errorf("%s: no check %q in %+v", r.ID, name, r.Checks)
		case c.Tier != tier:
			t.Errorf("%s %q: tier %s (%s), want %s", r.ID, name, c.Tier, c.Reason, tier)
		}
	}
}

// TestProofStatusDeviationDoesNotFailTheRun runs the resource-side cases
// against a resource answering every invalid proof with 400: the run has
// wrong refusals (so a strict run fails) but no accepted attack and no
// missing MUST feature.
func TestProofStatusDeviationDoesNotFailTheRun(t *testing.T) {
	t.Parallel()
	rep := runRef(t, refserver.Config{Mutations: []refserver.Mutation{refserver.ProofErrorsAs400}}, []string{"A", "C", "ADV"})
	for _, r := range rep.Results {
		if r.AttacksAccepted() || r.MissingMust() {
			t.Errorf("%s: %s at %s: %s", r.ID, r.Tier, r.Level, r.Reason)
		}
	}
	if rep.Failed() {
		t.Error("Failed() = true")
	}
	if !rep.FailedStrict() {
		t.Error("FailedStrict() = false with 400s where 401 is expected")
	}
}

// TestCaseReportsEveryStep breaks two of DPOP-RS-22's six variants: both
// are reported, and the variants after the first failure still run.
func TestCaseReportsEveryStep(t *testing.T) {
	t.Parallel()
	rep := runRef(t, refserver.Config{Mutations: []refserver.Mutation{refserver.NoProofSignatureCheck, refserver.NoHtmCheck}}, []string{"DPOP-RS-22"})
	r, ok := rep.Result("DPOP-RS-22")
	if !ok {
		t.Fatal("DPOP-RS-22 missing")
	}
	want := map[string]conformance.Tier{
		"bad signature": conformance.TierAcceptedAttack, "K2 signs for jwk K1": conformance.TierAcceptedAttack,
		"stale iat": conformance.TierPass, "other htu": conformance.TierPass,
		"other htm": conformance.TierAcceptedAttack, "no ath": conformance.TierPass,
	}
	if len(r.Checks) != len(want) {
		t.Fatalf("%d checks, want %d: %+v", len(r.Checks), len(want), r.Checks)
	}
	for _, c := range r.Checks {
		if w, ok := want[c.Name]; !ok || c.Tier != w {
			t.Errorf("check %q: %s (%s), want %s", c.Name, c.Tier, c.Reason, w)
		}
	}
	if r.Tier != conformance.TierAcceptedAttack || !rep.Failed() {
		t.Errorf("tier %s, Failed %v; want an accepted attack that fails the run", r.Tier, rep.Failed())
	}
}

// TestRelevelledCases pins the levels and sections that the RFC text
// supports.
func TestRelevelledCases(t *testing.T) {
	t.Parallel()
	byID := map[string]conformance.Case{}
	for _, c := range conformance.Cases() {
		byID[c.ID] = c
	}
	tests := []struct {
		id      string
		level   conformance.Level
		section string
	}{
		{"THUMB-10", conformance.LevelShould, "RFC 7638 §6; RFC 7518 §2"},
	}
	for _, tt := range tests {
		c := byID[tt.id]
		if c.Level != tt.level || c.Section != tt.section {
			t.Errorf("%s: %s, %q; want %s, %q", tt.id, c.Level, c.Section, tt.level, tt.section)
		}
	}
}
