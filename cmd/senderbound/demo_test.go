package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
)

// TestDemo runs the README's main command in-process, as text and as JSON:
// every step must pass and every MUST case of the conformance suite too.
func TestDemo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"text", []string{"demo"}, func(t *testing.T, out string) {
			for _, want := range []string{
				"ok    a DPoP client gets a DPoP-bound token",
				"400 use_dpop_nonce, retried with the nonce: 200 token_type=DPoP, cnf.jkt=",
				`ok    a replayed proof is refused`,
				`error="invalid_dpop_proof"`,
				"ok    the stolen DPoP token with the thief's own key is refused",
				"ok    the DPoP-bound token downgraded to Bearer is refused",
				"ok    an mTLS client gets a certificate-bound token",
				`"binding":"mtls"`,
				"ok    the stolen certificate-bound token over another certificate is refused",
				"ok    fallback: a client gets a certificate for its key with scope read only",
				`urn:senderbound:client:billing, scopes "read"`,
				"ok    fallback: with the issuer up, its calls carry DPoP-bound tokens",
				`200 binding=dpop client_id=billing scope="read write", circuit closed`,
				"ok    fallback: the issuer is stopped; the circuit opens and calls keep succeeding with the certificate",
				`circuit closed -> open; 3 calls, each 200 binding=fallback_certificate client_id=billing scope="read" (signed requests)`,
				"ok    fallback: a call needing a scope the certificate lacks is refused",
				"/write needs scope write: 403 error=insufficient_scope",
				"ok    fallback: a revoked certificate is refused after the CRL refresh",
				"401 error=invalid_token",
				"ok    fallback: the issuer comes back; a probe closes the circuit and calls carry tokens again",
				`open -> half-open, half-open -> closed); 200 binding=dpop client_id=billing`,
				"no accepted attack, no missing MUST-level feature",
				"PASS: every step and every MUST case passed",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if strings.Contains(out, "FAIL") {
				t.Error("output reports a failure")
			}
		}},
		{"json", []string{"demo", "--json"}, func(t *testing.T, out string) {
			var rep struct {
				OK    bool
				Steps []demoStep
				// The conformance report as written by Report.WriteJSON.
				Conformance struct {
					Results []struct {
						ID, Status, Level string
					}
				}
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if !rep.OK || len(rep.Steps) != 15 {
				t.Fatalf("ok=%v with %d steps, want ok with 15", rep.OK, len(rep.Steps))
			}
			for _, s := range rep.Steps {
				if !s.OK || s.Detail == "" {
					t.Errorf("step %q: ok=%v detail %q", s.Name, s.OK, s.Detail)
				}
			}
			if n := len(rep.Conformance.Results); n < 80 {
				t.Errorf("%d conformance results, want the whole catalogue", n)
			}
			for _, r := range rep.Conformance.Results {
				if r.Status == string(conformance.StatusFail) && r.Level == string(conformance.LevelMust) {
					t.Errorf("MUST case %s failed", r.ID)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if code := run(ctx, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, tc.args); code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			tc.check(t, stdout.String())
		})
	}
}

func TestDemoFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"demo", "-h"}, 0},
		{[]string{"demo", "--no-such-flag"}, 2},
		{[]string{"demo", "extra"}, 2},
		{[]string{"demo", "--timeout", "1ns"}, 1},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, tc.args)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if tc.code == 1 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%v: error is not one line: %q", tc.args, stderr.String())
		}
	}
}

// TestConformanceSummary checks the verdict lines of the summary for a
// report with a failed MUST case and one without.
func TestConformanceSummary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		results []conformance.Result
		want    []string
	}{
		{[]conformance.Result{{Case: conformance.Case{ID: "ERR-13", Level: conformance.LevelMust}, Tier: conformance.TierAcceptedAttack, Status: conformance.StatusFail, Reason: "scheme Bearer: accepted"}},
			[]string{"1 cases: 1 accepted attack, 0 missing feature", "accepted-attack   ERR-13", "scheme Bearer: accepted", "an attack was accepted"}},
		{[]conformance.Result{{Case: conformance.Case{ID: "DPOP-RS-12", Level: conformance.LevelShould}, Tier: conformance.TierWrongRefusal, Status: conformance.StatusWarn, Reason: "case",
			Checks: []conformance.Check{{Tier: conformance.TierWrongRefusal, Level: conformance.LevelShould}}}},
			[]string{"0 accepted attack, 0 missing feature, 1 wrong refusal", "wrong-refusal     DPOP-RS-12", "no accepted attack, no missing MUST-level feature"}},
	} {
		var b bytes.Buffer
		writeConformanceSummary(&b, &conformance.Report{Results: tc.results})
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("summary lacks %q:\n%s", w, b.String())
			}
		}
	}
}
