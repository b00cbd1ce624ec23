package conformance

// Tier says what a check's outcome means for the people who run the
// target. Every [Check] carries one, and a [Result] carries the most severe
// tier of its checks.
type Tier string

// Tiers, from the most severe to the least.
const (
	// TierAcceptedAttack: the target accepted what it must refuse (a
	// replayed proof, a forged token, DPoP over plain HTTP, ...), or leaked
	// a credential in a response. A security failure at any level.
	TierAcceptedAttack Tier = "accepted-attack"
	// TierMissingFeature: the target does not implement a requirement
	// (refuses a valid request, omits a response member, ...) without an
	// immediate security consequence.
	TierMissingFeature Tier = "missing-feature"
	// TierWrongRefusal: the target refused, as it should, but with another
	// status, scheme or error code than the RFC's, or with a 5xx.
	TierWrongRefusal Tier = "wrong-refusal"
	// TierPass: the check behaved as the RFC requires.
	TierPass Tier = "pass"
	// TierRecord: informational; the suite records what the target does
	// where the RFCs allow several behaviours, or notes a deliberate
	// local-test setting.
	TierRecord Tier = "record"
	// TierSkip: the check did not run; the reason says why.
	TierSkip Tier = "skip"
)

// tierOrder lists the tiers from the most severe to the least.
var tierOrder = []Tier{TierAcceptedAttack, TierMissingFeature, TierWrongRefusal, TierPass, TierRecord, TierSkip}

func (t Tier) rank() int {
	for i, x := range tierOrder {
		if x == t {
			return i
		}
	}
	return len(tierOrder)
}

// Failing reports whether the tier is a finding against the target:
// accepted-attack, missing-feature or wrong-refusal.
func (t Tier) Failing() bool {
	return t == TierAcceptedAttack || t == TierMissingFeature || t == TierWrongRefusal
}

// Check is one graded check inside a case: one variant of a request, one
// member of a response, or the hygiene of all the case's responses.
type Check struct {
	// Name names the variant ("stale iat", "replay"); empty when the case
	// has a single check.
	Name string `json:"name,omitempty"`
	// Tier is what the outcome means.
	Tier Tier `json:"tier"`
	// Level is the RFC level of the requirement this check tests. It is
	// the case's level unless the deviation found is weaker (a refusal with
	// 400 where RFC 6750 §3.1 says SHOULD use 401 is graded SHOULD).
	Level Level `json:"level"`
	// Reason is a one-line explanation; it never contains credentials.
	Reason string `json:"reason"`
	// Pattern groups wrong refusals of the same kind across cases, e.g.
	// "refused with 400 where 401 is expected". Empty for other tiers.
	Pattern string `json:"pattern,omitempty"`
	// Observed is the response the check was decided on.
	Observed Observation `json:"observed"`
}

// levelRank orders levels for picking the weightiest of several checks.
func levelRank(l Level) int {
	switch l {
	case LevelMust:
		return 0
	case LevelPolicy:
		return 1
	case LevelShould:
		return 2
	}
	return 3
}

// worst returns the index of the most severe check (the weightiest level
// among equally severe ones), or -1 for none.
func worst(cs []Check) int {
	w := -1
	for i, c := range cs {
		if w < 0 || c.Tier.rank() < cs[w].Tier.rank() ||
			(c.Tier == cs[w].Tier && levelRank(c.Level) < levelRank(cs[w].Level)) {
			w = i
		}
	}
	return w
}

// statusOf maps a result's checks to the legacy status: fail when a check
// fails at MUST or policy level (or on hygiene), warn when only SHOULD or
// record-level checks fail, skip when every check skipped, else pass.
func statusOf(cs []Check, hygiene bool) Status {
	if hygiene {
		return StatusFail
	}
	st, any := StatusSkip, false
	for _, c := range cs {
		switch {
		case c.Tier.Failing() && (c.Level == LevelMust || c.Level == LevelPolicy):
			return StatusFail
		case c.Tier.Failing():
			st = StatusWarn
		case c.Tier != TierSkip && st == StatusSkip:
			st = StatusPass
		}
		any = true
	}
	if !any {
		return StatusSkip
	}
	return st
}
