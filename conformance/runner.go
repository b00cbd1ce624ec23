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
	// Status is the outcome after applying the case's level.
	Status Status `json:"status"`
	// Reason is a one-line explanation; it never contains tokens, proofs
	// or other credentials.
	Reason string `json:"reason"`
	// Observed is the response that decided the case.
	Observed Observation `json:"observed"`
	// Duration is how long the case took.
	Duration time.Duration `json:"duration_ns"`
	// Hygiene is set when the failure is an echoed credential or a
	// Client-Cert response header; such failures count as MUST failures
	// whatever the case's level.
	Hygiene bool `json:"hygiene,omitempty"`
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

// Failed reports whether any MUST-level case failed, or any case failed on
// hygiene (an echoed credential). Policy failures and SHOULD warnings do not
// count.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == StatusFail && (res.Level == LevelMust || res.Hygiene) {
			return true
		}
	}
	return false
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
// It returns an error only for an invalid target or a cancelled context;
// case failures are in the report. Run is safe to call concurrently with
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

// auditCases look at the whole run's responses.
var auditCases = map[string]bool{}

func runCase(ctx context.Context, s *session, c Case) Result {
	start := time.Now()
	res := Result{Case: c}
	r := &run{ctx: ctx, s: s, c: &c}
	var v verdict
	if missing := c.Needs &^ s.caps; missing != 0 {
		v = skipf("target lacks capability %s: %s", missing, capHint(missing))
	} else {
		v = r.guard()
	}
	res.Status, res.Reason, res.Hygiene = v.status, v.reason, v.hygiene
	if res.Status == StatusFail && c.Level == LevelShould && !v.hygiene {
		res.Status = StatusWarn
	}
	if x := r.decisive(); x != nil {
		res.Observed = Observation{Status: x.status, Challenge: safeHeader(x.wwwAuth()), Error: safeToken(x.anyErrorCode())}
	}
	res.Duration = time.Since(start)
	return res
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
	ctx  context.Context
	s    *session
	c    *Case
	xs   []*exchange
	fail *exchange
}

type verdict struct {
	status Status
	reason string
	// hygiene marks a failure caused by an echoed credential or a
	// Client-Cert response header: it counts whatever the level.
	hygiene bool
}

func passf(format string, a ...any) verdict {
	return verdict{status: StatusPass, reason: fmt.Sprintf(format, a...)}
}

func failf(format string, a ...any) verdict {
	return verdict{status: StatusFail, reason: fmt.Sprintf(format, a...)}
}

func skipf(format string, a ...any) verdict {
	return verdict{status: StatusSkip, reason: fmt.Sprintf(format, a...)}
}

// guard runs the case, converting a panic in the suite into a failure that
// names the suite, not the target.
func (r *run) guard() (v verdict) {
	defer func() {
		if p := recover(); p != nil {
			v = verdict{status: StatusFail, reason: fmt.Sprintf("suite error: %v", p)}
		}
	}()
	v = r.c.run(r.ctx, r)
	if v.status != StatusSkip {
		for _, x := range r.xs {
			if x.hygiene != "" {
				r.fail = x
				return verdict{status: StatusFail, reason: x.hygiene, hygiene: true}
			}
		}
	}
	return v
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
	x, err := r.s.resource(r.ctx, q)
	if err != nil {
		v := failf("suite error: %s", sanitizeErr(err))
		return nil, &v
	}
	return r.note(x), nil
}

func (r *run) tok(q tokReq) (*exchange, *verdict) {
	x, err := r.s.token(r.ctx, q)
	if err != nil {
		v := failf("suite error: %s", sanitizeErr(err))
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

func (w want) String() string {
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

// rejected returns "" when x is a rejection matching one of ws, else why not.
func rejected(x *exchange, ws []want) string {
	if x == nil {
		return "no request sent"
	}
	if x.err != nil {
		return x.describe()
	}
	if x.status >= 200 && x.status < 300 {
		return fmt.Sprintf("accepted (status %d)", x.status)
	}
	if x.status >= 500 {
		return fmt.Sprintf("server error (status %d)", x.status)
	}
	for _, w := range ws {
		if w.status != x.status {
			continue
		}
		if w.scheme == "" {
			return ""
		}
		if w.scheme == "any" {
			if len(x.challenges) > 0 {
				return ""
			}
			continue
		}
		if w.scheme != "json" {
			if _, ok := findChallenge(x.challenges, w.scheme); !ok {
				continue
			}
		}
		if len(w.codes) == 0 || slices.Contains(w.codes, x.errorCode(w.scheme)) {
			return ""
		}
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return fmt.Sprintf("got %s, want %s", x.describe(), strings.Join(parts, " or "))
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
}

// steps runs variants in order and fails on the first that misbehaves.
func (r *run) steps(ss ...step) verdict {
	for _, st := range ss {
		x, v := st.do(r)
		if v != nil {
			return *v
		}
		var why string
		if st.accept {
			why = accepted(x)
		} else {
			why = rejected(x, st.want)
		}
		if why != "" {
			r.fail = x
			return failf("%s: %s", st.name, why)
		}
		if x != nil && x.hygiene != "" {
			r.fail = x
			return verdict{status: StatusFail, reason: st.name + ": " + x.hygiene, hygiene: true}
		}
	}
	if len(ss) == 1 {
		return passf("%s: as expected", ss[0].name)
	}
	return passf("%d variants as expected", len(ss))
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
