package conformance

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// RunTest runs the catalogue against target as subtests of t, one per case,
// named by case id. An accepted attack or a missing MUST-level feature
// fails its subtest (see [Report.Failed]); wrong refusals, policy failures
// and SHOULD warnings are logged; a skipped case calls t.Skip with the
// reason. Cases run sequentially (they share tokens and nonce state). An
// invalid target or a failed preflight fails t immediately.
func RunTest(t *testing.T, target Target, opts ...Options) {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if err := target.Validate(); err != nil {
		t.Fatal(err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s, err := newSession(target, now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx := t.Context()
	if err := s.preflight(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range selectCases(o.Cases) {
		t.Run(c.ID, func(t *testing.T) {
			res := runCase(ctx, s, c)
			msg := res.Reason
			if res.Observed.Status != 0 {
				msg += " [observed " + strings.TrimSpace(itoa(res.Observed.Status)+" "+res.Observed.Error) + "]"
			}
			switch {
			case res.Status == StatusSkip:
				t.Skip(msg)
			case res.AttacksAccepted() || res.MissingMust():
				t.Errorf("%s %s (%s, %s): %s", res.Tier, c.ID, c.Section, c.Level, msg)
			case res.Tier.Failing():
				t.Logf("%s %s (%s): %s", res.Tier, c.ID, c.Level, msg)
			default:
				t.Log(msg)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
