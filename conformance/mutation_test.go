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
		{refserver.NoAthCheck, false, []string{"DPOP-RS-17", "DPOP-RS-22"}},
		{refserver.NoReplayStore, false, []string{"DPOP-RS-15"}},
		{refserver.HtuIncludesQuery, false, []string{"DPOP-RS-11"}},
		{refserver.AlgNotPinned, false, []string{"DPOP-RS-06"}},
		{refserver.NoProofTypCheck, false, []string{"DPOP-RS-05"}},
		{refserver.PrivateJWKAccepted, false, []string{"DPOP-RS-08"}},
		{refserver.NoIatWindow, false, []string{"DPOP-RS-13", "DPOP-RS-22"}},
		{refserver.NoHtmCheck, false, []string{"DPOP-RS-10", "DPOP-RS-22"}},
		{refserver.NoJktCompare, false, []string{"DPOP-RS-19"}},
		{refserver.DPoPSchemeWithoutProof, false, []string{"DPOP-RS-21"}},
		{refserver.FirstOfManyProofs, false, []string{"DPOP-RS-01"}},
		{refserver.NoProofSignatureCheck, false, []string{"DPOP-RS-07", "DPOP-RS-22"}},
		{refserver.NoHtuCheck, false, []string{"DPOP-RS-11", "DPOP-RS-22"}},
		{refserver.EchoCredential, false, []string{"DPOP-RS-17", "DPOP-RS-19"}},
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
