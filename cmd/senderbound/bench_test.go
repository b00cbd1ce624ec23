package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// benchRunCLI runs "senderbound bench args..." in-process.
func benchRunCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}, append([]string{"bench"}, args...))
	return code, out.String(), errOut.String()
}

// TestBenchTable runs every row a few times and checks that the table has
// each row with a positive ns/op and ratios, and the noise warning.
func TestBenchTable(t *testing.T) {
	t.Parallel()
	code, out, errOut := benchRunCLI(t, "--benchtime", "3x")
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	floors := map[string]bool{}
	for _, r := range benchRows() {
		floors[r.id] = r.floor != ""
	}
	seen := map[string]bool{}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "ROW":
			inTable = true
			continue
		case len(f) == 0:
			inTable = false
			continue
		case !inTable:
			continue
		}
		id := f[0]
		hasFloor, known := floors[id]
		if !known {
			t.Errorf("unknown row %q in %q", id, line)
			continue
		}
		seen[id] = true
		if len(f) < 7 {
			t.Errorf("row %s: want at least 7 columns, got %q", id, line)
			continue
		}
		for i, name := range []string{"ns/op", "allocs/op", "B/op", "x ES256 verify"} {
			v, err := strconv.ParseFloat(f[1+i], 64)
			if err != nil || v < 0 || (v == 0 && (name == "ns/op" || name == "x ES256 verify")) {
				t.Errorf("row %s: %s = %q", id, name, f[1+i])
			}
		}
		if hasFloor {
			if v, err := strconv.ParseFloat(f[5], 64); err != nil || v <= 0 {
				t.Errorf("row %s: x floor = %q", id, f[5])
			}
		} else if f[5] != "-" {
			t.Errorf("row %s has no floor but x floor = %q", id, f[5])
		}
	}
	for _, id := range benchRowIDs() {
		if !seen[id] {
			t.Errorf("row %s missing from the table:\n%s", id, out)
		}
	}
	if baseline := "\n" + benchBaseline + " "; !strings.Contains(out, baseline) {
		t.Errorf("no baseline row")
	}
	if !strings.Contains(out, "WARNING:") || !strings.Contains(out, "noisy") {
		t.Errorf("no noise warning in:\n%s", out)
	}
}

// TestBenchJSON selects rows with --run and checks that the JSON parses
// and holds the selected rows plus the rows their ratios need.
func TestBenchJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := benchRunCLI(t, "--json", "--benchtime", "2x", "--count", "2", "--run", "^dpop-eddsa-verify$")
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, out)
	}
	var ids []string
	for _, r := range rep.Rows {
		ids = append(ids, r.ID)
		if r.NsPerOp <= 0 || r.XVerify <= 0 || r.Iterations != 2 {
			t.Errorf("row %s: %+v", r.ID, r)
		}
	}
	if got, want := strings.Join(ids, ","), "raw-es256-verify,raw-eddsa-verify,dpop-eddsa-verify"; got != want {
		t.Errorf("rows = %s, want %s", got, want)
	}
	if last := rep.Rows[len(rep.Rows)-1]; last.Floor != "raw-eddsa-verify" || last.XFloor <= 0 {
		t.Errorf("floor of dpop-eddsa-verify: %+v", last)
	}
	if rep.Count != 2 || rep.Benchtime != "2x" || rep.Warning == "" || rep.Baseline != benchBaseline {
		t.Errorf("report header: %+v", rep)
	}
}

// TestBenchFlagErrors checks that bad flag values fail with exit status 2
// and one line on standard error.
func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantMsg string // "" for errors reported by the flag package
	}{
		{"zero duration", []string{"--benchtime", "0s"}, "--benchtime"},
		{"not a duration", []string{"--benchtime", "fast"}, "--benchtime"},
		{"zero count", []string{"--benchtime", "0x"}, "--benchtime"},
		{"count below one", []string{"--count", "0"}, "--count"},
		{"bad regexp", []string{"--run", "("}, "--run"},
		{"no row matches", []string{"--run", "no-such-row"}, "matches no row"},
		{"unknown flag", []string{"--fast"}, ""},
		{"stray argument", []string{"now"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := benchRunCLI(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if tt.wantMsg == "" {
				return
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.wantMsg) || !strings.HasPrefix(errOut, "senderbound bench: ") {
				t.Errorf("stderr = %q, want one line mentioning %q", errOut, tt.wantMsg)
			}
		})
	}
}

func TestBenchHelp(t *testing.T) {
	t.Parallel()
	code, _, errOut := benchRunCLI(t, "-h")
	if code != 0 || !strings.Contains(errOut, "--benchtime") || !strings.Contains(errOut, "Usage: senderbound bench") {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
}
