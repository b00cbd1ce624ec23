package dpop

import (
	"context"
	"errors"
	"testing"

	"github.com/senderbound/senderbound/oautherr"
)

// TestErrorReason: every refusal carries the stable reason of the check
// that failed, one of the exported oautherr reasons, while the code and
// the description sent to the client stay as coarse as before.
func TestErrorReason(t *testing.T) {
	t.Parallel()
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(12)}, Label: "https://rs.example.test", Now: fixedClock(testNow)})
	withNonces := func(c *Config) { c.Nonces = n }
	tests := []struct {
		name     string
		proof    func(t *testing.T) string
		cfg      func(*Config)
		expect   func(*Expect)
		want     oautherr.Reason
		wantCode string
	}{
		{name: "no proof", proof: func(*testing.T) string { return "" }, want: oautherr.ReasonProofMissing, wantCode: oautherr.InvalidRequest},
		{name: "malformed", proof: func(*testing.T) string { return "a.b" }, want: oautherr.ReasonProofMalformed, wantCode: oautherr.InvalidDPoPProof},
		{name: "signature", proof: func(t *testing.T) string {
			b := newPB(t)
			b.key = keys(t)["ES256b"] // the header still names K1
			return b.build(t)
		}, want: oautherr.ReasonProofSignature, wantCode: oautherr.InvalidDPoPProof},
		{name: "htm", expect: func(e *Expect) { e.Method = "POST" }, want: oautherr.ReasonProofHTMMismatch, wantCode: oautherr.InvalidDPoPProof},
		{name: "htu", expect: func(e *Expect) { e.URL = "https://rs.example.test/other" }, want: oautherr.ReasonProofHTUMismatch, wantCode: oautherr.InvalidDPoPProof},
		{name: "ath", expect: func(e *Expect) { e.AccessToken = "other" }, want: oautherr.ReasonProofATHMismatch, wantCode: oautherr.InvalidDPoPProof},
		{name: "too old", cfg: func(c *Config) { c.Now = fixedClock(testNow + 3600) }, want: oautherr.ReasonProofTooOld, wantCode: oautherr.InvalidDPoPProof},
		{name: "from the future", cfg: func(c *Config) { c.Now = fixedClock(testNow - 3600) }, want: oautherr.ReasonProofFromFuture, wantCode: oautherr.InvalidDPoPProof},
		{name: "alg not allowed", cfg: func(c *Config) { c.Algorithms = []string{"EdDSA"} }, want: oautherr.ReasonProofAlgorithm, wantCode: oautherr.InvalidDPoPProof},
		{name: "key mismatch", expect: func(e *Expect) { e.JKT = mustThumb(keys(t)["ES256b"]) }, want: oautherr.ReasonProofKeyMismatch, wantCode: oautherr.InvalidToken},
		{name: "nonce missing", cfg: withNonces, want: oautherr.ReasonNonceRequired, wantCode: oautherr.UseDPoPNonce},
		{name: "nonce stale", proof: func(t *testing.T) string {
			b := newPB(t)
			b.cl["nonce"] = "eyJ7S_zG.eyJH0-Z.HX4w-7v"
			return b.build(t)
		}, cfg: withNonces, want: oautherr.ReasonNonceStale, wantCode: oautherr.UseDPoPNonce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proof := newPB(t).build(t)
			if tc.proof != nil {
				proof = tc.proof(t)
			}
			want := defaultExpect()
			if tc.expect != nil {
				tc.expect(&want)
			}
			_, err := testVerifier(t, tc.cfg).Verify(context.Background(), proof, want)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if e.Reason != tc.want || e.Code != tc.wantCode {
				t.Fatalf("reason %q, code %q; want %q, %q", e.Reason, e.Code, tc.want, tc.wantCode)
			}
		})
	}

	t.Run("replay", func(t *testing.T) {
		t.Parallel()
		v := testVerifier(t, nil)
		proof := newPB(t).build(t)
		if _, err := v.Verify(context.Background(), proof, defaultExpect()); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(context.Background(), proof, defaultExpect())
		var e *Error
		if !errors.As(err, &e) || e.Reason != oautherr.ReasonProofReplayed || !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("replay: %v (reason %q)", err, e.Reason)
		}
	})
}

// TestEveryCheckHasAReason: no internal check is left without an exported
// reason, so no refusal is logged with an empty one.
func TestEveryCheckHasAReason(t *testing.T) {
	t.Parallel()
	if len(exportedReason) != len(reasonText) {
		t.Fatalf("%d exported reasons for %d checks", len(exportedReason), len(reasonText))
	}
	for r := range reasonText {
		if r != int(rOK) && reason(r).Reason() == "" {
			t.Errorf("check %q has no exported reason", reason(r))
		}
	}
}
