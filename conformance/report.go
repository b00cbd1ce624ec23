package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes a summary first: the accepted attacks, one line each;
// the missing features; the wrong refusals grouped by pattern ("43 cases:
// refused with 400 where 401 is expected"); the other totals and the
// result. Then a table per checklist group, with every failing check of a
// case on its own line.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "senderbound conformance report\n")
	fmt.Fprintf(ew, "target: %s\n", r.Target)
	r.writeSummary(ew)
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
			level := string(res.Level)
			if res.Tier.Failing() {
				level = failLevel(res)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", tierLabel(res.Tier), res.ID, level, observed(res.Observed), oneLine(res.Reason, 100))
			if !res.Tier.Failing() {
				continue
			}
			var failing []Check
			alike := true
			for _, c := range res.Checks {
				if c.Tier.Failing() {
					failing = append(failing, c)
					alike = alike && c.Pattern != "" && c.Tier == failing[0].Tier && c.Level == failing[0].Level && c.Pattern == failing[0].Pattern
				}
			}
			switch {
			case len(failing) < 2:
			case alike:
				fmt.Fprintf(tw, "  \t  - %d variants: %s\n", len(failing), failing[0].Pattern)
			default:
				for _, c := range failing {
					fmt.Fprintf(tw, "  \t  - %s\t%s\t%s\t%s\n", tierLabel(c.Tier), c.Level, observed(c.Observed), oneLine(checkLine(c), 100))
				}
			}
		}
		tw.Flush()
		t := tierTotals(rs)
		fmt.Fprintf(ew, "  -- %d attack, %d missing, %d wrong refusal, %d pass, %d record, %d skip\n",
			t[TierAcceptedAttack], t[TierMissingFeature], t[TierWrongRefusal], t[TierPass], t[TierRecord], t[TierSkip])
	}
	fmt.Fprintf(ew, "\n%s\n", r.resultLine())
	return ew.err
}

// writeSummary writes the summary block of the text report.
func (r *Report) writeSummary(w io.Writer) {
	var attacks, missing []Result
	type group struct {
		pattern string
		level   Level
		ids     []string
	}
	var wrong []*group
	byPattern := map[string]*group{}
	for _, res := range r.Results {
		if res.AttacksAccepted() {
			attacks = append(attacks, res)
		}
		for _, c := range res.Checks {
			if c.Tier == TierMissingFeature {
				missing = append(missing, res)
				break
			}
		}
		seen := map[string]bool{}
		for _, c := range res.Checks {
			if c.Tier != TierWrongRefusal {
				continue
			}
			p := c.Pattern
			if p == "" {
				p = "refused otherwise than the RFC says"
			}
			key := p + "\x00" + string(c.Level)
			if seen[key] {
				continue
			}
			seen[key] = true
			g := byPattern[key]
			if g == nil {
				g = &group{pattern: p, level: c.Level}
				byPattern[key] = g
				wrong = append(wrong, g)
			}
			g.ids = append(g.ids, res.ID)
		}
	}
	sort.SliceStable(wrong, func(i, j int) bool { return len(wrong[i].ids) > len(wrong[j].ids) })
	fmt.Fprintf(w, "\nSUMMARY\n")
	fmt.Fprintf(w, "%s accepted\n", plural(len(attacks), "attack", "attacks"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, res := range attacks {
		why := res.Reason
		for _, c := range res.Checks {
			if c.Tier == TierAcceptedAttack {
				why = checkLine(c)
				break
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", res.ID, res.Level, res.Section, oneLine(why, 90))
	}
	tw.Flush()
	must := 0
	for _, res := range missing {
		if res.MissingMust() {
			must++
		}
	}
	fmt.Fprintf(w, "%s missing (%d at MUST level)\n", plural(len(missing), "feature", "features"), must)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, res := range missing {
		for _, c := range res.Checks {
			if c.Tier == TierMissingFeature {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", res.ID, c.Level, res.Section, oneLine(checkLine(c), 90))
				break
			}
		}
	}
	tw.Flush()
	n := 0
	for _, res := range r.Results {
		if res.WrongRefusals() {
			n++
		}
	}
	fmt.Fprintf(w, "%s with a wrong refusal\n", plural(n, "case", "cases"))
	for _, g := range wrong {
		fmt.Fprintf(w, "  %s: %s (%s) — %s\n", plural(len(g.ids), "case", "cases"), g.pattern, g.level, joinIDs(g.ids, 8))
	}
	t := r.TierTotals()
	fmt.Fprintf(w, "%d pass, %d record, %d skip (of %d cases)\n", t[TierPass], t[TierRecord], t[TierSkip], len(r.Results))
	fmt.Fprintf(w, "%s\n", r.resultLine())
}

// resultLine is the report's verdict on one line.
func (r *Report) resultLine() string {
	attacks, must, wrong := 0, 0, 0
	for i := range r.Results {
		res := &r.Results[i]
		if res.AttacksAccepted() {
			attacks++
		}
		if res.MissingMust() {
			must++
		}
		if res.WrongRefusals() {
			wrong++
		}
	}
	if r.Failed() {
		return fmt.Sprintf("RESULT: FAIL (%s accepted, %s missing)", plural(attacks, "attack", "attacks"), plural(must, "MUST feature", "MUST features"))
	}
	if wrong > 0 {
		return fmt.Sprintf("RESULT: PASS (no accepted attack, no missing MUST feature; %s with a wrong refusal, which fail only a strict run)", plural(wrong, "case", "cases"))
	}
	return "RESULT: PASS (no accepted attack, no missing MUST feature, no wrong refusal)"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinIDs(ids []string, limit int) string {
	if len(ids) <= limit {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:limit], ", "), len(ids)-limit)
}

// checkLine is "name: reason", or the reason of an unnamed check.
func checkLine(c Check) string {
	switch {
	case c.Name == "":
		return c.Reason
	case c.Reason == "":
		return c.Name
	}
	return c.Name + ": " + c.Reason
}

// tierLabel is a tier in capitals, for the text table.
func tierLabel(t Tier) string {
	switch t {
	case TierAcceptedAttack:
		return "ATTACK"
	case TierMissingFeature:
		return "MISSING"
	case TierWrongRefusal:
		return "WRONG"
	}
	return strings.ToUpper(string(t))
}

func observed(o Observation) string {
	if o.Status == 0 {
		return ""
	}
	s := fmt.Sprint(o.Status)
	if o.Error != "" {
		s += " " + o.Error
	}
	return s
}

func tierTotals(rs []Result) map[Tier]int {
	m := map[Tier]int{}
	for _, r := range rs {
		m[r.Tier]++
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
// tier, status, reason, observed, checks, duration_ns); each check carries
// name, tier, level, reason, pattern and observed.
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
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMessage   `xml:"failure,omitempty"`
	Skipped    *junitMessage   `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
}

// WriteJUnit writes JUnit XML: one testsuite per checklist group, one
// testcase per case. Each testcase has properties "tier" and "level" and
// one property "check" per check ("tier level: name: reason"). Failures at
// MUST and policy level are <failure> elements whose type is the tier and
// the level ("accepted-attack MUST"); SHOULD-level findings pass with the
// reason in <system-out>; skips are <skipped>.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "senderbound conformance", Time: secs(r.Duration.Seconds())}
	for _, g := range groupOrder {
		s := junitSuite{Name: g.Title()}
		for _, res := range r.Results {
			if res.Group != g {
				continue
			}
			jc := junitCase{
				Name:       res.ID + " " + res.Title,
				Classname:  "conformance." + string(g),
				Time:       secs(res.Duration.Seconds()),
				Properties: []junitProperty{{"tier", string(res.Tier)}, {"level", string(res.Level)}},
			}
			for _, c := range res.Checks {
				jc.Properties = append(jc.Properties, junitProperty{"check", string(c.Tier) + " " + string(c.Level) + ": " + checkLine(c)})
			}
			msg := res.Reason
			if res.Observed.Status != 0 {
				msg += " [observed " + strings.TrimSpace(fmt.Sprintf("%d %s", res.Observed.Status, res.Observed.Error)) + "]"
			}
			switch res.Status {
			case StatusFail:
				jc.Failure = &junitMessage{Message: msg, Type: string(res.Tier) + " " + failLevel(res)}
				s.Failures++
			case StatusSkip:
				jc.Skipped = &junitMessage{Message: msg}
				s.Skipped++
			case StatusWarn:
				jc.SystemOut = "WARN (" + string(res.Tier) + " " + failLevel(res) + "): " + msg
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

// failLevel is the level of the result's most severe check.
func failLevel(res Result) string {
	if w := worst(res.Checks); w >= 0 {
		return string(res.Checks[w].Level)
	}
	return string(res.Level)
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
