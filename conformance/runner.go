package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Options control a run. The zero value runs every case.
type Options struct {
	// Cases selects cases by id, id prefix or group (see [Case.Select]).
	// Empty selects all.
	Cases []string
	// Now is the clock used for proof and token times. Nil means time.Now.
	// Set it only to match a target whose clock is off.
	Now func() time.Time
}

// Status is the outcome of one case.
type Status string

// Statuses.
const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	StatusWarn Status = "warn"
	StatusSkip Status = "skip"
)

// Observation is what the target answered to the request that decided a
// case.
type Observation struct {
	// Status is the HTTP status (0 when no response arrived).
	Status int `json:"status,omitempty"`
	// Challenge is the WWW-Authenticate value(s), joined by "; ".
	Challenge string `json:"challenge,omitempty"`
	// Error is the error code from the challenge or the JSON body.
	Error string `json:"error,omitempty"`
}

// Result is the outcome of one case.
type Result struct {
	// Case is the case that ran.
	Case
	// Tier is the most severe tier among Checks (see [Tier]).
	Tier Tier `json:"tier"`
	// Status is the outcome after applying the levels of the checks: fail
	// when a check fails at MUST or policy level, warn when only SHOULD or
	// record-level checks fail.
	Status Status `json:"status"`
	// Reason is a one-line explanation; it never contains tokens, proofs
	// or other credentials.
	Reason string `json:"reason"`
	// Observed is the response that decided the case.
	Observed Observation `json:"observed"`
	// Checks holds every graded check of the case, in the order they ran.
	// A case runs all its variants even after one fails.
	Checks []Check `json:"checks,omitempty"`
	// Duration is how long the case took.
	Duration time.Duration `json:"duration_ns"`
	// Hygiene is set when the failure is an echoed credential or a
	// Client-Cert response header; such failures count as accepted
	// attacks whatever the case's level.
	Hygiene bool `json:"hygiene,omitempty"`
}

// Check returns the check named name (see [Check.Name]). Check names are
// stable for a case, so a test can pin the verdict of one variant, e.g.
// that a target's replay acceptance stays an accepted attack.
func (r *Result) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// AttacksAccepted reports whether a check of the result is an accepted
// attack (at any level, hygiene included).
func (r *Result) AttacksAccepted() bool {
	for _, c := range r.Checks {
		if c.Tier == TierAcceptedAttack {
			return true
		}
	}
	return r.Hygiene || r.Tier == TierAcceptedAttack
}

// MissingMust reports whether a MUST-level check of the result is a
// missing feature.
func (r *Result) MissingMust() bool {
	for _, c := range r.Checks {
		if c.Tier == TierMissingFeature && c.Level == LevelMust {
			return true
		}
	}
	return len(r.Checks) == 0 && r.Tier == TierMissingFeature && r.Level == LevelMust
}

// WrongRefusals reports whether a check of the result is a wrong refusal.
func (r *Result) WrongRefusals() bool {
	for _, c := range r.Checks {
		if c.Tier == TierWrongRefusal {
			return true
		}
	}
	return len(r.Checks) == 0 && r.Tier == TierWrongRefusal
}

// Report is the outcome of a run. It is a plain value: safe to read
// concurrently, not to modify concurrently.
type Report struct {
	// Target names what was tested (token endpoint and resource URLs).
	Target string `json:"target"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Duration is how long the run took.
	Duration time.Duration `json:"duration_ns"`
	// Results holds one entry per selected case, in catalogue order.
	Results []Result `json:"results"`
}

// Failed reports whether the target accepted an attack (at any level,
// echoed credentials included) or lacks a MUST-level feature. Wrong
// refusals, SHOULD-level and policy-level missing features do not count;
// see [Report.FailedStrict].
func (r *Report) Failed() bool {
	for i := range r.Results {
		if r.Results[i].AttacksAccepted() || r.Results[i].MissingMust() {
			return true
		}
	}
	return false
}

// FailedStrict is [Report.Failed], and also true when any check is a wrong
// refusal (another status, scheme or error code than the RFC's, at any
// level).
func (r *Report) FailedStrict() bool {
	if r.Failed() {
		return true
	}
	for i := range r.Results {
		if r.Results[i].WrongRefusals() {
			return true
		}
	}
	return false
}

// TierTotals counts results by their tier.
func (r *Report) TierTotals() map[Tier]int {
	m := map[Tier]int{}
	for _, res := range r.Results {
		m[res.Tier]++
	}
	return m
}

// Totals counts results by status.
func (r *Report) Totals() map[Status]int {
	m := map[Status]int{}
	for _, res := range r.Results {
		m[res.Status]++
	}
	return m
}

// Result returns the result for a case id.
func (r *Report) Result(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// Run executes the selected cases against the target, one after another
// (cases share tokens and nonce state, and replay cases depend on order).
// Before the cases it runs a preflight (see [PreflightError]): a target
// that does not match its description stops the run with the cause
// instead of a report full of failures. It returns an error only for an
// invalid target, a failed preflight or a cancelled context; case
// findings are in the report. Run is safe to call concurrently with
// distinct targets.
func Run(ctx context.Context, target Target, opts Options) (*Report, error) {
	if err := target.Validate(); err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s, err := newSession(target, now)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	defer s.close()
	if err := s.preflight(ctx); err != nil {
		return nil, err
	}
	rep := &Report{
		Target:  fmt.Sprintf("token endpoint %s, resource %s", target.TokenEndpoint, target.Resource),
		Started: time.Now().UTC(),
	}
	for _, c := range selectCases(opts.Cases) {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, runCase(ctx, s, c))
	}
	rep.Duration = time.Since(rep.Started)
	sortResults(rep.Results)
	return rep, nil
}

func selectCases(patterns []string) []Case {
	var out []Case
	for _, c := range Cases() {
		if c.Select(patterns) {
			out = append(out, c)
		}
	}
	// Audit cases inspect every response of the run, so they go last.
	slices.SortStableFunc(out, func(a, b Case) int {
		ai, bi := auditCases[a.ID], auditCases[b.ID]
		switch {
		case ai && !bi:
			return 1
		case bi && !ai:
			return -1
		}
		return 0
	})
	return out
}

// sortResults puts results in catalogue order.
func sortResults(rs []Result) {
	cs := make([]Case, len(rs))
	idx := map[string]Result{}
	for i, r := range rs {
		cs[i] = r.Case
		idx[r.ID] = r
	}
	sortCases(cs)
	for i, c := range cs {
		rs[i] = idx[c.ID]
	}
}

// auditCases look at the whole run's responses, so they run last.
var auditCases = map[string]bool{
	"DPOP-AS-09": true, "DPOP-AS-17": true, "DPOP-AS-18": true, "DPOP-AS-19": true,
	"DPOP-AS-27": true, "ERR-08": true, "ERR-16": true, "CCERT-07": true,
}

func runCase(ctx context.Context, s *session, c Case) Result {
	start := time.Now()
	res := Result{Case: c}
	r := &run{ctx: ctx, s: s, c: &c}
	var v verdict
	if why := s.t.outOfProfile(c); why != "" {
		v = skipf("%s", why)
	} else if s.dpopOnlyResource && c.Role == RoleResource && c.Needs&CapMTLS != 0 {
		v = skipf("the resource offers DPoP only (it answered a valid certificate-bound request with a DPoP challenge alone); --profile both tests it anyway")
	} else if missing := c.Needs &^ s.caps; missing != 0 {
		v = skipf("target lacks capability %s: %s", missing, capHint(missing))
	} else {
		v = r.guard()
	}
	checks := r.checks
	if !v.summary || len(checks) == 0 {
		checks = append(checks, r.checkOf("", v, r.decisive()))
	}
	if v.status != StatusSkip {
		for _, x := range r.xs {
			if x.hygiene != "" {
				res.Hygiene = true
				checks = append(checks, Check{Name: "hygiene", Tier: TierAcceptedAttack, Level: LevelMust, Reason: x.hygiene, Observed: observe(x)})
				break
			}
		}
	}
	res.Checks = checks
	w := checks[worst(checks)]
	res.Tier = w.Tier
	res.Status = statusOf(checks, res.Hygiene)
	res.Reason = v.reason
	res.Observed = observe(r.decisive())
	if w.Tier.Failing() || (w.Tier == TierSkip && v.summary) {
		res.Reason = w.Reason
		if w.Name != "" {
			res.Reason = w.Name + ": " + w.Reason
		}
		res.Observed = w.Observed
	}
	res.Duration = time.Since(start)
	return res
}

// observe summarizes a response for a report.
func observe(x *exchange) Observation {
	if x == nil {
		return Observation{}
	}
	return Observation{Status: x.status, Challenge: safeHeader(x.wwwAuth()), Error: safeToken(x.anyErrorCode())}
}

// checkOf grades a verdict as one check decided on x.
func (r *run) checkOf(name string, v verdict, x *exchange) Check {
	c := Check{Name: name, Level: r.c.Level, Reason: v.reason, Pattern: v.pattern, Tier: v.tier}
	if v.level != "" {
		c.Level = v.level
	}
	switch v.status {
	case StatusSkip:
		c.Tier = TierSkip
	case StatusPass:
		if c.Tier == "" {
			c.Tier = TierPass
			if c.Level == LevelRecord {
				c.Tier = TierRecord
			}
		}
	default:
		if c.Tier == "" {
			c.Tier = TierMissingFeature
		}
	}
	if c.Tier == TierSkip {
		return c
	}
	c.Observed = observe(x)
	return c
}

func capHint(c Capability) string {
	var hints []string
	for _, n := range capNames {
		if c&n.c != 0 {
			hints = append(hints, n.hint)
		}
	}
	return strings.Join(hints, "; ")
}

// safeHeader trims a header value for a report.
func safeHeader(v string) string {
	if len(v) > 200 {
		v = v[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, v)
}

// run is the state of one executing case.
type run struct {
	ctx    context.Context
	s      *session
	c      *Case
	xs     []*exchange
	fail   *exchange
	checks []Check
	// oversized makes rs send with doOversized (see the oversized step
	// wrapper).
	oversized bool
}

type verdict struct {
	status Status
	reason string
	// tier overrides the tier derived from status (failures default to
	// missing-feature, passes to pass or, in record cases, record).
	tier Tier
	// level overrides the case's level for this verdict.
	level Level
	// pattern groups wrong refusals across cases.
	pattern string
	// summary marks a verdict that summarizes the checks already recorded
	// in run.checks (by steps).
	summary bool
}

func passf(format string, a ...any) verdict {
	return verdict{status: StatusPass, reason: fmt.Sprintf(format, a...)}
}

// failf is a failure graded as a missing feature.
func failf(format string, a ...any) verdict {
	return verdict{status: StatusFail, reason: fmt.Sprintf(format, a...)}
}

// attackf is a failure graded as an accepted attack.
func attackf(format string, a ...any) verdict {
	return verdict{status: StatusFail, tier: TierAcceptedAttack, reason: fmt.Sprintf(format, a...)}
}

// serverErrorf is a refusal by a 5xx: a wrong refusal.
func serverErrorf(status int, format string, a ...any) verdict {
	return verdict{status: StatusFail, tier: TierWrongRefusal, pattern: "server error (5xx) instead of a refusal",
		reason: fmt.Sprintf(format+": server error %d", append(a, status)...)}
}

// recordf is a pass graded as record: what the target does, where the RFCs
// allow it.
func recordf(format string, a ...any) verdict {
	return verdict{status: StatusPass, tier: TierRecord, reason: fmt.Sprintf(format, a...)}
}

// suitef is a case the suite could not run: a skip that names the suite,
// not the target.
func suitef(format string, a ...any) verdict {
	return skipf("suite error: "+format, a...)
}

// localSetting records a deliberate local-test setting declared by
// Target.AllowLoopbackHTTP: neither a pass nor a failure.
func localSetting(what string) verdict {
	v := recordf("%s: the deliberate local-test setting (--allow-loopback-http); a deployment must use HTTPS", what)
	v.level = LevelRecord
	return v
}

func skipf(format string, a ...any) verdict {
	return verdict{status: StatusSkip, reason: fmt.Sprintf(format, a...)}
}

// guard runs the case, converting a panic in the suite into a skip that
// names the suite, not the target.
func (r *run) guard() (v verdict) {
	defer func() {
		if p := recover(); p != nil {
			v = skipf("suite error: %v", p)
		}
	}()
	return r.c.run(r.ctx, r)
}

// decisive is the exchange reported as the observation.
func (r *run) decisive() *exchange {
	if r.fail != nil {
		return r.fail
	}
	if len(r.xs) > 0 {
		return r.xs[len(r.xs)-1]
	}
	return nil
}

func (r *run) note(x *exchange) *exchange {
	if x != nil {
		r.xs = append(r.xs, x)
	}
	return x
}

// rs sends a resource request and records it. A suite-side error (building
// a request) is returned as a failure verdict.
func (r *run) rs(q rsReq) (*exchange, *verdict) {
	if r.oversized {
		q.oversized = true
	}
	x, err := r.s.resource(r.ctx, q)
	if err != nil {
		v := suitef("%s", sanitizeErr(err))
		return nil, &v
	}
	return r.note(x), nil
}

func (r *run) tok(q tokReq) (*exchange, *verdict) {
	x, err := r.s.token(r.ctx, q)
	if err != nil {
		v := suitef("%s", sanitizeErr(err))
		return nil, &v
	}
	return r.note(x), nil
}

// want is one acceptable rejection: a status and, optionally, a scheme
// ("DPoP", "Bearer", "json" for a JSON error body, "any" for any
// challenge) whose error code is one of codes.
type want struct {
	status int
	scheme string
	codes  []string
}

// dpopOnly is a want scheme: a DPoP challenge, and no Bearer challenge (a
// resource that does not offer Bearer at all).
const dpopOnly = "DPoP-only"

func (w want) String() string {
	if w.scheme == dpopOnly {
		return fmt.Sprintf("%d DPoP without error (Bearer not offered)", w.status)
	}
	s := fmt.Sprint(w.status)
	if w.scheme != "" {
		s += " " + w.scheme
		if len(w.codes) > 0 {
			s += ":" + strings.Join(w.codes, "|")
		}
	}
	return s
}

// Common expectations.
var (
	wantProof     = []want{{401, "DPoP", []string{"invalid_dpop_proof"}}}
	wantDPoPToken = []want{{401, "DPoP", []string{"invalid_token"}}}
	wantBearerTok = []want{{401, "Bearer", []string{"invalid_token"}}}
	wantASProof   = []want{{400, "json", []string{"invalid_dpop_proof"}}}
	wantAny4xx    = []want{{400, "", nil}, {401, "", nil}, {403, "", nil}, {413, "", nil}, {431, "", nil}}
)

func or(ws ...[]want) []want {
	var out []want
	for _, w := range ws {
		out = append(out, w...)
	}
	return out
}

// grade is how one response fares against what a check expects.
type grade struct {
	tier    Tier
	level   Level // "" means the case's level
	reason  string
	pattern string
}

func (g grade) verdict() verdict {
	v := verdict{status: StatusFail, tier: g.tier, level: g.level, reason: g.reason, pattern: g.pattern}
	switch g.tier {
	case TierPass, TierRecord:
		v.status = StatusPass
	case TierSkip:
		v.status = StatusSkip
	}
	return v
}

// wrap is the grade's verdict with another reason.
func (g grade) wrap(format string, a ...any) verdict {
	v := g.verdict()
	v.reason = fmt.Sprintf(format, a...)
	return v
}

const patternServerError = "server error (5xx) instead of a refusal"

// gradeRefusal grades x against the acceptable rejections ws: pass on a
// match; an accepted attack on a 2xx; a wrong refusal otherwise. A refusal
// that differs from a DPoP expectation only in its status (400 for 401, or
// the reverse) is a SHOULD-level wrong refusal: RFC 9449 §7.1 lets a
// resource challenge with 401 but requires it nowhere, and RFC 6750 §3.1
// maps statuses to codes at SHOULD level.
func gradeRefusal(x *exchange, ws []want) grade {
	switch {
	case x == nil:
		return grade{tier: TierSkip, reason: "no request sent"}
	case x.closed:
		return grade{tier: TierPass, reason: "the server closed the connection on the oversized request"}
	case x.err != nil:
		return grade{tier: TierWrongRefusal, reason: x.describe(), pattern: "no HTTP response (transport error)"}
	case x.status >= 200 && x.status < 300:
		return grade{tier: TierAcceptedAttack, reason: fmt.Sprintf("accepted (status %d)", x.status)}
	case x.status >= 500:
		return grade{tier: TierWrongRefusal, reason: fmt.Sprintf("server error (status %d)", x.status), pattern: patternServerError}
	}
	for _, w := range ws {
		if w.status == x.status && w.matches(x) {
			return grade{tier: TierPass, reason: "refused as expected"}
		}
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	reason := fmt.Sprintf("got %s, want %s", x.describe(), strings.Join(parts, " or "))
	for _, w := range ws {
		if w.scheme == "DPoP" && (x.status == 400 || x.status == 401) && (w.status == 400 || w.status == 401) && w.matches(x) {
			return grade{tier: TierWrongRefusal, level: LevelShould, reason: reason,
				pattern: fmt.Sprintf("refused with %d where %d is expected", x.status, w.status)}
		}
	}
	return grade{tier: TierWrongRefusal, reason: reason, pattern: refusalPattern(x, ws)}
}

// matches reports whether x carries w's scheme and one of w's codes,
// whatever its status.
func (w want) matches(x *exchange) bool {
	switch w.scheme {
	case "":
		return true
	case "any":
		if len(x.challenges) == 0 {
			return false
		}
		if len(w.codes) == 0 {
			return true
		}
		for _, c := range x.challenges {
			if v, _ := c.Param("error"); slices.Contains(w.codes, v) {
				return true
			}
		}
		return false
	case "json":
	case dpopOnly:
		if _, ok := findChallenge(x.challenges, "Bearer"); ok {
			return false
		}
		if _, ok := findChallenge(x.challenges, "DPoP"); !ok {
			return false
		}
		return len(w.codes) == 0 || slices.Contains(w.codes, x.errorCode("DPoP"))
	default:
		if _, ok := findChallenge(x.challenges, w.scheme); !ok {
			return false
		}
	}
	return len(w.codes) == 0 || slices.Contains(w.codes, x.errorCode(w.scheme))
}

// refusalPattern names how a refusal differs from every expectation, in
// words that group alike findings across cases.
func refusalPattern(x *exchange, ws []want) string {
	var statuses []string
	sameStatus := []want{}
	for _, w := range ws {
		s := fmt.Sprint(w.status)
		if !slices.Contains(statuses, s) {
			statuses = append(statuses, s)
		}
		if w.status == x.status {
			sameStatus = append(sameStatus, w)
		}
	}
	if len(sameStatus) == 0 {
		return fmt.Sprintf("refused with %d where %s is expected", x.status, strings.Join(statuses, " or "))
	}
	var schemes []string
	for _, w := range sameStatus {
		if w.scheme == "" || w.scheme == "json" || w.scheme == "any" || w.scheme == dpopOnly {
			continue
		}
		if _, ok := findChallenge(x.challenges, w.scheme); ok {
			var codes []string
			for _, c := range sameStatus {
				codes = append(codes, c.codes...)
			}
			got := x.errorCode(w.scheme)
			if got == "" {
				return fmt.Sprintf("%s challenge without an error code", w.scheme)
			}
			return fmt.Sprintf("error code %s where %s is expected", safeToken(got), strings.Join(codes, " or "))
		}
		schemes = append(schemes, w.scheme)
	}
	if len(schemes) > 0 {
		return fmt.Sprintf("refused without a %s challenge", strings.Join(schemes, " or "))
	}
	return fmt.Sprintf("error code %s where another is expected", safeToken(x.anyErrorCode()))
}

// gradeAccept grades a request the target must accept: pass on a 2xx, a
// missing feature otherwise.
func gradeAccept(x *exchange) grade {
	if why := accepted(x); why != "" {
		return grade{tier: TierMissingFeature, reason: why}
	}
	return grade{tier: TierPass, reason: "accepted as expected"}
}

// accepted returns "" for a 2xx response, else why not.
func accepted(x *exchange) string {
	if x == nil {
		return "no request sent"
	}
	if x.err != nil {
		return x.describe()
	}
	if x.status >= 200 && x.status < 300 {
		return ""
	}
	return fmt.Sprintf("refused: %s", x.describe())
}

// step is one variant of a case.
type step struct {
	name string
	do   func(r *run) (*exchange, *verdict)
	// accept expects 2xx; otherwise a rejection matching want.
	accept bool
	want   []want
	// record grades the step as record whatever the target does (a 5xx
	// stays a wrong refusal): the RFCs allow either answer.
	record bool
}

// recordStep grades st as record (see step.record).
func recordStep(st step) step {
	st.record = true
	return st
}

// steps runs every variant, even after one misbehaves, records one check
// per variant, and returns a verdict summarizing them.
func (r *run) steps(ss ...step) verdict {
	start := len(r.checks)
	for _, st := range ss {
		x, v := st.do(r)
		if v != nil {
			r.checks = append(r.checks, r.checkOf(st.name, *v, x))
			continue
		}
		var g grade
		switch {
		case st.record:
			g = gradeRecord(x)
		case st.accept:
			g = gradeAccept(x)
		default:
			g = gradeRefusal(x, st.want)
		}
		r.checks = append(r.checks, r.checkOf(st.name, g.verdict(), x))
	}
	return r.summarize(r.checks[start:], len(ss))
}

// gradeRecord records what the target answered; only a 5xx or no answer
// is a finding.
func gradeRecord(x *exchange) grade {
	switch {
	case x == nil:
		return grade{tier: TierSkip, reason: "no request sent"}
	case x.err != nil:
		return grade{tier: TierWrongRefusal, reason: x.describe(), pattern: "no HTTP response (transport error)"}
	case x.status >= 500:
		return grade{tier: TierWrongRefusal, reason: fmt.Sprintf("server error (status %d)", x.status), pattern: patternServerError}
	case x.status >= 200 && x.status < 300:
		return grade{tier: TierRecord, reason: fmt.Sprintf("recorded: accepted (status %d)", x.status)}
	}
	return grade{tier: TierRecord, reason: "recorded: refused (" + x.describe() + ")"}
}

// summarize turns the checks of a steps run into a verdict.
func (r *run) summarize(cs []Check, n int) verdict {
	v := verdict{summary: true, status: statusOf(cs, false)}
	if w := worst(cs); w >= 0 && cs[w].Tier.Failing() {
		v.reason = cs[w].Name + ": " + cs[w].Reason
		return v
	} else if w >= 0 && cs[w].Tier == TierSkip {
		v.reason = cs[w].Reason
		return v
	}
	if n == 1 {
		v.reason = cs[0].Name + ": as expected"
	} else {
		v.reason = fmt.Sprintf("%d variants as expected", n)
	}
	return v
}

// needDPoP returns AT1 or a skip verdict.
func (r *run) needDPoP() (*issued, *verdict) {
	it, err := r.s.dpopToken(r.ctx)
	if err != nil {
		v := skipf("precondition: no DPoP-bound token: %s", sanitizeErr(err))
		return nil, &v
	}
	return it, nil
}

// needMTLS returns ATC or a skip verdict.
func (r *run) needMTLS() (*issued, *verdict) {
	it, err := r.s.mtlsToken(r.ctx)
	if err != nil {
		v := skipf("precondition: no certificate-bound token: %s", sanitizeErr(err))
		return nil, &v
	}
	if _, ok := cnfMember(it.claims, "x5t#S256"); !ok && it.claims != nil {
		v := skipf("precondition: the mTLS token carries no cnf.x5t#S256")
		return nil, &v
	}
	return it, nil
}

// dpopReq builds the standard DPoP resource request for token it and key,
// with the proof mutated by mutate.
func (r *run) dpopReq(it *issued, key *clientKey, mutate func(*jws)) rsReq {
	m := r.s.t.method()
	return rsReq{method: m, scheme: "DPoP", token: it.access, proof: r.s.proof(key, m, r.s.t.Resource, it.access, mutate)}
}

// rsStep is a step sending a DPoP resource request.
func rsStep(name string, q func(r *run) rsReq, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) { return r.rs(q(r)) }}
}
