package issuer

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// TestErrorModel: the token endpoint's *Error matches its class sentinel
// and, through its cause, the dpop sentinels and *dpop.Error; it carries
// the dpop reason; the DPoP sentinels are dpop's own.
func TestErrorModel(t *testing.T) {
	t.Parallel()
	if ErrInvalidDPoPProof != dpop.ErrInvalidProof || ErrUseDPoPNonce != dpop.ErrUseNonce {
		t.Fatal("issuer and dpop name one failure with two sentinels")
	}
	h := newHarness(t, harnessOpts{})
	proof := h.proof(h.prover(nil), h.tokenURL(), "")
	p, err := h.server.verifier.Check(proof, dpop.Expect{Method: http.MethodPost, URL: h.tokenURL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.server.verifier.Claim(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	replayErr := h.server.verifier.Claim(context.Background(), p)
	_, htuErr := h.server.verifier.Check(proof, dpop.Expect{Method: http.MethodPost, URL: h.tokenURL() + "/other"})

	tests := []struct {
		name    string
		err     error
		wantIs  []error
		wantNot []error
		reason  oautherr.Reason
		code    string
	}{
		{"replayed proof", h.server.proofError(replayErr), []error{ErrInvalidDPoPProof, dpop.ErrReplay}, []error{ErrInvalidClient, dpop.ErrUseNonce}, oautherr.ReasonProofReplayed, oautherr.InvalidDPoPProof},
		{"htu mismatch", h.server.proofError(htuErr), []error{ErrInvalidDPoPProof}, []error{dpop.ErrReplay}, oautherr.ReasonProofHTUMismatch, oautherr.InvalidDPoPProof},
		{"grant error", GrantError(ErrInvalidScope, "scope not allowed"), []error{ErrInvalidScope}, []error{ErrInvalidGrant}, oautherr.ReasonScopeNotAllowed, oautherr.InvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e *Error
			if !errors.As(tc.err, &e) {
				t.Fatalf("%v is not an *Error", tc.err)
			}
			for _, s := range tc.wantIs {
				if !errors.Is(tc.err, s) {
					t.Errorf("errors.Is(err, %v) = false", s)
				}
			}
			for _, s := range tc.wantNot {
				if errors.Is(tc.err, s) {
					t.Errorf("errors.Is(err, %v) = true", s)
				}
			}
			if e.Reason != tc.reason || e.Code != tc.code {
				t.Errorf("reason %q code %q, want %q %q", e.Reason, e.Code, tc.reason, tc.code)
			}
		})
	}
	var de *dpop.Error
	if !errors.As(h.server.proofError(replayErr), &de) || de.Reason != oautherr.ReasonProofReplayed {
		t.Fatal("errors.As does not find the *dpop.Error of a refused proof")
	}
}
