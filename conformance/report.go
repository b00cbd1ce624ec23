package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes a terminal table grouped by checklist group, with
// per-group and overall totals. Policy failures are listed apart from RFC
// failures in the summary.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "senderbound conformance report\n")
	fmt.Fprintf(ew, "target: %s\n", r.Target)
	for _, g := range groupOrder {
		var rs []Result
		for _, res := range r.Results {
			if res.Group == g {
				rs = append(rs, res)
			}
		}
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(ew, "\n%s\n", g.Title())
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		for _, res := range rs {
			obs := ""
			if res.Observed.Status != 0 {
				obs = fmt.Sprint(res.Observed.Status)
				if res.Observed.Error != "" {
					obs += " " + res.Observed.Error
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", strings.ToUpper(string(res.Status)), res.ID, res.Level, obs, oneLine(res.Reason, 100))
		}
		tw.Flush()
		t := totals(rs)
		fmt.Fprintf(ew, "  -- %d pass, %d fail, %d warn, %d skip\n", t[StatusPass], t[StatusFail], t[StatusWarn], t[StatusSkip])
	}
	t := r.Totals()
	policy := 0
	for _, res := range r.Results {
		if res.Status == StatusFail && res.Level == LevelPolicy {
			policy++
		}
	}
	fmt.Fprintf(ew, "\nTOTAL %d cases: %d pass, %d fail (%d policy), %d warn, %d skip\n",
		len(r.Results), t[StatusPass], t[StatusFail], policy, t[StatusWarn], t[StatusSkip])
	if r.Failed() {
		fmt.Fprintf(ew, "RESULT: FAIL (a MUST-level case failed)\n")
	} else {
		fmt.Fprintf(ew, "RESULT: PASS (no MUST-level failure)\n")
	}
	return ew.err
}

func totals(rs []Result) map[Status]int {
	m := map[Status]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// WriteJSON writes the report as indented JSON: target, started,
// duration_ns, and results (id, title, section, level, role, group, expect,
// status, reason, observed, duration_ns).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
}

// WriteJUnit writes JUnit XML: one testsuite per checklist group, one
// testcase per case. Failures of MUST and policy cases are <failure>
// elements (type names the level); warnings pass with the reason in
// <system-out>; skips are <skipped>.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "senderbound conformance", Time: secs(r.Duration.Seconds())}
	for _, g := range groupOrder {
		s := junitSuite{Name: g.Title()}
		for _, res := range r.Results {
			if res.Group != g {
				continue
			}
			jc := junitCase{
				Name:      res.ID + " " + res.Title,
				Classname: "conformance." + string(g),
				Time:      secs(res.Duration.Seconds()),
			}
			msg := res.Reason
			if res.Observed.Status != 0 {
				msg += " [observed " + strings.TrimSpace(fmt.Sprintf("%d %s", res.Observed.Status, res.Observed.Error)) + "]"
			}
			switch res.Status {
			case StatusFail:
				jc.Failure = &junitMessage{Message: msg, Type: string(res.Level)}
				s.Failures++
			case StatusSkip:
				jc.Skipped = &junitMessage{Message: msg}
				s.Skipped++
			case StatusWarn:
				jc.SystemOut = "WARN (" + string(res.Level) + "): " + msg
			default:
				jc.SystemOut = msg
			}
			s.Cases = append(s.Cases, jc)
			s.Tests++
		}
		if s.Tests == 0 {
			continue
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(f float64) string { return fmt.Sprintf("%.3f", f) }

// Formats accepted by [Report.Write].
const (
	FormatText  = "text"
	FormatJSON  = "json"
	FormatJUnit = "junit"
)

// Write writes the report in the named format: "text" (or ""), "json" or
// "junit". It returns an error for an unknown format.
func (r *Report) Write(w io.Writer, format string) error {
	switch strings.ToLower(format) {
	case "", FormatText:
		return r.WriteText(w)
	case FormatJSON:
		return r.WriteJSON(w)
	case FormatJUnit, "xml":
		return r.WriteJUnit(w)
	}
	return fmt.Errorf("conformance: unknown report format %q (want text, json or junit)", format)
}
