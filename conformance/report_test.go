package conformance_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
)

var update = flag.Bool("update", false, "rewrite the golden report files in testdata")

// sampleReport is a fixed report covering every tier, status and level.
func sampleReport() *conformance.Report {
	byID := map[string]conformance.Case{}
	for _, c := range conformance.Cases() {
		byID[c.ID] = c
	}
	type C = conformance.Check
	type O = conformance.Observation
	res := func(id string, tier conformance.Tier, st conformance.Status, reason string, obs O, checks ...C) conformance.Result {
		return conformance.Result{Case: byID[id], Tier: tier, Status: st, Reason: reason, Observed: obs, Checks: checks, Duration: 1500 * time.Microsecond}
	}
	const (
		must   = conformance.LevelMust
		should = conformance.LevelShould
		policy = conformance.LevelPolicy
	)
	proof400 := O{Status: 400, Challenge: `DPoP error="invalid_dpop_proof"`, Error: "invalid_dpop_proof"}
	return &conformance.Report{
		Target:   "token endpoint https://as.example.test/token, resource https://rs.example.test/resource",
		Started:  time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC),
		Duration: 2 * time.Second,
		Results: []conformance.Result{
			res("DPOP-RS-05", conformance.TierWrongRefusal, conformance.StatusWarn, "typ JWT: got status 400 error=invalid_dpop_proof, want 401 DPoP:invalid_dpop_proof", proof400,
				C{Name: "typ JWT", Tier: conformance.TierWrongRefusal, Level: should, Reason: "got status 400 error=invalid_dpop_proof, want 401 DPoP:invalid_dpop_proof", Pattern: "refused with 400 where 401 is expected", Observed: proof400},
				C{Name: "no typ", Tier: conformance.TierWrongRefusal, Level: should, Reason: "got status 400 error=invalid_dpop_proof, want 401 DPoP:invalid_dpop_proof", Pattern: "refused with 400 where 401 is expected", Observed: proof400}),
			res("DPOP-RS-07", conformance.TierWrongRefusal, conformance.StatusWarn, "bad signature: got status 400 error=invalid_dpop_proof, want 401 DPoP:invalid_dpop_proof", proof400,
				C{Name: "bad signature", Tier: conformance.TierWrongRefusal, Level: should, Reason: "got status 400 error=invalid_dpop_proof, want 401 DPoP:invalid_dpop_proof", Pattern: "refused with 400 where 401 is expected", Observed: proof400}),
			res("DPOP-RS-12", conformance.TierWrongRefusal, conformance.StatusWarn, "path with other letter case: server error (status 500)", O{Status: 500},
				C{Name: "path with other letter case", Tier: conformance.TierWrongRefusal, Level: should, Reason: "server error (status 500)", Pattern: "server error (5xx) instead of a refusal", Observed: O{Status: 500}}),
			res("DPOP-RS-15", conformance.TierAcceptedAttack, conformance.StatusFail, "replay: accepted (status 200)", O{Status: 200},
				C{Name: "first send", Tier: conformance.TierPass, Level: policy, Observed: O{Status: 200}},
				C{Name: "replay", Tier: conformance.TierAcceptedAttack, Level: policy, Reason: "accepted (status 200)", Observed: O{Status: 200}}),
			res("DPOP-AS-14", conformance.TierSkip, conformance.StatusSkip, "target lacks capability token-nonce", O{},
				C{Tier: conformance.TierSkip, Level: must, Reason: "target lacks capability token-nonce"}),
			res("DPOP-AS-01", conformance.TierMissingFeature, conformance.StatusFail, "token_type \"Bearer\", want DPoP", O{Status: 200},
				C{Tier: conformance.TierMissingFeature, Level: must, Reason: "token_type \"Bearer\", want DPoP", Observed: O{Status: 200}}),
			res("MTLS-CB-09", conformance.TierPass, conformance.StatusPass, "2 variants as expected", O{Status: 401, Challenge: `Bearer error="invalid_token"`, Error: "invalid_token"},
				C{Name: "no certificate", Tier: conformance.TierPass, Level: must, Observed: O{Status: 401, Error: "invalid_token"}},
				C{Name: "other certificate", Tier: conformance.TierPass, Level: must, Observed: O{Status: 401, Error: "invalid_token"}}),
			res("ADV-43", conformance.TierRecord, conformance.StatusPass, "recorded: status 200", O{Status: 200},
				C{Tier: conformance.TierRecord, Level: conformance.LevelRecord, Reason: "recorded: status 200", Observed: O{Status: 200}}),
		},
	}
}

func TestReportGolden(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	for _, tt := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"report.txt", func(b *bytes.Buffer) error { return rep.WriteText(b) }},
		{"report.json", func(b *bytes.Buffer) error { return rep.WriteJSON(b) }},
		{"report.xml", func(b *bytes.Buffer) error { return rep.WriteJUnit(b) }},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from the golden file; run with -update after checking:\n%s", tt.file, b.String())
			}
		})
	}
}

func TestReportFormatsParse(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	var j bytes.Buffer
	if err := rep.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back conformance.Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rep.Results) || back.Results[3].Tier != conformance.TierAcceptedAttack || len(back.Results[3].Checks) != 2 {
		t.Errorf("JSON round trip lost results, tiers or checks")
	}
	var x bytes.Buffer
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
	}
	if err := xml.Unmarshal(x.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	if suites.Tests != 8 || suites.Failures != 2 || suites.Skipped != 1 {
		t.Errorf("JUnit totals = %+v, want 8 tests, 2 failures, 1 skipped", suites)
	}
}

func TestReportFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		tier             conformance.Tier
		level            conformance.Level
		hygiene          bool
		want, wantStrict bool
	}{
		{"accepted attack at MUST", conformance.TierAcceptedAttack, conformance.LevelMust, false, true, true},
		{"accepted attack at policy level", conformance.TierAcceptedAttack, conformance.LevelPolicy, false, true, true},
		{"missing MUST feature", conformance.TierMissingFeature, conformance.LevelMust, false, true, true},
		{"missing SHOULD feature", conformance.TierMissingFeature, conformance.LevelShould, false, false, false},
		{"missing policy feature", conformance.TierMissingFeature, conformance.LevelPolicy, false, false, false},
		{"wrong refusal at MUST", conformance.TierWrongRefusal, conformance.LevelMust, false, false, true},
		{"wrong refusal at SHOULD", conformance.TierWrongRefusal, conformance.LevelShould, false, false, true},
		{"echoed credential", conformance.TierPass, conformance.LevelShould, true, true, true},
		{"skip", conformance.TierSkip, conformance.LevelMust, false, false, false},
		{"pass", conformance.TierPass, conformance.LevelMust, false, false, false},
		{"record", conformance.TierRecord, conformance.LevelRecord, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := &conformance.Report{Results: []conformance.Result{{
				Case: conformance.Case{ID: "X-1", Level: conformance.LevelMust}, Tier: tt.tier, Hygiene: tt.hygiene,
				Checks: []conformance.Check{{Tier: tt.tier, Level: tt.level}},
			}}}
			if got := rep.Failed(); got != tt.want {
				t.Errorf("Failed() = %v, want %v", got, tt.want)
			}
			if got := rep.FailedStrict(); got != tt.wantStrict {
				t.Errorf("FailedStrict() = %v, want %v", got, tt.wantStrict)
			}
		})
	}
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	cs := conformance.Cases()
	if len(cs) < 80 {
		t.Fatalf("%d cases, want at least 80", len(cs))
	}
	seen := map[string]bool{}
	groups := map[conformance.Group]int{}
	for _, c := range cs {
		if seen[c.ID] {
			t.Errorf("duplicate id %s", c.ID)
		}
		seen[c.ID] = true
		groups[c.Group]++
		if c.Title == "" || c.Section == "" || c.Expect == "" || c.Level == "" || c.Role == "" {
			t.Errorf("%s: incomplete description", c.ID)
		}
	}
	for _, g := range []conformance.Group{conformance.GroupA, conformance.GroupB, conformance.GroupC, conformance.GroupD, conformance.GroupE, conformance.GroupF, conformance.GroupG, conformance.GroupH, conformance.GroupADV} {
		if groups[g] == 0 {
			t.Errorf("group %s has no case", g)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	c := conformance.Case{ID: "DPOP-RS-05", Group: conformance.GroupA}
	tests := []struct {
		patterns []string
		want     bool
	}{
		{nil, true},
		{[]string{"dpop-rs-05"}, true},
		{[]string{"DPOP-RS"}, true},
		{[]string{"A"}, true},
		{[]string{"group:A"}, true},
		{[]string{"B", "ADV"}, false},
		{[]string{"DPOP-AS"}, false},
	}
	for _, tt := range tests {
		if got := c.Select(tt.patterns); got != tt.want {
			t.Errorf("Select(%v) = %v, want %v", tt.patterns, got, tt.want)
		}
	}
}

func TestRunRejectsInvalidTarget(t *testing.T) {
	t.Parallel()
	if _, err := conformance.Run(t.Context(), conformance.Target{Resource: "ftp://x"}, conformance.Options{}); err == nil {
		t.Fatal("Run accepted a target without token endpoint and client id")
	}
}

func TestReportWriteFormats(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	for _, f := range []string{"", "text", "json", "junit", "JSON"} {
		var b bytes.Buffer
		if err := rep.Write(&b, f); err != nil || b.Len() == 0 {
			t.Errorf("Write(%q): %v, %d bytes", f, err, b.Len())
		}
	}
	if err := rep.Write(&bytes.Buffer{}, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}
