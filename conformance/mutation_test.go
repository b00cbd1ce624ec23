package conformance_test

import (
	"testing"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/conformance/internal/refserver"
)

// TestMutantsAreCaught breaks one check of the reference server at a time
// and asserts that the cases covering that check fail.
func TestMutantsAreCaught(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mutation refserver.Mutation
		nonce    bool
		mustFail []string
	}{
		{refserver.NoAthCheck, false, []string{"DPOP-RS-17", "DPOP-RS-22", "ADV-70"}},
		{refserver.NoReplayStore, false, []string{"DPOP-RS-15", "ADV-46", "ADV-107"}},
		{refserver.HtuIncludesQuery, false, []string{"DPOP-RS-11"}},
		{refserver.AlgNotPinned, false, []string{"DPOP-RS-06", "ADV-01", "ADV-03", "ADV-07", "DPOP-AS-03"}},
		{refserver.NoProofTypCheck, false, []string{"DPOP-RS-05", "ADV-31", "DPOP-AS-02"}},
		{refserver.PrivateJWKAccepted, false, []string{"DPOP-RS-08", "ADV-20"}},
		{refserver.NoIatWindow, false, []string{"DPOP-RS-13", "DPOP-RS-22", "ADV-44"}},
		{refserver.NoHtmCheck, false, []string{"DPOP-RS-10", "DPOP-RS-22", "ADV-48"}},
		{refserver.NoJktCompare, false, []string{"DPOP-RS-19", "ERR-06", "ADV-69", "THUMB-11"}},
		{refserver.DPoPSchemeWithoutProof, false, []string{"DPOP-RS-21", "ADV-68"}},
		{refserver.FirstOfManyProofs, false, []string{"DPOP-RS-01"}},
		{refserver.NoProofSignatureCheck, false, []string{"DPOP-RS-07", "DPOP-RS-22", "ERR-05"}},
		{refserver.NoHtuCheck, false, []string{"DPOP-RS-11", "DPOP-RS-22", "ADV-50", "ADV-51", "ADV-54"}},
		{refserver.EchoCredential, false, []string{"DPOP-RS-17", "DPOP-RS-19", "ERR-13", "ADV-01"}},
		{refserver.BearerDowngrade, false, []string{"ERR-13", "ADV-64", "ADV-65"}},
		{refserver.ForwardedCertFromAnyone, false, []string{"CCERT-01", "CCERT-02", "ADV-85"}},
		{refserver.NonceNotBound, true, []string{"DPOP-AS-21"}},
		{refserver.NoAudCheck, false, []string{"ATV-12", "ATV-18"}},
		{refserver.NoExpCheck, false, []string{"ATV-15", "ATV-18", "ADV-97", "ERR-04"}},
		{refserver.NoX5tCompare, false, []string{"MTLS-CB-09", "MTLS-CB-10", "MTLS-CB-14", "ADV-83", "ADV-84", "THUMB-12", "THUMB-13", "ADV-90"}},
		{refserver.TokenEndpointIgnoresSig, false, []string{"DPOP-AS-02", "ERR-19"}},
		{refserver.NoTokenTypCheck, false, []string{"ATV-10"}},
		{refserver.NoIssCheck, false, []string{"ATV-11", "ATV-18", "ADV-96"}},
		{refserver.NoTokenSignatureCheck, false, []string{"ATV-13", "ATV-14", "ADV-04", "ADV-100"}},
		{refserver.ClientCertNotMatched, false, []string{"MTLS-CA-03"}},
		{refserver.NoNonceCheck, true, []string{"ERR-14", "ERR-15", "ADV-78", "ADV-80", "DPOP-AS-14", "DPOP-AS-16", "DPOP-AS-20"}},
		{refserver.IntrospectionUnprotected, false, []string{"ATV-29"}},
		{refserver.TokenResponseCacheable, false, []string{"DPOP-AS-27"}},
		{refserver.NoNbfCheck, false, []string{"ATV-16", "ADV-98"}},
		{refserver.NoCritCheck, false, []string{"ATV-28", "ADV-11"}},
		{refserver.SchemeCaseSensitive, false, []string{"DPOP-RS-20", "ADV-65"}},
		{refserver.NoMultipleCredentialCheck, false, []string{"ERR-12", "ADV-74"}},
		{refserver.LenientProofEncoding, false, []string{"ADV-76"}},
		{refserver.NoJWKPolicy, false, []string{"ADV-28", "THUMB-10"}},
		{refserver.NoDuplicateCheck, false, []string{"ADV-38"}},
		{refserver.NoUTF8Check, false, []string{"ADV-39"}},
		{refserver.NoRequiredClaims, false, []string{"ATV-17"}},
		{refserver.NoRSAMinSize, false, []string{"ADV-25"}},
		{refserver.BareBearerChallenge, false, []string{"ERR-10"}},
		{refserver.ErrorOnUnauthenticated, false, []string{"ERR-02"}},
		{refserver.NoAlgsParam, false, []string{"ERR-03"}},
		{refserver.PredictableNonce, true, []string{"DPOP-AS-15", "ADV-81"}},
		{refserver.DuplicateNonceHeader, true, []string{"DPOP-AS-14", "DPOP-AS-17", "ERR-14", "ERR-16"}},
		{refserver.ChainUsedAsCert, false, []string{"CCERT-06", "ADV-89"}},
		{refserver.CacheableForwarded, false, []string{"CCERT-10"}},
		{refserver.ClientCertListFirst, false, []string{"CCERT-05"}},
		{refserver.MTLSAuthWithoutClientID, false, []string{"MTLS-CA-02"}},
		{refserver.TokenTypeMislabel, false, []string{"DPOP-AS-01", "DPOP-AS-09"}},
		{refserver.InactiveLeaks, false, []string{"ATV-30"}},
		{refserver.MetadataIssuerMismatch, false, []string{"ATV-35"}},
		{refserver.EmptyMetadataArray, false, []string{"ATV-37"}},
		{refserver.UnboundUnderDPoP, false, []string{"ADV-67"}},
		{refserver.JKTCaseInsensitive, false, []string{"THUMB-11"}},
		{refserver.X5tPaddingTolerated, false, []string{"THUMB-13"}},
		{refserver.ProxyAuthorizationUsed, false, []string{"ERR-17"}},
		{refserver.QueryTokenAccepted, false, []string{"ADV-66"}},
		{refserver.NoJtiCheck, false, []string{"ADV-45"}},
		{refserver.HtmCaseInsensitive, false, []string{"ADV-48"}},
		{refserver.HtuNotNormalized, false, []string{"DPOP-RS-12", "ADV-53"}},
		{refserver.HeaderCertOverridesTLS, false, []string{"CCERT-16", "ADV-87"}},
		{refserver.JKTNotCanonical, false, []string{"THUMB-06", "THUMB-07"}},
		{refserver.X5tOverSPKI, false, []string{"MTLS-CB-01", "MTLS-CB-02"}},
		{refserver.IntrospectionNoCnf, false, []string{"DPOP-AS-12"}},
		{refserver.IntrospectionRequiresProof, false, []string{"DPOP-AS-13"}},
		{refserver.MetadataNoMTLSMethods, false, []string{"MTLS-CA-13"}},
		{refserver.MetadataNoJWKSURI, false, []string{"ATV-09", "ATV-36"}},
		{refserver.MetadataNotJSON, false, []string{"ATV-34"}},
		{refserver.LongLivedTokens, false, []string{"DPOP-AS-28"}},
		{refserver.NoChallenge, false, []string{"ERR-01"}},
		{refserver.MTLSClientWithoutCert, false, []string{"MTLS-CA-01"}},
		{refserver.BindHeaderCertAtAS, false, []string{"MTLS-CB-03"}},
		{refserver.AdoptClientNonce, false, []string{"ADV-82"}},
		{refserver.CertAuthIgnoresClientID, false, []string{"ADV-94"}},
		{refserver.UnknownCnfMemberRejected, false, []string{"ATV-24"}},
		{refserver.ExtraProofClaimsRejected, false, []string{"DPOP-RS-26"}},
		{refserver.ForwardedCertExpiryChecked, false, []string{"CCERT-03"}},
		{refserver.NonceOutsideNQCHAR, true, []string{"DPOP-AS-18"}},
		{refserver.MetadataBoolAsString, false, []string{"MTLS-CB-04"}},
		{refserver.NonceOnCacheableSuccess, true, []string{"DPOP-AS-19", "ERR-16"}},
		{refserver.NoChainValidation, false, []string{"MTLS-CA-04", "MTLS-CA-17", "ADV-91"}},
		{refserver.TokenTypJWT, false, []string{"ATV-03"}},
		{refserver.TokenWithoutClientID, false, []string{"ATV-04"}},
		{refserver.TokenWithoutScope, false, []string{"ATV-05"}},
		{refserver.TokenCnfNotObject, false, []string{"ATV-08"}},
		{refserver.EchoClientCertHeader, false, []string{"CCERT-07", "CCERT-02"}},
		{refserver.CORSWithoutExpose, false, []string{"ERR-18"}},
		{refserver.DPoPOverHTTP, false, []string{"DPOP-RS-25"}},
		{refserver.BindRegisteredCert, false, []string{"MTLS-CB-05", "MTLS-CA-01"}},
		{refserver.FractionalIatServerError, false, []string{"ADV-43"}},
		{refserver.RefreshNotKeyBound, false, []string{"DPOP-AS-06", "DPOP-AS-07", "MTLS-CB-07"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mutation), func(t *testing.T) {
			t.Parallel()
			rep := runRef(t, refserver.Config{Mutations: []refserver.Mutation{tt.mutation}, RequireNonce: tt.nonce}, tt.mustFail)
			for _, id := range tt.mustFail {
				r, ok := rep.Result(id)
				if !ok {
					t.Errorf("%s: not in the report", id)
					continue
				}
				if r.Status != conformance.StatusFail && r.Status != conformance.StatusWarn {
					t.Errorf("%s: status %s (%s), want fail under %s", id, r.Status, r.Reason, tt.mutation)
				}
			}
		})
	}
}

// TestEveryMutantIsCaught runs the whole catalogue against each mutant:
// every mutant must make at least one case fail or warn. The cases that no
// mutant fails are logged (they are checked only against correct servers):
// record cases, which fail only on a 5xx or an echoed credential, and cases
// whose preconditions the reference servers never meet.
func TestEveryMutantIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the catalogue once per mutant")
	}
	t.Parallel()
	caught, ran := map[string]bool{}, map[string]bool{}
	for _, m := range refserver.AllMutations {
		nonce := nonceOnly[m]
		rep := runRef(t, refserver.Config{Mutations: []refserver.Mutation{m}, RequireNonce: nonce}, nil)
		n := 0
		for _, r := range rep.Results {
			if r.Status != conformance.StatusSkip {
				ran[r.ID] = true
			}
			if r.Status == conformance.StatusFail || r.Status == conformance.StatusWarn {
				caught[r.ID] = true
				n++
			}
		}
		if n == 0 {
			t.Errorf("mutant %s (nonce=%v) passes the whole catalogue", m, nonce)
		}
	}
	var never, skipped []string
	for _, c := range conformance.Cases() {
		if !caught[c.ID] {
			never = append(never, c.ID)
			if !ran[c.ID] {
				skipped = append(skipped, c.ID)
			}
		}
	}
	t.Logf("%d of %d cases are failed by at least one mutant; never failed: %v; of these, skipped in every run: %v",
		len(conformance.Cases())-len(never), len(conformance.Cases()), never, skipped)
}

// nonceOnly mutants break nonce handling, which only a nonce-requiring
// server exercises.
var nonceOnly = map[refserver.Mutation]bool{
	refserver.NonceNotBound: true, refserver.NoNonceCheck: true, refserver.PredictableNonce: true, refserver.DuplicateNonceHeader: true,
	refserver.NonceOutsideNQCHAR: true, refserver.NonceOnCacheableSuccess: true,
}

// TestEchoIsAlwaysAFailure checks that an echoed credential fails even a
// SHOULD-level case (no mere warning) and fails the run.
func TestEchoIsAlwaysAFailure(t *testing.T) {
	t.Parallel()
	rep := runRef(t, refserver.Config{Mutations: []refserver.Mutation{refserver.EchoCredential}}, []string{"ERR-11"})
	r, ok := rep.Result("ERR-11")
	if !ok {
		t.Fatal("ERR-11 missing")
	}
	if r.Level != conformance.LevelShould || r.Status != conformance.StatusFail || !r.Hygiene {
		t.Errorf("ERR-11 = %s/%s hygiene=%v (%s), want a hygiene failure", r.Level, r.Status, r.Hygiene, r.Reason)
	}
	if !rep.Failed() {
		t.Error("Failed() = false with an echoed credential")
	}
}
