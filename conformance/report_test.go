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

// sampleReport is a fixed report covering every status and level.
func sampleReport() *conformance.Report {
	byID := map[string]conformance.Case{}
	for _, c := range conformance.Cases() {
		byID[c.ID] = c
	}
	res := func(id string, st conformance.Status, reason string, obs conformance.Observation) conformance.Result {
		return conformance.Result{Case: byID[id], Status: st, Reason: reason, Observed: obs, Duration: 1500 * time.Microsecond}
	}
	return &conformance.Report{
		Target:   "token endpoint https://as.example.test/token, resource https://rs.example.test/resource",
		Started:  time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC),
		Duration: 2 * time.Second,
		Results: []conformance.Result{
			res("DPOP-RS-05", conformance.StatusPass, "required variants as expected", conformance.Observation{Status: 401, Challenge: `DPoP error="invalid_dpop_proof", algs="ES256"`, Error: "invalid_dpop_proof"}),
			res("DPOP-RS-12", conformance.StatusWarn, "path with other letter case: accepted (status 200)", conformance.Observation{Status: 200}),
			res("DPOP-RS-15", conformance.StatusFail, "replay: accepted (status 200)", conformance.Observation{Status: 200}),
			res("DPOP-AS-14", conformance.StatusSkip, "target lacks capability token-nonce", conformance.Observation{}),
			res("ERR-13", conformance.StatusFail, "scheme Bearer: accepted (status 200)", conformance.Observation{Status: 200}),
			res("MTLS-CB-09", conformance.StatusPass, "2 variants as expected", conformance.Observation{Status: 401, Challenge: `Bearer error="invalid_token"`, Error: "invalid_token"}),
			res("ADV-43", conformance.StatusPass, "recorded: status 200", conformance.Observation{Status: 200}),
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
	if len(back.Results) != len(rep.Results) || back.Results[2].Status != conformance.StatusFail {
		t.Errorf("JSON round trip lost results")
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
	if suites.Tests != 7 || suites.Failures != 2 || suites.Skipped != 1 {
		t.Errorf("JUnit totals = %+v, want 7 tests, 2 failures, 1 skipped", suites)
	}
}

func TestReportFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		level  conformance.Level
		status conformance.Status
		want   bool
	}{
		{"must fail", conformance.LevelMust, conformance.StatusFail, true},
		{"policy fail", conformance.LevelPolicy, conformance.StatusFail, false},
		{"should warn", conformance.LevelShould, conformance.StatusWarn, false},
		{"must skip", conformance.LevelMust, conformance.StatusSkip, false},
		{"must pass", conformance.LevelMust, conformance.StatusPass, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := &conformance.Report{Results: []conformance.Result{{Case: conformance.Case{ID: "X-1", Level: tt.level}, Status: tt.status}}}
			if got := rep.Failed(); got != tt.want {
				t.Errorf("Failed() = %v, want %v", got, tt.want)
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
