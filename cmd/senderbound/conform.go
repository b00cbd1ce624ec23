package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/senderbound/senderbound/conformance"
)

const conformSynopsis = `conform --token-endpoint URL --client-id ID --resource URL [flags]

Runs the conformance suite (RFC 9449 DPoP, RFC 8705 mTLS-bound tokens)
against any issuer and resource server and writes a report (text, json or
junit) to standard output or --out. --profile says which binding the
deployment claims (dpop, mtls or both; cases outside it are skipped).
Each capability flag (--cert, --issuer-key, --second-resource, --metadata,
...) unlocks more cases; cases whose preconditions the target description
cannot meet are skipped, never passed. --scope is the scope to request;
--resource-scope a scope the resource requires. --list prints the
catalogue (filtered by --cases) and exits.

MTLS-CA-11 (certificate rotation at a client's jwks_uri) needs a key set
the suite controls: --client-key-host HOST:PORT (a loopback IP address and
a fixed port) serves https://HOST:PORT/clients/ID/jwks.json for the run,
with the TLS certificate of --client-key-host-cert/--client-key-host-key,
for the self_signed_tls_client_auth client --jwks-uri-client ID. Start the
target before the run with that URL as the client's jwks_uri, trusting the
certificate's CA and allowing loopback fetches (for serve-issuer:
--client-jwks-uri ID:self_signed_tls_client_auth=URL --client-jwks-ca FILE
--insecure-client-jwks-private-addresses). --key-refresh-wait bounds each
wait for the target to refetch the set (default 30s).

Before the cases, a preflight checks that the target matches its
description (the token endpoint answers and accepts the credentials, TLS
trust, the resource accepts a valid request, nonces are declared) and
stops with one line naming the cause.

Every check is graded: accepted-attack (the target accepted what it must
refuse), missing-feature (a requirement it does not implement),
wrong-refusal (refused, but with another status, scheme or error code than
the RFC's), pass, record or skip, with its RFC level (MUST, SHOULD,
policy). The report opens with the accepted attacks, the missing features
and the wrong refusals grouped by pattern.

Plain HTTP on loopback (a walk-through, a developer's machine) is recorded
as a deliberate local-test setting with --allow-loopback-http, instead of
failing; never use it for a deployment.

Exit status:
  0  no accepted attack and no missing MUST-level feature
  1  an attack was accepted (echoed credentials included) or a MUST-level
     feature is missing; with --strict, also any wrong refusal; or the run
     could not complete
  2  the flags or the target description are invalid
  3  the preflight stopped the run (the cause is printed on one line)`

// runConform runs the conformance suite against the target described by the
// flags. Accepted attacks and missing MUST features (with --strict, wrong
// refusals too) are returned as an error naming the cases, after the
// report has been written; a failed preflight is reported on one line and
// returned as exit status 3.
func runConform(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "conform", conformSynopsis)
	tf := registerConformFlags(fs)
	list := fs.Bool("list", false, "print the case catalogue (filtered by --cases) and exit")
	strict := fs.Bool("strict", false, "also fail (exit status 1) on wrong refusals: another status, scheme or error code than the RFC's")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	opts := tf.options()
	cases := conformSelected(opts.Cases)
	if len(cases) == 0 {
		return conformUsage(e, fmt.Errorf("--cases %q selects no case (see --list)", strings.Join(opts.Cases, ",")))
	}
	if *list {
		return conformList(e.stdout, cases)
	}
	if err := (&conformance.Report{}).Write(io.Discard, tf.formatName()); err != nil {
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
	target, err := tf.target()
	if err != nil {
		return conformUsage(e, err)
	}
	if err := tf.listenIntrospectionProxy(&target); err != nil {
		return err
	}
	keyHost, err := tf.startClientKeyHost(&target)
	if err != nil {
		if target.IntrospectionProxy != nil {
			_ = target.IntrospectionProxy.Close()
		}
		return err
	}
	if keyHost != nil {
		defer keyHost.Close()
		fmt.Fprintf(e.stderr, "senderbound conform: note: serving the key set of client %q at %s for the run\n", target.JWKSURIClientID, keyHost.URL(target.JWKSURIClientID))
	}
	if target.AllowLoopbackHTTP {
		fmt.Fprintf(e.stderr, "senderbound conform: note: plain HTTP on loopback is treated as a deliberate local-test setting (--allow-loopback-http); this is not a test of a deployment\n")
	}

	rep, err := conformance.Run(ctx, target, opts)
	var pe *conformance.PreflightError
	if errors.As(err, &pe) {
		fmt.Fprintf(e.stderr, "senderbound conform: preflight: %s\n", conformPreflightHint(ctx, target, oneLine(pe.Cause)))
		return exitStatus(3)
	}
	if err != nil {
		return fmt.Errorf("run stopped: %s", conformMessage(err))
	}
	if err := conformWrite(e, rep, tf.formatName(), tf.outFile(), *strict); err != nil {
		return err
	}
	if t := rep.Totals(); t[conformance.StatusSkip] == len(rep.Results) {
		// Not a failure (skips never are), but worth a line: a target the
		// suite could not get a token from tests nothing.
		fmt.Fprintf(e.stderr, "senderbound conform: note: all %d selected case(s) were skipped; nothing was tested\n", len(rep.Results))
	}
	attacks, must, wrong := conformFindings(rep)
	var parts []string
	if len(attacks) > 0 {
		parts = append(parts, fmt.Sprintf("accepted %d attack(s): %s", len(attacks), conformJoinIDs(attacks, 12)))
	}
	if len(must) > 0 {
		parts = append(parts, fmt.Sprintf("lacks %d MUST-level feature(s): %s", len(must), conformJoinIDs(must, 12)))
	}
	if *strict && len(wrong) > 0 {
		parts = append(parts, fmt.Sprintf("refused wrongly in %d case(s) (--strict): %s", len(wrong), conformJoinIDs(wrong, 12)))
	}
	if len(parts) > 0 {
		return fmt.Errorf("the target %s", strings.Join(parts, "; "))
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
func conformWrite(e *env, rep *conformance.Report, format, out string, strict bool) error {
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
	t := rep.TierTotals()
	result := "PASS"
	if rep.Failed() || (strict && rep.FailedStrict()) {
		result = "FAIL"
	}
	if format == "" {
		format = conformance.FormatText
	}
	fmt.Fprintf(e.stdout, "wrote %s report to %s: %d cases, %d accepted attack, %d missing feature, %d wrong refusal, %d pass, %d record, %d skip; RESULT: %s\n",
		format, out, len(rep.Results), t[conformance.TierAcceptedAttack], t[conformance.TierMissingFeature], t[conformance.TierWrongRefusal],
		t[conformance.TierPass], t[conformance.TierRecord], t[conformance.TierSkip], result)
	return nil
}

// conformFindings lists the cases with an accepted attack, with a missing
// MUST-level feature, and with a wrong refusal (see
// [conformance.Report.Failed] and [conformance.Report.FailedStrict]).
func conformFindings(rep *conformance.Report) (attacks, must, wrong []string) {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.AttacksAccepted() {
			attacks = append(attacks, r.ID)
		}
		if r.MissingMust() {
			must = append(must, r.ID)
		}
		if r.WrongRefusals() {
			wrong = append(wrong, r.ID)
		}
	}
	return attacks, must, wrong
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

// conformPreflightHint adds the cause and hint of transportDiagnosis to a
// preflight cause that names a TLS failure or a bare 400 at the token
// endpoint or the resource: it sends that URL one GET without credentials,
// with the target's TLS trust, and reads how it fails. Any other cause is
// returned unchanged.
func conformPreflightHint(ctx context.Context, target conformance.Target, cause string) string {
	if !strings.HasPrefix(cause, "TLS:") && !strings.Contains(cause, "answered status 400") {
		return cause
	}
	var where, u string
	switch {
	case strings.Contains(cause, "token endpoint"):
		where, u = "the token endpoint", target.TokenEndpoint
	case strings.Contains(cause, "resource"):
		where, u = "the resource", target.Resource
	default:
		return cause
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return cause
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: target.RootCAs, InsecureSkipVerify: target.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		if c, hint, ok := transportDiagnosis(err); ok {
			return fmt.Sprintf("TLS at %s: %s (%s)", where, c, hint)
		}
		return cause
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if plainHTTPToTLS(resp, body) {
		return fmt.Sprintf("%s answered %s to plain HTTP (%s)", where, resp.Status, hintHTTPS)
	}
	return cause
}
