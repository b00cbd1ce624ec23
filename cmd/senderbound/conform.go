package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/senderbound/senderbound/conformance"
)

const conformSynopsis = `conform --token-endpoint URL --client-id ID --resource URL [flags]

Runs the conformance suite (RFC 9449 DPoP, RFC 8705 mTLS-bound tokens)
against any issuer and resource server and writes a report (text, json or
junit) to standard output or --out. Each capability flag (--cert,
--issuer-key, --second-resource, --metadata, ...) unlocks more cases;
cases whose preconditions the target description cannot meet are skipped,
never passed. --list prints the catalogue (filtered by --cases) and exits.

Exit status: 0 when no MUST-level case failed; 1 when a MUST-level case
(or a credential-hygiene check) failed, or the run could not complete;
2 when the flags or the target description are invalid.`

// runConform runs the conformance suite against the target described by the
// flags. A MUST-level failure is returned as an error naming the failed
// cases, after the report has been written.
func runConform(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "conform", conformSynopsis)
	tf := conformance.RegisterFlags(fs)
	list := fs.Bool("list", false, "print the case catalogue (filtered by --cases) and exit")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	opts := tf.Options()
	cases := conformSelected(opts.Cases)
	if len(cases) == 0 {
		return conformUsage(e, fmt.Errorf("--cases %q selects no case (see --list)", strings.Join(opts.Cases, ",")))
	}
	if *list {
		return conformList(e.stdout, cases)
	}
	if err := (&conformance.Report{}).Write(io.Discard, tf.Format()); err != nil {
		return conformUsage(e, fmt.Errorf("--format: %w", err))
	}
	var missing []string
	for _, name := range []string{"token-endpoint", "client-id", "resource"} {
		if fs.Lookup(name).Value.String() == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return conformUsage(e, fmt.Errorf("missing %s (the target's token endpoint, client id and protected resource are required)", strings.Join(missing, ", ")))
	}
	target, err := tf.Target()
	if err != nil {
		return conformUsage(e, err)
	}

	rep, err := conformance.Run(ctx, target, opts)
	if err != nil {
		return fmt.Errorf("run stopped: %s", conformMessage(err))
	}
	if err := conformWrite(e, rep, tf.Format(), tf.Out()); err != nil {
		return err
	}
	if t := rep.Totals(); t[conformance.StatusSkip] == len(rep.Results) {
		// Not a failure (skips never are), but worth a line: a target the
		// suite could not get a token from tests nothing.
		fmt.Fprintf(e.stderr, "senderbound conform: note: all %d selected case(s) were skipped; nothing was tested\n", len(rep.Results))
	}
	if failed := conformFailedIDs(rep); len(failed) > 0 {
		return fmt.Errorf("the target failed %d case(s) at MUST level or on credential hygiene: %s", len(failed), conformJoinIDs(failed, 12))
	}
	return nil
}

// conformSelected returns the catalogue cases that patterns select.
func conformSelected(patterns []string) []conformance.Case {
	var out []conformance.Case
	for _, c := range conformance.Cases() {
		if c.Select(patterns) {
			out = append(out, c)
		}
	}
	return out
}

// conformList prints one line per case: id, level, group, role, section,
// needed capabilities and title.
func conformList(w io.Writer, cases []conformance.Case) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tGROUP\tROLE\tSECTION\tNEEDS\tTITLE")
	for _, c := range cases {
		needs := c.Needs.String()
		if needs == "" {
			needs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Level, c.Group, c.Role, c.Section, needs, c.Title)
	}
	return tw.Flush()
}

// conformWrite writes the report to out (a file) or standard output. With
// --out, standard output gets a one-line summary instead.
func conformWrite(e *env, rep *conformance.Report, format, out string) error {
	if out == "" {
		return rep.Write(e.stdout, format)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := rep.Write(f, format); err != nil {
		f.Close()
		return fmt.Errorf("writing the report to %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the report to %s: %w", out, err)
	}
	t := rep.Totals()
	result := "PASS"
	if rep.Failed() {
		result = "FAIL"
	}
	if format == "" {
		format = conformance.FormatText
	}
	fmt.Fprintf(e.stdout, "wrote %s report to %s: %d cases, %d pass, %d fail, %d warn, %d skip; RESULT: %s\n",
		format, out, len(rep.Results), t[conformance.StatusPass], t[conformance.StatusFail], t[conformance.StatusWarn], t[conformance.StatusSkip], result)
	return nil
}

// conformFailedIDs lists the cases that make the report fail: MUST-level
// failures and hygiene failures at any level (see [conformance.Report.Failed]).
func conformFailedIDs(rep *conformance.Report) []string {
	var ids []string
	for _, r := range rep.Results {
		if r.Status == conformance.StatusFail && (r.Level == conformance.LevelMust || r.Hygiene) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// conformJoinIDs joins at most limit ids, then says how many were left out.
func conformJoinIDs(ids []string, limit int) string {
	if len(ids) <= limit {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:limit], ", "), len(ids)-limit)
}

// conformUsage reports a bad target description on one line and returns
// errUsage (exit status 2).
func conformUsage(e *env, err error) error {
	fmt.Fprintf(e.stderr, "senderbound conform: %s (run 'senderbound conform -h')\n", conformMessage(err))
	return errUsage
}

// conformMessage renders err on one line: the parts of a joined error are
// separated by "; " and the package prefix "conformance: " is dropped,
// since the command names itself.
func conformMessage(err error) string {
	var parts []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			parts = append(parts, conformMessage(e))
		}
	} else {
		parts = []string{strings.TrimPrefix(err.Error(), "conformance: ")}
	}
	return oneLine(strings.Join(parts, "; "))
}
